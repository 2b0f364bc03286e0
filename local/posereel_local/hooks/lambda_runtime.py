"""Lambda without Docker: moto's ``LambdaFunction._invoke_lambda`` runs the function's real handler
in a warm worker process that has the function's own environment (``LambdaRunner``).

The worker processes start from this module (``worker_main``), so it imports only the standard
library at import time.
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from posereel_local.hooks.common import LOGS_LOCK, LocalEndpoint, has_exited, kill_group, logger
from posereel_local.hooks.moto_check import Attributes, Signature

if TYPE_CHECKING:
    from moto.awslambda.models import LambdaFunction

    from posereel_local.hooks import Patcher

SIGNATURES: Final = (
    Signature("moto.awslambda.models", "LambdaFunction._invoke_lambda", ("self", "event")),
    Signature(
        "moto.awslambda.models",
        "LambdaFunction.invoke",
        ("self", "body", "request_headers", "response_headers"),
    ),
    Signature("moto.awslambda.models", "LambdaFunction.save_logs", ("self", "output")),
)
ATTRIBUTES: Final = (
    Attributes(
        "moto.awslambda.models",
        "LambdaFunction",
        (
            "handler",
            "function_name",
            "environment_vars",
            "memory_size",
            "timeout",
            "region",
            "version",
            "function_arn",
            "logs_backend",
            "logs_group_name",
            "image_config",
        ),
    ),
)

_LAMBDA_LOG_TAIL_BYTES: Final = 4096  # what AWS returns for LogType=Tail; also keeps HTTP headers small
_WORKER_BOOT: Final = "from posereel_local.hooks.lambda_runtime import worker_main; worker_main()"


class LambdaContext:
    """The subset of the Lambda context object that handlers and Powertools read."""

    def __init__(self, request: Mapping[str, Any], deadline: float) -> None:
        self.function_name: str = request["function_name"]
        self.function_version: str = request["function_version"]
        self.invoked_function_arn: str = request["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(request["memory_limit_in_mb"])
        self.aws_request_id: str = request["aws_request_id"]
        self.log_group_name: str = request["log_group_name"]
        self.log_stream_name: str = request["log_stream_name"]
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error_payload(error_type: str, message: str, stack: list[str] | None = None) -> str:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": stack or []})


def _load_handler(spec: str) -> tuple[Callable[..., Any] | None, str | None]:
    """Import the handler like the Python runtime does; a failure becomes the error of every call."""
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        return None, _error_payload("Runtime.MalformedHandlerName", f"Bad handler '{spec}'")
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        traceback.print_exc()
        message = f"Unable to import module '{module_name}': {exc}"
        return None, _error_payload("Runtime.ImportModuleError", message)
    except Exception as exc:
        traceback.print_exc()
        return None, _error_payload(type(exc).__name__, str(exc), traceback.format_tb(exc.__traceback__))
    handler = getattr(module, function_name, None)
    if not callable(handler):
        return None, _error_payload(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return handler, None


def _json_default(value: Any) -> Any:
    # The AWS Python runtime serialises Decimal (DynamoDB numbers) as a JSON number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _run_handler(handler: Callable[..., Any], request: Mapping[str, Any]) -> tuple[bool, str]:
    deadline = time.monotonic() + float(request["timeout_s"])
    context = LambdaContext(request, deadline)
    try:
        result = handler(json.loads(request["event"]), context)
    except Exception as exc:
        # Same shape as the runtime: the class name is what Step Functions' Retry/Catch match on.
        handler_tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # skip this frame
        print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
        traceback.print_exception(type(exc), exc, handler_tb)
        return True, _error_payload(type(exc).__name__, str(exc), traceback.format_tb(handler_tb))
    except SystemExit as exc:
        return True, _error_payload("Runtime.ExitError", f"Runtime exited with error: exit status {exc.code}")
    try:
        return False, json.dumps(result, default=_json_default)
    except (TypeError, ValueError) as exc:
        return True, _error_payload("Runtime.MarshalError", f"Unable to marshal response: {exc}")


def _drain_output(fd: int) -> str:
    """Return and clear everything the handler wrote to fd (stdout and stderr share it)."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, size, 0) if size else b""
    os.ftruncate(fd, 0)  # the file is O_APPEND, so later writes start again at offset 0
    return data.decode("utf-8", errors="replace")


