"""The workflow's definition per worker backend, always from the ONE file statemachine/pipeline.asl.json.

batch: the file as it is (the local stack runs the very same text).
ecs: the same file with exactly two states changed, the chunk jobs GpuJob and CpuJob: their
``batch:submitJob.sync`` request becomes an ``ecs:runTask.sync`` one (cluster, task definition,
capacity provider; the worker's arguments as a command override, since ECS has no ``Ref::``
parameters). Their Catch (GPU -> CPU fallback), Retry, timeouts and every other state stay as they
are. What is derived is checked against what the file says, so a change to those two states fails
the synth here instead of deploying a stale variant.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal

from infra.common import REPO
from posereel.resources import SUBSTITUTION_KEYS, WORKER_COMMAND

WORKFLOW_FILE = REPO / "statemachine" / "pipeline.asl.json"
Backend = Literal["batch", "ecs"]

# The Batch states the ECS variant replaces, by name -> the worker device they run.
CHUNK_JOB_STATES = {"GpuJob": "gpu", "CpuJob": "cpu"}
BATCH_RESOURCE = "arn:aws:states:::batch:submitJob.sync"
ECS_RESOURCE = "arn:aws:states:::ecs:runTask.sync"
WORKER_CONTAINER = "worker"  # the container name in both ECS task definitions

# Substitution keys only the Batch states use, and those the ECS states use instead.
BATCH_KEYS = ("GpuJobQueueArn", "CpuJobQueueArn", "GpuJobDefinitionArn", "CpuJobDefinitionArn")
ECS_KEYS = (
    "WorkerClusterArn",
    "GpuTaskDefinitionArn",
    "CpuTaskDefinitionArn",
    "GpuCapacityProvider",
    "CpuCapacityProvider",
    "WorkerSubnetIds",
    "WorkerSecurityGroupId",
)
# Errors the Batch states retry -> their ECS counterparts. AmazonECS.Unknown is what a .sync
# RunTask fails with when ECS answers with Failures (no Fargate capacity, for one).
RETRIED_ERRORS = {
    "Batch.AWSBatchException": ["ECS.AmazonECSException", "AmazonECS.Unknown"],
    "Batch.ServerException": ["ECS.ServerException"],
}


def substitution_keys(definition: str) -> set[str]:
    return set(re.findall(r"\$\{(\w+)\}", definition))


def workflow_definition(backend: Backend) -> str:
    """The definition text the state machine deploys (with DefinitionSubstitutions)."""
    text = WORKFLOW_FILE.read_text()
    if backend == "batch":
        return text
    return json.dumps(ecs_variant(json.loads(text)), indent=2)


def expected_keys(backend: Backend) -> set[str]:
    keys = set(SUBSTITUTION_KEYS)
    return keys if backend == "batch" else (keys - set(BATCH_KEYS)) | set(ECS_KEYS)


def _states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The chunk job states, wherever they sit (inside the Map's item processor)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            if name in CHUNK_JOB_STATES:
                found[name] = state
            for nested in (state.get("ItemProcessor"), state.get("Iterator")):
                if nested:
                    walk(nested["States"])
            for branch in state.get("Branches", []):
                walk(branch["States"])

    walk(definition["States"])
    if set(found) != set(CHUNK_JOB_STATES):
        raise ValueError(
            f"{WORKFLOW_FILE.name} lacks the chunk job states {sorted(set(CHUNK_JOB_STATES) - set(found))}"
        )
    return found


def _command(arguments: dict[str, Any]) -> str:
    """WORKER_COMMAND with each ``Ref::name`` bound to the Batch state's parameter ``name``, as a
    States.Array intrinsic: JSONPath values stay paths, literals are quoted."""
    values: dict[str, str] = {}
    for key, value in arguments.items():
        if key.endswith(".$"):
            values[key[:-2]] = value
        else:
            values[key] = _quoted(value)
    parts = []
    for word in WORKER_COMMAND:
        if word.startswith("Ref::"):
            name = word.removeprefix("Ref::")
            if name not in values:
                raise ValueError(f"the worker command needs parameter {name!r}, which the Batch state lacks")
            parts.append(values[name])
        else:
            parts.append(_quoted(word))
    return f"States.Array({', '.join(parts)})"


def _quoted(value: Any) -> str:
    if not isinstance(value, str) or re.search(r"['{}\\]", value):
        raise ValueError(f"{value!r} cannot be a literal argument of an intrinsic")
    return f"'{value}'"


def _ecs_state(name: str, state: dict[str, Any]) -> dict[str, Any]:
    device = CHUNK_JOB_STATES[name]
    params = state["Parameters"]
    if state["Resource"] != BATCH_RESOURCE or set(params) != {
        "JobName.$",
        "JobQueue",
        "JobDefinition",
        "Parameters",
        "Timeout",
    }:
        raise ValueError(f"{name} in {WORKFLOW_FILE.name} changed shape: update infra/workflow.py")
    if params["Parameters"].get("device") != device or set(state["ResultSelector"]) != {
        "batch_job_id.$",
        "device",
    }:
        raise ValueError(f"{name} in {WORKFLOW_FILE.name} changed shape: update infra/workflow.py")
    prefix = device.capitalize()
    request: dict[str, Any] = {
        "Cluster": "${WorkerClusterArn}",
        "TaskDefinition": f"${{{prefix}TaskDefinitionArn}}",
        "CapacityProviderStrategy": [{"CapacityProvider": f"${{{prefix}CapacityProvider}}", "Weight": 1}],
        "Overrides": {
            "ContainerOverrides": [{"Name": WORKER_CONTAINER, "Command.$": _command(params["Parameters"])}]
        },
    }
    if device == "cpu":  # Fargate (awsvpc); the GPU tasks use the instance's network (bridge)
        request["NetworkConfiguration"] = {
            "AwsvpcConfiguration": {
                "Subnets.$": "States.StringSplit('${WorkerSubnetIds}', ',')",
                "SecurityGroups": ["${WorkerSecurityGroupId}"],
                "AssignPublicIp": "ENABLED",  # public subnets, no NAT: needed to pull from ECR
            }
        }
    changed = copy.deepcopy(state)
    changed["Comment"] = (
        f"{state.get('Comment', '')} [ECS: a task on the {device.upper()} capacity provider; it may run "
        "until the state's timeout, when Step Functions stops it.]"
    ).strip()
    changed["Resource"] = ECS_RESOURCE
    changed["Parameters"] = request
    changed["ResultSelector"] = {"task_arn.$": "$.TaskArn", "device": device}
    for retry in changed.get("Retry", []):
        errors = []
        for error in retry["ErrorEquals"]:
            if error.startswith("Batch."):
                if error not in RETRIED_ERRORS:
                    raise ValueError(f"{name} retries {error}: map it to ECS in infra/workflow.py")
                errors.extend(RETRIED_ERRORS[error])
            else:
                errors.append(error)
        retry["ErrorEquals"] = errors
    return changed


def ecs_variant(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition with its chunk jobs run as ECS tasks (see the module docstring)."""
    variant = copy.deepcopy(definition)
    for name, state in _states(variant).items():
        state.clear()
        state.update(_ecs_state(name, _states(definition)[name]))
    variant["Comment"] = (
        f"{definition.get('Comment', '')} [Variant: chunk jobs on ECS, ecs:runTask.sync.]".strip()
    )
    return variant
