"""Batch without Docker: moto's ``Job.run`` (a job's thread body) runs the job definition's command
as a local process (``BatchRunner``), with the job's environment, timeout, termination and retry
strategy (attempts, evaluateOnExit); and
``Job._container_details`` stops growing the job's environment on every DescribeJobs and reports
the exit code."""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from posereel_local.hooks.common import LOGS_LOCK, LocalEndpoint, has_exited, kill_group, logger
from posereel_local.hooks.moto_check import Attributes, Signature

if TYPE_CHECKING:
    from moto.batch.models import Job

    from posereel_local.hooks import Patcher

SIGNATURES: Final = (
    Signature("moto.batch.models", "Job.run", ("self",)),
    Signature("moto.batch.models", "Job._mark_stopped", ("self", "success")),
    Signature("moto.batch.models", "Job._start_attempt", ("self",)),
    Signature("moto.batch.models", "Job._wait_for_dependencies", ("self",)),
    Signature("moto.batch.models", "Job._container_details", ("self",)),
    Signature("moto.batch.models", "Job.terminate", ("self", "reason")),
    Signature("moto.batch.models", "Job.advance", ("self",)),
)
ATTRIBUTES: Final = (
    Attributes(
        "moto.batch.models",
        "Job",
        (
            "job_id",
            "job_name",
            "job_definition",
            "job_queue",
            "backend",
            "container_overrides",
            "parameters",
            "timeout",
            "depends_on",
            "array_properties",
            "stop",
            "exit_code",
            "job_started_at",
            "job_stopped",
            "job_stopped_reason",
            "log_stream_name",
            "latest_attempt",
            "_log_backend",
            "_log_group",
            "_stream_name",
        ),
    ),
)

_STATUS_POLL_S: Final = 0.02
_LOG_FLUSH_S: Final = 1.0
_GPU_RESOURCE: Final = "GPU"


def substitute_refs(command: Sequence[str], parameters: Mapping[str, Any]) -> list[str]:
    """Replace every ``Ref::name`` whose name is a parameter, as Batch does; leave the rest.

    Names are matched longest first and must not run on into more name characters, so ``Ref::ab``
    is not ``Ref::a`` followed by "b", and ``Ref::a-Ref::b`` holds two references.
    """
    if not parameters:
        return [str(part) for part in command]
    names = sorted(parameters, key=len, reverse=True)
    pattern = re.compile(r"Ref::(" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z0-9_])")
    return [pattern.sub(lambda m: str(parameters[m.group(1)]), str(part)) for part in command]


def nvidia_gpu_usable() -> bool:
    """True when ``nvidia-smi -L`` lists at least one GPU (the driver is loaded and sees it)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        result = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and "GPU" in result.stdout


def _gpus_requested(requirements: Sequence[Mapping[str, Any]]) -> int | None:
    for requirement in requirements or ():
        if str(requirement.get("type", "")).upper() == _GPU_RESOURCE:
            try:
                return int(float(requirement.get("value", 0)))
            except (TypeError, ValueError):
                return 1
    return None


def _untagged(image: str) -> str:
    """``registry:5000/worker:1.2@sha256:...`` -> ``registry:5000/worker``."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


@dataclass
class _JobSpec:
    argv: list[str]
    env: dict[str, str]
    gpus: int
    attempt_duration_s: float | None
    attempts: int = 1
    evaluate_on_exit: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class _Attempt:
    """How one attempt of a job ended. ``final``: never retried (stopped, or out of time)."""

    success: bool
    reason: str
    exit_code: int | None
    final: bool = False


def retry_action(rules: Sequence[Mapping[str, Any]], attempt: _Attempt) -> str:
    """Batch's evaluateOnExit: the first rule whose every condition matches the attempt (exit code
    and status reason, patterns that may end with *) gives the action; none matching is "retry"."""
    for rule in rules:
        conditions = [
            (rule.get("onExitCode"), "" if attempt.exit_code is None else str(attempt.exit_code)),
            (rule.get("onStatusReason"), attempt.reason),
            (rule.get("onReason"), attempt.reason),
        ]
        if all(pattern is None or fnmatch.fnmatchcase(value, pattern) for pattern, value in conditions):
            return str(rule.get("action", "retry")).lower()
    return "retry"


