"""The local stand-in for API Gateway turns requests into REST proxy events and proxy responses
back into HTTP, serves the web client's files, and the Python client talks to it (and uploads a
file as a browser's form POST does: fields first, the file last). The function is a fake here."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import socket
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from posereel_local.api_server import ApiServer, FunctionError, proxy_event
from posereel_local.client import ApiClient, ApiError, Upload, content_type_of, multipart_form


class FakeApi:
    """Answers like the api function would, and remembers the events it got."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> Mapping[str, Any]:
        self.events.append(event)
        route = (event["httpMethod"], event["path"])
        if route == ("POST", "/uploads"):
            file = json.loads(event["body"])["files"][0]
            ticket = {
                "job_id": "job-0001",
                "post": {"url": "FORM", "fields": {"key": f"uploads/{file['filename']}"}},
                "multipart": None,
            }
            return {
                "statusCode": 201,
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"uploads": [ticket]}),
            }
        if route == ("POST", "/form"):
            return {"statusCode": 204, "body": ""}
        if route == ("GET", "/picture"):
            return {
                "statusCode": 200,
                "headers": {"Content-Type": "image/png"},
                "body": "iVBORw==",
                "isBase64Encoded": True,
            }
        if route == ("GET", "/boom"):
            raise FunctionError("Task timed out")
        if route == ("GET", "/malformed"):
            return {"body": "no status"}
        return {
            "statusCode": 404,
            "body": json.dumps({"code": "NOT_FOUND", "message": f"no {event['path']}"}),
        }


@pytest.fixture
def fake() -> FakeApi:
    return FakeApi()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<h1>PoseReel</h1>")
    (web / "app.js").write_text("console.log('hi')")
    (tmp_path / "secret.txt").write_text("not for the web")
    return web


@pytest.fixture
def server(fake: FakeApi, site: Path) -> Iterator[ApiServer]:
    api = ApiServer(fake, static_dir=site)
    api.start()
    yield api
    api.stop()


