"""Unit tests are pure logic: no external program (ffmpeg, ffprobe, clamscan), no pose model, no
network. A test that needs one belongs in tests/functional; here it fails, saying so."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

_WHERE = "unit tests run no external program, pose model or network: this test belongs in tests/functional"


@pytest.fixture(autouse=True)
def _pure(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(_WHERE)

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # importing it now raises ImportError
