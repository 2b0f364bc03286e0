"""The CDK app and the local stack are built from one description of the resources
(posereel.resources); here both are built and compared, so that neither can drift from it: the
same functions (handlers, sizes, environment variables), the same jobs table, the same job
definitions and the same workflow substitutions, pointing at the same resources.

Names differ only by their environment ("posereel-dev-..." against "posereel-local-...") and, for
buckets, the account; values that are environment settings (timeouts, concurrency) are compared
for presence only. The local stack adds the variables of posereel_local.stack.LOCAL_ONLY_ENV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from posereel.resources import FUNCTIONS, JOBS_TABLE, WORKER_ATTEMPTS, WORKERS, ResourceNames
from posereel_local.stack import LOCAL_ONLY_ENV, LocalStack

pytestmark = pytest.mark.infra

ENV = "dev"  # every environment is built by the same code; the infra tests check them all
NAME_PROPERTIES = ("FunctionName", "JobQueueName", "JobDefinitionName", "TableName", "BucketName")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(api_port=0, model_dir=tmp_path_factory.mktemp("no-models"), gpu_available=False) as stack:
        yield stack


def base_name(name: str, env: str) -> str:
    """A physical name without its environment prefix and account suffix."""
    name = name.removeprefix(f"posereel-{env}-")
    head, _, tail = name.rpartition("-")
    return head if tail.isdigit() and len(tail) == 12 else name


def arn_name(value: str) -> str:
    """The resource name in an ARN (a job definition's without its revision), or the value itself."""
    name = value.rsplit("/", 1)[-1] if "/" in value else value.rsplit(":", 1)[-1]
    return name.split(":", 1)[0]


class Templates:
    """The synthesized templates of one environment, able to say what a value refers to."""

    def __init__(self, synth: Any, env: str) -> None:
        self.env = env
        self.stacks = {name: t for name, t in synth.templates.items() if name.startswith(f"posereel-{env}-")}
        self.exports: dict[str, tuple[str, Any]] = {}
        for stack, template in self.stacks.items():
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    self.exports[output["Export"]["Name"]] = (stack, output["Value"])

    def resources(self, part: str, type_: str) -> dict[str, dict[str, Any]]:
        template = self.stacks[f"posereel-{self.env}-{part}"]
        return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}

    def referent(self, value: Any, stack: str) -> str:
        """The base name of the resource ``value`` (a Ref, GetAtt or ImportValue) points at."""
        if isinstance(value, dict) and "Fn::ImportValue" in value:
            stack, value = self.exports[value["Fn::ImportValue"]]
            return self.referent(value, stack)
        if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
            logical = value.get("Ref") or value["Fn::GetAtt"][0]
            props = self.stacks[stack]["Resources"][logical]["Properties"]
            name = next(props[key] for key in NAME_PROPERTIES if key in props)
            return base_name(name, self.env)
        raise AssertionError(f"{value!r} refers to no named resource")


@pytest.fixture(scope="module")
def cloud(synth: Any) -> Templates:
    return Templates(synth, ENV)


def cloud_function(cloud: Templates, name: str) -> dict[str, Any]:
    wanted = ResourceNames(ENV).function(name)
    (fn,) = [
        r["Properties"]
        for r in cloud.resources("pipeline", "AWS::Lambda::Function").values()
        if r["Properties"].get("FunctionName") == wanted
    ]
    return fn


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functions_are_the_same_in_both(cloud: Templates, local: LocalStack, name: str) -> None:
    fn = cloud_function(cloud, name)
    mine = local.client("lambda").get_function_configuration(FunctionName=local.resources.functions[name])
    handler = fn.get("Handler") or fn["ImageConfig"]["Command"][0]
    assert (handler, fn["Timeout"], fn["MemorySize"]) == (
        mine["Handler"],
        mine["Timeout"],
        mine["MemorySize"],
    )
    cloud_keys = set(fn["Environment"]["Variables"])
    local_keys = set(mine["Environment"]["Variables"]) - set(LOCAL_ONLY_ENV)
    assert cloud_keys == local_keys


def test_the_jobs_table_is_the_same_in_both(cloud: Templates, local: LocalStack) -> None:
    ((_, table),) = cloud.resources("storage", "AWS::DynamoDB::GlobalTable").items()
    props = table["Properties"]
    dynamodb = local.client("dynamodb")
    mine = dynamodb.describe_table(TableName=local.settings.jobs_table)["Table"]
    assert props["KeySchema"] == mine["KeySchema"]
    assert {i["IndexName"]: i["KeySchema"] for i in props["GlobalSecondaryIndexes"]} == {
        i["IndexName"]: i["KeySchema"] for i in mine["GlobalSecondaryIndexes"]
    }
    ttl = dynamodb.describe_time_to_live(TableName=local.settings.jobs_table)["TimeToLiveDescription"]
    assert props["TimeToLiveSpecification"]["AttributeName"] == ttl["AttributeName"]
    assert ttl["AttributeName"] == JOBS_TABLE.ttl_attribute


@pytest.mark.parametrize("device", sorted(WORKERS))
def test_job_definitions_are_the_same_in_both(cloud: Templates, local: LocalStack, device: str) -> None:
    wanted = ResourceNames(ENV).job_definition(device)
    (definition,) = [
        r["Properties"]
        for r in cloud.resources("compute", "AWS::Batch::JobDefinition").values()
        if r["Properties"].get("JobDefinitionName") == wanted
    ]
    container = definition["ContainerProperties"]
    (mine,) = local.client("batch").describe_job_definitions(
        jobDefinitions=[local.resources.job_definitions[device]]
    )["jobDefinitions"]
    assert container["Command"] == mine["containerProperties"]["command"]
    gpus = [r["Value"] for r in container["ResourceRequirements"] if r["Type"] == "GPU"]
    mine_gpus = [
        r["value"] for r in mine["containerProperties"]["resourceRequirements"] if r["type"] == "GPU"
    ]
    assert gpus == mine_gpus
    cloud_keys = {e["Name"] for e in container["Environment"]}
    local_keys = {e["name"] for e in mine["containerProperties"]["environment"]} - set(LOCAL_ONLY_ENV)
    assert cloud_keys == local_keys
    # The same retry strategy: attempts, and each exit condition with its action, in order.
    cloud_retry = definition["RetryStrategy"]
    local_retry = mine["retryStrategy"]
    assert cloud_retry["Attempts"] == local_retry["attempts"] == WORKER_ATTEMPTS
    assert [
        {k[0].lower() + k[1:]: str(v).lower() for k, v in rule.items()}
        for rule in cloud_retry["EvaluateOnExit"]
    ] == [{k: str(v).lower() for k, v in rule.items()} for rule in local_retry["evaluateOnExit"]]


def test_the_workflow_substitutions_name_the_same_resources(cloud: Templates, local: LocalStack) -> None:
    ((_, machine),) = cloud.resources("pipeline", "AWS::StepFunctions::StateMachine").items()
    subs = machine["Properties"]["DefinitionSubstitutions"]
    mine = local.resources.substitutions
    assert set(subs) == set(mine)
    for key, value in subs.items():
        if isinstance(value, str):  # a setting of the environment, not a resource
            assert mine[key], key
            continue
        local_name = arn_name(mine[key])
        referent = cloud.referent(value, f"posereel-{ENV}-pipeline")
        assert referent == base_name(local_name, "local"), key
