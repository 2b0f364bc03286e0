"""Hooks that let moto 5.2.5 run PoseReel's real code on this machine, without Docker.

moto models Lambda, Batch and Step Functions but runs Lambda code and Batch jobs only in Docker,
and its Step Functions interpreter leaves the request/response casing of service integrations
unimplemented. The hooks below replace exactly those private moto internals:

* ``LambdaFunction._invoke_lambda`` runs the function's real handler in a warm worker process
  that has the function's own environment (see ``LambdaRunner``);
* ``Job.run`` (a Batch job's thread body) runs the job definition's command as a local process
  (see ``BatchRunner``);
* ``StateTaskService._normalise_parameters`` / ``_normalise_response`` map ASL's PascalCase to
  boto3's casing and back with botocore's service model;
* ``Job._container_details`` stops growing the job's environment on every DescribeJobs and
  reports the exit code; ``StepFunctionsParserBackend.start_execution`` names unnamed executions;
* ``StateTaskServiceBatch._build_sync_resolver`` and ``StateTaskServiceCallback._eval_sync``:
  when an execution is stopped while it waits on a ``batch:submitJob.sync`` job, the job is
  terminated, as Step Functions does in AWS (moto left it running); and ``Environment.set_error``
  no longer turns a stopped execution FAILED when a task ends after the stop (it stays ABORTED);
* ``S3Response._bucket_response_post`` (a browser's form upload) ignores the POST policy; it
  is now checked as S3 does (expiry, field conditions, content-length-range), so a presigned
  POST refuses a file larger than the one announced here too (signatures stay unchecked);
* the Map iteration worker's ``CustomErrorName`` refuses the "States." names an iteration fails
  with (States.TaskFailed of a Batch job, States.Timeout), so every such Map failure became
  States.Runtime with that complaint as its cause; it now keeps the iteration's error and cause.

All of these are private, so moto is pinned and ``check_moto_internals()`` fails loudly at
start-up when one of them changed shape. This module imports only the standard library at import
time: it is also the entry point of the Lambda worker processes, which must start fast.
"""

from __future__ import annotations

import contextlib
import copy
import decimal
import importlib
import inspect
import json
import logging
import os
import re
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from botocore.model import OperationModel
    from moto.awslambda.models import LambdaFunction
    from moto.batch.models import Job

logger = logging.getLogger("posereel.local")

MOTO_VERSION: Final = "5.2.5"
# The embedded moto server accepts any credentials; these only ever reach it, never AWS.
LOCAL_CREDENTIAL: Final = "testing"

# Host variables a Lambda worker or a Batch job inherits; everything else comes from the function's
# or job definition's configuration, as in AWS, so a missing setting fails here too.
DEFAULT_PASS_ENV: Final = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TERM")

_LAMBDA_LOG_TAIL_BYTES: Final = 4096  # what AWS returns for LogType=Tail; also keeps HTTP headers small
_STATUS_POLL_S: Final = 0.02
_LOG_FLUSH_S: Final = 1.0
_GPU_RESOURCE: Final = "GPU"


class MotoInternalsChangedError(RuntimeError):
    """A moto internal that PoseReel hooks is missing or has a different shape."""


# --------------------------------------------------------------------------------------------
# Start-up check
# --------------------------------------------------------------------------------------------

_SFN_SERVICE_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service"
)
_SFN_MAP_ITERATION_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker"
)
_SFN_CALLBACK_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback"
)
_SFN_BATCH_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch"
)
_SFN_ENVIRONMENT_MODULE: Final = "moto.stepfunctions.parser.asl.eval.environment"
_SFN_PROGRAM_STATE_MODULE: Final = "moto.stepfunctions.parser.asl.eval.program_state"
_SFN_STATES_ERROR_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.common.error_name.states_error_name"
)

