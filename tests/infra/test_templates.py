"""Assertions on the synthesized templates of every environment (see conftest: one synthesis)."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from posereel.resources import (
    FUNCTIONS,
    LAMBDA_PYTHON,
    STAGE_COMMAND,
    STAGE_JOB,
    SUBSTITUTION_KEYS,
    WORKER_COMMAND,
    WORKER_ENTRYPOINT,
    WORKERS,
    ResourceNames,
)
from posereel.settings import PipelineSettings
from posereel_functions.api import openapi_document
from tests.infra.helpers import listed, role_actions, statements

REPO = Path(__file__).resolve().parents[2]
ENVS = sorted(json.loads((REPO / "cdk.json").read_text())["context"]["posereel:environments"])
PARTS = ("web", "storage", "compute", "pipeline", "api", "monitoring")

pytestmark = [pytest.mark.infra, pytest.mark.parametrize("env", ENVS)]


def only(resources: dict[str, Any], **properties: Any) -> tuple[str, dict[str, Any]]:
    """The one resource whose Properties contain these values."""
    found = [
        (logical, r)
        for logical, r in resources.items()
        if all(r.get("Properties", {}).get(k) == v for k, v in properties.items())
    ]
    assert len(found) == 1, f"expected one resource with {properties}, found {[f[0] for f in found]}"
    return found[0]


def bucket(synth, env: str, role: str) -> tuple[str, dict[str, Any]]:
    account = synth.configs[env].account
    return only(
        synth.resources(env, "storage", "AWS::S3::Bucket"),
        BucketName=ResourceNames(env).bucket(role, account=account),
    )


def function(synth, env: str, name: str) -> tuple[str, dict[str, Any]]:
    return only(
        synth.resources(env, "pipeline", "AWS::Lambda::Function"),
        FunctionName=ResourceNames(env).function(name),
    )


def is_web_origin(value: Any, env: str) -> bool:
    """`https://<the distribution's domain>`, imported from the web stack."""
    text = json.dumps(value)
    return (
        text.startswith('{"Fn::Join"')
        and '"https://' in text
        and f"posereel-{env}-web:" in text
        and ("DomainName" in text)
    )


def test_every_stack_is_named_after_its_environment(synth, env):
    assert {f"posereel-{env}-{part}" for part in PARTS} <= set(synth.templates)


# -- storage ------------------------------------------------------------------------------------


def test_uploads_bucket_takes_browser_uploads_and_emits_events(synth, env):
    config = synth.configs[env]
    logical, uploads = bucket(synth, env, "uploads")
    props = uploads["Properties"]
    (cors,) = props["CorsConfiguration"]["CorsRules"]
    assert set(cors["AllowedMethods"]) == {"POST", "PUT"}
    assert "ETag" in cors["ExposedHeaders"]
    # The configured origins and the web client's own (its CloudFront domain, from the web stack).
    *configured, site = cors["AllowedOrigins"]
    assert configured == config.api.allowed_origins
    assert is_web_origin(site, env)
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": config.abort_multipart_days}
    assert rule["ExpirationInDays"] == config.upload_expiry_days
    notifications = synth.resources(env, "storage", "Custom::S3BucketNotifications")
    (notification,) = [n for n in notifications.values() if n["Properties"]["BucketName"] == {"Ref": logical}]
    assert notification["Properties"]["NotificationConfiguration"] == {"EventBridgeConfiguration": {}}


def test_results_bucket_lets_the_web_client_read_the_poses_it_draws(synth, env):
    config = synth.configs[env]
    _, results = bucket(synth, env, "results")
    (cors,) = results["Properties"]["CorsConfiguration"]["CorsRules"]
    assert set(cors["AllowedMethods"]) == {"GET", "HEAD"}  # reads only, never writes
    *configured, site = cors["AllowedOrigins"]
    assert configured == config.api.allowed_origins
    assert is_web_origin(site, env)


@pytest.mark.parametrize("role", ["uploads", "results", "quarantine"])
def test_buckets_are_private_encrypted_logged_and_tls_only(synth, env, role):
    logical, resource = bucket(synth, env, role)
    props = resource["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert props["LoggingConfiguration"]["LogFilePrefix"] == f"{role}/"
    policies = [
        p
        for p in synth.resources(env, "storage", "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical}
    ]
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_only_the_scanner_writes_to_quarantine(synth, env):
    logical, _ = bucket(synth, env, "quarantine")
    policy = next(
        p
        for p in synth.resources(env, "storage", "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical}
    )
    (deny,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "OnlyTheScannerWrites"
    ]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert "s3:PutObject" in deny["Action"]
    allowed = json.dumps(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
    assert f"role/posereel-{env}-scan-fn" in allowed
    assert f"role/posereel-{env}-stage" in allowed  # the scan of a large upload, in the stage job
    assert len(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]) == 2
    # ... and that is the scan function's role.
    roles = synth.resources(env, "pipeline", "AWS::IAM::Role")
    _, scan = function(synth, env, "scan")
    assert (
        roles[scan["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]["RoleName"]
        == f"posereel-{env}-scan-fn"
    )


def test_jobs_table(synth, env):
    config = synth.configs[env]
    _, table = only(
        synth.resources(env, "storage", "AWS::DynamoDB::GlobalTable"), TableName=f"posereel-{env}-jobs"
    )
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    by_owner, awaiting = props["GlobalSecondaryIndexes"]
    assert by_owner["IndexName"] == "by_owner"
    assert by_owner["KeySchema"] == [
        {"AttributeName": "owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    # Sparse: only jobs awaiting their upload carry these, so the watchdog reads just those.
    assert awaiting["IndexName"] == "awaiting_upload"
    assert awaiting["KeySchema"] == [
        {"AttributeName": "awaiting", "KeyType": "HASH"},
        {"AttributeName": "upload_deadline", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (replica,) = props["Replicas"]
    pitr = replica.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled", False)
    assert pitr is config.point_in_time_recovery


# -- functions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_functions_come_from_one_factory_with_their_own_role(synth, env, name):
    _, fn = function(synth, env, name)
    props = fn["Properties"]
    assert props["Timeout"] == FUNCTIONS[name].timeout_s
    assert props["MemorySize"] == FUNCTIONS[name].memory_mb
    assert props["TracingConfig"] == {"Mode": "Active"}
    role = props["Role"]["Fn::GetAtt"][0]
    others = [
        function(synth, env, other)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
        for other in FUNCTIONS
        if other != name
    ]
    assert role not in others
    if FUNCTIONS[name].tools:
        assert props["PackageType"] == "Image"
        assert props["ImageConfig"]["Command"] == [FUNCTIONS[name].handler]
    else:
        assert props["Handler"] == FUNCTIONS[name].handler
        assert props["Runtime"] == f"python{LAMBDA_PYTHON}" == "python3.13"
        assert len(props["Layers"]) == 2  # the shared package and its dependencies


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_settings_read_back_into_pipeline_settings(synth, env, name, monkeypatch):
    _, fn = function(synth, env, name)
    variables = fn["Properties"]["Environment"]["Variables"]
    for key, value in variables.items():
        if isinstance(value, str):  # not the api function's origins, which name the distribution (a token)
            monkeypatch.setenv(key, value)
    settings = PipelineSettings()
    names = ResourceNames(env)
    account = synth.configs[env].account
    assert settings.jobs_table == names.jobs_table
    assert settings.uploads_bucket == names.bucket("uploads", account=account)
    assert settings.state_machine_arn.endswith(f":stateMachine:{names.state_machine}")
    assert settings.chunks.chunk_seconds == synth.configs[env].chunk_seconds
    assert str(settings.runtime.model_dir) == "/opt/models"
    assert variables["POWERTOOLS_SERVICE_NAME"] == names.function(name)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_resolves_in_the_code_asset(synth, env, name):
    _, fn = function(synth, env, name)
    module_name, attr = FUNCTIONS[name].handler.rsplit(".", 1)
    if FUNCTIONS[name].tools:
        asset_root = REPO / "functions"  # the image's code (tests/unit/test_shipped_code.py)
    else:
        asset_hash = fn["Properties"]["Code"]["S3Key"].removesuffix(".zip")
        asset_root = synth.outdir / f"asset.{asset_hash}"
    assert (asset_root / (module_name.replace(".", "/") + ".py")).is_file()
    assert callable(getattr(importlib.import_module(module_name), attr))


HARNESS_IMPORT = re.compile(r"^\s*(from|import)\s+(moto|posereel_local|pytest)\b", re.MULTILINE)


def asset_files(synth, logical: str, resource: dict[str, Any], key: str) -> dict[str, Path]:
    """The files of a resource's code asset, by their path inside it."""
    root = synth.outdir / f"asset.{resource['Properties'][key]['S3Key'].removesuffix('.zip')}"
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert files, f"{logical}: empty asset {root}"
    return files