_DESCRIBE_LOCK = threading.Lock()


class BatchRunner:
    """Runs Batch jobs as local processes, each in its own moto job thread, so jobs overlap.

    The image is not pulled or run: the command runs on this machine with the project's
    interpreter first on PATH; ``image_entrypoints`` gives the ENTRYPOINT an image would prepend.
    A job asking for a GPU fails fast, without starting, where no GPU is usable.
    """

    def __init__(
        self,
        endpoint: LocalEndpoint,
        *,
        gpu_available: bool | None = None,
        workdir: str | os.PathLike[str] | None = None,
        image_entrypoints: Mapping[str, Sequence[str]] | None = None,
        max_parallel_jobs: int | None = None,
        kill_grace_s: float = 2.0,
    ) -> None:
        self._endpoint = endpoint
        self._gpu_available = gpu_available
        self._gpu_lock = threading.Lock()
        self._workdir = str(workdir) if workdir is not None else None
        self._entrypoints = {k: list(v) for k, v in (image_entrypoints or {}).items()}
        self._slots = threading.BoundedSemaphore(max_parallel_jobs) if max_parallel_jobs else None
        self._kill_grace_s = kill_grace_s
        self._running: set[subprocess.Popen[bytes]] = set()
        self._active = 0  # job threads not yet stopped, whatever their state
        self._lock = threading.Lock()
        self._closed = False

    @property
    def gpu_available(self) -> bool:
        """Whether GPU jobs may run; detected once with ``nvidia-smi -L`` unless set."""
        with self._gpu_lock:
            if self._gpu_available is None:
                self._gpu_available = nvidia_gpu_usable()
                logger.info("local Batch: GPU usable = %s", self._gpu_available)
            return self._gpu_available

    @gpu_available.setter
    def gpu_available(self, value: bool) -> None:
        with self._gpu_lock:
            self._gpu_available = value

    # -- job lifecycle ------------------------------------------------------------------------

    def in_flight(self) -> int:
        """How many jobs have not stopped yet (waiting, starting or running)."""
        with self._lock:
            return self._active

    def run_job(self, job: Job) -> None:
        """Body of the job's thread (replaces ``Job.run``); always leaves the job stopped."""
        with self._lock:
            self._active += 1
        try:
            self._run(job)
        except Exception as exc:  # a bug here must not leave a .sync task polling forever
            logger.exception("local Batch: job %s failed in the runner", job.job_id)
            self._finish(job, success=False, reason=f"local runner error: {exc!r}")
        finally:
            with self._lock:
                self._active -= 1

    @staticmethod
    def _finish(job: Job, *, success: bool, reason: str) -> None:
        if job.job_stopped:  # moto stopped it already (a failed dependency): keep its status
            job.job_stopped_reason = job.job_stopped_reason or reason
            return
        job.job_stopped_reason = reason
        job._mark_stopped(success=success)

    def _advance_from(self, job: Job, status: str) -> bool:
        """Move past ``status`` through moto's state manager, as moto's own thread does."""
        job.advance()
        while job.status == status:
            if job.stop or self._closed:
                self._finish(job, success=False, reason=job.job_stopped_reason or "Terminated")
                return False
            time.sleep(_STATUS_POLL_S)
        return True

    def _run(self, job: Job) -> None:
        from moto.batch.utils import JobStatus

        if not self._advance_from(job, JobStatus.SUBMITTED):
            return
        if job.depends_on and not job._wait_for_dependencies():
            self._finish(job, success=False, reason="Dependent job failed or was cancelled")
            return
        if not self._advance_from(job, JobStatus.PENDING):
            return
        try:
            spec = self._job_spec(job)
        except ValueError as exc:
            self._finish(job, success=False, reason=f"ClientException: {exc}")
            return
        if spec.gpus and not self.gpu_available:
            self._finish(
                job,
                success=False,
                reason=f"CannotStartContainerError: no GPU usable on this machine "
                f"(the job asks for {spec.gpus} GPU)",
            )
            return
        with self._slot(job) as granted:
            if not granted:
                return
            if not self._advance_from(job, JobStatus.RUNNABLE):
                return
            if not self._advance_from(job, JobStatus.STARTING):
                return
            for number in range(1, spec.attempts + 1):
                job.job_started_at = datetime.now()
                job.log_stream_name = job._stream_name
                job._start_attempt()
                attempt = self._execute(job, spec, number)
                last = number == spec.attempts or attempt.final
                if attempt.success or last or retry_action(spec.evaluate_on_exit, attempt) == "exit":
                    break
                record = job.latest_attempt or {}
                record["stoppedAt"] = int(time.time() * 1000)
                record["statusReason"] = attempt.reason
                record.setdefault("container", {})["exitCode"] = attempt.exit_code
                logger.info(
                    "local Batch: job %s attempt %d failed (exit %s): retrying",
                    job.job_name, number, attempt.exit_code,
                )  # fmt: skip
            self._finish(job, success=attempt.success, reason=attempt.reason)

    @contextlib.contextmanager
    def _slot(self, job: Job) -> Iterator[bool]:
        if self._slots is None:
            yield True
            return
        while not self._slots.acquire(timeout=0.1):
            if job.stop or self._closed:
                self._finish(job, success=False, reason=job.job_stopped_reason or "Terminated")
                yield False
                return
        try:
            yield True
        finally:
            self._slots.release()

    def _job_spec(self, job: Job) -> _JobSpec:
        properties = job.job_definition.container_properties
        if properties is None:
            raise ValueError("only container jobs run locally (not multinode or EKS)")
        with _DESCRIBE_LOCK:
            overrides = copy.deepcopy(job.container_overrides or {})
        command = overrides.get("command") or properties.get("command") or []
        if isinstance(command, str):
            command = [command]
        image = str(properties.get("image", ""))
        entrypoint = self._entrypoints.get(image) or self._entrypoints.get(_untagged(image), [])
        argv = [*entrypoint, *substitute_refs(command, job.parameters or {})]
        if not argv:
            raise ValueError(f"job definition {job.job_definition.name} has no command")

        region = job.backend.region_name
        env = self._endpoint.base_env()
        for item in [*properties.get("environment", []), *overrides.get("environment", [])]:
            env[str(item["name"])] = str(item.get("value", ""))
        env.update(self._endpoint.aws_env(region))
        env.update(
            {
                "AWS_BATCH_JOB_ID": job.job_id,
                "AWS_BATCH_JQ_NAME": job.job_queue.name,
            }
        )
        if "index" in (job.array_properties or {}):
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_properties["index"])

        gpus = _gpus_requested(overrides.get("resourceRequirements") or [])
        if gpus is None:
            gpus = _gpus_requested(properties.get("resourceRequirements") or []) or 0
        timeout = job.timeout or job.job_definition.timeout or {}
        duration = timeout.get("attemptDurationSeconds")
        retry: Mapping[str, Any] = job.job_definition.retry_strategy or {}
        return _JobSpec(
            argv,
            env,
            gpus,
            float(duration) if duration else None,
            attempts=max(1, int(retry.get("attempts", 1))),
            evaluate_on_exit=tuple(retry.get("evaluateOnExit", ())),
        )

    def _execute(self, job: Job, spec: _JobSpec, number: int) -> _Attempt:
        tmpdir = tempfile.mkdtemp(prefix=f"posereel-batch-{job.job_id}-")
        try:
            proc = subprocess.Popen(
                spec.argv,
                cwd=self._workdir,
                env={**spec.env, "TMPDIR": tmpdir, "AWS_BATCH_JOB_ATTEMPT": str(number)},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(tmpdir, ignore_errors=True)
            return _Attempt(False, f"CannotStartContainerError: {exc}", None)
        with self._lock:
            self._running.add(proc)
        lines: list[dict[str, Any]] = []
        lines_lock = threading.Lock()
        reader = threading.Thread(
            target=self._read_output, args=(job, proc, lines, lines_lock), daemon=True, name=f"{job.name}-log"
        )
        reader.start()
        deadline = time.monotonic() + spec.attempt_duration_s if spec.attempt_duration_s else None
        reason: str | None = None
        next_flush = time.monotonic() + _LOG_FLUSH_S
        try:
            while not has_exited(proc):  # not reaped, so that its group can still be signalled
                if job.stop or self._closed:
                    reason = job.job_stopped_reason or "Terminated"
                elif deadline is not None and time.monotonic() > deadline:
                    reason = "Job attempt duration exceeded timeout"
                if reason is not None:
                    self._stop_process(proc)
                    break
                if time.monotonic() >= next_flush:
                    self._flush_logs(job, lines, lines_lock)
                    next_flush = time.monotonic() + _LOG_FLUSH_S
                time.sleep(0.1)
            kill_group(proc, signal.SIGKILL)  # a container's leftover processes end with it
            rc = proc.wait()
            reader.join(timeout=5)
            self._flush_logs(job, lines, lines_lock)
        finally:
            with self._lock:
                self._running.discard(proc)
            shutil.rmtree(tmpdir, ignore_errors=True)
        job.exit_code = rc if rc >= 0 else 128 - rc  # a signal shows as 128+N, as in a container
        logger.info("local Batch: job %s (%s) exited with %s", job.job_name, job.job_id, job.exit_code)
        # A stopped job, or one out of time, is not retried (Batch does not retry timeouts).
        return _Attempt(
            success=reason is None and rc == 0,
            reason=reason or "Essential container in task exited",
            exit_code=job.exit_code,
            final=reason is not None,
        )

    def _stop_process(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM, then SIGKILL after the grace time; the caller reaps the process."""
        kill_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self._kill_grace_s
        while not has_exited(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        kill_group(proc, signal.SIGKILL)

    @staticmethod
    def _read_output(
        job: Job, proc: subprocess.Popen[bytes], lines: list[dict[str, Any]], lock: threading.Lock
    ) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            message = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not message:
                continue  # CloudWatch rejects empty events
            logger.debug("[batch %s] %s", job.job_name, message)
            with lock:
                lines.append({"timestamp": int(time.time() * 1000), "message": message})

    @staticmethod
    def _flush_logs(job: Job, lines: list[dict[str, Any]], lock: threading.Lock) -> None:
        with lock:
            events = lines[:]
            lines.clear()
        if not events:
            return
        with LOGS_LOCK:
            job._log_backend.ensure_log_group(job._log_group)
            job._log_backend.ensure_log_stream(job._log_group, job._stream_name)
            job._log_backend.put_log_events(job._log_group, job._stream_name, events)

    def close(self) -> None:
        """Stop every running job process; their jobs end FAILED."""
        with self._lock:
            self._closed = True
            running = list(self._running)
        for proc in running:
            self._stop_process(proc)


def install(patcher: Patcher, runner: BatchRunner) -> None:
    from moto.batch.models import Job

    def run_job(self: Job) -> None:
        runner.run_job(self)

    original_details = Job.__dict__["_container_details"]

    def container_details(self: Job) -> dict[str, Any]:
        # moto appends AWS_BATCH_JOB_ID to the overrides' environment on every describe, and
        # .sync describes every 0.5 s: the state output would grow without bound. Work on a copy.
        with _DESCRIBE_LOCK:
            overrides = self.container_overrides
            self.container_overrides = copy.deepcopy(overrides)
            try:
                details = original_details(self)
            finally:
                self.container_overrides = overrides
        if self.exit_code is not None:
            details["exitCode"] = self.exit_code
        return details

    patcher.patch(Job, "run", run_job)
    patcher.patch(Job, "_container_details", container_details)