# (module, qualified attribute, expected parameter names) of every callable we replace or call.
_EXPECTED_SIGNATURES: Final[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
    ("moto.awslambda.models", "LambdaFunction._invoke_lambda", ("self", "event")),
    ("moto.awslambda.models", "LambdaFunction.save_logs", ("self", "output")),
    ("moto.batch.models", "Job.run", ("self",)),
    ("moto.batch.models", "Job._mark_stopped", ("self", "success")),
    ("moto.batch.models", "Job._start_attempt", ("self",)),
    ("moto.batch.models", "Job._wait_for_dependencies", ("self",)),
    ("moto.batch.models", "Job._container_details", ("self",)),
    ("moto.batch.models", "Job.terminate", ("self", "reason")),
    ("moto.batch.models", "Job.advance", ("self",)),
    (
        _SFN_SERVICE_MODULE,
        "StateTaskService._normalise_parameters",
        ("self", "parameters", "boto_service_name", "service_action_name"),
    ),
    (
        _SFN_SERVICE_MODULE,
        "StateTaskService._normalise_response",
        ("self", "response", "boto_service_name", "service_action_name"),
    ),
    (_SFN_SERVICE_MODULE, "StateTaskService._to_boto_request", ("self", "parameters", "structure_shape")),
    (_SFN_SERVICE_MODULE, "StateTaskService._from_boto_response", ("self", "response", "structure_shape")),
    (_SFN_SERVICE_MODULE, "StateTaskService._get_boto_service_name", ("self", "boto_service_name")),
    (_SFN_SERVICE_MODULE, "StateTaskService._get_boto_service_action", ("self", "service_action_name")),
    (
        "moto.stepfunctions.parser.models",
        "StepFunctionsParserBackend.start_execution",
        ("self", "state_machine_arn", "name", "execution_input", "trace_header"),
    ),
    ("moto.settings", "moto_server_port", ()),
    (
        _SFN_BATCH_MODULE,
        "StateTaskServiceBatch._build_sync_resolver",
        ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
    ),
    (
        _SFN_CALLBACK_MODULE,
        "StateTaskServiceCallback._eval_sync",
        ("self", "env", "sync_resolver", "timeout_seconds", "callback_endpoint", "heartbeat_endpoint"),
    ),
    ("moto.batch.models", "BatchBackend.terminate_job", ("self", "job_id", "reason")),
    (_SFN_ENVIRONMENT_MODULE, "Environment.set_error", ("self", "error")),
    (_SFN_PROGRAM_STATE_MODULE, "ProgramStopped", ("stop_date", "error", "cause")),
    ("moto.s3.responses", "S3Response._bucket_response_post", ("self", "request", "bucket_name")),
    ("moto.s3.responses", "S3Response._get_cors_headers_other", ("self",)),
    (_SFN_MAP_ITERATION_MODULE, "CustomErrorName", ("error_name",)),
    (_SFN_STATES_ERROR_MODULE, "StatesErrorName.from_name", ("error_name",)),
)

# Instance attributes set in __init__ that the hooks read or write.
_EXPECTED_INIT_ATTRIBUTES: Final[tuple[tuple[str, str, tuple[str, ...]], ...]] = (
    (_SFN_ENVIRONMENT_MODULE, "Environment", ("_program_state",)),
    (
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
    (
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
            "_log_backend",
            "_log_group",
            "_stream_name",
        ),
    ),
)


