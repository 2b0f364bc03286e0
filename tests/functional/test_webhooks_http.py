"""The webhook sender (posereel.webhooks.HttpWebhooks) against a real listener on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from posereel.webhooks import DeliveryFailed, HttpWebhooks

# --- the HTTP sender against a real listener ---------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []
    got: ClassVar[list[tuple[str, bytes, dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.got.append((self.path, body, dict(self.headers)))
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "https://hooks.example.com/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"answers": [], "got": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_sender_posts_the_bytes_and_headers_and_reports_the_status(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    handler.answers = [202]
    answer = HttpWebhooks(loopback=True).post(url, b'{"a":1}', {"X-Test": "1"}, timeout_s=5)
    assert answer.status == 202
    [(path, body, headers)] = handler.got
    assert (path, body, headers["X-Test"]) == ("/hook", b'{"a":1}', "1")


def test_the_sender_does_not_follow_redirects(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    handler.answers = [302]
    assert HttpWebhooks(loopback=True).post(url, b"{}", {}, timeout_s=5).status == 302
    assert len(handler.got) == 1


def test_the_sender_reports_a_closed_port_as_a_failed_delivery() -> None:
    with pytest.raises(DeliveryFailed):
        HttpWebhooks(loopback=True).post("http://127.0.0.1:9/hook", b"{}", {}, timeout_s=2)
