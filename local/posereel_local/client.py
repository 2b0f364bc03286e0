"""What the web client does, from Python: announce an upload to the API, send the file as a
browser would (the presigned form POST, or for a large file a PUT per part of a multipart upload
and then POST /uploads/{job_id}/complete), and poll the job until it ends.

Standard library only (urllib): it talks HTTP to the API and to S3's form upload, nothing else.
``posereel run`` uses it against the local stack; it works against a deployed API as well.
"""

from __future__ import annotations

import json
import mimetypes
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import ProxyHandler, Request, build_opener

from posereel.pipeline.api import JobView
from posereel.pipeline.reels import ReelView
from posereel.resources import API_KEY_HEADER

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 60.0
# Types a browser reports for video files its OS knows; .mp4 and friends come from mimetypes.
_FALLBACK_TYPE = "application/octet-stream"


class ApiError(Exception):
    """The API (or the upload endpoint) answered with an error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} [{code}]: {message}")
        self.status = status
        self.code = code
        self.message = message


class JobTimeout(TimeoutError):
    """The job did not end within the time a caller waited for it."""


@dataclass(frozen=True)
class Upload:
    """One upload of POST /uploads' answer: the job, and either the form to POST the file to
    (``url``, ``fields``) or the multipart upload's part URLs and part size."""

    job_id: str
    url: str = ""
    fields: dict[str, str] | None = None
    part_urls: tuple[str, ...] = ()
    part_size_bytes: int = 0

    @classmethod
    def from_ticket(cls, ticket: Mapping[str, Any]) -> Upload:
        post, multipart = ticket.get("post"), ticket.get("multipart")
        if post:
            return cls(job_id=ticket["job_id"], url=post["url"], fields=dict(post["fields"]))
        if multipart:
            return cls(
                job_id=ticket["job_id"],
                part_urls=tuple(p["url"] for p in sorted(multipart["parts"], key=lambda p: p["part_number"])),
                part_size_bytes=int(multipart["part_size_bytes"]),
            )
        raise ValueError(f"an upload with neither a form nor parts: {ticket}")


def content_type_of(path: Path) -> str:
    """The type a browser would send for this file: from its name, like a file input does."""
    return mimetypes.guess_type(path.name)[0] or _FALLBACK_TYPE


def multipart_form(
    fields: Mapping[str, str], file_path: Path, *, content_type: str, boundary: str | None = None
) -> tuple[str, int, Iterator[bytes]]:
    """A multipart/form-data body: every field, then the file as the last part (S3 ignores
    anything after it). Returns (Content-Type header, Content-Length, body chunks)."""
    boundary = boundary or f"posereel-{uuid.uuid4().hex}"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    filename = file_path.name.replace('"', "%22")
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = file_path.stat().st_size

    def chunks() -> Iterator[bytes]:
        yield head
        with file_path.open("rb") as f:
            while block := f.read(_CHUNK_BYTES):
                yield block
        yield tail

    return f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail), chunks()


