"""The one description of PoseReel's resources: names, the jobs table, the functions, the chunk
workers and the workflow's substitutions. The CDK app (``infra/``) and the local stack
(``posereel_local.stack``) are both built from it, and a test checks that they create the same
(tests/infra/test_drift.py), so the two cannot drift apart.

Plain data, no AWS SDK and no CDK: the domain code reads the names it needs (the table's index)
from here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# The Python the Lambda functions and the images run (the layer's wheels are resolved for it; the
# CDK app passes it to every image build as PYTHON_VERSION).
LAMBDA_PYTHON = "3.13"
IMAGE_BUILD_ARGS = {"PYTHON_VERSION": LAMBDA_PYTHON}

WorkerDevice = Literal["gpu", "cpu"]
WORKER_DEVICES: tuple[WorkerDevice, ...] = ("gpu", "cpu")

# CloudWatch: the namespace of PoseReel's own metrics (the functions' and the watchdog's), and
# the watchdog's metrics and dimensions, which the stuck-job alarms watch.
METRICS_NAMESPACE = "PoseReel"
OLDEST_WAIT_METRIC = "OldestRunnableAgeSeconds"
WAITING_JOBS_METRIC = "RunnableJobs"
ENVIRONMENT_DIMENSION = "Environment"
QUEUE_DIMENSION = "Queue"

# API routes callable without an API key or token (API Gateway's methods, and the local API).
API_PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/health")})
API_KEY_HEADER = "x-api-key"

# API Gateway's own answers (no key, unknown route or method, throttled, too large, ...) in the
# API's error shape {"code", "message"}: response type -> (status, code); status None keeps
# API Gateway's. The local API answers the same (posereel_local.api_server).
GATEWAY_ERRORS: dict[str, tuple[str | None, str]] = {
    "DEFAULT_4XX": (None, "INVALID_REQUEST"),
    "DEFAULT_5XX": (None, "INTERNAL"),
    "MISSING_AUTHENTICATION_TOKEN": ("404", "NOT_FOUND"),  # what REST APIs answer for an unknown route
    "INVALID_API_KEY": ("403", "FORBIDDEN"),
    "ACCESS_DENIED": ("403", "FORBIDDEN"),
    "UNAUTHORIZED": ("401", "UNAUTHORIZED"),
    "EXPIRED_TOKEN": ("401", "UNAUTHORIZED"),
    "THROTTLED": ("429", "THROTTLED"),
    "QUOTA_EXCEEDED": ("429", "QUOTA_EXCEEDED"),
    "REQUEST_TOO_LARGE": ("413", "TOO_LARGE"),
    "UNSUPPORTED_MEDIA_TYPE": ("415", "UNSUPPORTED_MEDIA_TYPE"),
    "INTEGRATION_TIMEOUT": ("504", "TIMEOUT"),
}


# --- names ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceNames:
    """Physical names for one environment (dev, staging, prod, or local)."""

    env: str

    @property
    def prefix(self) -> str:
        return f"posereel-{self.env}"

    @property
    def jobs_table(self) -> str:
        return f"{self.prefix}-jobs"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-pipeline"

    def job_queue(self, device: WorkerDevice) -> str:
        return f"{self.prefix}-{device}"

    def job_definition(self, device: WorkerDevice) -> str:
        return f"{self.prefix}-worker-{device}"

    @property
    def stage_job_definition(self) -> str:
        """The container job that runs a stage too long or too large for a Lambda (STAGE_JOB)."""
        return f"{self.prefix}-stage"

    @property
    def event_bus(self) -> str:
        """The bus that carries "PoseReel Job State Change" events."""
        return f"{self.prefix}-events"

    def function(self, name: str) -> str:
        if name not in FUNCTIONS:
            raise KeyError(f"unknown function {name!r}")
        return f"{self.prefix}-{name}"

    def bucket(self, role: str, *, account: str) -> str:
        """uploads, results (also holds work/ intermediates) or quarantine; globally unique in AWS."""
        if role not in BUCKET_ROLES:
            raise KeyError(f"unknown bucket role {role!r}")
        return f"{self.prefix}-{role}-{account}"

    def state_machine_arn(self, *, region: str, account: str) -> str:
        return f"arn:aws:states:{region}:{account}:stateMachine:{self.state_machine}"


BUCKET_ROLES = ("uploads", "results", "quarantine")


# --- the jobs table -------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table with string keys, on-demand, every index projecting all attributes."""

    partition_key: str
    indexes: tuple[IndexSpec, ...]
    ttl_attribute: str

    @property
    def key_attributes(self) -> list[str]:
        """Every attribute a key schema names, in order of first mention."""
        names = [self.partition_key]
        for index in self.indexes:
            names += [n for n in (index.partition_key, index.sort_key) if n not in names]
        return names

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """The CreateTable request for this table (the local stack and the functional tests)."""
        return {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": self.partition_key, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in self.key_attributes],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ],
        }


