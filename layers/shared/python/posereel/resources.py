"""Resource names and workflow substitution keys: the one place the CDK app and the local stack
both read, so the two cannot drift."""

from __future__ import annotations

from dataclasses import dataclass

# The Lambda functions of the pipeline: name -> handler string (module.function, importable from
# the `functions/` code asset, with the shared layer on the path).
FUNCTIONS: dict[str, str] = {
    "start": "posereel_functions.start.handler",
    "validate": "posereel_functions.validate.handler",
    "scan": "posereel_functions.scan.handler",
    "plan": "posereel_functions.plan.handler",
    "merge": "posereel_functions.merge.handler",
    "compile": "posereel_functions.compile.handler",
    "api": "posereel_functions.api.handler",
    "finalize": "posereel_functions.finalize.handler",
    # Runs on a schedule in AWS (every 5 minutes): publishes how long chunk jobs wait for capacity.
    "watchdog": "posereel_functions.watchdog.handler",
}

# CloudWatch: the namespace of PoseReel's own metrics (the functions' and the watchdog's).
METRICS_NAMESPACE = "PoseReel"

# API routes callable without an API key or token (API Gateway's methods, and the local API).
API_PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/health")})
API_KEY_HEADER = "x-api-key"

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
class FunctionSize:
    """A function's timeout and memory; the workflow's TimeoutSeconds on its task is longer."""

    timeout_s: int
    memory_mb: int


# Per function, for the CDK app and the local stack alike.
FUNCTION_SIZES: dict[str, FunctionSize] = {
    "start": FunctionSize(timeout_s=30, memory_mb=256),
    "api": FunctionSize(timeout_s=29, memory_mb=512),  # API Gateway gives up after 29 s
    "validate": FunctionSize(timeout_s=90, memory_mb=1024),
    "scan": FunctionSize(timeout_s=900, memory_mb=3008),
    "plan": FunctionSize(timeout_s=90, memory_mb=1024),
    "merge": FunctionSize(timeout_s=600, memory_mb=3008),
    "compile": FunctionSize(timeout_s=900, memory_mb=3008),
    "finalize": FunctionSize(timeout_s=60, memory_mb=256),
    "watchdog": FunctionSize(timeout_s=60, memory_mb=256),
}

# Every ${Key} that statemachine/pipeline.asl.json uses.
SUBSTITUTION_KEYS: tuple[str, ...] = (
    "ValidateFunctionArn",
    "ScanFunctionArn",
    "PlanFunctionArn",
    "MergeFunctionArn",
    "CompileFunctionArn",
    "JobsTableName",
    "WorkBucketName",
    "GpuJobQueueArn",
    "CpuJobQueueArn",
    "GpuJobDefinitionArn",
    "CpuJobDefinitionArn",
    "ChunkTimeoutSeconds",
    "MaxConcurrency",
)


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

    @property
    def gpu_job_queue(self) -> str:
        return f"{self.prefix}-gpu"

    @property
    def cpu_job_queue(self) -> str:
        return f"{self.prefix}-cpu"

    @property
    def workers_cluster(self) -> str:
        """The ECS cluster of the chunk workers (worker_backend "ecs")."""
        return f"{self.prefix}-workers"

    @property
    def gpu_job_definition(self) -> str:
        return f"{self.prefix}-worker-gpu"

    @property
    def cpu_job_definition(self) -> str:
        return f"{self.prefix}-worker-cpu"

    def function(self, name: str) -> str:
        if name not in FUNCTIONS:
            raise KeyError(f"unknown function {name!r}")
        return f"{self.prefix}-{name}"

    def bucket(self, role: str, *, account: str = "000000000000") -> str:
        """uploads, results (also holds work/ intermediates) or quarantine; globally unique in AWS."""
        if role not in ("uploads", "results", "quarantine"):
            raise KeyError(f"unknown bucket role {role!r}")
        return f"{self.prefix}-{role}-{account}"
