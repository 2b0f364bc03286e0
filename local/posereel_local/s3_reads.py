"""What the local S3 sent to each stage of each job: the bytes of its GET responses, told apart
by the User-Agent every PoseReel request carries (posereel.usage.read_for), the SDK's and
ffmpeg's range reads of a video link alike. In AWS the same split comes from S3 server access
logs (their User-Agent field); here a WSGI middleware in front of moto counts as it sends.

A response is counted as it is written, in pieces: a reader that closes its connection early
(ffmpeg asks for ``bytes=0-`` and stops where it has what it needs, then seeks) is counted for
what it was sent, not for the whole rest of the object. What it was sent includes what the
server's socket buffer held when it hung up, so LocalAws keeps that buffer small
(server.SEND_BUFFER_BYTES): Linux's default grows to 4 MB a connection, which counted about 4 MB
more than the reader took for every range read."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from posereel.usage import reader_of

# How much is written at a time: what a reader that hangs up may be counted for beyond what it took.
PIECE_BYTES = 64 * 1024

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class S3Reads:
    """A WSGI middleware that counts the bytes of every GET response to a marked request."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._bytes: dict[tuple[str, str], int] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        reader = reader_of(str(environ.get("HTTP_USER_AGENT", "")))
        body = self._app(environ, start_response)
        if reader is None or environ.get("REQUEST_METHOD") != "GET":
            return body
        return self._counted(reader, body)

    def _counted(self, reader: tuple[str, str], body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            for chunk in body:
                for start in range(0, len(chunk), PIECE_BYTES):
                    piece = chunk[start : start + PIECE_BYTES]
                    yield piece  # resumed once the server has written it
                    self._add(reader, len(piece))
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def _add(self, reader: tuple[str, str], count: int) -> None:
        with self._lock:
            self._bytes[reader] = self._bytes.get(reader, 0) + count

    def of_job(self, job_id: str) -> dict[str, int]:
        """Bytes sent to each stage of ``job_id`` ("ANALYZE/3" for a chunk), so far."""
        with self._lock:
            return {stage: n for (job, stage), n in sorted(self._bytes.items()) if job == job_id}