BY_OWNER_INDEX = "by_owner"
# A sparse index of the jobs that wait for their upload, by when that wait ends (the upload
# link's expiry plus a grace): only such records carry its two attributes.
AWAITING_UPLOAD_INDEX = "awaiting_upload"
JOBS_TABLE = TableSpec(
    partition_key="job_id",
    indexes=(
        IndexSpec(BY_OWNER_INDEX, partition_key="owner", sort_key="created_at"),
        IndexSpec(AWAITING_UPLOAD_INDEX, partition_key="awaiting", sort_key="upload_deadline"),
    ),
    ttl_attribute="expires_at",
)


# --- the functions --------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function.

    handler: ``module.function`` in the ``functions/`` code asset (the shared layer on the path).
    timeout_s / memory_mb: its limits; the workflow's TimeoutSeconds on its task is longer.
    tools: it shells out to ffmpeg/ffprobe or clamscan, so it ships as a container image
    (containers/lambda/Dockerfile) rather than a zip with layers.
    tmp: its /tmp: "upload" sizes it for what is rendered from the largest upload (twice its
    size; the source itself is read in place), a number is MiB, None is Lambda's default 512 MiB.
    asynchronous: invoked by events (EventBridge), not by the workflow: failed events go to the
    dead-letter queue.
    usage: the key of its job's record (posereel.usage.USAGE_KEYS) under which each run records
    what it used (posereel_functions.metered); None: its runs are not a job's cost.
    """

    handler: str
    timeout_s: int
    memory_mb: int
    tools: bool = False
    tmp: Literal["upload"] | int | None = None
    asynchronous: bool = False
    usage: str | None = None


FUNCTIONS: dict[str, FunctionSpec] = {
    "start": FunctionSpec("posereel_functions.start.handler", 30, 256, asynchronous=True),
    # API Gateway gives up after 29 s.
    "api": FunctionSpec("posereel_functions.api.handler", 29, 512),
    # validate and plan read the video where it is (its index, a few seconds per chunk start).
    "validate": FunctionSpec("posereel_functions.validate.handler", 90, 1024, tools=True, usage="VALIDATE"),
    # scan streams the upload piece by piece; clamscan copies one piece (2000 MiB) to /tmp.
    "scan": FunctionSpec("posereel_functions.scan.handler", 900, 3008, tools=True, tmp=2560, usage="SCAN"),
    "plan": FunctionSpec("posereel_functions.plan.handler", 90, 1024, tools=True, usage="PLAN"),
    "merge": FunctionSpec("posereel_functions.merge.handler", 600, 3008, tools=True, tmp=2048, usage="MERGE"),
    "compile": FunctionSpec(
        "posereel_functions.compile.handler", 900, 3008, tools=True, tmp="upload", usage="COMPILE"
    ),
    "finalize": FunctionSpec("posereel_functions.finalize.handler", 60, 256, asynchronous=True),
    # Re-cuts, invoked by the api with an event per reel: no pose estimation, the stored tracks.
    "recut": FunctionSpec(
        "posereel_functions.recut.handler",
        900,
        3008,
        tools=True,
        tmp="upload",
        asynchronous=True,
        usage="REELS",
    ),
    # Tells the owner a job ended (the event bus, the webhook with its retries), invoked with an
    # event by finalize and the watchdog.
    "notify": FunctionSpec("posereel_functions.notify.handler", 120, 256, asynchronous=True),
    # Runs on a schedule in AWS (every 5 minutes): publishes how long chunk jobs wait for capacity.
    "watchdog": FunctionSpec("posereel_functions.watchdog.handler", 60, 256, asynchronous=True),
}


# Lambda runs a failed event invocation this many times more (its asynchronous retries); a
# re-cut that has not ended after every attempt and the waits between them (at most 1 and 2
# minutes, then slack) counts as failed (posereel.jobs.ReelRecord.seen_at).
RECUT_RETRIES = 1
RECUT_DEADLINE_S = FUNCTIONS["recut"].timeout_s * (1 + RECUT_RETRIES) + 3 * 60 + 60

# --- notifications ----------------------------------------------------------------------------

# The events PoseReel puts on its bus: source and detail type, what owners' rules match on.
EVENT_SOURCE = "posereel"
JOB_STATE_CHANGE = "PoseReel Job State Change"
# A webhook is tried once, then again after each of these waits; each POST may take this long.
# The notify function's timeout holds them all (a dead endpoint never holds up a job: the job
# has ended before notify runs).
WEBHOOK_RETRY_DELAYS_S = (2.0, 10.0, 30.0)
WEBHOOK_TIMEOUT_S = 10.0
# The deliveries a job's record keeps (the latest).
MAX_DELIVERIES = 20


def function_environment(name: str, names: ResourceNames, settings_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of function ``name``: the pipeline settings' variables
    (``posereel.settings.settings_environment``) and Powertools' service name."""
    return {**settings_env, "POWERTOOLS_SERVICE_NAME": names.function(name)}