def _resolve(module_name: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def check_moto_internals() -> None:
    """Fail loudly, before anything runs, if moto is not the version whose internals we patch.

    Raises MotoInternalsChangedError listing every mismatch (version, missing attribute, changed
    signature), so an upgrade of moto is a deliberate change to this module, never a silent one.
    """
    import moto

    problems: list[str] = []
    if moto.__version__ != MOTO_VERSION:
        problems.append(f"moto.__version__ is {moto.__version__!r}, expected {MOTO_VERSION!r}")
    for module_name, qualname, expected in _EXPECTED_SIGNATURES:
        try:
            target = _resolve(module_name, qualname)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module_name}.{qualname} is missing ({exc})")
            continue
        try:
            found = tuple(inspect.signature(target).parameters)
        except (TypeError, ValueError) as exc:
            problems.append(f"{module_name}.{qualname} has no inspectable signature ({exc})")
            continue
        if found != expected:
            problems.append(
                f"{module_name}.{qualname} takes ({', '.join(found)}), expected ({', '.join(expected)})"
            )
    for module_name, class_name, attributes in _EXPECTED_INIT_ATTRIBUTES:
        try:
            source = inspect.getsource(_resolve(module_name, class_name).__init__)
        except (ImportError, AttributeError, OSError, TypeError) as exc:
            problems.append(f"cannot read {module_name}.{class_name}.__init__ ({exc})")
            continue
        missing = [name for name in attributes if f"self.{name}" not in source]
        if missing:
            problems.append(f"{module_name}.{class_name}.__init__ no longer sets: {', '.join(missing)}")
    if problems:
        raise MotoInternalsChangedError(
            "PoseReel's local AWS patches private moto internals and pins moto=="
            f"{MOTO_VERSION}; these changed:\n  - "
            + "\n  - ".join(problems)
            + "\nPin moto back, or update posereel/local/hooks.py for the new version."
        )


# --------------------------------------------------------------------------------------------
# Environment shared by Lambda workers and Batch jobs
# --------------------------------------------------------------------------------------------


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


_LOGS_LOCK = threading.Lock()  # moto's logs backend is not thread-safe (its own TODO says so)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


# --------------------------------------------------------------------------------------------
# Lambda: warm worker processes, one function configuration each
# --------------------------------------------------------------------------------------------

_WORKER_BOOT: Final = "from posereel.local.hooks import _lambda_worker_main; _lambda_worker_main()"
_LAYER_ROOT: Final = str(Path(__file__).resolve().parents[2])  # layers/shared/python, like /opt/python


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


def _lambda_worker_main() -> None:
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
            raise _WorkerGone(f"worker exited with status {self.proc.wait()}")
        return json.loads(line)

    def call(self, request: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise _WorkerGone(f"worker exited with status {self.proc.wait()}") from exc
        return self._read_reply(timeout_s)

    def read_output(self) -> str:
        try:
            return Path(self.capture_path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        _kill_group(self.proc, signal.SIGKILL)
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
        init_timeout_s: float = 60.0,
    ) -> None:
        self._endpoint = endpoint
        self._code_paths = [str(Path(p).resolve()) for p in code_paths]
        self._init_timeout_s = init_timeout_s
        self._idle: dict[_FunctionSpec, list[_LambdaWorker]] = {}
        self._busy: set[_LambdaWorker] = set()
        self._lock = threading.Lock()
        self._closed = False

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
                "PYTHONPATH": os.pathsep.join([*self._code_paths, _LAYER_ROOT]),
            }
        )
        return env

    def _acquire(self, fn: LambdaFunction, spec: _FunctionSpec) -> _LambdaWorker:
        stale: list[_LambdaWorker] = []
        with self._lock:
            if self._closed:
                raise _WorkerGone("the local AWS is shutting down")
            # A reconfigured function gets fresh environments, as after UpdateFunctionConfiguration.
            for other in [s for s in self._idle if s.function_arn == spec.function_arn and s != spec]:
                stale.extend(self._idle.pop(other))
            idle = self._idle.get(spec, [])
            worker = None
            while idle and worker is None:
                candidate = idle.pop()  # most recently used first, like Lambda
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
        with self._lock:
            self._busy.discard(worker)
            if reusable and not self._closed and worker.alive():
                self._idle.setdefault(spec, []).append(worker)
                return
        worker.kill()

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
            with _LOGS_LOCK:
                fn.logs_backend.ensure_log_group(fn.logs_group_name)
                fn.save_logs(logs)
        tail = logs.encode("utf-8")[-_LAMBDA_LOG_TAIL_BYTES:].decode("utf-8", errors="ignore")
        return payload, errored, tail

    def close(self) -> None:
        """Stop every worker, idle or busy (a busy call then fails with Runtime.ExitError)."""
        with self._lock:
            self._closed = True
            workers = [w for pool in self._idle.values() for w in pool] + list(self._busy)
            self._idle.clear()
        for worker in workers:
            worker.kill()