def worker_main() -> None:
    """Body of one warm Lambda execution environment (a child process of the local AWS).

    Requests arrive as JSON lines on stdin and replies leave as JSON lines on the original stdout;
    the handler's stdout and stderr both go to the capture file the parent gave as stderr, so the
    logs of each invocation (and of the import, with the first one) are exact.
    """
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    handler, init_error = _load_handler(os.environ["_HANDLER"])
    replies.write(b'{"ready": true}\n')
    replies.flush()
    for line in requests:
        request = json.loads(line)
        if handler is None:
            errored, payload = True, init_error or _error_payload("Runtime.Unknown", "no handler")
        else:
            errored, payload = _run_handler(handler, request)
        sys.stdout.flush()
        sys.stderr.flush()
        reply = {"errored": errored, "payload": payload, "logs": _drain_output(2)}
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()


class _WorkerGone(Exception):
    """The worker process exited or timed out; it cannot serve another call."""


class _LambdaWorker:
    """Parent-side handle of one worker process."""

    def __init__(self, env: dict[str, str], cwd: str | None, init_timeout_s: float, name: str) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix=f"posereel-lambda-{name}-")
        env = {**env, "TMPDIR": self.tmpdir}
        self.capture_path = os.path.join(self.tmpdir, ".worker-output")
        with open(self.capture_path, "a+b") as capture:  # O_APPEND, and readable by the worker
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER_BOOT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=capture,
                env=env,
                cwd=cwd,
                start_new_session=True,  # the handler's own children die with it on a timeout
            )
        try:
            ready = self._read_reply(init_timeout_s)
        except (_WorkerGone, TimeoutError) as exc:
            output = self.read_output()[-2000:]
            self.kill()
            what = f"gave no sign of life in {init_timeout_s:.0f} s" if isinstance(exc, TimeoutError) else exc
            raise _WorkerGone(f"worker {what}; its output:\n{output}") from exc
        if not ready.get("ready"):
            self.kill()
            raise _WorkerGone("worker did not report ready")

    def _read_reply(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout_s))
        if not readable:
            raise TimeoutError
        line = self.proc.stdout.readline()
        if not line:
            raise _WorkerGone(f"worker exited with status {self._reap()}")
        return json.loads(line)

    def call(self, request: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise _WorkerGone(f"worker exited with status {self._reap()}") from exc
        return self._read_reply(timeout_s)

    def read_output(self) -> str:
        try:
            return Path(self.capture_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return not has_exited(self.proc)  # not reaped: kill() may still signal its group

    def _reap(self) -> int:
        """The exit status of a worker that ended on its own; what it started ends with it."""
        kill_group(self.proc, signal.SIGKILL)
        return self.proc.wait()

    def kill(self) -> None:
        kill_group(self.proc, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


@dataclass(frozen=True)
class _FunctionSpec:
    """What makes two invocations able to share a warm worker (a change means a new environment)."""

    function_arn: str
    handler: str
    env: tuple[tuple[str, str], ...]
    timeout_s: float


class LambdaRunner:
    """Runs Lambda handlers in warm worker processes: a pool per function configuration.

    Why processes, not threads: handlers read their settings from the environment once (and
    Powertools at import), and Step Functions' Map invokes functions from several threads at once,
    so one process cannot give each function its own environment. A process per invocation would
    be isolated but costs an interpreter start plus the handler's imports every call; a warm worker
    pays that once, like a warm Lambda execution environment, and keeps module state between calls
    in the same way. A busy worker is never shared: concurrent invocations get extra workers.

    Measured here (boto3 invoke through the server): in-process 2.7 ms a call; warm worker 3.0 ms;
    a fresh process 60 ms (stdlib handler) to 220 ms (boto3 + Powertools + pydantic-settings).
    """

    def __init__(
        self,
        endpoint: LocalEndpoint,
        *,
        code_paths: Sequence[str | os.PathLike[str]] = (),
        layer_paths: Sequence[str | os.PathLike[str]] = (),
        init_timeout_s: float = 60.0,
        max_concurrent: int | None = None,
        max_idle_per_function: int = 2,
        idle_ttl_s: float = 60.0,
    ) -> None:
        """code_paths: the function code (/var/task), first on the path; layer_paths: the layers'
        python/ folders (/opt/python), after it. The pool is bounded: at most ``max_concurrent``
        invocations of one function run at once (more wait, as a function's reserved concurrency
        would throttle them; default 2 per core, at least 4), and at most
        ``max_idle_per_function`` warm workers stay per function, each for ``idle_ttl_s`` after
        its last call (then it is stopped), so a burst leaves no crowd of idle processes behind."""
        self._endpoint = endpoint
        self._code_paths = [str(Path(p).resolve()) for p in code_paths]
        self._layer_paths = [str(Path(p).resolve()) for p in layer_paths]
        self._init_timeout_s = init_timeout_s
        self._idle: dict[_FunctionSpec, list[tuple[_LambdaWorker, float]]] = {}  # (worker, idle since)
        self._busy: set[_LambdaWorker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._max_concurrent = max_concurrent or max(4, 2 * (os.cpu_count() or 1))
        self._calls: dict[str, threading.BoundedSemaphore] = {}  # function ARN -> its slots
        self._max_idle = max_idle_per_function
        self._idle_ttl_s = idle_ttl_s

    def in_flight(self) -> int:
        """How many invocations are running now."""
        with self._lock:
            return len(self._busy)

    def workers(self) -> int:
        """How many worker processes are alive now, busy or idle."""
        with self._lock:
            return len(self._busy) + sum(len(pool) for pool in self._idle.values())

    def _expired_idle(self, now: float) -> list[_LambdaWorker]:
        """Take the idle workers past their time out of the pool (call with the lock held)."""
        expired = []
        for spec, pool in list(self._idle.items()):
            keep = [(w, since) for w, since in pool if now - since <= self._idle_ttl_s]
            expired += [w for w, since in pool if now - since > self._idle_ttl_s]
            if keep:
                self._idle[spec] = keep
            else:
                del self._idle[spec]
        return expired

    def _spec(self, fn: LambdaFunction) -> _FunctionSpec:
        handler = fn.handler or next(iter(fn.image_config.cmd or []), "")
        env = {str(k): str(v) for k, v in (fn.environment_vars or {}).items()}
        return _FunctionSpec(fn.function_arn, handler, tuple(sorted(env.items())), float(fn.timeout or 3))

    def _worker_env(self, fn: LambdaFunction, spec: _FunctionSpec) -> dict[str, str]:
        env = self._endpoint.base_env()
        env.update(dict(spec.env))
        env.update(self._endpoint.aws_env(fn.region))
        env.update(
            {
                "_HANDLER": spec.handler,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time or 'python3.11'}",
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_VERSION": str(fn.version),
                "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
                "LAMBDA_TASK_ROOT": self._code_paths[0] if self._code_paths else os.getcwd(),
                "TZ": ":UTC",
                # Function code first (/var/task), then the shared layer (/opt/python).
                "PYTHONPATH": os.pathsep.join([*self._code_paths, *self._layer_paths]),
            }
        )
        return env

    def _acquire(self, fn: LambdaFunction, spec: _FunctionSpec) -> _LambdaWorker:
        with self._lock:
            if self._closed:
                raise _WorkerGone("the local AWS is shutting down")
            stale = self._expired_idle(time.monotonic())
            # A reconfigured function gets fresh environments, as after UpdateFunctionConfiguration.
            for other in [s for s in self._idle if s.function_arn == spec.function_arn and s != spec]:
                stale.extend(w for w, _ in self._idle.pop(other))
            idle = self._idle.get(spec, [])
            worker = None
            while idle and worker is None:
                candidate, _ = idle.pop()  # most recently used first, like Lambda
                if candidate.alive():
                    worker = candidate
                else:
                    stale.append(candidate)
        for old in stale:
            old.kill()
        if worker is None:
            env = self._worker_env(fn, spec)
            worker = _LambdaWorker(env, env["LAMBDA_TASK_ROOT"], self._init_timeout_s, fn.function_name)
        with self._lock:
            self._busy.add(worker)
        return worker

    def _release(self, spec: _FunctionSpec, worker: _LambdaWorker, reusable: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self._busy.discard(worker)
            stale = self._expired_idle(now)
            if reusable and not self._closed and worker.alive():
                pool = self._idle.setdefault(spec, [])
                pool.append((worker, now))
                while len(pool) > self._max_idle:  # the least recently used go
                    stale.append(pool.pop(0)[0])
            else:
                stale.append(worker)
        for old in stale:
            old.kill()

    def prewarm(self, fn: LambdaFunction) -> None:
        """Start one worker for ``fn`` and leave it idle, its handler imported: the local
        counterpart of provisioned concurrency, so a job's first call of each stage is warm."""
        spec = self._spec(fn)
        try:
            worker = self._acquire(fn, spec)
        except (_WorkerGone, OSError) as exc:  # the first real call will report it properly
            logger.debug("local Lambda %s: pre-warm failed: %s", fn.function_name, exc)
            return
        self._release(spec, worker, reusable=True)

    def invoke(self, fn: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        """Run one invocation; returns moto's ``(payload_json, errored, log_tail)``."""
        if event is None or event == "{}":  # moto passes the string "{}" for an empty body
            event = {}
        spec = self._spec(fn)
        request_id = str(uuid.uuid4())
        stream = f"{datetime.now():%Y/%m/%d}/[{fn.version}]{request_id.replace('-', '')}"
        request = {
            "event": json.dumps(event),
            "timeout_s": spec.timeout_s,
            "function_name": fn.function_name,
            "function_version": str(fn.version),
            "invoked_function_arn": fn.function_arn,
            "memory_limit_in_mb": int(fn.memory_size),
            "aws_request_id": request_id,
            "log_group_name": fn.logs_group_name,
            "log_stream_name": stream,
        }
        with self._lock:
            slots = self._calls.setdefault(
                spec.function_arn, threading.BoundedSemaphore(self._max_concurrent)
            )
        with slots:
            return self._invoke(fn, spec, request, request_id)

    def _invoke(
        self, fn: LambdaFunction, spec: _FunctionSpec, request: dict[str, Any], request_id: str
    ) -> tuple[str, bool, str]:
        started = time.monotonic()
        try:
            worker = self._acquire(fn, spec)
        except (_WorkerGone, OSError) as exc:
            message = f"RequestId: {request_id} Error: Runtime failed to start: {exc}"
            logger.warning("local Lambda %s: %s", fn.function_name, message)
            return self._finish(fn, _error_payload("Runtime.ExitError", message), True, message)
        try:
            reply = worker.call(request, spec.timeout_s)
        except TimeoutError:
            worker.kill()
            self._release(spec, worker, reusable=False)
            elapsed = time.monotonic() - started
            message = f"RequestId: {request_id} Error: Task timed out after {elapsed:.2f} seconds"
            return self._finish(fn, _error_payload("Sandbox.Timedout", message), True, worker.read_output())
        except _WorkerGone as exc:
            logs = worker.read_output()
            self._release(spec, worker, reusable=False)
            message = f"RequestId: {request_id} Error: Runtime exited with error: {exc}"
            logger.warning("local Lambda %s: %s; output:\n%s", fn.function_name, message, logs[-2000:])
            return self._finish(fn, _error_payload("Runtime.ExitError", message), True, logs)
        self._release(spec, worker, reusable=True)
        return self._finish(fn, reply["payload"], bool(reply["errored"]), reply["logs"])

    @staticmethod
    def _finish(fn: LambdaFunction, payload: str, errored: bool, logs: str) -> tuple[str, bool, str]:
        if logs:
            with LOGS_LOCK:
                fn.logs_backend.ensure_log_group(fn.logs_group_name)
                fn.save_logs(logs)
        tail = logs.encode("utf-8")[-_LAMBDA_LOG_TAIL_BYTES:].decode("utf-8", errors="ignore")
        return payload, errored, tail

    def close(self) -> None:
        """Stop every worker, idle or busy (a busy call then fails with Runtime.ExitError)."""
        with self._lock:
            self._closed = True
            workers = [w for pool in self._idle.values() for w, _ in pool] + list(self._busy)
            self._idle.clear()
        for worker in workers:
            worker.kill()


# Event invocations run beside the caller on this many threads, as Lambda queues them.
EVENT_THREADS: Final = 4


def install(patcher: Patcher, runner: LambdaRunner) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from moto.awslambda.models import LambdaFunction

    invoke_sync = LambdaFunction.__dict__["invoke"]
    events = ThreadPoolExecutor(max_workers=EVENT_THREADS, thread_name_prefix="lambda-events")

    def invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return runner.invoke(self, event)

    def run_event(fn: LambdaFunction, body: str) -> None:
        try:
            payload = json.loads(body) if body else {}
            _, errored, logs = runner.invoke(fn, payload)
            if errored:
                logger.warning(
                    "local Lambda: event for %s failed: %s", fn.function_name, logs[-_LAMBDA_LOG_TAIL_BYTES:]
                )
        except Exception:
            logger.exception("local Lambda: event for %s could not run", fn.function_name)

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        # moto runs an event invocation inside the caller's request; Lambda queues it and
        # answers 202 at once, so a caller (the api) never waits for the function.
        if request_headers.get("x-amz-invocation-type") == "Event":
            events.submit(run_event, self, body)
            return b""
        return invoke_sync(self, body, request_headers, response_headers)

    patcher.patch(LambdaFunction, "_invoke_lambda", invoke_lambda)
    patcher.patch(LambdaFunction, "invoke", invoke)
