"""What each stage of a job used: wall and CPU seconds, GPU seconds, peak memory and S3 requests,
measured by the process that ran it (``Meter``) and kept in the job record under ``usage``, one
entry per stage (summed over its runs: a retried stage costs twice). posereel.costs prices it.

Plain data and the standard library, no AWS: the S3 request counts come from the counter the
caller gives ``Meter`` (the SDK's own, posereel.aws.mediastore.s3_requests); the bytes a stage
read are told apart by the User-Agent its requests carry (``read_for``).
"""

from __future__ import annotations

import contextlib
import re
import resource
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Platform(StrEnum):
    """Where a stage ran, which is what its price depends on."""

    LAMBDA = "lambda"
    CPU_WORKER = "cpu_worker"  # a Batch job on Fargate
    GPU_WORKER = "gpu_worker"  # a Batch job on a GPU instance


# The keys of JobRecord.usage: the workflow's stages (posereel.jobs.Stage), the chunk workers
# split by device, the stages that ran as container jobs (posereel.resources.CONTAINER_STAGES,
# "_JOB"), and every re-cut of the job together.
USAGE_KEYS = (
    "SCAN",
    "SCAN_JOB",
    "VALIDATE",
    "PLAN",
    "ANALYZE_GPU",
    "ANALYZE_CPU",
    "MERGE",
    "MERGE_JOB",
    "COMPILE",
    "COMPILE_JOB",
    "REELS",
)


class StageUse(BaseModel):
    """One stage's resource use, summed over its runs (peak memory: the largest)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    platform: Platform
    runs: int = Field(1, ge=1, description="invocations or Batch jobs it took")
    wall_s: float = Field(ge=0, description="seconds it ran (what Lambda and Fargate bill)")
    cpu_s: float = Field(ge=0, description="CPU seconds, its own and its child processes' (ffmpeg)")
    gpu_s: float = Field(0, ge=0, description="seconds it held a GPU")
    memory_mb: int = Field(ge=0, description="memory it was given (Lambda's setting, the worker's)")
    vcpus: float = Field(
        0, ge=0, description="vCPUs it was given, where not the environment's chunk worker shape (0)"
    )
    peak_memory_mb: float = Field(ge=0, description="the most it held at once (resident set)")
    s3_gets: int = Field(
        0, ge=0, description="S3 GET/HEAD requests of the SDK (range reads by ffmpeg not counted)"
    )
    s3_puts: int = Field(0, ge=0, description="S3 PUT/COPY/POST/LIST requests")

    def plus(self, other: StageUse) -> StageUse:
        """Both runs together (same platform; the later one's memory setting)."""
        return StageUse(
            platform=other.platform,
            runs=self.runs + other.runs,
            wall_s=round(self.wall_s + other.wall_s, 3),
            cpu_s=round(self.cpu_s + other.cpu_s, 3),
            gpu_s=round(self.gpu_s + other.gpu_s, 3),
            memory_mb=other.memory_mb,
            vcpus=other.vcpus,
            peak_memory_mb=max(self.peak_memory_mb, other.peak_memory_mb),
            s3_gets=self.s3_gets + other.s3_gets,
            s3_puts=self.s3_puts + other.s3_puts,
        )


def total(uses: list[StageUse]) -> StageUse | None:
    """Several runs as one entry; None for none."""
    if not uses:
        return None
    out = uses[0]
    for use in uses[1:]:
        out = out.plus(use)
    return out


_PROC_SELF = Path("/proc/self")


def _cpu_s() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _reset_peak() -> None:
    """Start this process's peak resident set afresh (Linux: clear_refs 5), so that a warm
    Lambda container measures each invocation on its own; where it cannot, the peak is the
    process's."""
    with contextlib.suppress(OSError):
        (_PROC_SELF / "clear_refs").write_text("5")


def _peak_mb() -> float:
    """The largest resident set of this process since the last reset (VmHWM), or of any child
    process it waited for (those cannot be reset: a warm container's earlier child may count)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    try:
        for line in (_PROC_SELF / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
                break
    except OSError:
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(max(own, children), 1)


def container_memory_mb(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The memory limit of this process's container (cgroup v2, then v1), what Batch gave the
    job; 0 where there is none."""
    for path in (cgroup / "memory.max", cgroup / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max", or v1's "no limit" number
            return int(text) // 1024**2
    return 0


RequestCounter = Callable[[], tuple[int, int]]  # (GET-tier, PUT-tier) requests so far

# Whom this process reads S3 for: every request it sends (the SDK's and ffmpeg's range reads of a
# video link) carries it in its User-Agent, which S3 server access logs and CloudTrail record, so
# the bytes each stage of each job read can be told apart. A process runs one stage at a time
# (a Lambda invocation, a Batch job), so this is the process's, not a thread's.
_reader = "PoseReel"
_reader_lock = threading.Lock()
_READER = re.compile(r"PoseReel \(job=(?P<job>[^;)]+); stage=(?P<stage>[^)]+)\)")


def read_for(job_id: str, stage: str) -> None:
    """Requests from now on are for ``stage`` (a usage key, "ANALYZE/3" for a chunk) of ``job_id``."""
    global _reader
    with _reader_lock:
        _reader = f"PoseReel (job={job_id}; stage={stage})"


def user_agent() -> str:
    """What this process's requests add to their User-Agent."""
    with _reader_lock:
        return _reader


def reader_of(agent: str) -> tuple[str, str] | None:
    """(job id, stage) of a request's User-Agent that ``user_agent`` marked, else None."""
    found = _READER.search(agent)
    return (found["job"], found["stage"]) if found else None


class Meter:
    """This process's use from construction to ``stop``: wall time, CPU time of all its threads
    and of the child processes it waited for, peak memory, and the S3 requests ``requests``
    counted meanwhile."""

    def __init__(self, requests: RequestCounter | None = None) -> None:
        _reset_peak()
        self._requests = requests
        self._requests0 = requests() if requests else (0, 0)
        self._wall0 = time.perf_counter()
        self._cpu0 = _cpu_s()

    def stop(self, *, platform: Platform, memory_mb: int, gpu: bool = False) -> StageUse:
        wall = time.perf_counter() - self._wall0
        gets, puts = self._requests() if self._requests else (0, 0)
        return StageUse(
            platform=platform,
            wall_s=round(wall, 3),
            cpu_s=round(max(0.0, _cpu_s() - self._cpu0), 3),
            gpu_s=round(wall, 3) if gpu else 0.0,
            memory_mb=memory_mb,
            peak_memory_mb=_peak_mb(),
            s3_gets=gets - self._requests0[0],
            s3_puts=puts - self._requests0[1],
        )