# The functions the workflow invokes, by the substitution key naming each one's ARN.
WORKFLOW_FUNCTIONS: dict[str, str] = {
    "ValidateFunctionArn": "validate",
    "ScanFunctionArn": "scan",
    "PlanFunctionArn": "plan",
    "MergeFunctionArn": "merge",
    "CompileFunctionArn": "compile",
}


# --- the chunk workers ----------------------------------------------------------------------

# The worker image's ENTRYPOINT (containers/worker/Dockerfile.*), and the command the Batch job
# definitions give it: Batch's command replaces the image's CMD, never its ENTRYPOINT, so the
# command holds the arguments only (the local stack prepends the entry point, as Docker would).
WORKER_ENTRYPOINT: list[str] = ["python", "-m", "posereel_worker"]
WORKER_COMMAND: list[str] = [
    "--job-id",
    "Ref::job_id",
    "--chunk",
    "Ref::chunk_index",
    "--bucket",
    "Ref::bucket",
    "--device",
    "Ref::device",
]


@dataclass(frozen=True)
class WorkerSpec:
    """The Batch job definition and queue of one kind of chunk worker."""

    device: WorkerDevice
    gpus: int
    image: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "image", f"containers/worker/Dockerfile.{self.device}")


WORKERS: dict[WorkerDevice, WorkerSpec] = {
    "gpu": WorkerSpec("gpu", gpus=1),
    "cpu": WorkerSpec("cpu", gpus=0),
}

# --- stages in a container -------------------------------------------------------------------

# The stages whose work grows with the upload (scan with its size; merge and compile with the
# video's length) run in a Lambda while it is small enough (posereel.pipeline.placement), and
# otherwise as a job of STAGE_JOB on the CPU queue, with the worker image: the job runs the same
# service as the Lambda and stores its outcome (work/{job}/stages/{stage}.json), then the
# workflow invokes the stage's Lambda, which hands that outcome on as its own (an error as the
# same error), so what follows, the rejections included, is the same on both paths.
CONTAINER_STAGES: tuple[str, ...] = ("scan", "merge", "compile")
STAGE_COMMAND: list[str] = ["stage", "Ref::stage", "--job-id", "Ref::job_id", "--source", "Ref::source"]


@dataclass(frozen=True)
class StageJobSpec:
    """The stage job's shape: its vCPUs and memory (Fargate: 16 vCPU takes 32-120 GiB), its disk
    (Fargate's ephemeral storage, 21-200 GiB: a scan piece, or a compile's rendered files) and
    its time limit (each attempt's; the workflow waits for all of them). The stage's usage key
    (FUNCTIONS) with this suffix keeps what the jobs used, apart from the Lambda's runs."""

    # Sixteen: the long stages work in pieces side by side, one per vCPU (the scan's pieces,
    # the reel's passes, the overlay's pieces), and Fargate prices a vCPU by the second, so
    # more of them cost about the same and finish sooner. Each clamscan holds the signature
    # database (about 1.2 GB), each reel pass up to 16 decoders: 2 GiB a vCPU.
    vcpus: int = 16
    memory_mib: int = 32768
    disk_gib: int = 200
    timeout_s: int = 3 * 3600
    attempts: int = 2
    usage_suffix: str = "_JOB"

    @property
    def wait_s(self) -> int:
        """How long the workflow waits for the job: every attempt, and time to get a host."""
        return self.timeout_s * self.attempts + 15 * 60