def test_a_request_becomes_a_rest_proxy_event() -> None:
    event = proxy_event(
        method="GET",
        raw_path="/jobs/abc%20d?x=1&x=2&y=",
        headers={"Accept": "application/json", "User-Agent": "test"},
        body=b"",
        source_ip="127.0.0.1",
        host="localhost:8321",
    )
    assert (event["httpMethod"], event["path"], event["resource"]) == ("GET", "/jobs/abc d", "/{proxy+}")
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["pathParameters"] == {"proxy": "jobs/abc d"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert event["requestContext"]["path"] == "/jobs/abc d"  # served at the root, no stage prefix


def test_text_bodies_pass_as_text_and_others_as_base64() -> None:
    common = {"method": "POST", "raw_path": "/x", "source_ip": "::1", "host": "h"}
    text = proxy_event(headers={"Content-Type": "application/json"}, body=b'{"a": 1}', **common)
    assert (text["body"], text["isBase64Encoded"]) == ('{"a": 1}', False)
    binary = proxy_event(headers={"Content-Type": "video/mp4"}, body=b"\x00\xff", **common)
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x00\xff"
    assert proxy_event(headers={}, body=b"", **common)["queryStringParameters"] is None


def test_the_function_answers_the_request(server: ApiServer, fake: FakeApi) -> None:
    client = ApiClient(server.url)
    upload = client.create_upload(Path(__file__), content_type="video/mp4")
    assert upload == Upload(job_id="job-0001", url="FORM", fields={"key": f"uploads/{Path(__file__).name}"})
    assert fake.events[-1]["headers"]["Content-Type"] == "application/json"


def test_errors_come_back_as_their_code_and_message(server: ApiServer) -> None:
    with pytest.raises(ApiError) as missing:
        ApiClient(server.url).get_job("nope")
    assert (missing.value.status, missing.value.code, missing.value.message) == (
        404,
        "NOT_FOUND",
        "no /jobs/nope",
    )


@pytest.mark.parametrize("path", ["/boom", "/malformed"])
def test_a_failing_or_malformed_function_is_a_502(server: ApiServer, path: str) -> None:
    with pytest.raises(ApiError) as failed:
        ApiClient(server.url)._json("GET", path)
    assert failed.value.status == 502


def raw_http(server: ApiServer, request: bytes) -> tuple[int, dict[str, Any]]:
    """Send raw bytes (what no well-behaved client sends) and read the status and JSON body."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"Content-Type: application/json" in head, head
    return status, json.loads(body)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"TRACE /jobs HTTP/1.1\r\nHost: x\r\n\r\n", 404, "NOT_FOUND"),
        (b"FROB /jobs HTTP/1.1\r\nHost: x\r\n\r\n", 404, "NOT_FOUND"),
        (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "INVALID_REQUEST"),
        (b"POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\n", 413, "TOO_LARGE"),
    ],
    ids=["trace", "unknown-method", "bad-request-line", "too-large"],
)
def test_the_servers_own_refusals_are_in_the_api_shape(
    server: ApiServer, request_bytes: bytes, status: int, code: str
) -> None:
    answered, body = raw_http(server, request_bytes)
    assert (answered, body["code"]) == (status, code) and body["message"]


def test_a_burst_of_60_concurrent_requests_is_answered_in_full(server: ApiServer) -> None:
    client = ApiClient(server.url)

    def announce(_: int) -> str:
        return client.create_upload(Path(__file__), content_type="video/mp4").job_id

    with ThreadPoolExecutor(max_workers=60) as pool:
        answers = list(pool.map(announce, range(60)))
    assert answers == ["job-0001"] * 60


def test_binary_responses_are_decoded(server: ApiServer) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{server.url}/picture", timeout=10) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert response.read() == base64.b64decode("iVBORw==")


def test_the_web_client_is_served_and_nothing_outside_it(server: ApiServer, fake: FakeApi) -> None:
    import urllib.request

    for path, expected in (("/", "<h1>PoseReel</h1>"), ("/app.js", "console.log('hi')")):
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            assert response.read().decode() == expected
    assert fake.events == []
    with pytest.raises(ApiError):
        ApiClient(server.url)._json("GET", "/../secret.txt")
    assert fake.events[-1]["path"] in ("/secret.txt", "/../secret.txt")


def test_without_an_index_html_every_path_goes_to_the_api(fake: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "app.js").write_text("half a site")
    api = ApiServer(fake, static_dir=tmp_path)
    api.start()
    try:
        assert not api.serves_static
        with pytest.raises(ApiError):
            ApiClient(api.url)._json("GET", "/app.js")
        assert fake.events[-1]["path"] == "/app.js"
    finally:
        api.stop()


def test_the_upload_is_a_browser_form_post_with_the_file_last(
    server: ApiServer, fake: FakeApi, tmp_path: Path
) -> None:
    video = tmp_path / "clip one.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 10)
    fields = {
        "key": "uploads/job/clip one.mp4",
        "Content-Type": "video/mp4",
        "policy": "e30=",
        "x-amz-signature": "abc",
    }
    ApiClient(server.url).upload_file(
        Upload("job", f"{server.url}/form", fields), video, content_type="video/mp4"
    )
    event = fake.events[-1]
    content_type = event["headers"]["Content-Type"]
    body = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = list(message.iter_parts())
    assert [p.get_param("name", header="content-disposition") for p in parts] == [*fields, "file"]
    assert [p.get_content() for p in parts[:-1]] == list(fields.values())
    assert parts[-1].get_filename() == "clip one.mp4"
    assert parts[-1].get_content_type() == "video/mp4"
    assert parts[-1].get_payload(decode=True) == video.read_bytes()


def test_the_declared_length_is_the_body_length(tmp_path: Path) -> None:
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x" * 3_000_000)  # more than one read
    _, length, chunks = multipart_form({"key": "k"}, video, content_type="video/mp4")
    assert length == sum(len(c) for c in chunks)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("clip.mp4", "video/mp4"),
        ("clip.MOV", "video/quicktime"),
        ("notes.txt", "text/plain"),
        ("x.zzz", "application/octet-stream"),
    ],
)
def test_the_content_type_comes_from_the_name_as_in_a_browser(name: str, expected: str) -> None:
    assert content_type_of(Path(name)) == expected


def test_with_keys_only_public_routes_pass_without_one(fake: FakeApi, site: Path) -> None:
    # Given a local API that asks for keys, as API Gateway methods with apiKeyRequired do
    api = ApiServer(fake, static_dir=site, api_keys={"secret-key": "key-id-1"})
    api.start()
    try:
        # Then a request without a key never reaches the function
        with pytest.raises(ApiError) as refused:
            ApiClient(api.url)._json("GET", "/jobs")
        assert (refused.value.status, refused.value.code) == (403, "FORBIDDEN")
        assert fake.events == []
        # and /health, the site and its config need none
        with pytest.raises(ApiError):  # the fake has no /health: its 404 shows the function was called
            ApiClient(api.url)._json("GET", "/health")
        assert ApiClient(api.url)._json("GET", "/config.json") == {"api_url": "", "auth": "api_key"}
        # and a request with the key carries it and its id to the function
        with pytest.raises(ApiError):
            ApiClient(api.url, api_key="secret-key")._json("GET", "/jobs")
        identity = fake.events[-1]["requestContext"]["identity"]
        assert (identity["apiKey"], identity["apiKeyId"]) == ("secret-key", "key-id-1")
    finally:
        api.stop()
