"""Webhooks: the signed POST a job's owner asked for (``notify: {url, secret}`` at upload).

Every body is signed: ``X-PoseReel-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed
with the secret>``; a receiver recomputes it over the bytes it got and compares in constant time.

Where a webhook may point is checked twice: when it is given (``url_problem``: https only, no
credentials in it, no address literal that is not public) and before each POST, on the addresses
its host resolves to (``HttpWebhooks``), so a name that resolves into a private network is refused
too. ``loopback`` (the local stack only) also lets http://127.0.0.1, http://[::1] and
http://localhost through. Redirects are not followed: a 3xx is a failed delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-PoseReel-Signature"
EVENT_HEADER = "X-PoseReel-Event"
DELIVERY_HEADER = "X-PoseReel-Delivery"
USER_AGENT = "PoseReel-Webhook/1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_URL_CHARS = 2048


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_valid(body: bytes, secret: str, header: str) -> bool:
    """What a receiver checks (constant-time)."""
    return hmac.compare_digest(sign(body, secret), header)


def url_problem(url: str, *, loopback: bool) -> str | None:
    """Why ``url`` may not receive webhooks, or None when it may (before any DNS lookup)."""
    if len(url) > MAX_URL_CHARS:
        return f"at most {MAX_URL_CHARS} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    host = (parts.hostname or "").lower()
    if not host:
        return "a URL with a host is needed"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not accepted; sign with the secret instead"
    if port == 0:
        return "port 0 is not a port"
    if loopback and host in LOOPBACK_HOSTS and parts.scheme in ("http", "https"):
        return None
    if parts.scheme != "https":
        return "only https URLs receive webhooks"
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{host} is not a public host"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked before each delivery
    return None if address.is_global else f"{host} is not a public address"


def address_problem(host: str, *, loopback: bool) -> str | None:
    """Why the addresses ``host`` resolves to may not be called, or None."""
    if loopback and host.lower() in LOOPBACK_HOSTS:
        return None
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        return f"{host} does not resolve ({exc})"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not address.is_global:
            return f"{host} resolves to {address}, which is not a public address"
    return None


class DeliveryFailed(Exception):
    """A POST that did not reach the receiver, or that it refused before answering."""


@dataclass(frozen=True)
class Answer:
    status: int


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class HttpWebhooks:
    """Implements posereel.pipeline.ports.WebhookPort with urllib (no redirects)."""

    def __init__(self, *, loopback: bool) -> None:
        self._loopback = loopback
        self._opener = urllib.request.build_opener(_NoRedirects())

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float) -> Answer:
        problem = url_problem(url, loopback=self._loopback) or address_problem(
            urlsplit(url).hostname or "", loopback=self._loopback
        )
        if problem:
            raise DeliveryFailed(problem)
        request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=timeout_s) as response:
                response.read(64 * 1024)
                return Answer(status=response.status)
        except urllib.error.HTTPError as exc:
            return Answer(status=exc.code)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            waited = time.monotonic() - started
            raise DeliveryFailed(f"{type(exc).__name__}: {reason} (after {waited:.1f} s)") from exc