STAGE_JOB = StageJobSpec()

# The worker's exit statuses (posereel_worker.worker) that a retry cannot change.
WORKER_EXIT_INPUT = 2  # the input can never work
WORKER_EXIT_NO_GPU = 3  # a GPU job on a host whose GPU does not start: the workflow goes to the CPU


@dataclass(frozen=True)
class RetryRule:
    """One of Batch's evaluateOnExit conditions: the first that matches a failed attempt decides;
    when none does, Batch retries (while attempts remain). Patterns may end with *."""

    action: Literal["RETRY", "EXIT"]
    on_exit_code: str | None = None
    on_status_reason: str | None = None

    def to_batch(self) -> dict[str, str]:
        rule: dict[str, str] = {"action": self.action}
        if self.on_exit_code is not None:
            rule["onExitCode"] = self.on_exit_code
        if self.on_status_reason is not None:
            rule["onStatusReason"] = self.on_status_reason
        return rule


# A chunk job that crashes, is killed for memory (137) or loses its host (Spot reclaim, host
# termination) runs again, up to WORKER_ATTEMPTS in all, before the workflow falls back from the
# GPU to the CPU queue or fails the job; bad input and a missing GPU end at once.
WORKER_ATTEMPTS = 3
WORKER_RETRY_RULES: tuple[RetryRule, ...] = (
    RetryRule("EXIT", on_exit_code=str(WORKER_EXIT_INPUT)),
    RetryRule("EXIT", on_exit_code=str(WORKER_EXIT_NO_GPU)),
    RetryRule("RETRY", on_status_reason="Host EC2*"),
)


def worker_retry_strategy() -> dict[str, Any]:
    """The job definitions' retryStrategy, as Batch's API takes it."""
    return {"attempts": WORKER_ATTEMPTS, "evaluateOnExit": [r.to_batch() for r in WORKER_RETRY_RULES]}


# --- the workflow ---------------------------------------------------------------------------

WORKFLOW_FILE = "statemachine/pipeline.asl.json"


def workflow_substitutions(
    *,
    function_arns: Mapping[str, str],
    jobs_table: str,
    work_bucket: str,
    job_queue_arns: Mapping[WorkerDevice, str],
    job_definition_arns: Mapping[WorkerDevice, str],
    stage_job_definition_arn: str,
    chunk_timeout_s: int,
    max_concurrency: int,
) -> dict[str, str]:
    """Every ``${Key}`` of the workflow file and its value (CloudFormation's DefinitionSubstitutions;
    the local stack replaces them itself). ``function_arns``: function name -> ARN."""
    return {
        **{key: function_arns[name] for key, name in WORKFLOW_FUNCTIONS.items()},
        "JobsTableName": jobs_table,
        "WorkBucketName": work_bucket,
        "GpuJobQueueArn": job_queue_arns["gpu"],
        "CpuJobQueueArn": job_queue_arns["cpu"],
        "GpuJobDefinitionArn": job_definition_arns["gpu"],
        "CpuJobDefinitionArn": job_definition_arns["cpu"],
        "StageJobDefinitionArn": stage_job_definition_arn,
        "StageJobWaitSeconds": str(STAGE_JOB.wait_s),
        "ChunkTimeoutSeconds": str(chunk_timeout_s),
        "MaxConcurrency": str(max_concurrency),
    }


SUBSTITUTION_KEYS: tuple[str, ...] = tuple(
    workflow_substitutions(
        function_arns=dict.fromkeys(FUNCTIONS, ""),
        jobs_table="",
        work_bucket="",
        job_queue_arns=dict.fromkeys(WORKER_DEVICES, ""),
        job_definition_arns=dict.fromkeys(WORKER_DEVICES, ""),
        stage_job_definition_arn="",
        chunk_timeout_s=0,
        max_concurrency=0,
    )
)
