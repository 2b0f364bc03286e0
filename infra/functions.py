"""ONE factory for PoseReel's Lambda functions, from their description (posereel.resources.FUNCTIONS).
Each function gets its own role (grants are added by the caller, per function), its own log group
with the environment's retention, X-Ray tracing and its environment
(posereel.resources.function_environment). Light functions are zip packages of functions/ with two
layers (the shared ``posereel`` package and its third-party dependencies); those needing
ffmpeg/ffprobe or ClamAV (``tools``) are container images built from containers/lambda/Dockerfile,
with the handler string as the CMD."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from typing import Any

import jsii
from aws_cdk import (
    AssetHashType,
    BundlingOptions,
    DockerImage,
    Duration,
    ILocalBundling,
    Size,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_lambda as lambda_,
)
from constructs import Construct

from infra.common import CODE_EXCLUDE, DOCKER_CONTEXT_EXCLUDE, REPO, log_group
from infra.config import EnvironmentConfig
from infra.stacks.storage import function_role_name
from posereel.resources import (
    FUNCTIONS,
    IMAGE_BUILD_ARGS,
    LAMBDA_PYTHON,
    ResourceNames,
    function_environment,
)

RUNTIME: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_" + LAMBDA_PYTHON.replace(".", "_"))
ARCHITECTURE = lambda_.Architecture.X86_64


# The dependencies layer's pinned requirements (make lock writes them from the tested versions).
LAYER_REQUIREMENTS = REPO / "infra" / "layer" / "requirements.txt"


def layer_requirements() -> list[str]:
    """The pinned third-party dependencies of the zip functions (boto3 comes with the runtime)."""
    lines = LAYER_REQUIREMENTS.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """Local bundling in Python (no Docker): pip installs manylinux wheels for the Lambda runtime
    into the layer's python/ folder. Runs at `cdk synth`/`cdk deploy` only; tests skip bundling."""

    def __init__(self, requirements: list[str]) -> None:
        self._requirements = requirements

    def try_bundle(self, output_dir: str, options: Any) -> bool:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--target",
                f"{output_dir}/python",
                "--platform",
                "manylinux2014_x86_64",
                "--implementation",
                "cp",
                "--python-version",
                LAMBDA_PYTHON,
                "--only-binary=:all:",
                "--no-deps",
                *self._requirements,
            ],
            check=True,
        )
        return True


class FunctionFactory:
    def __init__(
        self,
        scope: Construct,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        settings_environment: dict[str, str],
        dead_letter_queue: Any,
    ) -> None:
        """settings_environment: the POSEREEL_* variables of the environment's PipelineSettings;
        dead_letter_queue: where the events of asynchronously invoked functions go when they fail."""
        self._scope = scope
        self._names = names
        self._config = config
        self._settings_environment = settings_environment
        self._dead_letter_queue = dead_letter_queue
        self._code = lambda_.Code.from_asset(str(REPO / "functions"), exclude=CODE_EXCLUDE)
        self.shared_layer = lambda_.LayerVersion(
            scope,
            "SharedLayer",
            code=lambda_.Code.from_asset(str(REPO / "layers" / "shared"), exclude=CODE_EXCLUDE),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="posereel: the shared domain package",
        )
        requirements = layer_requirements()
        self.dependencies_layer = lambda_.LayerVersion(
            scope,
            "DependenciesLayer",
            code=lambda_.Code.from_asset(
                str(REPO / "infra" / "layer"),
                asset_hash_type=AssetHashType.CUSTOM,
                asset_hash=hashlib.sha256("\n".join(requirements).encode()).hexdigest(),
                bundling=BundlingOptions(
                    # Only used where local bundling fails; tests synthesize without bundling.
                    image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{LAMBDA_PYTHON}"),
                    command=[
                        "bash",
                        "-c",
                        "pip install --no-deps -t /asset-output/python "
                        + " ".join(f"'{r}'" for r in requirements),
                    ],
                    local=PipLayerBundler(requirements),
                ),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="posereel: third-party dependencies (infra/layer/requirements.txt)",
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}

    def _tmp_mib(self, tmp: str | int | None) -> int | None:
        if tmp == "upload":  # room for what is rendered from the largest upload (read in place)
            return min(10240, max(512, math.ceil(2 * self._config.max_upload_bytes / 1024**2) + 512))
        return int(tmp) if tmp is not None else None

    def make(self, name: str) -> lambda_.Function:
        spec = FUNCTIONS[name]
        handler = spec.handler
        scope = Construct(self._scope, f"{name.capitalize()}Function")
        role = iam.Role(
            scope,
            "Role",
            role_name=function_role_name(self._names, name),
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"PoseReel {name} function (least privilege: grants added per function)",
        )
        logs = log_group(scope, "Logs", self._config, name=f"/aws/lambda/{self._names.function(name)}")
        logs.grant_write(role)
        common: dict[str, Any] = dict(
            function_name=self._names.function(name),
            role=role,
            timeout=Duration.seconds(spec.timeout_s),
            memory_size=spec.memory_mb,
            architecture=ARCHITECTURE,
            environment=function_environment(name, self._names, self._settings_environment),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=logs,
            dead_letter_queue=self._dead_letter_queue if spec.asynchronous else None,
            ephemeral_storage_size=Size.mebibytes(tmp) if (tmp := self._tmp_mib(spec.tmp)) else None,
        )
        if spec.tools:
            function: lambda_.Function = lambda_.DockerImageFunction(
                scope,
                "Function",
                code=lambda_.DockerImageCode.from_image_asset(
                    str(REPO),
                    file="containers/lambda/Dockerfile",
                    target="functions",
                    build_args=IMAGE_BUILD_ARGS,
                    cmd=[handler],
                    exclude=DOCKER_CONTEXT_EXCLUDE,
                ),
                **common,
            )
        else:
            function = lambda_.Function(
                scope,
                "Function",
                runtime=RUNTIME,
                handler=handler,
                code=self._code,
                layers=[self.shared_layer, self.dependencies_layer],
                **common,
            )
        self.functions[name] = function
        self.roles[name] = role
        return function