def test_the_shared_layer_ships_the_domain_package_and_nothing_of_the_tooling(synth, env):
    layers = synth.resources(env, "pipeline", "AWS::Lambda::LayerVersion")
    ((logical, layer),) = [(k, r) for k, r in layers.items() if k.startswith("SharedLayer")]
    files = asset_files(synth, logical, layer, "Content")
    assert all(name.startswith("python/posereel/") and name.endswith(".py") for name in files), sorted(files)
    assert "python/posereel/cli.py" not in files and not any("/local/" in name for name in files)
    harness = sorted(name for name, path in files.items() if HARNESS_IMPORT.search(path.read_text()))
    assert not harness, f"the layer imports the local harness or test tools: {harness}"


def test_the_zip_functions_code_is_the_handlers_alone(synth, env):
    _, fn = function(synth, env, "api")
    files = asset_files(synth, "ApiFunction", fn, "Code")
    assert {name.split("/")[0] for name in files} == {"posereel_functions"}


# -- the workflow --------------------------------------------------------------------------------


def test_state_machine_is_the_workflow_file_with_every_substitution(synth, env):
    machines = synth.resources(env, "pipeline", "AWS::StepFunctions::StateMachine")
    _, machine = only(machines, StateMachineName=ResourceNames(env).state_machine)
    props = machine["Properties"]
    text = (REPO / "statemachine" / "pipeline.asl.json").read_text()
    assert json.loads(props["DefinitionString"]) == json.loads(text)
    used = set(re.findall(r"\$\{(\w+)\}", text))
    assert used == set(SUBSTITUTION_KEYS) == set(props["DefinitionSubstitutions"])
    subs = props["DefinitionSubstitutions"]
    for stage in ("validate", "scan", "plan", "merge", "compile"):
        logical, _ = function(synth, env, stage)
        assert subs[f"{stage.capitalize()}FunctionArn"] == {"Fn::GetAtt": [logical, "Arn"]}
    assert subs["ChunkTimeoutSeconds"] == str(synth.configs[env].chunk_timeout_s)
    assert subs["MaxConcurrency"] == str(synth.configs[env].max_concurrency)
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"


