"""A local stand-in for API Gateway (REST API, Lambda proxy integration) in front of the api Lambda.

Each HTTP request becomes the proxy event API Gateway would send; the caller's ``invoke`` runs
the function (the local stack invokes it through boto3, so it runs in its own environment through
the same hook as every other Lambda) and the function's response becomes the HTTP response.
When a static folder with an ``index.html`` is given, GET requests for ``/`` and for files in it
are served from disk, as a CDN in front of the site bucket would, with a ``config.json`` telling
the web client that the API is on the same origin.

With ``api_keys`` (key -> key id), every route but posereel.resources.API_PUBLIC_ROUTES needs
one of them in the x-api-key header, as a REST API whose methods require an API key: without it
the answer is 403 and the function is not called; with it the event carries the key and its id.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import mimetypes
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from posereel.resources import API_KEY_HEADER, API_PUBLIC_ROUTES, GATEWAY_ERRORS

logger = logging.getLogger("posereel.local")

# event -> the function's response document ({statusCode, headers, body, isBase64Encoded})
Invoke = Callable[[dict[str, Any]], Mapping[str, Any]]

STAGE = "local"
_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
SITE_CONFIG = "config.json"  # where the web client learns the API's URL and auth (same origin here)
_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


class FunctionError(Exception):
    """The api function failed (raised, timed out): API Gateway answers 502 then."""


def proxy_event(
    *,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    source_ip: str,
    host: str,
    api_key: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The API Gateway REST proxy event (payload format 1.0) for one request; ``api_key``: the
    (key, key id) it was authorised with."""
    split = urlsplit(raw_path)
    path = unquote(split.path) or "/"
    query = parse_qsl(split.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers.items():
        multi_headers.setdefault(name, []).append(value)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    text = not body or content_type.startswith(_TEXT_TYPES)
    encoded_body: str | None
    if not body:
        encoded_body = None
    elif text:
        try:
            encoded_body = body.decode("utf-8")
        except UnicodeDecodeError:
            text = False
            encoded_body = base64.b64encode(body).decode("ascii")
    else:
        encoded_body = base64.b64encode(body).decode("ascii")
    now = time.time()
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": multi_headers,
        # API Gateway sends null, not {}, when there is none.
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")} if path != "/" else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "resourceId": "local",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            # The API is served at the root (as a custom domain mapped without a base path).
            "path": path,
            "stage": STAGE,
            "protocol": "HTTP/1.1",
            "domainName": host,
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "apiKey": api_key[0] if api_key else None,
                "apiKeyId": api_key[1] if api_key else None,
                "sourceIp": source_ip,
                "userAgent": next((v for k, v in headers.items() if k.lower() == "user-agent"), None),
            },
        },
        "body": encoded_body,
        "isBase64Encoded": not text,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("api %s - %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read
            self._gateway_error("REQUEST_TOO_LARGE", f"the request body is over {_MAX_BODY_BYTES} bytes")
            return
        body = self.rfile.read(length) if length else b""
        if self.command in ("GET", "HEAD") and self._serve_static():
            return
        api_key = self._api_key()
        if api_key is None and not self._public():
            self._reply(
                HTTPStatus.FORBIDDEN,
                {
                    "code": "FORBIDDEN",
                    "message": f"a valid API key is required (the {API_KEY_HEADER} header)",
                },
            )
            return
        event = proxy_event(
            method=self.command,
            raw_path=self.path,
            # API Gateway adds X-Forwarded-Proto (https there; this server speaks http).
            headers={**{k: v for k, v in self.headers.items()}, "X-Forwarded-Proto": "http"},
            body=body,
            source_ip=self.client_address[0],
            host=self.headers.get("Host", ""),
            api_key=api_key,
        )
        try:
            response = self.server.invoke(event)
        except FunctionError as exc:
            logger.warning("local API: the api function failed: %s", exc)
            self._gateway_error("DEFAULT_5XX", "internal error", status=HTTPStatus.BAD_GATEWAY)
            return
        self._send_function_response(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (an unknown method, a bad request line, headers too long)
        in the API's error shape, not its HTML page. An unknown method gets what API Gateway
        answers for a method no route has: 404 NOT_FOUND."""
        self.close_connection = True  # a body, if any, was not read
        if code == HTTPStatus.NOT_IMPLEMENTED:
            self._gateway_error("MISSING_AUTHENTICATION_TOKEN", f"no such resource (method {self.command})")
            return
        self._gateway_error("DEFAULT_4XX", message or HTTPStatus(code).phrase, status=HTTPStatus(code))

    def _gateway_error(self, response_type: str, message: str, *, status: HTTPStatus | None = None) -> None:
        """What API Gateway answers itself, as infra declares it (resources.GATEWAY_ERRORS)."""
        declared, code = GATEWAY_ERRORS[response_type]
        self._reply(status or HTTPStatus(int(declared or 500)), {"code": code, "message": message})

    def _api_key(self) -> tuple[str, str] | None:
        keys = self.server.api_keys
        given = self.headers.get(API_KEY_HEADER, "")
        if keys is None or given not in keys:
            return None
        return given, keys[given]

    def _public(self) -> bool:
        if self.server.api_keys is None or self.command == "OPTIONS":  # CORS preflight: no key
            return True
        return (self.command, unquote(urlsplit(self.path).path)) in API_PUBLIC_ROUTES

    def _send_function_response(self, response: Mapping[str, Any]) -> None:
        try:
            status = int(response["statusCode"])
        except (KeyError, TypeError, ValueError):
            logger.warning("local API: malformed Lambda proxy response: %.500r", response)
            self._gateway_error("DEFAULT_5XX", "internal error", status=HTTPStatus.BAD_GATEWAY)
            return
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode("utf-8")
        headers: list[tuple[str, str]] = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(v)) for v in values)
        self.send_response(status)
        names = {k.lower() for k, _ in headers}
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if "content-type" not in names and payload:  # 204 and other empty answers carry no type
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _reply(self, status: HTTPStatus, document: Mapping[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _serve_static(self) -> bool:
        root = self.server.static_dir
        if root is None:
            return False
        relative = unquote(urlsplit(self.path).path).lstrip("/") or "index.html"
        if relative == SITE_CONFIG:
            self._reply(HTTPStatus.OK, {"api_url": "", "auth": "api_key"})
            return True
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return False
        data = target.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", mimetypes.guess_type(target.name)[0] or "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        return True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # The stdlib listens with a backlog of 5: a burst of connections beyond it is reset.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        invoke: Invoke,
        static_dir: Path | None,
        api_keys: Mapping[str, str] | None,
    ) -> None:
        super().__init__(address, _Handler)
        self.invoke = invoke
        self.static_dir = static_dir
        self.api_keys = api_keys

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away before its answer (it gave up waiting, or closed the page) is
        one log line, as for API Gateway; anything else keeps the stdlib's traceback."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            logger.info("local API: %s:%s went away before its answer", *client_address[:2])
            return
        super().handle_error(request, client_address)


class ApiServer:
    """The local API: ``start()`` returns its URL; ``stop()`` closes it. Port 0 picks a free one.
    ``api_keys`` None: no key is asked for (a bare function behind it, in tests)."""

    def __init__(
        self,
        invoke: Invoke,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        static_dir: str | Path | None = None,
        api_keys: Mapping[str, str] | None = None,
    ) -> None:
        self._invoke = invoke
        self._api_keys = api_keys  # the live mapping: keys added later count
        self._address = (host, port)
        static = Path(static_dir).resolve() if static_dir is not None else None
        # Only a real site: an empty or half-made web/ folder must not hide API routes.
        self._static_dir = static if static is not None and (static / "index.html").is_file() else None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local API is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def serves_static(self) -> bool:
        return self._static_dir is not None

    def start(self) -> str:
        try:
            self._server = _Server(self._address, self._invoke, self._static_dir, self._api_keys)
        except OSError as exc:
            host, port = self._address
            raise OSError(f"the local API cannot listen on {host}:{port}: {exc}") from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-api", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


def invoke_through_lambda(client: Any, function_name: str) -> Invoke:
    """An ``Invoke`` that calls ``function_name`` with boto3's lambda.invoke, as API Gateway does."""

    def invoke(event: dict[str, Any]) -> Mapping[str, Any]:
        response = client.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            raise FunctionError(payload.decode("utf-8", errors="replace")[:2000])
        with contextlib.suppress(ValueError):
            document = json.loads(payload)
            if isinstance(document, Mapping):
                return document
        raise FunctionError(f"the api function returned no proxy response: {payload[:500]!r}")

    return invoke
