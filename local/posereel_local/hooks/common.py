"""What the Lambda and Batch runtimes share: how their processes reach the embedded AWS, which host
variables they inherit, and two process helpers. Standard library only (Lambda workers import it)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

logger = logging.getLogger("posereel.local")

# The embedded moto server accepts any credentials; these only ever reach it, never AWS.
LOCAL_CREDENTIAL: Final = "testing"

# Host variables a Lambda worker or a Batch job inherits; everything else comes from the function's
# or job definition's configuration, as in AWS, so a missing setting fails here too.
DEFAULT_PASS_ENV: Final = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TERM")

# moto's logs backend is not thread-safe (its own TODO says so); both runtimes write to it.
LOGS_LOCK = threading.Lock()


@dataclass(frozen=True)
class LocalEndpoint:
    """How code started by the hooks reaches the embedded AWS: only via the SDK's own settings."""

    url: str
    pass_env: Sequence[str] = DEFAULT_PASS_ENV

    def base_env(self) -> dict[str, str]:
        env = {name: os.environ[name] for name in self.pass_env if name in os.environ}
        # The venv's interpreter and console scripts come first, so `python` is this project's.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join(p for p in (bin_dir, env.get("PATH", os.defpath)) if p)
        return env

    def aws_env(self, region: str) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIAL,
            "AWS_SESSION_TOKEN": LOCAL_CREDENTIAL,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }


def has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``proc`` ended, without reaping it: until it is reaped its id cannot go to a new
    process, so its process group can still be signalled safely (see ``kill_group``)."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process group ``proc`` leads (it was started with ``start_new_session``),
    only while ``proc`` is not reaped: a reaped process's id may be a new process's already (ids
    wrap at the kernel's pid_max, 32768 on this machine, within minutes of a burst), and the
    signal would kill that one; a 100-upload stress run lost a compile worker that way. So wait
    for a process (``proc.wait``) only after its group was signalled."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