def test_uploads_start_jobs_and_every_ended_execution_is_finalized(synth, env):
    rules = synth.resources(env, "pipeline", "AWS::Events::Rule")
    start_logical, _ = function(synth, env, "start")
    finalize_logical, _ = function(synth, env, "finalize")
    _, uploads = only(rules, Name=f"posereel-{env}-upload-created")
    pattern = uploads["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "uploads/"}]
    (target,) = uploads["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [start_logical, "Arn"]}
    assert "DeadLetterConfig" in target
    _, ended = only(rules, Name=f"posereel-{env}-execution-ended")
    pattern = ended["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "SUCCEEDED", "TIMED_OUT"]
    assert f":stateMachine:posereel-{env}-pipeline" in json.dumps(pattern["detail"]["stateMachineArn"])
    (target,) = ended["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [finalize_logical, "Arn"]}
    assert "DeadLetterConfig" in target


def test_ended_jobs_are_announced_on_the_environments_bus_by_notify_only(synth, env):
    template = synth.template(env, "pipeline")
    (bus_logical, bus), *more = synth.resources(env, "pipeline", "AWS::Events::EventBus").items()
    assert not more and bus["Properties"]["Name"] == f"posereel-{env}-events"
    notify_logical, _ = function(synth, env, "notify")
    notify = role_actions(template, f"posereel-{env}-notify-fn")
    assert set(notify) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:SendMessage",  # its failed runs go to the dead-letter queue
        "events:PutEvents",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    (put,) = notify["events:PutEvents"]
    assert put["Resource"] == {"Fn::GetAtt": [bus_logical, "Arn"]}
    for caller in ("finalize", "watchdog"):
        (invoke,) = role_actions(template, f"posereel-{env}-{caller}-fn")["lambda:InvokeFunction"]
        assert {"Fn::GetAtt": [notify_logical, "Arn"]} in listed(invoke["Resource"])
    others = [
        name
        for name in FUNCTIONS
        if name not in ("notify",)
        and "events:PutEvents" in role_actions(template, f"posereel-{env}-{name}-fn")
    ]
    assert others == []


def test_the_watchdog_runs_every_5_minutes(synth, env):
    rules = synth.resources(env, "pipeline", "AWS::Events::Rule")
    watchdog_logical, _ = function(synth, env, "watchdog")
    _, rule = only(rules, Name=f"posereel-{env}-watchdog")
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert "EventPattern" not in rule["Properties"]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [watchdog_logical, "Arn"]}
    assert "DeadLetterConfig" in target
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 300  # a late tick is worth nothing


def test_the_watchdog_watches_the_batch_queues(synth, env, monkeypatch):
    # Given the watchdog's environment (but for the origins, a token naming the web distribution)
    _, fn = function(synth, env, "watchdog")
    for key, value in fn["Properties"]["Environment"]["Variables"].items():
        if isinstance(value, str):
            monkeypatch.setenv(key, value)
    # Then it reads back into its settings, naming the queues the compute stack creates
    settings = PipelineSettings()
    assert settings.env == env
    queues = synth.resources(env, "compute", "AWS::Batch::JobQueue")
    names = sorted(q["Properties"]["JobQueueName"] for q in queues.values())
    assert sorted(settings.worker_queues.values()) == names
    assert settings.worker_queues == {"gpu": f"posereel-{env}-gpu", "cpu": f"posereel-{env}-cpu"}


def test_the_watchdog_may_list_jobs_publish_its_metrics_and_end_abandoned_uploads_only(synth, env):
    actions = role_actions(synth.template(env, "pipeline"), f"posereel-{env}-watchdog-fn")
    assert set(actions) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:SendMessage",  # its failed runs go to the dead-letter queue
        "batch:ListJobs",
        "cloudwatch:PutMetricData",
        # jobs whose upload never came: the awaiting index, their records and uploads/ prefix;
        # one whose file came without its notification is started
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "s3:GetObject*",
        "s3:GetBucket*",
        "s3:List*",
        "s3:DeleteObject*",
        "s3:AbortMultipartUpload",
        "states:StartExecution",
        "lambda:InvokeFunction",  # an expired upload is announced by the notify function
    }
    (listing,) = actions["batch:ListJobs"]
    assert listing["Resource"] == "*" and "Condition" not in listing  # ListJobs has no resource type
    (publishing,) = actions["cloudwatch:PutMetricData"]
    assert publishing["Resource"] == "*"
    assert publishing["Condition"] == {"StringEquals": {"cloudwatch:namespace": "PoseReel"}}
    (dead_letters,) = actions["sqs:SendMessage"]
    assert "DeadLetters" in json.dumps(dead_letters["Resource"])


def test_clamav_signatures_are_refreshed_on_a_schedule(synth, env):
    rules = synth.resources(env, "pipeline", "AWS::Events::Rule")
    _, rule = only(rules, Name=f"posereel-{env}-clamav-refresh")
    hours = synth.configs[env].clamav_refresh_hours
    count, unit = re.fullmatch(r"rate\((\d+) (\w+?)s?\)", rule["Properties"]["ScheduleExpression"]).groups()
    assert int(count) * {"hour": 1, "day": 24}[unit] == hours
    (target,) = rule["Properties"]["Targets"]
    assert "BatchParameters" in target


# -- Batch ----------------------------------------------------------------------------------------


def test_compute_environments_scale_to_zero_with_configured_gpus(synth, env):
    config = synth.configs[env].workers
    environments = synth.resources(env, "compute", "AWS::Batch::ComputeEnvironment")
    resources = [e["Properties"]["ComputeResources"] for e in environments.values()]
    (gpu,) = [r for r in resources if r["Type"] in ("EC2", "SPOT")]
    (cpu,) = [r for r in resources if r["Type"] in ("FARGATE", "FARGATE_SPOT")]
    assert gpu["Type"] == ("SPOT" if config.gpu_spot else "EC2")
    assert gpu["MinvCpus"] == 0 and gpu["MaxvCpus"] == config.gpu_max_vcpus
    assert sorted(gpu["InstanceTypes"]) == sorted(config.gpu_instance_types)
    assert gpu["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]
    assert cpu["MaxvCpus"] == config.cpu_max_vcpus
    queues = synth.resources(env, "compute", "AWS::Batch::JobQueue")
    names = ResourceNames(env)
    assert {q["Properties"]["JobQueueName"] for q in queues.values()} == {
        names.job_queue("gpu"),
        names.job_queue("cpu"),
    }


@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_job_definitions_run_the_worker_entry_point(synth, env, device):
    names = ResourceNames(env)
    definitions = synth.resources(env, "compute", "AWS::Batch::JobDefinition")
    _, definition = only(definitions, JobDefinitionName=names.job_definition(device))
    container = definition["Properties"]["ContainerProperties"]
    assert container["Command"] == WORKER_COMMAND
    requirements = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
    assert requirements.get("GPU") == ("1" if device == "gpu" else None)
    assert definition["Properties"]["Timeout"] == {
        "AttemptDurationSeconds": synth.configs[env].chunk_timeout_s
    }
    # The image is built from that Dockerfile, whose ENTRYPOINT is the one the local stack prepends.
    assets = json.loads((synth.outdir / f"posereel-{env}-compute.assets.json").read_text())["dockerImages"]
    files = {a["source"]["dockerFile"] for a in assets.values()}
    dockerfile = f"containers/worker/Dockerfile.{device}"
    assert dockerfile in files
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", (REPO / dockerfile).read_text(), flags=re.M)
    assert json.loads(entrypoint) == WORKER_ENTRYPOINT


def test_long_uploads_stages_run_as_a_fargate_stage_job_with_room_for_them(synth, env):
    names = ResourceNames(env)
    definitions = synth.resources(env, "compute", "AWS::Batch::JobDefinition")
    _, definition = only(definitions, JobDefinitionName=names.stage_job_definition)
    props = definition["Properties"]
    assert props["PlatformCapabilities"] == ["FARGATE"]
    assert props["Timeout"] == {"AttemptDurationSeconds": STAGE_JOB.timeout_s}
    assert props["RetryStrategy"]["Attempts"] == STAGE_JOB.attempts
    container = props["ContainerProperties"]
    assert container["Command"] == STAGE_COMMAND
    requirements = {r["Type"]: r["Value"] for r in container["ResourceRequirements"]}
    assert requirements == {"VCPU": str(STAGE_JOB.vcpus), "MEMORY": str(STAGE_JOB.memory_mib)}
    assert container["EphemeralStorage"] == {"SizeInGiB": STAGE_JOB.disk_gib}
    # The CPU worker's image (with clamscan), and the settings every stage reads
    _, cpu = only(definitions, JobDefinitionName=names.job_definition("cpu"))
    assert container["Image"] == cpu["Properties"]["ContainerProperties"]["Image"]
    assert "clamav" in (REPO / WORKERS["cpu"].image).read_text()
    variables = {v["Name"]: v["Value"] for v in container["Environment"]}
    assert variables["POSEREEL_MAX_UPLOAD_BYTES"] == str(synth.configs[env].max_upload_bytes)
    assert "POSEREEL_LAMBDA_VIDEO_MAX_S" in variables and "POSEREEL_LAMBDA_SCAN_MAX_BYTES" in variables


def test_the_stage_job_may_do_what_scan_merge_and_compile_do(synth, env):
    template = synth.template(env, "compute")
    actions = role_actions(template, f"posereel-{env}-stage")
    granted = {action: json.dumps([s["Resource"] for s in found]) for action, found in actions.items()}
    for action in ("s3:GetObject*", "s3:DeleteObject*", "s3:PutObject"):
        assert action in granted, action
    assert "uploads/*" in granted["s3:DeleteObject*"] and "work/*" in granted["s3:DeleteObject*"]
    assert "results/*" in granted["s3:PutObject"] and "Quarantine" in granted["s3:PutObject"]
    assert "clamav/" in granted["s3:GetObject*"]
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert "Jobs" in granted[action]
    assert not {a for a in actions if a.startswith(("states:", "lambda:", "batch:"))}


def test_the_workflow_places_stages_by_the_environments_limits(synth, env):
    # The Lambdas' limits hold what they are given: a 15-minute function, and the thresholds above
    # which the stage job runs instead reach the start and plan functions.
    config = synth.configs[env]
    for name in ("start", "plan"):
        _, fn = function(synth, env, name)
        variables = fn["Properties"]["Environment"]["Variables"]
        assert int(variables["POSEREEL_LAMBDA_SCAN_MAX_BYTES"]) <= 10 * 1024**3
        assert float(variables["POSEREEL_LAMBDA_VIDEO_MAX_S"]) <= 20 * 60
    for name in ("scan", "merge", "compile"):
        _, fn = function(synth, env, name)
        assert fn["Properties"]["Timeout"] <= 900
    # Staging and prod take a whole afternoon: at least 4 hours and 50 GiB
    if env != "dev":
        assert config.max_duration_s >= 4 * 3600 and config.max_upload_bytes >= 50 * 1024**3
    (machine,) = synth.resources(env, "pipeline", "AWS::StepFunctions::StateMachine").values()
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    assert substitutions["StageJobWaitSeconds"] == str(STAGE_JOB.wait_s)
    assert "StageJobDefinition" in json.dumps(substitutions["StageJobDefinitionArn"])


# -- API, alarms, logs ----------------------------------------------------------------------------


# What the api function serves (functions/posereel_functions/api.py: its OpenAPI document, so a
# route added there and not to API Gateway fails here); /health is public.
ROUTES = {
    (method.upper(), path) for path, methods in openapi_document()["paths"].items() for method in methods
}


def api_methods(synth, env: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, resource path) -> the method's properties."""
    resources = synth.resources(env, "api", "AWS::ApiGateway::Resource")

    def path(ref: Any) -> str:
        if "Ref" not in ref:  # Fn::GetAtt [api, RootResourceId]
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    return {
        (m["Properties"]["HttpMethod"], path(m["Properties"]["ResourceId"]) or "/"): m["Properties"]
        for m in synth.resources(env, "api", "AWS::ApiGateway::Method").values()
    }


def test_api_serves_exactly_the_handlers_routes(synth, env):
    methods = api_methods(synth, env)
    assert {key for key in methods if key[0] != "OPTIONS"} == ROUTES
    logical, _ = function(synth, env, "api")
    for key in ROUTES:
        integration = methods[key]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        uri = json.dumps(integration["Uri"])
        assert f"posereel-{env}-pipeline:" in uri and logical in uri  # the api function's ARN, imported
    # A CORS preflight on every path with a route.
    assert {path for method, path in ROUTES} <= {path for method, path in methods if method == "OPTIONS"}


def test_api_authenticates_every_route_but_health(synth, env):
    config = synth.configs[env].api
    methods = api_methods(synth, env)
    health = methods["GET", "/health"]
    assert health["AuthorizationType"] == "NONE" and not health.get("ApiKeyRequired", False)
    for key in ROUTES - {("GET", "/health")}:
        method = methods[key]
        if config.auth == "api_key":
            assert method["ApiKeyRequired"] is True, key
            assert method["AuthorizationType"] == "NONE", key
        else:
            assert method["AuthorizationType"] == "COGNITO_USER_POOLS", key
            assert "AuthorizerId" in method, key
    if config.auth == "api_key":
        (plan,) = synth.resources(env, "api", "AWS::ApiGateway::UsagePlan").values()
        assert plan["Properties"]["Throttle"] == {
            "BurstLimit": config.throttle_burst,
            "RateLimit": config.throttle_rate_per_s,
        }
        assert synth.resources(env, "api", "AWS::ApiGateway::UsagePlanKey")
    else:
        assert synth.resources(env, "api", "AWS::Cognito::UserPool")
        (authorizer,) = synth.resources(env, "api", "AWS::ApiGateway::Authorizer").values()
        assert authorizer["Properties"]["Type"] == "COGNITO_USER_POOLS"


def test_api_is_throttled_per_environment(synth, env):
    config = synth.configs[env].api
    (stage,) = synth.resources(env, "api", "AWS::ApiGateway::Stage").values()
    (settings,) = stage["Properties"]["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == config.throttle_rate_per_s
    assert settings["ThrottlingBurstLimit"] == config.throttle_burst
    assert stage["Properties"]["StageName"] == env


def test_cors_preflight_allows_the_clients_origins_methods_and_headers(synth, env):
    config = synth.configs[env].api
    methods = api_methods(synth, env)
    (response,) = methods["OPTIONS", "/jobs/{job_id}"]["Integration"]["IntegrationResponses"]
    headers = response["ResponseParameters"]
    assert headers["method.response.header.Access-Control-Allow-Methods"] == "'GET,POST,DELETE,OPTIONS'"
    assert (
        headers["method.response.header.Access-Control-Allow-Headers"]
        == "'Content-Type,Authorization,X-Api-Key'"
    )
    # The first origin is the default; the others are echoed back when they match (a template).
    assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{config.allowed_origins[0]}'"
    template = json.dumps(response["ResponseTemplates"])
    assert all(origin in template for origin in config.allowed_origins[1:])
    assert is_web_origin(response["ResponseTemplates"]["application/json"], env)


@pytest.mark.parametrize(
    ("response_type", "status", "code"),
    [
        ("DEFAULT_4XX", None, "INVALID_REQUEST"),
        ("DEFAULT_5XX", None, "INTERNAL"),
        ("MISSING_AUTHENTICATION_TOKEN", "404", "NOT_FOUND"),
        ("INVALID_API_KEY", "403", "FORBIDDEN"),
        ("ACCESS_DENIED", "403", "FORBIDDEN"),
        ("UNAUTHORIZED", "401", "UNAUTHORIZED"),
        ("THROTTLED", "429", "THROTTLED"),
        ("QUOTA_EXCEEDED", "429", "QUOTA_EXCEEDED"),
        ("REQUEST_TOO_LARGE", "413", "TOO_LARGE"),
    ],
)
def test_api_gateways_own_errors_have_the_apis_error_shape(synth, env, response_type, status, code):
    _, response = only(
        synth.resources(env, "api", "AWS::ApiGateway::GatewayResponse"), ResponseType=response_type
    )
    props = response["Properties"]
    assert props.get("StatusCode") == status
    template = props["ResponseTemplates"]["application/json"]
    # $context.error.messageString is API Gateway's message, already a quoted JSON string.
    rendered = json.loads(template.replace("$context.error.messageString", '"Forbidden"'))
    assert rendered == {"code": code, "message": "Forbidden"}
    assert props["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == "'*'"


# -- the web client --------------------------------------------------------------------------------


def test_web_client_is_served_by_cloudfront_from_a_private_bucket(synth, env):
    buckets = synth.resources(env, "web", "AWS::S3::Bucket")
    account = synth.configs[env].account
    site_logical, site = only(buckets, BucketName=f"posereel-{env}-web-{account}")
    assert site["Properties"]["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert site["Properties"]["LoggingConfiguration"]["LogFilePrefix"] == "site/"
    (distribution,) = synth.resources(env, "web", "AWS::CloudFront::Distribution").values()
    config = distribution["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    assert set(behavior["AllowedMethods"]) == {"GET", "HEAD"}
    assert "ResponseHeadersPolicyId" in behavior
    assert config["Logging"]["Prefix"] == "cloudfront/"
    # Origin Access Control (SigV4), and the bucket lets only this distribution read.
    (origin,) = config["Origins"]
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    (oac,) = synth.resources(env, "web", "AWS::CloudFront::OriginAccessControl").values()
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert origin["OriginAccessControlId"] == {
        "Fn::GetAtt": [next(iter(synth.resources(env, "web", "AWS::CloudFront::OriginAccessControl"))), "Id"]
    }
    policy = next(
        p
        for p in synth.resources(env, "web", "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": site_logical}
    )
    (read,) = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert read["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in json.dumps(read["Condition"])


def test_web_client_gets_security_headers(synth, env):
    (policy,) = synth.resources(env, "web", "AWS::CloudFront::ResponseHeadersPolicy").values()
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"]["Override"] is True
    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    region, account = synth.configs[env].region, synth.configs[env].account
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    # The page calls the API and uploads to / downloads from S3 with presigned URLs.
    assert f"https://*.execute-api.{region}.amazonaws.com" in directives["connect-src"]
    assert f"https://posereel-{env}-uploads-{account}.s3.{region}.amazonaws.com" in directives["connect-src"]
    assert f"https://posereel-{env}-results-{account}.s3.amazonaws.com" in directives["media-src"]


def test_web_client_and_its_config_are_published_with_the_api(synth, env):
    (deployment,) = synth.resources(env, "api", "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert f"posereel-{env}-web:" in json.dumps(props["DestinationBucketName"])
    assert f"posereel-{env}-web:" in json.dumps(props["DistributionId"])
    assert props["DistributionPaths"] == ["/*"]
    # Two sources: the web/ folder and the generated config.json, whose api_url is the stage URL.
    asset_source, config_source = props["SourceObjectKeys"]
    asset_dir = synth.outdir / f"asset.{asset_source.removesuffix('.zip')}"
    assert (asset_dir / "index.html").is_file() and (asset_dir / "app.js").is_file()
    assert not (asset_dir / "config.json").exists()  # never the local one
    config_dir = synth.outdir / f"asset.{config_source.removesuffix('.zip')}"
    document = (config_dir / "config.json").read_text()
    # Deploy-time values are markers in the file, each replaced by a JSON string at deploy.
    markers = props["SourceMarkers"][1]
    for marker in markers:
        document = document.replace(marker, json.dumps(marker))
    client_config = json.loads(document)
    assert client_config["auth"] == synth.configs[env].api.auth
    url = json.dumps(markers[client_config["api_url"]])
    assert url.startswith('{"Fn::Join": ["", ["\\"https://')
    assert ".execute-api." in url and "ApiDeploymentStage" in url
    assert url.endswith('}, "\\""]]}')  # the stage name last: no trailing slash
    if client_config["auth"] == "jwt":
        assert set(client_config["cognito"]) == {"region", "user_pool_id", "client_id"}


def test_api_function_knows_the_allowed_origins(synth, env):
    _, fn = function(synth, env, "api")
    origins = fn["Properties"]["Environment"]["Variables"]["POSEREEL_ALLOWED_ORIGINS"]
    text = json.dumps(origins)
    assert all(origin in text for origin in synth.configs[env].api.allowed_origins)
    assert is_web_origin(origins, env)


def test_alarms_cover_failures_dead_letters_and_stuck_batch_jobs(synth, env):
    alarms = synth.resources(env, "monitoring", "AWS::CloudWatch::Alarm")
    names = {a["Properties"]["AlarmName"] for a in alarms.values()}
    assert names == {
        f"posereel-{env}-executions-failed",
        f"posereel-{env}-dead-letters",
        f"posereel-{env}-gpu-jobs-stuck-runnable",
        f"posereel-{env}-cpu-jobs-stuck-runnable",
    }
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())
    # The TaskTimedOut stand-in is gone: the watchdog's metric says it sooner.
    assert not synth.resources(env, "monitoring", "AWS::Logs::MetricFilter")


@pytest.mark.parametrize("queue", ["gpu", "cpu"])
def test_a_job_waiting_for_capacity_too_long_raises_its_queues_alarm(synth, env, queue):
    alarms = synth.resources(env, "monitoring", "AWS::CloudWatch::Alarm")
    _, alarm = only(alarms, AlarmName=f"posereel-{env}-{queue}-jobs-stuck-runnable")
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("PoseReel", "OldestRunnableAgeSeconds")
    assert props["Dimensions"] == [{"Name": "Environment", "Value": env}, {"Name": "Queue", "Value": queue}]
    assert (props["Statistic"], props["Period"], props["EvaluationPeriods"]) == ("Maximum", 300, 1)
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["Threshold"] == synth.configs[env].stuck_after_s
    # The watchdog publishes 0 for an empty queue: no data means no watchdog, not a stuck job.
    assert props["TreatMissingData"] == "notBreaching"
    assert "RUNNABLE" in props["AlarmDescription"]


def test_every_log_group_keeps_logs_as_long_as_the_environment_says(synth, env):
    days = synth.configs[env].log_retention_days
    groups = [g for part in PARTS for g in synth.resources(env, part, "AWS::Logs::LogGroup").values()]
    assert len(groups) >= 8 + 4  # a group per function, workflow, workers, API access, flow logs
    assert {g["Properties"].get("RetentionInDays") for g in groups} == {days}


# -- least privilege ------------------------------------------------------------------------------

# Actions that AWS only authorizes on "*" (no resource-level permissions).
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "batch:DescribeJobs",
    "ecr:GetAuthorizationToken",
    "s3:PutBucketNotification",  # aws-cdk-lib's bucket notifications handler
    # aws-cdk-lib's BucketDeployment handler, which invalidates the web distribution after publishing.
    "cloudfront:CreateInvalidation",
    "cloudfront:GetInvalidation",
    "batch:ListJobs",  # the watchdog
}
# Actions on "*" that must be held in by a condition: the condition key each needs.
STAR_RESOURCE_CONDITIONS = {
    "cloudwatch:PutMetricData": "cloudwatch:namespace",  # the watchdog, PoseReel's namespace only
}


@pytest.mark.parametrize("part", PARTS)
def test_iam_has_no_wildcard_actions_and_star_resources_only_where_aws_requires(synth, env, part):
    for logical, statement in statements(synth.template(env, part)):
        if statement["Effect"] != "Allow":
            continue
        actions = listed(statement["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], f"{logical}: {actions}"
        if "*" in listed(statement.get("Resource")):
            conditioned = set(actions) & set(STAR_RESOURCE_CONDITIONS)
            for action in conditioned:
                keys = {key for test in statement.get("Condition", {}).values() for key in test}
                assert STAR_RESOURCE_CONDITIONS[action] in keys, f"{logical}: {action} on '*' unconditioned"
            assert set(actions) - conditioned <= STAR_RESOURCE_ACTIONS, f"{logical}: {actions} on '*'"


def test_api_function_may_do_what_the_api_does_and_no_more(synth, env):
    actions = role_actions(synth.template(env, "pipeline"), f"posereel-{env}-api-fn")
    assert set(actions) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:ListBucket",
        "states:DescribeExecution",
        "states:StopExecution",
        "lambda:InvokeFunction",  # a re-cut: the recut function's event
    }

    def resources(action: str) -> set[str]:
        return {json.dumps(r) for s in actions[action] for r in listed(s["Resource"])}

    def only_on(action: str, *suffixes: str) -> None:
        found = resources(action)
        assert len(found) == len(suffixes), (action, found)
        for suffix in suffixes:
            assert any(r.endswith(f'{suffix}"]]}}') or r.endswith(f'{suffix}"') for r in found), (
                action,
                suffix,
                found,
            )

    storage = f"posereel-{env}-storage:"
    table = next(iter(resources("dynamodb:GetItem")))
    assert storage in table and "Jobs" in table and "index" not in table
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
        assert resources(action) == {table}
    only_on("dynamodb:Query", "/index/by_owner")
    invoked = resources("lambda:InvokeFunction")
    assert invoked and all("RecutFunction" in r for r in invoked), invoked
    for action in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"):
        only_on(action, "/uploads/*")
        assert "Uploads" in next(iter(resources(action)))
    only_on("s3:GetObject", "/results/*")
    assert "Results" in next(iter(resources("s3:GetObject")))
    deletes = resources("s3:DeleteObject")
    assert len(deletes) == 3
    assert {d.split("/")[-1].split('"')[0] for d in deletes} == {"*"}
    assert sorted(d.rsplit("/", 2)[-2] for d in deletes) == ["results", "uploads", "work"]
    assert all(("Uploads" in d) == d.endswith('/uploads/*"]]}') for d in deletes)  # work/ is in results
    lists = actions["s3:ListBucket"]
    prefixes = {
        ("Uploads" in json.dumps(s["Resource"])): sorted(s["Condition"]["StringLike"]["s3:prefix"])
        for s in lists
    }
    assert prefixes == {True: ["uploads/*"], False: ["results/*", "work/*"]}
    only_on("states:StopExecution", f":execution:posereel-{env}-pipeline:*")
    only_on("states:DescribeExecution", f":execution:posereel-{env}-pipeline:*")
    # Never the quarantine bucket.
    assert "Quarantine" not in json.dumps(actions)


def test_every_stage_that_records_its_usage_may_write_its_job_record(synth, env):
    template = synth.template(env, "pipeline")
    recording = [name for name, spec in FUNCTIONS.items() if spec.usage]
    assert {"scan", "validate", "plan", "merge", "compile", "recut"} <= set(recording)
    for name in recording:
        actions = role_actions(template, f"posereel-{env}-{name}-fn")
        for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
            tables = {json.dumps(r) for s in actions[action] for r in listed(s["Resource"])}
            # The table itself (some stages also read its indexes), and no other table.
            assert all("Jobs" in t for t in tables), (name, action, tables)
            assert any("index" not in t for t in tables), (name, action, tables)


def test_the_price_table_of_each_environment_reaches_its_functions(synth, env, monkeypatch):
    _, fn = function(synth, env, "api")
    for key, value in fn["Properties"]["Environment"]["Variables"].items():
        if isinstance(value, str):
            monkeypatch.setenv(key, value)
    config = synth.configs[env]
    costs = PipelineSettings().costs
    assert costs.gpu_instance_usd_per_h == config.prices.gpu_instance_usd_per_h
    assert costs.fargate_usd_per_vcpu_h == config.prices.fargate_usd_per_vcpu_h
    assert (costs.worker_vcpus, costs.worker_memory_mib) == (
        config.workers.worker_vcpus,
        config.workers.worker_memory_mib,
    )


def test_workflow_role_may_do_what_the_workflow_does_and_no_more(synth, env):
    actions = set(role_actions(synth.template(env, "pipeline"), f"posereel-{env}-workflow"))
    assert {
        "lambda:InvokeFunction",
        "dynamodb:UpdateItem",
        "batch:SubmitJob",
        "batch:DescribeJobs",
        "batch:TerminateJob",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    } <= actions
    assert not {a for a in actions if a.startswith(("s3:", "dynamodb:Delete", "dynamodb:Scan", "iam:"))}