# --------------------------------------------------------------------------------------------
# Batch: the job definition's command as a local process
# --------------------------------------------------------------------------------------------


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

    def run_job(self, job: Job) -> None:
        """Body of the job's thread (replaces ``Job.run``); always leaves the job stopped."""
        try:
            self._run(job)
        except Exception as exc:  # a bug here must not leave a .sync task polling forever
            logger.exception("local Batch: job %s failed in the runner", job.job_id)
            self._finish(job, success=False, reason=f"local runner error: {exc!r}")

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
            job.job_started_at = datetime.now()
            job.log_stream_name = job._stream_name
            job._start_attempt()
            self._execute(job, spec)

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
                "AWS_BATCH_JOB_ATTEMPT": "1",
            }
        )
        if "index" in (job.array_properties or {}):
            env["AWS_BATCH_JOB_ARRAY_INDEX"] = str(job.array_properties["index"])

        gpus = _gpus_requested(overrides.get("resourceRequirements") or [])
        if gpus is None:
            gpus = _gpus_requested(properties.get("resourceRequirements") or []) or 0
        timeout = job.timeout or job.job_definition.timeout or {}
        duration = timeout.get("attemptDurationSeconds")
        return _JobSpec(argv, env, gpus, float(duration) if duration else None)

    def _execute(self, job: Job, spec: _JobSpec) -> None:
        tmpdir = tempfile.mkdtemp(prefix=f"posereel-batch-{job.job_id}-")
        try:
            proc = subprocess.Popen(
                spec.argv,
                cwd=self._workdir,
                env={**spec.env, "TMPDIR": tmpdir},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(tmpdir, ignore_errors=True)
            self._finish(job, success=False, reason=f"CannotStartContainerError: {exc}")
            return
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
            while proc.poll() is None:
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
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.1)
            rc = proc.wait()
            _kill_group(proc, signal.SIGKILL)  # a container's leftover processes end with it
            reader.join(timeout=5)
            self._flush_logs(job, lines, lines_lock)
        finally:
            with self._lock:
                self._running.discard(proc)
            shutil.rmtree(tmpdir, ignore_errors=True)
        job.exit_code = rc if rc >= 0 else 128 - rc  # a signal shows as 128+N, as in a container
        logger.info("local Batch: job %s (%s) exited with %s", job.job_name, job.job_id, job.exit_code)
        success = reason is None and rc == 0
        self._finish(job, success=success, reason=reason or "Essential container in task exited")

    def _stop_process(self, proc: subprocess.Popen[bytes]) -> None:
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=self._kill_grace_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)

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
        with _LOGS_LOCK:
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


# --------------------------------------------------------------------------------------------
# Step Functions: casing of service integrations
# --------------------------------------------------------------------------------------------

_SERVICE_MODELS: dict[str, Any] = {}
_OPERATION_NAMES: dict[str, dict[str, str]] = {}
_MODELS_LOCK = threading.Lock()


def post_policy_refusal(
    fields: Mapping[str, str], *, size: int, bucket: str, now: datetime | None = None
) -> tuple[int, str, str] | None:
    """How S3 refuses a browser form POST whose policy it breaks: (status, code, message), or
    None when the form keeps to its policy. ``fields``: the form's fields, names lower-cased."""
    import base64

    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
        expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
        conditions = list(policy.get("conditions", []))
    except (KeyError, ValueError, TypeError):
        return 400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON."
    if expires <= (now or datetime.now(expires.tzinfo)):
        return 403, "AccessDenied", "Invalid according to Policy: Policy expired."
    values = {**fields, "bucket": bucket}
    for condition in conditions:
        if isinstance(condition, dict):
            checks = [("eq", f"${name}", value) for name, value in condition.items()]
        elif isinstance(condition, list) and len(condition) == 3:
            checks = [tuple(condition)]
        else:
            return 400, "InvalidPolicyDocument", f"Invalid Policy: Invalid condition {condition!r}."
        for operator, name, expected in checks:
            if operator == "content-length-range":
                if size > int(expected):
                    return 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
                if size < int(name):
                    return (
                        400,
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size",
                    )
                continue
            field = str(name).lstrip("$").lower()
            value = values.get(field, "")
            held = value == expected if operator == "eq" else value.startswith(str(expected))
            if operator not in ("eq", "starts-with") or not held:
                failed = json.dumps([operator, name, expected])
                return 403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {failed}"
    return None


