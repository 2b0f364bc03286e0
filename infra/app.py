"""Builds every stack of one or more environments into a CDK app. Used by app.py (`cdk synth -c
env=dev`) and by the infra tests (all environments in one synthesis)."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Aspects, Environment, Stack, Tags
from cdk_nag import AwsSolutionsChecks

from infra.config import EnvironmentConfig, instance_vcpus
from infra.stacks.api import ApiStack
from infra.stacks.compute import ComputeStack
from infra.stacks.monitoring import MonitoringStack
from infra.stacks.pipeline import CLAMAV_PREFIX, PipelineStack
from infra.stacks.storage import StorageStack
from infra.stacks.web import WebStack
from posereel.resources import ResourceNames
from posereel.settings import (
    ChunkSettings,
    CostBasis,
    PipelineSettings,
    RuntimeSettings,
    settings_environment,
)


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


# Where the worker images bake the pose models in (containers/worker/Dockerfile.*).
IMAGE_MODEL_DIR = "/opt/models"


def environment_settings(names: ResourceNames, config: EnvironmentConfig) -> PipelineSettings:
    """The PipelineSettings of every function and worker of the environment, from the resource
    names and the environment's config; validated here, at synth."""
    return PipelineSettings.for_environment(
        names,
        account=config.account,
        region=config.region,
        max_upload_bytes=config.max_upload_bytes,
        max_duration_s=config.max_duration_s,
        chunks=ChunkSettings(chunk_seconds=config.chunk_seconds, overlap_seconds=config.overlap_seconds),
        clamav_db=f"s3://{names.bucket('results', account=config.account)}/{CLAMAV_PREFIX}",
        job_ttl_days=config.job_ttl_days,
        allowed_origins=config.api.allowed_origins,
        costs=CostBasis(
            **config.prices.model_dump(),
            worker_vcpus=config.workers.worker_vcpus,
            worker_memory_mib=config.workers.worker_memory_mib,
            gpu_instance_vcpus=instance_vcpus(config.workers.gpu_instance_types[0]),
        ),
        runtime=RuntimeSettings(model_dir=IMAGE_MODEL_DIR),
    )


def build_environment(app: App, env_name: str, config: EnvironmentConfig) -> EnvironmentStacks:
    names = ResourceNames(env_name)
    env = Environment(account=config.account, region=config.region)
    common = dict(env=env, names=names, config=config)
    settings = environment_settings(names, config)

    def stack_id(part: str) -> str:
        return f"{names.prefix}-{part}"

    # The web client's site first: its domain is an allowed origin of the uploads bucket (presigned
    # uploads), of the api function's responses and of the API's preflight, all in later stacks.
    web = WebStack(
        app, stack_id("web"), description="PoseReel web client hosting (S3 + CloudFront)", **common
    )
    allowed_origins = [*config.api.allowed_origins, web.origin]
    # The web client's CloudFront domain is known at deploy only: the functions' variable holds a
    # token (the workers answer no browser).
    worker_environment = settings_environment(settings)
    function_environment = {
        **worker_environment,
        "POSEREEL_ALLOWED_ORIGINS": web.to_json_string(allowed_origins),
    }
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
        description="PoseReel chunk workers (AWS Batch)",
        storage=storage,
        worker_environment=worker_environment,
        **common,
    )
    pipeline = PipelineStack(
        app,
        stack_id("pipeline"),
        description="PoseReel functions, workflow and events",
        storage=storage,
        compute=compute,
        settings_environment=function_environment,
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
