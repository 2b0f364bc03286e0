"""The whole PoseReel pipeline on one machine: LocalAws plus the resources the CDK app deploys.

``LocalStack`` creates, on the embedded moto, what the cloud stack holds: the uploads, results
and quarantine buckets, the jobs table, every Lambda function of ``posereel.resources.FUNCTIONS``
(real handlers from ``functions/``, each with the POSEREEL_* settings as its environment), the
Batch queues and job definitions of the chunk worker, the state machine from
``statemachine/pipeline.asl.json`` with its substitutions, the S3 notification that starts a job
on upload, and an HTTP server in front of the api function. Names come from
``posereel.resources.ResourceNames``, as in AWS.

Differences from AWS, on purpose: an upload starts the job through an S3 -> Lambda notification
(moto cannot deliver S3 -> EventBridge -> target; the start function takes both shapes), the
"Step Functions Execution Status Change" events that EventBridge hands the finalize function in
AWS are sent by a thread that watches the executions (``EXECUTION_WATCH_S``), the watchdog's
schedule is a thread (``watchdog_every_s``), webhooks may call http://127.0.0.1
(``webhook_loopback``), and Batch jobs run as local processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from posereel.resources import (
    FUNCTIONS,
    JOBS_TABLE,
    LAMBDA_PYTHON,
    STAGE_COMMAND,
    STAGE_JOB,
    WORKER_COMMAND,
    WORKER_ENTRYPOINT,
    WORKERS,
    WORKFLOW_FILE,
    ResourceNames,
    WorkerDevice,
    function_environment,
    worker_retry_strategy,
    workflow_substitutions,
)
from posereel.settings import PipelineSettings, RuntimeSettings, settings_environment
from posereel_local.api_server import ApiServer, invoke_through_lambda
from posereel_local.server import LocalAws

logger = logging.getLogger("posereel.local")

DEFAULT_API_PORT = 8321
API_KEY_ENV = "POSEREEL_LOCAL_API_KEY"  # fixes the local API key (default: a new one per start)
DEFAULT_API_KEY_ID = "local-user"
# What the local Lambda functions say they run on, as in AWS (they run on this machine's Python).
LOCAL_RUNTIME = f"python{LAMBDA_PYTHON}"
# What a local job definition asks for (Batch needs numbers; the jobs run as local processes).
LOCAL_WORKER_VCPUS = "1"
LOCAL_WORKER_MEMORY_MIB = "4096"
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
# The EICAR anti-virus test file (68 bytes), in two halves so that this source is not itself
# reported by a scanner. Every anti-virus product detects it; it is harmless.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
_TEST_SIGNATURE = "PoseReel.Test.EICAR"
# Quiet LiteRT's native logging in the workers; the rest of their environment is POSEREEL_*.
_WORKER_LOCAL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}
# No X-Ray daemon here: Powertools' tracer would try to send every segment to one.
_FUNCTION_LOCAL_ENV = {"POWERTOOLS_TRACE_DISABLED": "true"}
# What the local stack adds to the environment the resource description gives (the drift test
# allows these, and only these, on top of the CDK app's variables).
LOCAL_ONLY_ENV = {**_WORKER_LOCAL_ENV, **_FUNCTION_LOCAL_ENV}
# How often the execution watcher looks for executions that ended (EventBridge, in AWS, tells
# finalize within about a second).
EXECUTION_WATCH_S = 0.5
# Functions no job calls (in AWS a schedule runs them): created, but not pre-warmed.
_UNSCHEDULED_FUNCTIONS = frozenset({"watchdog"})


def repository_root() -> Path:
    """The checkout this package runs from (``functions/`` and ``statemachine/`` are read from it)."""
    root = Path(__file__).resolve().parents[2]  # local/posereel_local/stack.py
    if not (root / "statemachine" / "pipeline.asl.json").is_file() or not (root / "functions").is_dir():
        raise FileNotFoundError(
            f"{root} is not a PoseReel checkout (no statemachine/pipeline.asl.json or functions/): "
            "the local stack runs from the repository, with the package installed in editable mode"
        )
    return root


def render_definition(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``${Key}`` of a workflow file, as CloudFormation's DefinitionSubstitutions do.

    Raises ValueError naming every placeholder without a (non-empty) value. Values are
    JSON-escaped, since every placeholder stands inside a JSON string."""
    missing = sorted({key for key in _PLACEHOLDER.findall(template) if not values.get(key)})
    if missing:
        raise ValueError(f"the workflow definition needs values for: {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: json.dumps(str(values[m[1]]))[1:-1], template)


def worker_image(device: WorkerDevice) -> str:
    """The "image" of a local job definition; LocalAws prepends the worker's ENTRYPOINT to it."""
    return f"posereel-worker-{device}:local"


def write_test_clamav_db(directory: Path) -> Path:
    """A ClamAV database that knows only the EICAR test string: the file itself (an MD5 .hdb
    signature, as official databases have) and the string anywhere in a file (a body .ndb
    signature), so that a real video carrying it passes validation and is caught by the scan."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "posereel-test.hdb").write_text(
        f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{_TEST_SIGNATURE}\n"
    )
    (directory / "posereel-test.ndb").write_text(f"{_TEST_SIGNATURE}.Embedded:0:*:{EICAR.hex()}\n")
    return directory


@dataclass(frozen=True)
class StackResources:
    """What the stack created, by name and ARN."""

    names: ResourceNames
    account: str
    region: str
    role_arn: str
    functions: dict[str, str]  # function key (as in resources.FUNCTIONS) -> ARN
    job_queues: dict[WorkerDevice, str]  # ARNs
    job_definitions: dict[WorkerDevice, str]  # ARNs
    state_machine_arn: str
    substitutions: dict[str, str]  # what the workflow file's ${Key}s were replaced with


class LocalStack:
    """The pipeline on the embedded AWS, with its HTTP API. Only one per process (like LocalAws).

    model_dir / clamav_db: the pose models and the ClamAV signature database. model_dir defaults
    to $POSEREEL_MODEL_DIR (RuntimeSettings); without a clamav_db a test-only database that knows
    only the EICAR file is written at start-up (the scan is still a real clamscan run).
    settings: overrides of PipelineSettings fields (limits, chunk_seconds, ...).
    max_concurrency: chunks analysed at once (the Map's MaxConcurrency and the compute
    environment's size); default one per CPU core. chunk_timeout_s: a chunk job's time limit.
    gpu_available: None detects with nvidia-smi; without a GPU every GPU job fails at once and
    its chunk runs on the CPU queue, as in AWS when the GPU job fails.
    handlers / code_paths / worker_entrypoint: other code for some functions (merged over
    resources.FUNCTIONS, importable from code_paths, searched before functions/) and another
    worker program, to run the same stack and workflow with scripted stages.
    """

    def __init__(
        self,
        *,
        api_port: int = DEFAULT_API_PORT,
        aws_port: int = 0,
        env: str = "local",
        model_dir: str | os.PathLike[str] | None = None,
        clamav_db: str | os.PathLike[str] | None = None,
        settings: Mapping[str, Any] | None = None,
        max_concurrency: int | None = None,
        chunk_timeout_s: int = 900,
        gpu_available: bool | None = None,
        repo_root: str | os.PathLike[str] | None = None,
        web_dir: str | os.PathLike[str] | None = None,
        handlers: Mapping[str, str] | None = None,
        code_paths: Sequence[str | os.PathLike[str]] = (),
        worker_entrypoint: Sequence[str] = WORKER_ENTRYPOINT,
        api_key: str | None = None,
        quiet: bool = True,
        watchdog_every_s: float | None = 60.0,
    ) -> None:
        unknown = sorted(set(handlers or {}) - set(FUNCTIONS))
        if unknown:
            raise ValueError(f"not functions of posereel.resources.FUNCTIONS: {unknown}")
        self._api_port = api_port
        self._aws_port = aws_port
        self._names = ResourceNames(env)
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._clamav_db = Path(clamav_db) if clamav_db is not None else None
        self._overrides = dict(settings or {})
        self.max_concurrency = max_concurrency or os.cpu_count() or 1
        self._chunk_timeout_s = chunk_timeout_s
        self._gpu_available = gpu_available
        self._repo_root = Path(repo_root) if repo_root is not None else None
        self._web_dir = Path(web_dir) if web_dir is not None else None
        self._handlers = dict(handlers or {})
        self._code_paths = [Path(p) for p in code_paths]
        self._worker_entrypoint = list(worker_entrypoint)
        self._quiet = quiet
        self._watchdog_every_s = watchdog_every_s
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        key = api_key or os.environ.get(API_KEY_ENV) or secrets.token_urlsafe(24)
        self._api_keys: dict[str, str] = {key: DEFAULT_API_KEY_ID}
        self._aws: LocalAws | None = None
        self._api: ApiServer | None = None
        self._tmp: Path | None = None
        self._settings: PipelineSettings | None = None
        self._resources: StackResources | None = None

    # -- what callers read ----------------------------------------------------------------------

    @property
    def aws(self) -> LocalAws:
        if self._aws is None:
            raise RuntimeError("the local stack is not started")
        return self._aws

    @property
    def settings(self) -> PipelineSettings:
        """The settings every function and worker of this stack runs with."""
        if self._settings is None:
            raise RuntimeError("the local stack is not started")
        return self._settings

    @property
    def resources(self) -> StackResources:
        if self._resources is None:
            raise RuntimeError("the local stack is not started")
        return self._resources

    @property
    def api_url(self) -> str:
        if self._api is None:
            raise RuntimeError("the local stack is not started")
        return self._api.url

    @property
    def api_key(self) -> str:
        """The API key of the stack's first user (key id DEFAULT_API_KEY_ID)."""
        return next(iter(self._api_keys))

    def new_api_key(self, key_id: str) -> str:
        """Another API key (another owner of jobs), usable at once."""
        if key_id in self._api_keys.values():
            raise ValueError(f"an API key with id {key_id} exists already")
        key = secrets.token_urlsafe(24)
        self._api_keys[key] = key_id
        return key

    @property
    def web_url(self) -> str:
        """The web client's address, with the API key in the fragment (the page keeps it)."""
        return f"{self.api_url}/#key={self.api_key}"

    @property
    def serves_web(self) -> bool:
        return self._api is not None and self._api.serves_static

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.aws.client(service, **kwargs)

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        logger.info("local PoseReel API on %s (AWS on %s)", self.api_url, self.aws.endpoint_url)
        return self

    def stop(self) -> None:
        """Stop the API, every job process and Lambda worker, and discard all state."""
        self._ticking.set()
        for thread in (self._ticker, self._watcher):
            if thread is not None:
                thread.join(timeout=30)
        self._ticker = self._watcher = None
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self._aws is not None:
            self._aws.stop()
            self._aws = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._settings = None
        self._resources = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- building the stack ---------------------------------------------------------------------

    def _start(self) -> None:
        root = self._repo_root or repository_root()
        self._tmp = Path(tempfile.mkdtemp(prefix="posereel-stack-"))
        batch_dir = self._tmp / "batch"
        batch_dir.mkdir()
        self._aws = LocalAws(
            port=self._aws_port,
            gpu_available=self._gpu_available,
            lambda_code_paths=[*self._code_paths, root / "functions"],
            lambda_layer_paths=[root / "layers" / "shared" / "python"],
            batch_workdir=batch_dir,
            image_entrypoints={worker_image(d): self._worker_entrypoint for d in WORKERS},
            max_parallel_jobs=self.max_concurrency,
            quiet=self._quiet,
        ).start()
        region = self._aws.region
        account = self.client("sts").get_caller_identity()["Account"]
        names = self._names
        role = self.client("iam").create_role(
            RoleName=f"{names.prefix}-stack", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
        )["Role"]["Arn"]
        self._settings = settings = self._pipeline_settings(names, account, region)

        self._create_buckets(settings)
        self.client("events").create_event_bus(Name=settings.event_bus)
        self.client("dynamodb").create_table(**JOBS_TABLE.create_table_request(settings.jobs_table))
        self.client("dynamodb").update_time_to_live(
            TableName=settings.jobs_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": JOBS_TABLE.ttl_attribute},
        )
        environment = settings_environment(settings)
        functions = self._create_functions(names, role, environment)
        self._prewarm(account, region, [key for key in functions if key not in _UNSCHEDULED_FUNCTIONS])
        queues, definitions, stage_definition = self._create_batch(
            names, role, {**environment, **_WORKER_LOCAL_ENV}
        )
        substitutions = workflow_substitutions(
            function_arns=functions,
            jobs_table=settings.jobs_table,
            work_bucket=settings.results_bucket,
            job_queue_arns=queues,
            job_definition_arns=definitions,
            stage_job_definition_arn=stage_definition,
            chunk_timeout_s=self._chunk_timeout_s,
            max_concurrency=self.max_concurrency,
        )
        template = (root / WORKFLOW_FILE).read_text(encoding="utf-8")
        created = self.client("stepfunctions").create_state_machine(
            name=names.state_machine,
            definition=render_definition(template, substitutions),
            roleArn=role,
            type="STANDARD",
        )["stateMachineArn"]
        if created != settings.state_machine_arn:
            raise RuntimeError(
                f"the state machine is {created}, but the functions were told {settings.state_machine_arn}"
            )
        self.client("s3").put_bucket_notification_configuration(
            Bucket=settings.uploads_bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "Id": "start-job-on-upload",
                        "LambdaFunctionArn": functions["start"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                    }
                ]
            },
        )
        self._resources = StackResources(
            names=names,
            account=account,
            region=region,
            role_arn=role,
            functions=functions,
            job_queues=queues,
            job_definitions=definitions,
            state_machine_arn=created,
            substitutions=substitutions,
        )
        self._api = ApiServer(
            invoke_through_lambda(self.client("lambda"), functions["api"]),
            port=self._api_port,
            static_dir=self._web_dir or root / "web",
            api_keys=self._api_keys,
        )
        self._api.start()
        self._ticking.clear()
        self._watcher = threading.Thread(target=self._watch_executions, name="execution-events", daemon=True)
        self._watcher.start()
        if self._watchdog_every_s:
            # The schedule AWS runs it on (EventBridge): queue backlogs, abandoned uploads.
            self._ticker = threading.Thread(
                target=self._tick_every, args=(self._watchdog_every_s,), name="watchdog-schedule", daemon=True
            )
            self._ticker.start()

    def _pipeline_settings(self, names: ResourceNames, account: str, region: str) -> PipelineSettings:
        assert self._tmp is not None
        clamav_db = self._clamav_db
        if clamav_db is None:
            clamav_db = write_test_clamav_db(self._tmp / "clamav")
            logger.warning(
                "ClamAV: no signature database given, so scans use a test-only one that knows just "
                "the EICAR test file (%s); they are real clamscan runs. Pass clamav_db (--clamav-db) "
                "with freshclam's databases for real protection.",
                clamav_db,
            )
        clash = sorted({"clamav_db", "runtime"} & self._overrides.keys())
        if clash:
            raise ValueError(f"the local stack sets these itself (model_dir, clamav_db: arguments): {clash}")
        runtime = RuntimeSettings()
        if self._model_dir is not None:
            runtime = runtime.model_copy(update={"model_dir": self._model_dir})
        return PipelineSettings.for_environment(
            names,
            account=account,
            region=region,
            clamav_db=str(clamav_db),
            runtime=runtime,
            **{"webhook_loopback": True, **self._overrides},
        )

    def tick_watchdog(self) -> dict[str, Any]:
        """Invoke the watchdog function once (the schedule's tick in AWS); returns its answer."""
        answer = self.client("lambda").invoke(
            FunctionName=self._names.function("watchdog"), InvocationType="RequestResponse", Payload=b"{}"
        )
        result: dict[str, Any] = json.loads(answer["Payload"].read() or b"{}")
        if answer.get("FunctionError"):
            raise RuntimeError(f"the watchdog failed: {result}")
        return result

    def _tick_every(self, every_s: float) -> None:
        while not self._ticking.wait(every_s):
            try:
                self.tick_watchdog()
            except Exception:  # the next tick tries again, as the schedule would
                logger.exception("local watchdog tick failed")

    def _watch_executions(self) -> None:
        """Send finalize the EventBridge event of every execution that ends, as AWS does."""
        sfn = self.client("stepfunctions")
        arn = self.resources.state_machine_arn
        sent: set[str] = set()
        while not self._ticking.wait(EXECUTION_WATCH_S):
            try:
                for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                    for execution in page["executions"]:
                        if execution["status"] != "RUNNING" and execution["executionArn"] not in sent:
                            self._send_status_change(
                                sfn.describe_execution(executionArn=execution["executionArn"])
                            )
                            sent.add(execution["executionArn"])
            except Exception:  # the next look tries again
                if not self._ticking.is_set():
                    logger.exception("local execution watcher failed")

    def _send_status_change(self, execution: Mapping[str, Any]) -> None:
        stopped = execution.get("stopDate")
        detail = {
            "executionArn": execution["executionArn"],
            "stateMachineArn": execution["stateMachineArn"],
            "name": execution["name"],
            "status": execution["status"],
            "stopDate": int(stopped.timestamp() * 1000) if stopped is not None else None,
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        }
        event = {
            "version": "0",
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "resources": [execution["executionArn"]],
            "detail": detail,
        }
        self.client("lambda").invoke(
            FunctionName=self._names.function("finalize"),
            InvocationType="Event",
            Payload=json.dumps(event).encode(),
        )

    def in_flight(self) -> int:
        """Lambda invocations and Batch jobs not finished yet (0: nothing of any job runs)."""
        hooks = self.aws.hooks
        return hooks.lambda_runner.in_flight() + hooks.batch_runner.in_flight()

    def _prewarm(self, account: str, region: str, keys: list[str]) -> None:
        """Start a warm worker per function in the background while the rest is set up and the
        upload goes in (each costs ~0.5-1 s of imports that would otherwise delay its stage)."""
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[account][region]
        runner = self.aws.hooks.lambda_runner
        functions = [backend.get_function(self._names.function(key)) for key in keys]
        for fn in functions:
            name = f"prewarm-{fn.function_name}"
            threading.Thread(target=runner.prewarm, args=(fn,), name=name, daemon=True).start()

    def _create_buckets(self, settings: PipelineSettings) -> None:
        s3 = self.client("s3")
        for bucket in (settings.uploads_bucket, settings.results_bucket, settings.quarantine_bucket):
            s3.create_bucket(Bucket=bucket)
        # The web client POSTs uploads straight to the bucket; it must read the ETag back.
        s3.put_bucket_cors(
            Bucket=settings.uploads_bucket,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedMethods": ["POST", "PUT", "GET", "HEAD"],
                        "AllowedOrigins": ["*"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": ["ETag"],
                        "MaxAgeSeconds": 3000,
                    }
                ]
            },
        )
        # The page reads tracks.json and reel.json from their presigned links to draw skeletons.
        s3.put_bucket_cors(
            Bucket=settings.results_bucket,
            CORSConfiguration={
                "CORSRules": [
                    {"AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"], "MaxAgeSeconds": 3000}
                ]
            },
        )

    def _create_functions(
        self, names: ResourceNames, role: str, settings_env: dict[str, str]
    ) -> dict[str, str]:
        # The hook runs the handler named in the configuration from functions/; the zip only
        # satisfies the API.
        code = _placeholder_zip()
        lam = self.client("lambda")
        functions: dict[str, str] = {}
        for key, spec in FUNCTIONS.items():
            environment = {**function_environment(key, names, settings_env), **_FUNCTION_LOCAL_ENV}
            functions[key] = lam.create_function(
                FunctionName=names.function(key),
                Runtime=LOCAL_RUNTIME,
                Role=role,
                Handler=self._handlers.get(key, spec.handler),
                Code={"ZipFile": code},
                Timeout=spec.timeout_s,
                MemorySize=spec.memory_mb,
                Environment={"Variables": environment},
            )["FunctionArn"]
        return functions

    def _create_batch(
        self, names: ResourceNames, role: str, environment: dict[str, str]
    ) -> tuple[dict[WorkerDevice, str], dict[WorkerDevice, str], str]:
        """The chunk workers' queues and job definitions, and the stage job's definition (the
        CPU worker's image; its jobs go to the CPU queue)."""
        batch = self.client("batch")
        compute = batch.create_compute_environment(
            computeEnvironmentName=f"{names.prefix}-local",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role,
        )["computeEnvironmentArn"]
        order = [{"order": 1, "computeEnvironment": compute}]
        env = [{"name": k, "value": v} for k, v in sorted(environment.items())]
        queues: dict[WorkerDevice, str] = {}
        definitions: dict[WorkerDevice, str] = {}
        for device, worker in WORKERS.items():
            queues[device] = batch.create_job_queue(
                jobQueueName=names.job_queue(device),
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=order,
            )["jobQueueArn"]
            requirements = [
                {"type": "VCPU", "value": LOCAL_WORKER_VCPUS},
                {"type": "MEMORY", "value": LOCAL_WORKER_MEMORY_MIB},
            ]
            if worker.gpus:
                requirements.append({"type": "GPU", "value": str(worker.gpus)})
            definitions[device] = batch.register_job_definition(
                jobDefinitionName=names.job_definition(device),
                type="container",
                containerProperties={
                    "image": worker_image(device),
                    "command": WORKER_COMMAND,
                    "resourceRequirements": requirements,
                    "environment": env,
                },
                timeout={"attemptDurationSeconds": self._chunk_timeout_s},
                retryStrategy=worker_retry_strategy(),
            )["jobDefinitionArn"]
        stage = batch.register_job_definition(
            jobDefinitionName=names.stage_job_definition,
            type="container",
            containerProperties={
                "image": worker_image("cpu"),
                "command": STAGE_COMMAND,
                "resourceRequirements": [
                    {"type": "VCPU", "value": LOCAL_WORKER_VCPUS},
                    {"type": "MEMORY", "value": LOCAL_WORKER_MEMORY_MIB},
                ],
                "environment": env,
            },
            timeout={"attemptDurationSeconds": STAGE_JOB.timeout_s},
            retryStrategy={"attempts": STAGE_JOB.attempts},
        )["jobDefinitionArn"]
        return queues, definitions, stage


def _placeholder_zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "README.txt", "PoseReel local stack: the code runs from functions/ and the shared layer.\n"
        )
    return buffer.getvalue()