class ApiClient:
    """The PoseReel REST API at ``base_url`` (no trailing slash needed)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout_s: float = _TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._opener = build_opener(ProxyHandler({}))  # a local API is never behind the host's proxy

    def _request(self, request: Request) -> tuple[int, bytes]:
        status, _, body = self._exchange(request)
        return status, body

    def _exchange(self, request: Request) -> tuple[int, Mapping[str, str], bytes]:
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                return int(response.status), response.headers, response.read()
        except HTTPError as exc:
            body = exc.read()
            code, message = _error_of(body)
            raise ApiError(exc.code, code, message or exc.reason) from None
        except URLError as exc:
            raise ApiError(0, "UNREACHABLE", f"{request.full_url}: {exc.reason}") from None

    def _json(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key is not None:
            headers[API_KEY_HEADER] = self._api_key
        _, payload = self._request(Request(self.base_url + path, data=data, method=method, headers=headers))
        return json.loads(payload) if payload else None

    def create_upload(
        self,
        path: Path,
        *,
        content_type: str,
        size_bytes: int | None = None,
        options: dict[str, Any] | None = None,
        notify: dict[str, str] | None = None,
    ) -> Upload:
        """Announce ``path`` (``size_bytes``: another size to announce than the file's; ``options``:
        the choices for its analysis and first reel; ``notify``: {url, secret} of a webhook)."""
        size = path.stat().st_size if size_bytes is None else size_bytes
        file: dict[str, Any] = {"filename": path.name, "size_bytes": size, "content_type": content_type}
        if options is not None:
            file["options"] = options
        if notify is not None:
            file["notify"] = notify
        answer = self._json("POST", "/uploads", {"files": [file]})
        return Upload.from_ticket(answer["uploads"][0])

    def upload_file(self, upload: Upload, path: Path, *, content_type: str) -> None:
        """Send the file as a browser would: the form POST, or the parts and then complete."""
        if upload.fields is None:
            self._upload_parts(upload, path)
            return
        header, length, body = multipart_form(upload.fields, path, content_type=content_type)
        request = Request(
            upload.url,
            data=body,
            method="POST",
            headers={"Content-Type": header, "Content-Length": str(length)},
        )
        self._request(request)

    def _upload_parts(self, upload: Upload, path: Path) -> None:
        urls = dict(enumerate(upload.part_urls, start=1))
        self._send_parts(upload.job_id, path, urls, part_size=upload.part_size_bytes, held={})

    def resume_upload(self, job_id: str, path: Path) -> None:
        """Finish a multipart upload that this or another client began and lost track of (a
        restart): the parts S3 holds stay, the others are sent, then the upload is completed."""
        progress = self._json("GET", f"/uploads/{job_id}/parts")
        urls = {int(p["part_number"]): str(p["url"]) for p in progress["parts"]}
        held = {int(p["part_number"]): str(p["etag"]) for p in progress["uploaded"]}
        self._send_parts(job_id, path, urls, part_size=int(progress["part_size_bytes"]), held=held)

    def _send_parts(
        self, job_id: str, path: Path, urls: dict[int, str], *, part_size: int, held: dict[int, str]
    ) -> None:
        etags = dict(held)
        with path.open("rb") as f:
            for number, url in sorted(urls.items()):
                f.seek((number - 1) * part_size)
                data = f.read(part_size)
                # A raw body: without a type urllib would label it a form (and moto would parse it).
                put = Request(url, data=data, method="PUT", headers={"Content-Type": _FALLBACK_TYPE})
                _, headers, _ = self._exchange(put)
                etags[number] = headers.get("ETag", "")
        parts = [{"part_number": n, "etag": etags[n]} for n in sorted(etags)]
        self._json("POST", f"/uploads/{job_id}/complete", {"parts": parts})

    def get_job(self, job_id: str) -> JobView:
        return JobView.model_validate(self._json("GET", f"/jobs/{job_id}"))

    def results(self, job_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/jobs/{job_id}/results"))

    def list_jobs(self, **query: str | int) -> dict[str, Any]:
        suffix = f"?{urlencode(query)}" if query else ""
        return dict(self._json("GET", f"/jobs{suffix}"))

    def delete_job(self, job_id: str) -> None:
        self._json("DELETE", f"/jobs/{job_id}")

    def create_reel(self, job_id: str, **options: Any) -> ReelView:
        """Ask for a re-cut of a finished job (``options``: those of ``POST /jobs/{id}/reels``)."""
        return ReelView.model_validate(self._json("POST", f"/jobs/{job_id}/reels", options))

    def reels(self, job_id: str) -> list[ReelView]:
        return [ReelView.model_validate(r) for r in self._json("GET", f"/jobs/{job_id}/reels")["reels"]]

    def reel(self, job_id: str, reel_id: int) -> ReelView:
        return ReelView.model_validate(self._json("GET", f"/jobs/{job_id}/reels/{reel_id}"))

    def delete_reel(self, job_id: str, reel_id: int) -> None:
        self._json("DELETE", f"/jobs/{job_id}/reels/{reel_id}")

    def wait_reel(self, job_id: str, reel_id: int, *, timeout_s: float, poll_s: float = 0.5) -> ReelView:
        """Poll a re-cut until it ends; raises JobTimeout after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            view = self.reel(job_id, reel_id)
            if view.status.terminal:
                return view
            if time.monotonic() > deadline:
                still = f"still {view.status} after {timeout_s:.0f} s"
                raise JobTimeout(f"reel {reel_id} of job {job_id} {still}")
            time.sleep(poll_s)

    def submit(
        self,
        path: Path,
        *,
        options: dict[str, Any] | None = None,
        notify: dict[str, str] | None = None,
    ) -> str:
        """Announce and upload ``path`` (``options``: the upload's options); returns the job id."""
        content_type = content_type_of(path)
        upload = self.create_upload(path, content_type=content_type, options=options, notify=notify)
        self.upload_file(upload, path, content_type=content_type)
        return upload.job_id

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float,
        poll_s: float = 0.5,
        on_update: Callable[[JobView], None] | None = None,
    ) -> JobView:
        """Poll the job until it ends; raises JobTimeout after ``timeout_s``. A poll that fails on
        the way (no answer in time, a dropped connection, a 5xx) is tried again at the next one, as
        the web page does, until the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                record = self.get_job(job_id)
            except (OSError, ApiError) as exc:
                if (isinstance(exc, ApiError) and exc.status < 500) or time.monotonic() > deadline:
                    raise
                time.sleep(poll_s)
                continue
            if on_update is not None:
                on_update(record)
            if record.status.terminal:
                return record
            if time.monotonic() > deadline:
                still = f"{record.status} ({record.stage})"
                raise JobTimeout(f"job {job_id} still {still} after {timeout_s:.0f} s")
            time.sleep(poll_s)


def _error_of(body: bytes) -> tuple[str, str]:
    """(code, message) of an error body: the API's JSON {code, message}, or S3's XML."""
    text = body.decode("utf-8", errors="replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if isinstance(document, Mapping):
        return str(document.get("code", "ERROR")), str(document.get("message", text[:500]))
    if "<Code>" in text:
        code = text.split("<Code>", 1)[1].split("</Code>", 1)[0]
        message = text.split("<Message>", 1)[1].split("</Message>", 1)[0] if "<Message>" in text else ""
        return code, message
    return "ERROR", text[:500]