def _operation_model(service: str, action: str) -> OperationModel | None:
    """botocore's model of ``service``'s ``action`` (given in any casing), or None if unknown."""
    from botocore import xform_name
    from botocore.exceptions import UnknownServiceError
    from botocore.session import get_session

    with _MODELS_LOCK:
        if service not in _SERVICE_MODELS:
            try:
                model = get_session().get_service_model(service)
            except UnknownServiceError:
                model = None
            _SERVICE_MODELS[service] = model
            _OPERATION_NAMES[service] = (
                {xform_name(name): name for name in model.operation_names} if model is not None else {}
            )
        model = _SERVICE_MODELS[service]
        names = _OPERATION_NAMES[service]
    name = names.get(xform_name(action)) or names.get(xform_name(action[:1].upper() + action[1:]))
    if model is None or name is None:
        return None
    return model.operation_model(name)


def _task_operation(task: Any, boto_service_name: str | None, service_action_name: str | None) -> Any:
    """The botocore operation a Step Functions service task calls (None when unknown)."""
    return _operation_model(
        task._get_boto_service_name(boto_service_name=boto_service_name),
        task._get_boto_service_action(service_action_name=service_action_name),
    )


def _normalise_parameters(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """ASL names parameters in PascalCase (``JobName``); map them onto boto3's members (``jobName``)."""
    operation = _task_operation(self, boto_service_name, service_action_name)
    if operation is not None and operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """Give results Step Functions' PascalCase (``$.JobId``, ``$.Status``), in place, as AWS does."""
    operation = _task_operation(self, boto_service_name, service_action_name)
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)


# --------------------------------------------------------------------------------------------
# Installation
# --------------------------------------------------------------------------------------------


@dataclass
class InstalledHooks:
    """The patches in place; ``uninstall()`` restores moto's originals."""

    lambda_runner: LambdaRunner
    batch_runner: BatchRunner
    _originals: list[tuple[type, str, Any]] = field(default_factory=list)

    def uninstall(self) -> None:
        global _installed
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)
        with _INSTALL_LOCK:
            if _installed is self:
                _installed = None


_INSTALL_LOCK = threading.Lock()
_installed: InstalledHooks | None = None


