"""The ECS alternative (worker_backend "ecs"): the test-only environment conftest.ECS_ENV, and the
workflow variant infra/workflow.py derives from the one workflow file."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.workflow import (
    BATCH_KEYS,
    ECS_KEYS,
    WORKFLOW_FILE,
    ecs_variant,
    substitution_keys,
    workflow_definition,
)
from posereel.resources import SUBSTITUTION_KEYS, WORKER_COMMAND, WORKER_ENTRYPOINT, ResourceNames
from posereel.settings import WatchdogSettings
from tests.infra.helpers import ECS_ENV, role_actions

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[2]
ENV = ECS_ENV


def one(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


def chunk_states(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"]["Analyze"]["ItemProcessor"]["States"]


# -- the ASL variant ---------------------------------------------------------------------------------


def test_batch_deploys_the_workflow_file_as_it_is():
    assert workflow_definition("batch") == WORKFLOW_FILE.read_text()


def test_the_ecs_variant_changes_only_the_two_chunk_job_states():
    original = json.loads(WORKFLOW_FILE.read_text())
    variant = json.loads(workflow_definition("ecs"))
    for states in (chunk_states(original), chunk_states(variant)):
        for name in ("GpuJob", "CpuJob"):
            states.pop(name)
    original.pop("Comment"), variant.pop("Comment")
    assert variant == original
    assert substitution_keys(workflow_definition("ecs")) == (set(SUBSTITUTION_KEYS) - set(BATCH_KEYS)) | set(
        ECS_KEYS
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["GpuJob"]["Parameters"].update(ArrayProperties={"Size": 2}), "GpuJob .* changed shape"),
        (
            lambda s: s["CpuJob"].update(Resource="arn:aws:states:::batch:submitJob"),
            "CpuJob .* changed shape",
        ),
        (lambda s: s["CpuJob"]["Retry"][0]["ErrorEquals"].append("Batch.Other"), "retries Batch.Other"),
        (lambda s: s["GpuJob"]["Parameters"]["Parameters"].pop("bucket.$"), "needs parameter 'bucket'"),
        (lambda s: s.pop("CpuJob"), "lacks the chunk job states"),
    ],
)
def test_the_ecs_variant_refuses_a_workflow_file_it_does_not_understand(change, message):
    definition = json.loads(WORKFLOW_FILE.read_text())
    change(chunk_states(definition))
    with pytest.raises(ValueError, match=message):
        ecs_variant(definition)


def test_the_ecs_variant_leaves_its_input_alone():
    definition = json.loads(WORKFLOW_FILE.read_text())
    before = copy.deepcopy(definition)
    ecs_variant(definition)
    assert definition == before


# -- the synthesized ECS environment ---------------------------------------------------------------


def test_the_ecs_environment_has_no_batch_resources(synth):
    for part in ("compute", "pipeline", "monitoring"):
        assert not [
            r for r in synth.template(ENV, part)["Resources"].values() if r["Type"].startswith("AWS::Batch::")
        ]


def test_gpu_capacity_is_an_auto_scaling_group_that_ecs_takes_to_zero(synth):
    config = synth.configs[ENV].workers
    _, asg = one(synth.resources(ENV, "compute", "AWS::AutoScaling::AutoScalingGroup"))
    props = asg["Properties"]
    assert props["MinSize"] == "0"
    assert int(props["MaxSize"]) == config.gpu_max_instances >= 1
    assert "DesiredCapacity" not in props  # managed scaling owns it
    policy = props["MixedInstancesPolicy"]
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == config.gpu_instance_types
    spot = policy["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    assert spot is config.gpu_spot
    assert props["NewInstancesProtectedFromScaleIn"] is True

    _, template = one(synth.resources(ENV, "compute", "AWS::EC2::LaunchTemplate"))
    data = template["Properties"]["LaunchTemplateData"]
    ami = synth.template(ENV, "compute")["Parameters"][data["ImageId"]["Ref"]]["Default"]
    assert ami.startswith("/aws/service/ecs/optimized-ami/") and "/gpu/" in ami
    assert data["MetadataOptions"] == {"HttpTokens": "required"}
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    assert data["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is True  # no NAT in this VPC
    assert "ECS_CLUSTER=" in json.dumps(data["UserData"])

    _, provider = one(synth.resources(ENV, "compute", "AWS::ECS::CapacityProvider"))
    asg_provider = provider["Properties"]["AutoScalingGroupProvider"]
    assert asg_provider["ManagedScaling"] == {"Status": "ENABLED", "TargetCapacity": 100}
    assert asg_provider["ManagedTerminationProtection"] == "ENABLED"
    _, association = one(synth.resources(ENV, "compute", "AWS::ECS::ClusterCapacityProviderAssociations"))
    providers = association["Properties"]["CapacityProviders"]
    assert {"FARGATE", "FARGATE_SPOT"} <= {p for p in providers if isinstance(p, str)}
    assert {"Ref": next(iter(synth.resources(ENV, "compute", "AWS::ECS::CapacityProvider")))} in providers


@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_task_definitions_run_the_worker_entry_point(synth, device):
    names, config = ResourceNames(ENV), synth.configs[ENV].workers
    family = names.gpu_job_definition if device == "gpu" else names.cpu_job_definition
    definitions = synth.resources(ENV, "compute", "AWS::ECS::TaskDefinition")
    (definition,) = [d["Properties"] for d in definitions.values() if d["Properties"]["Family"] == family]
    (container,) = definition["ContainerDefinitions"]
    assert container["Name"] == "worker"
    assert "Command" not in container and "EntryPoint" not in container  # the image's; runs override the args
    requirements = {r["Type"]: r["Value"] for r in container.get("ResourceRequirements", [])}
    if device == "gpu":
        assert requirements == {"GPU": "1"}
        assert definition["RequiresCompatibilities"] == ["EC2"] and definition["NetworkMode"] == "bridge"
        assert container["Memory"] == config.worker_memory_mib
    else:
        assert not requirements
        assert definition["RequiresCompatibilities"] == ["FARGATE"] and definition["NetworkMode"] == "awsvpc"
        assert (definition["Cpu"], definition["Memory"]) == (
            str(int(config.worker_vcpus * 1024)),
            str(config.worker_memory_mib),
        )
    worker_role = next(
        k
        for k, r in synth.resources(ENV, "compute", "AWS::IAM::Role").items()
        if r["Properties"].get("RoleName") == f"posereel-{ENV}-worker"
    )
    assert definition["TaskRoleArn"] == {"Fn::GetAtt": [worker_role, "Arn"]}
    variables = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert variables["POSEREEL_JOBS_TABLE"] == names.jobs_table
    assets = json.loads((synth.outdir / f"posereel-{ENV}-compute.assets.json").read_text())["dockerImages"]
    dockerfile = f"containers/worker/Dockerfile.{device}"
    (asset_hash,) = [h for h, a in assets.items() if a["source"]["dockerFile"] == dockerfile]
    assert asset_hash in json.dumps(container["Image"])
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", (REPO / dockerfile).read_text(), flags=re.M)
    assert json.loads(entrypoint) == WORKER_ENTRYPOINT


def test_chunk_jobs_run_as_ecs_tasks_with_the_worker_command_and_the_same_fallback(synth):
    _, machine = one(synth.resources(ENV, "pipeline", "AWS::StepFunctions::StateMachine"))
    props = machine["Properties"]
    definition = json.loads(props["DefinitionString"])
    assert set(props["DefinitionSubstitutions"]) == substitution_keys(props["DefinitionString"])
    states = chunk_states(definition)
    gpu, cpu = states["GpuJob"], states["CpuJob"]
    assert gpu["Resource"] == cpu["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    assert gpu["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.gpu_failure", "Next": "CpuJob"}]
    assert gpu["TimeoutSecondsPath"] == cpu["TimeoutSecondsPath"] == "$.task_timeout_s"
    for state, device in ((gpu, "gpu"), (cpu, "cpu")):
        params = state["Parameters"]
        (override,) = params["Overrides"]["ContainerOverrides"]
        assert override["Name"] == "worker"
        args = re.fullmatch(r"States\.Array\((.*)\)", override["Command.$"]).group(1).split(", ")
        bound = {"Ref::job_id": "$.job_id", "Ref::chunk_index": "$.chunk_index", "Ref::bucket": "$.bucket"}
        bound["Ref::device"] = f"'{device}'"
        assert args == [bound.get(word, f"'{word}'") for word in WORKER_COMMAND]
        (strategy,) = params["CapacityProviderStrategy"]
        assert strategy["CapacityProvider"] == f"${{{device.capitalize()}CapacityProvider}}"
        assert state["ResultSelector"]["device"] == device
    assert "NetworkConfiguration" not in gpu["Parameters"]  # bridge mode on the GPU instances
    network = cpu["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "ENABLED"
    subs = props["DefinitionSubstitutions"]
    assert subs["CpuCapacityProvider"] == (
        "FARGATE_SPOT" if synth.configs[ENV].workers.cpu_spot else "FARGATE"
    )
    for key in ("WorkerClusterArn", "GpuTaskDefinitionArn", "CpuTaskDefinitionArn", "GpuCapacityProvider"):
        assert f"posereel-{ENV}-compute:" in json.dumps(subs[key]), key
    assert json.dumps(subs["WorkerSubnetIds"]).startswith('{"Fn::Join": [",", ')


def test_workflow_role_runs_the_worker_tasks_and_nothing_else(synth):
    actions = role_actions(synth.template(ENV, "pipeline"), f"posereel-{ENV}-workflow")
    assert {"ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks", "iam:PassRole", "events:PutRule"} <= set(
        actions
    )
    assert not [a for a in actions if a.startswith(("batch:", "s3:", "dynamodb:Delete", "dynamodb:Scan"))]
    assert [a for a in actions if a.startswith("iam:")] == ["iam:PassRole"]
    (run,) = actions["ecs:RunTask"]
    families = sorted(json.dumps(r).split("task-definition/")[1].split('"')[0] for r in run["Resource"])
    names = ResourceNames(ENV)
    assert families == sorted(f"{f}:*" for f in (names.gpu_job_definition, names.cpu_job_definition))
    assert "ecs:cluster" in run["Condition"]["ArnEquals"]
    (stop,) = actions["ecs:StopTask"]
    assert f":task/posereel-{ENV}-workers/*" in json.dumps(stop["Resource"])
    (passing,) = actions["iam:PassRole"]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert len(passing["Resource"]) == 3  # the worker's task role, the two execution roles
    (events,) = actions["events:PutRule"]
    assert json.dumps(events["Resource"]).endswith(':rule/StepFunctionsGetEventsForECSTaskRule"]]}')


def test_clamav_refresh_runs_on_fargate_in_the_workers_cluster(synth):
    rules = synth.resources(ENV, "pipeline", "AWS::Events::Rule")
    (rule,) = [r for r in rules.values() if r["Properties"].get("Name") == f"posereel-{ENV}-clamav-refresh"]
    (target,) = rule["Properties"]["Targets"]
    assert target["EcsParameters"]["LaunchType"] == "FARGATE"
    assert f"posereel-{ENV}-compute:" in json.dumps(target["Arn"])  # the cluster
    assert "DeadLetterConfig" in target


@pytest.mark.parametrize("queue", ["gpu", "cpu"])
def test_tasks_waiting_for_capacity_raise_an_alarm(synth, queue):
    alarms = synth.resources(ENV, "monitoring", "AWS::CloudWatch::Alarm")
    (alarm,) = [
        a
        for a in alarms.values()
        if a["Properties"]["AlarmName"] == f"posereel-{ENV}-{queue}-tasks-stuck-provisioning"
    ]
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (
        "PoseReel",
        "OldestRunnableAgeSeconds",
        "Maximum",
    )
    assert props["Dimensions"] == [{"Name": "Environment", "Value": ENV}, {"Name": "Queue", "Value": queue}]
    assert props["Threshold"] == synth.configs[ENV].stuck_after_s
    assert "PROVISIONING" in props["AlarmDescription"]
    assert not synth.resources(ENV, "monitoring", "AWS::Logs::MetricFilter")


def test_the_watchdog_watches_the_worker_task_families_of_the_cluster(synth, monkeypatch):
    (fn,) = [
        f
        for f in synth.resources(ENV, "pipeline", "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == ResourceNames(ENV).function("watchdog")
    ]
    for key, value in fn["Properties"]["Environment"]["Variables"].items():
        monkeypatch.setenv(key, value)
    settings = WatchdogSettings()
    assert settings.worker_backend == "ecs"
    families = {
        t["Properties"]["Family"]
        for t in synth.resources(ENV, "compute", "AWS::ECS::TaskDefinition").values()
        if "worker" in t["Properties"]["Family"]
    }
    assert set(settings.queues.values()) == families
    _, cluster = one(synth.resources(ENV, "compute", "AWS::ECS::Cluster"))
    assert settings.worker_cluster == cluster["Properties"]["ClusterName"]


def test_the_watchdog_lists_and_describes_tasks_of_the_workers_cluster_only(synth):
    actions = role_actions(synth.template(ENV, "pipeline"), f"posereel-{ENV}-watchdog-fn")
    assert set(actions) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:SendMessage",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "cloudwatch:PutMetricData",
    }
    (listing,) = actions["ecs:ListTasks"]
    assert listing["Resource"] == "*"  # ListTasks names no container instance: AWS authorizes it on "*"
    (cluster,) = listing["Condition"]["ArnEquals"].values()
    assert f"posereel-{ENV}-compute:" in json.dumps(cluster) and "Cluster" in json.dumps(cluster)
    (describing,) = actions["ecs:DescribeTasks"]
    assert json.dumps(describing["Resource"]).endswith(f':task/posereel-{ENV}-workers/*"]]}}')
    (publishing,) = actions["cloudwatch:PutMetricData"]
    assert publishing["Condition"] == {"StringEquals": {"cloudwatch:namespace": "PoseReel"}}
