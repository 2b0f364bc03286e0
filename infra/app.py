"""Builds every stack of one or more environments into a CDK app. Used by app.py (`cdk synth -c
env=dev`) and by the infra tests (all environments in one synthesis)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Aspects, Environment, Stack, Tags
from cdk_nag import AwsSolutionsChecks

from infra.config import EnvironmentConfig
from infra.stacks.api import ApiStack
from infra.stacks.compute import ComputeStack
from infra.stacks.monitoring import MonitoringStack
from infra.stacks.pipeline import CLAMAV_PREFIX, PipelineStack
from infra.stacks.storage import StorageStack
from infra.stacks.web import WebStack
from posereel.resources import ResourceNames
from posereel.settings import PipelineSettings, WatchdogSettings


@dataclass(frozen=True)
class EnvironmentStacks:
    names: ResourceNames
    config: EnvironmentConfig
    web: WebStack
    storage: StorageStack
    compute: ComputeStack
    pipeline: PipelineStack
    api: ApiStack
    monitoring: MonitoringStack

    @property
    def all(self) -> list[Stack]:
        return [self.web, self.storage, self.compute, self.pipeline, self.api, self.monitoring]


def pipeline_environment(names: ResourceNames, config: EnvironmentConfig) -> dict[str, str]:
    """The POSEREEL_* variables of every function and worker, validated by PipelineSettings itself
    (the model they are read back into), from plain strings: names are fixed, so no tokens."""
    region, account = config.region, config.account
    values = {
        "env": names.env,
        "uploads_bucket": names.bucket("uploads", account=account),
        "results_bucket": names.bucket("results", account=account),
        "quarantine_bucket": names.bucket("quarantine", account=account),
        "jobs_table": names.jobs_table,
        "state_machine_arn": f"arn:aws:states:{region}:{account}:stateMachine:{names.state_machine}",
        "max_upload_bytes": config.max_upload_bytes,
        "max_duration_s": config.max_duration_s,
        "chunk_seconds": config.chunk_seconds,
        "overlap_seconds": config.overlap_seconds,
        "clamav_db": f"s3://{names.bucket('results', account=account)}/{CLAMAV_PREFIX}",
        "job_ttl_days": config.job_ttl_days,
    }
    settings = PipelineSettings.model_validate(values)
    return {f"POSEREEL_{key.upper()}": str(getattr(settings, key)) for key in values}


def watchdog_environment(names: ResourceNames, config: EnvironmentConfig) -> dict[str, str]:
    """The watchdog function's own POSEREEL_* variables: what it watches (the Batch job queues, or
    the worker task families of the ECS cluster), validated by WatchdogSettings."""
    values: dict[str, str] = {"env": names.env, "worker_backend": config.worker_backend}
    if config.worker_backend == "batch":
        values |= {"gpu_queue": names.gpu_job_queue, "cpu_queue": names.cpu_job_queue}
    else:
        values |= {
            "gpu_queue": names.gpu_job_definition,
            "cpu_queue": names.cpu_job_definition,
            "worker_cluster": names.workers_cluster,
        }
    settings = WatchdogSettings.model_validate(values)
    return {f"POSEREEL_{key.upper()}": str(getattr(settings, key)) for key in values}


def build_environment(app: App, env_name: str, config: EnvironmentConfig) -> EnvironmentStacks:
    names = ResourceNames(env_name)
    env = Environment(account=config.account, region=config.region)
    common = dict(env=env, names=names, config=config)
    environment = pipeline_environment(names, config)

    def stack_id(part: str) -> str:
        return f"{names.prefix}-{part}"

    # The web client's site first: its domain is an allowed origin of the uploads bucket (presigned
    # uploads), of the api function's responses and of the API's preflight, all in later stacks.
    web = WebStack(
        app, stack_id("web"), description="PoseReel web client hosting (S3 + CloudFront)", **common
    )
    allowed_origins = [*config.api.allowed_origins, web.origin]
    storage = StorageStack(
        app,
        stack_id("storage"),
        description="PoseReel buckets and jobs table",
        allowed_origins=allowed_origins,
        **common,
    )
    compute = ComputeStack(
        app,
        stack_id("compute"),
        description=f"PoseReel chunk workers ({config.worker_backend})",
        storage=storage,
        worker_environment=environment,
        **common,
    )
    pipeline = PipelineStack(
        app,
        stack_id("pipeline"),
        description="PoseReel functions, workflow and events",
        storage=storage,
        compute=compute,
        function_environment=environment,
        # A JSON list, for the CORS headers of the api function's answers.
        api_environment={"POSEREEL_ALLOWED_ORIGINS": web.to_json_string(allowed_origins)},
        watchdog_environment=watchdog_environment(names, config),
        **common,
    )
    api = ApiStack(
        app,
        stack_id("api"),
        description="PoseReel REST API",
        api_function=pipeline.functions["api"],
        allowed_origins=allowed_origins,
        web=web,
        **common,
    )
    monitoring = MonitoringStack(
        app, stack_id("monitoring"), description="PoseReel alarms", pipeline=pipeline, **common
    )
    stacks = EnvironmentStacks(names, config, web, storage, compute, pipeline, api, monitoring)
    for stack in stacks.all:
        Tags.of(stack).add("project", "posereel")
        Tags.of(stack).add("environment", env_name)
    return stacks


def build_environments(
    app: App, configs: dict[str, EnvironmentConfig], *, nag: bool = True
) -> dict[str, EnvironmentStacks]:
    for config in configs.values():
        # AZs come from the config: a lookup would need credentials at synth.
        app.node.set_context(
            f"availability-zones:account={config.account}:region={config.region}", config.availability_zones
        )
    built = {name: build_environment(app, name, config) for name, config in configs.items()}
    if nag:
        Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return built