def install_hooks(*, lambda_runner: LambdaRunner, batch_runner: BatchRunner) -> InstalledHooks:
    """Patch this process's moto so Lambda and Batch run real code and SFN integrations work.

    Call ``check_moto_internals()`` first. moto's backends are process-global, so at most one set of
    hooks can be installed at a time.
    """
    global _installed
    from moto.awslambda.models import LambdaFunction
    from moto.batch.models import Job
    from moto.s3.responses import S3Response
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    with _INSTALL_LOCK:
        if _installed is not None:
            raise RuntimeError("moto hooks are already installed in this process; uninstall them first")
        hooks = InstalledHooks(lambda_runner, batch_runner)
        _installed = hooks

    def patch(owner: Any, name: str, replacement: Any) -> None:
        hooks._originals.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, replacement)

    def invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return lambda_runner.invoke(self, event)

    def run_job(self: Job) -> None:
        batch_runner.run_job(self)

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

    original_start = StepFunctionsParserBackend.__dict__["start_execution"]

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        # moto names an unnamed execution "None", so a second one collides; AWS uses a UUID.
        name = name or str(uuid.uuid4())
        return original_start(self, state_machine_arn, name, execution_input, trace_header)

    original_post = S3Response.__dict__["_bucket_response_post"]

    def bucket_post(self: Any, request: Any, bucket_name: str) -> Any:
        fields = {name.lower(): values[0] for name, values in self.querystring.items() if values}
        if "policy" in fields:
            refusal = post_policy_refusal(fields, size=len(self.body or b""), bucket=bucket_name)
            if refusal is not None:
                status, code, message = refusal
                body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                # S3 answers a refused form with the bucket's CORS headers, so a browser can read why.
                return status, {"Content-Type": "application/xml", **self._get_cors_headers_other()}, body
        return original_post(self, request, bucket_name)

    batch_service = importlib.import_module(_SFN_BATCH_MODULE).StateTaskServiceBatch
    callback_service = importlib.import_module(_SFN_CALLBACK_MODULE).StateTaskServiceCallback
    original_build_sync = batch_service.__dict__["_build_sync_resolver"]
    original_eval_sync = callback_service.__dict__["_eval_sync"]

    def build_sync_resolver(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> Any:
        job_id = env.stack[-1].get("JobId") if env.stack and isinstance(env.stack[-1], dict) else None
        resolver = original_build_sync(
            self, env, resource_runtime_part, normalised_parameters, state_credentials
        )
        if resolver is not None:  # eval_sync below reads which job it waits on
            resolver.batch_job = (resource_runtime_part.account, resource_runtime_part.region, job_id)
        return resolver

    def eval_sync(
        self: Any,
        env: Any,
        sync_resolver: Any,
        timeout_seconds: Any,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        result = original_eval_sync(
            self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint
        )
        account, region, job_id = getattr(sync_resolver, "batch_job", ("", "", None))
        if job_id and not env.is_running():  # the execution was stopped while the job ran
            from moto.batch.models import batch_backends

            batch_backends[account][region].terminate_job(job_id, "the workflow execution was stopped")
            logger.info("local Step Functions: stopped execution, terminated Batch job %s", job_id)
        return result

    environment = importlib.import_module(_SFN_ENVIRONMENT_MODULE).Environment
    program_stopped = importlib.import_module(_SFN_PROGRAM_STATE_MODULE).ProgramStopped
    original_set_error = environment.__dict__["set_error"]

    def set_error(self: Any, error: Any) -> None:
        # A task that fails after its execution was stopped (a terminated Batch job) must not
        # turn the ABORTED execution FAILED: in AWS a stopped execution stays ABORTED.
        if isinstance(self._program_state, program_stopped):
            return
        original_set_error(self, error)

    patch(environment, "set_error", set_error)
    patch(batch_service, "_build_sync_resolver", build_sync_resolver)
    patch(callback_service, "_eval_sync", eval_sync)
    patch(LambdaFunction, "_invoke_lambda", invoke_lambda)
    patch(S3Response, "_bucket_response_post", bucket_post)
    patch(Job, "run", run_job)
    patch(Job, "_container_details", container_details)
    patch(StateTaskService, "_normalise_parameters", _normalise_parameters)
    patch(StateTaskService, "_normalise_response", _normalise_response)
    patch(StepFunctionsParserBackend, "start_execution", start_execution)

    iteration_module = importlib.import_module(_SFN_MAP_ITERATION_MODULE)
    custom_error_name = iteration_module.__dict__["CustomErrorName"]

    def iteration_error_name(error_name: str | None) -> Any:
        # A failed iteration hands its error name up to the Map; AWS keeps "States.TaskFailed".
        if error_name is not None and error_name.startswith("States."):
            states_error_name = importlib.import_module(_SFN_STATES_ERROR_MODULE).StatesErrorName
            try:
                return states_error_name.from_name(error_name)
            except (KeyError, ValueError):
                pass
        return custom_error_name(error_name=error_name)

    patch(iteration_module, "CustomErrorName", iteration_error_name)
    return hooks
