"""The embedded local AWS runs real code: Lambda handlers in their own environments, Batch job
commands as parallel processes with a GPU-to-CPU fallback, and a Step Functions workflow file
that uses both, through boto3 alone. The startup check refuses a moto whose internals changed."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote_plus

import pytest

from posereel_local.hooks import MotoInternalsChangedError, check_moto_internals
from posereel_local.hooks.batch_runtime import nvidia_gpu_usable, substitute_refs
from posereel_local.server import LocalAws
from tests.support import wait_until

FIXTURES = Path(__file__).parent / "local_fixtures"
T = TypeVar("T")


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code comes from the local code path")
    return buffer.getvalue()


@dataclass
class Stack:
    """What the module's local AWS holds, by name and ARN."""

    aws: LocalAws
    role: str
    functions: dict[str, str]
    table: str
    queues: dict[str, str]
    job_definitions: dict[str, str]
    record_dir: Path

    def client(self, service: str) -> Any:
        return self.aws.client(service)


JOB_COMMAND = [
    "python",
    str(FIXTURES / "batch_job.py"),
    "--out-dir",
    "Ref::out_dir",
    "--index",
    "Ref::index",
    "--queue",
    "Ref::queue",
    "--greeting",
    "Ref::greeting",
    "--exit-code",
    "Ref::exit_code",
    "--barrier",
    "Ref::barrier",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    record_dir = tmp_path_factory.mktemp("records")
    # gpu_available=False: the same on every machine, GPU or not.
    with LocalAws(gpu_available=False, lambda_code_paths=[FIXTURES]) as aws:
        iam = aws.client("iam")
        role = iam.create_role(RoleName="local-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]

        table = "jobs"
        aws.client("dynamodb").create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        lam = aws.client("lambda")
        specs: dict[str, tuple[str, dict[str, str], int]] = {
            "greet-en": ("local_handlers.greet", {"GREETING": "hello"}, 10),
            "greet-fr": ("local_handlers.greet", {"GREETING": "bonjour"}, 10),
            "greet-none": ("local_handlers.greet", {}, 10),
            "flaky": ("local_handlers.flaky", {}, 10),
            "reject": ("local_handlers.reject", {}, 10),
            "sleepy": ("local_handlers.sleepy", {}, 1),
            "missing": ("no_such_module.handler", {}, 10),
            "read-status": ("local_handlers.read_status", {"TABLE_NAME": table}, 30),
            "record-event": ("local_handlers.record_event", {"RECORD_DIR": str(record_dir)}, 10),
        }
        functions = {
            name: lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=role,
                Handler=handler,
                Code={"ZipFile": _code_zip()},
                Timeout=timeout,
                MemorySize=256,
                Environment={"Variables": env},
            )["FunctionArn"]
            for name, (handler, env, timeout) in specs.items()
        }

        batch = aws.client("batch")
        environment = batch.create_compute_environment(
            computeEnvironmentName="local", type="UNMANAGED", state="ENABLED", serviceRole=role
        )["computeEnvironmentArn"]
        queues = {
            name: batch.create_job_queue(
                jobQueueName=name,
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
            )["jobQueueArn"]
            for name in ("gpu", "cpu")
        }
        resources = [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}]
        job_definitions = {
            name: batch.register_job_definition(
                jobDefinitionName=f"chunk-{name}",
                type="container",
                parameters={"greeting": "hello", "exit_code": "0", "barrier": "1"},
                containerProperties={
                    "image": "posereel-worker:local",
                    "command": JOB_COMMAND,
                    "resourceRequirements": resources + extra,
                    "environment": [{"name": "DEF_ENV", "value": "from-definition"}],
                },
            )["jobDefinitionArn"]
            for name, extra in (("gpu", [{"type": "GPU", "value": "1"}]), ("cpu", []))
        }
        yield Stack(aws, role, functions, table, queues, job_definitions, record_dir)


def _state_machine(stack: Stack) -> str:
    """Create the test workflow from its file, substituting ${Names} the way CDK does."""
    names = {
        "GreetFunction": stack.functions["greet-en"],
        "FlakyFunction": stack.functions["flaky"],
        "RejectFunction": stack.functions["reject"],
        "JobsTable": stack.table,
        "GpuJobQueue": stack.queues["gpu"],
        "CpuJobQueue": stack.queues["cpu"],
        "GpuJobDefinition": stack.job_definitions["gpu"],
        "CpuJobDefinition": stack.job_definitions["cpu"],
    }
    template = (FIXTURES / "workflow.asl.json").read_text()
    definition = re.sub(r"\$\{(\w+)\}", lambda m: names[m.group(1)], template)
    return stack.client("stepfunctions").create_state_machine(
        name="local-hooks-test", definition=definition, roleArn=stack.role
    )["stateMachineArn"]


@dataclass
class Run:
    status: str
    output: dict[str, Any]
    history: list[dict[str, Any]]
    out_dir: Path

    def failed_tasks(self, resource: str) -> list[dict[str, Any]]:
        return [
            e["taskFailedEventDetails"]
            for e in self.history
            if e["type"] == "TaskFailed" and e["taskFailedEventDetails"]["resource"] == resource
        ]


@pytest.fixture(scope="module")
def run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One execution of the test workflow; the tests below each check one part of it."""
    out_dir = tmp_path_factory.mktemp("chunks")
    sfn = stack.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=_state_machine(stack),
        name=f"run-{uuid.uuid4()}",
        input=json.dumps(
            {
                "name": "clip.mp4",
                "job_id": "job-1",
                "out_dir": str(out_dir),
                "chunks": [{"index": i, "exit_code": 1 if i == 2 else 0} for i in range(3)],
            }
        ),
    )["executionArn"]
    described = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
        what="the execution to finish",
        timeout_s=60,
    )
    history = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    return Run(described["status"], json.loads(described.get("output") or "{}"), history, out_dir)


# -- the workflow ---------------------------------------------------------------------------------


def test_workflow_succeeds_with_lambda_and_dynamodb_results(stack: Stack, run: Run) -> None:
    assert run.status == "SUCCEEDED"
    assert run.output["greet"] == {"greeting": "hello, clip.mp4"}
    assert run.output["marked"] == {"status": "RUNNING"}
    item = stack.client("dynamodb").get_item(TableName=stack.table, Key={"pk": {"S": "job-1"}})["Item"]
    assert item["status"] == {"S": "RUNNING"}


def test_gpu_jobs_fail_fast_without_starting_where_no_gpu(run: Run) -> None:
    gpu_failures = [
        json.loads(f["cause"]) for f in run.failed_tasks("submitJob.sync") if "-gpu-" in f["cause"]
    ]
    assert len(gpu_failures) == 3
    for cause in gpu_failures:
        assert cause["Status"] == "FAILED"
        assert "no GPU usable on this machine" in cause["StatusReason"]
        assert not cause.get("Attempts"), "a GPU job must not start a process"
    assert not list(run.out_dir.glob("started-gpu-*"))


def test_cpu_fallback_jobs_run_as_parallel_processes(run: Run) -> None:
    results = run.output["chunk_results"]
    assert [r.get("queue") for r in results[:2]] == ["cpu", "cpu"]
    assert all(r["status"] == "SUCCEEDED" and r["exit_code"] == 0 for r in results[:2])
    records = [json.loads((run.out_dir / f"cpu-{i}.json").read_text()) for i in range(3)]
    pids = {r["pid"] for r in records}
    assert len(pids) == 3 and os.getpid() not in pids
    # Each job waited at a barrier for all three to start, so they overlapped by construction.
    assert max(r["started_at"] for r in records) < min(r["ended_at"] for r in records)


def test_job_gets_ref_parameters_and_merged_environment(stack: Stack, run: Run) -> None:
    record = json.loads((run.out_dir / "cpu-1.json").read_text())
    argv = dict(zip(record["argv"][::2], record["argv"][1::2], strict=True))
    assert argv == {
        "--out-dir": str(run.out_dir),
        "--index": "1",
        "--queue": "cpu",
        "--greeting": "hello",  # the job definition's default, not overridden
        "--exit-code": "0",
        "--barrier": "3",  # the submitted value wins over the default "1"
    }
    env = record["env"]
    assert env["DEF_ENV"] == "from-definition"
    assert env["CHUNK_LABEL"] == "chunk 1"  # ContainerOverrides from the ASL, PascalCase there
    assert env["MANAGED_BY_AWS"] == "STARTED_BY_STEP_FUNCTIONS"
    assert env["AWS_BATCH_JOB_ID"] == run.output["chunk_results"][1]["job_id"]
    assert env["AWS_ENDPOINT_URL"] == stack.aws.endpoint_url


def test_failing_job_fails_its_state_with_exit_code(run: Run) -> None:
    failed = run.output["chunk_results"][2]
    assert failed["failed"] is True
    assert failed["error"] == "States.TaskFailed"
    assert failed["cause"]["Status"] == "FAILED"
    assert failed["cause"]["Container"]["ExitCode"] == 1
    assert failed["cause"]["StatusReason"] == "Essential container in task exited"


def test_named_lambda_errors_are_retried_and_caught(run: Run) -> None:
    failures = run.failed_tasks("invoke")
    assert [f["error"] for f in failures] == ["TransientError", "InputError"]
    assert run.output["flaky"] == {"attempts": 2}
    assert run.output["rejected"]["Error"] == "InputError"
    cause = json.loads(run.output["rejected"]["Cause"])
    assert cause["errorType"] == "InputError"
    assert cause["errorMessage"] == "not a video: clip.mp4"


def test_unnamed_executions_get_distinct_names(stack: Stack) -> None:
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="pass-only",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=stack.role,
    )["stateMachineArn"]
    arns = [sfn.start_execution(stateMachineArn=machine)["executionArn"] for _ in range(2)]
    assert len(set(arns)) == 2
    assert not any(arn.endswith(":None") for arn in arns)


# -- Lambda ---------------------------------------------------------------------------------------


def _invoke(stack: Stack, name: str, payload: dict[str, Any], **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = stack.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload), **kwargs)
    return response, json.loads(response["Payload"].read())


def test_each_function_sees_only_its_own_environment_under_concurrency(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GREETING", "from-the-host")  # must not leak into any function
    calls = ["greet-en", "greet-fr", "greet-none"] * 4
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        results = list(pool.map(lambda name: _invoke(stack, name, {"name": "ana"})[1], calls))
    expected = {"greet-en": "hello", "greet-fr": "bonjour", "greet-none": "<unset>"}
    pids: dict[str, set[int]] = {}
    for name, result in zip(calls, results, strict=True):
        assert result["greeting"] == f"{expected[name]}, ana"  # read at import
        assert result["greeting_env"] == (None if name == "greet-none" else expected[name])
        assert result["function_name"] == name
        assert result["invoked_function_arn"] == stack.functions[name]
        assert result["memory_limit_in_mb"] == 256
        assert 0 < result["remaining_ms"] <= 10_000
        assert result["endpoint"] == stack.aws.endpoint_url
        pids.setdefault(name, set()).add(result["pid"])
    assert not pids["greet-en"] & pids["greet-fr"], "two functions shared a process"


def test_a_burst_leaves_at_most_two_warm_workers_of_the_function(stack: Stack) -> None:
    runner = stack.aws.hooks.lambda_runner
    before = runner.workers()
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: _invoke(stack, "sleepy", {"seconds": 0.3})[0], range(12)))
    assert runner.in_flight() == 0 and not any(a.get("FunctionError") for a in answers)
    # several processes served the burst; at most two stay warm for it, the rest were stopped
    assert runner.workers() <= before + 2


def test_sequential_calls_reuse_a_warm_worker(stack: Stack) -> None:
    first = _invoke(stack, "greet-en", {"name": "a"})[1]
    second = _invoke(stack, "greet-en", {"name": "b"})[1]
    assert first["pid"] == second["pid"]
    assert first["aws_request_id"] != second["aws_request_id"]


def test_handler_exception_is_a_function_error_named_by_its_class(stack: Stack) -> None:
    response, payload = _invoke(stack, "reject", {"name": "notes.txt"})
    assert response["FunctionError"]
    assert payload["errorType"] == "InputError"
    assert payload["errorMessage"] == "not a video: notes.txt"


def test_handler_over_its_timeout_is_stopped_and_the_next_call_works(stack: Stack) -> None:
    started = time.monotonic()
    response, payload = _invoke(stack, "sleepy", {"seconds": 30})
    assert time.monotonic() - started < 15
    assert response["FunctionError"]
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out" in payload["errorMessage"]
    response, payload = _invoke(stack, "sleepy", {"seconds": 0})
    assert "FunctionError" not in response
    assert payload == {"slept": 0}


def test_unimportable_handler_is_an_import_error(stack: Stack) -> None:
    response, payload = _invoke(stack, "missing", {})
    assert response["FunctionError"]
    assert payload["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module" in payload["errorMessage"]


def test_handler_output_is_in_the_log_tail_and_cloudwatch(stack: Stack) -> None:
    response, _ = _invoke(stack, "greet-en", {"name": "logs"}, LogType="Tail")
    assert "greeting logs" in base64.b64decode(response["LogResult"]).decode()
    logs = stack.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/greet-en")["logStreams"]
    messages = [
        e["message"]
        for s in streams
        for e in logs.get_log_events(logGroupName="/aws/lambda/greet-en", logStreamName=s["logStreamName"])[
            "events"
        ]
    ]
    assert "greeting logs" in messages


def test_handler_reaches_the_local_aws_through_the_sdk(stack: Stack) -> None:
    stack.client("dynamodb").put_item(
        TableName=stack.table, Item={"pk": {"S": "job-sdk"}, "status": {"S": "QUEUED"}}
    )
    response, payload = _invoke(stack, "read-status", {"job_id": "job-sdk"})
    assert "FunctionError" not in response, payload
    assert payload == {"status": "QUEUED"}


def test_s3_notification_invokes_the_handler(stack: Stack) -> None:
    s3 = stack.client("s3")
    s3.create_bucket(Bucket="uploads")
    s3.put_bucket_notification_configuration(
        Bucket="uploads",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": stack.functions["record-event"], "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    s3.put_object(Bucket="uploads", Key="in/clip one.mp4", Body=b"not really a video")
    recorded = wait_until(lambda: list(stack.record_dir.glob("*.json")), what="the S3-triggered handler")
    event = json.loads(recorded[0].read_text())
    # Keys arrive URL-encoded (moto encodes "/" too); readers must unquote_plus them.
    assert unquote_plus(event["Records"][0]["s3"]["object"]["key"]) == "in/clip one.mp4"


# -- Batch ----------------------------------------------------------------------------------------


def _submit(stack: Stack, command: list[str], **kwargs: Any) -> str:
    batch = stack.client("batch")
    return batch.submit_job(
        jobName=f"direct-{uuid.uuid4().hex[:8]}",
        jobQueue=stack.queues["cpu"],
        jobDefinition=stack.job_definitions["cpu"],
        containerOverrides={"command": command, "environment": [{"name": "CHUNK_LABEL", "value": "x"}]},
        **kwargs,
    )["jobId"]


def _job(stack: Stack, job_id: str) -> dict[str, Any]:
    return stack.client("batch").describe_jobs(jobs=[job_id])["jobs"][0]


def _stopped(stack: Stack, job_id: str) -> dict[str, Any]:
    return wait_until(
        lambda: (j := _job(stack, job_id))["status"] in {"SUCCEEDED", "FAILED"} and j,
        what=f"job {job_id} to stop",
    )


SLEEPER = ["python", "-c", "import os, sys, time; print(os.getpid(), flush=True); time.sleep(60)"]


def test_terminate_job_kills_the_process(stack: Stack) -> None:
    job_id = _submit(stack, SLEEPER)
    wait_until(lambda: _job(stack, job_id)["status"] == "RUNNING", what="the job to run")
    stack.client("batch").terminate_job(jobId=job_id, reason="cancelled by the user")
    job = _stopped(stack, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "cancelled by the user"
    assert job["container"]["exitCode"] == 128 + 15  # SIGTERM, as a container reports it


def test_attempt_duration_timeout_fails_the_job(stack: Stack) -> None:
    job_id = _submit(stack, SLEEPER, timeout={"attemptDurationSeconds": 1})
    job = _stopped(stack, job_id)
    assert job["status"] == "FAILED"
    assert job["statusReason"] == "Job attempt duration exceeded timeout"


def test_job_output_goes_to_cloudwatch_and_describe_is_stable(stack: Stack) -> None:
    job_id = _submit(stack, ["python", "-c", "print('hello from the job')"])
    job = _stopped(stack, job_id)
    assert job["status"] == "SUCCEEDED"
    events = stack.client("logs").get_log_events(
        logGroupName="/aws/batch/job", logStreamName=job["container"]["logStreamName"]
    )["events"]
    assert [e["message"] for e in events] == ["hello from the job"]
    # moto used to append AWS_BATCH_JOB_ID to the environment on every describe (.sync polls).
    sizes = {len(_job(stack, job_id)["container"]["environment"]) for _ in range(3)}
    assert len(sizes) == 1


def test_gpu_job_runs_where_a_gpu_is_usable(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack.aws.hooks.batch_runner, "gpu_available", True)
    job_id = stack.client("batch").submit_job(
        jobName="gpu-direct",
        jobQueue=stack.queues["gpu"],
        jobDefinition=stack.job_definitions["gpu"],
        containerOverrides={"command": ["python", "-c", "print('on the GPU queue')"]},
    )["jobId"]
    assert _stopped(stack, job_id)["status"] == "SUCCEEDED"


@pytest.mark.parametrize(
    ("command", "parameters", "expected"),
    [
        (["--out", "Ref::out"], {"out": "/tmp/x"}, ["--out", "/tmp/x"]),
        (["Ref::a-Ref::b"], {"a": "1", "b": "2"}, ["1-2"]),
        (["Ref::missing"], {"a": "1"}, ["Ref::missing"]),
        (["Ref::ab"], {"a": "1"}, ["Ref::ab"]),
        (["Ref::a-b"], {"a": "1", "a-b": "x"}, ["x"]),
        (["--n", "Ref::n"], {"n": 3}, ["--n", "3"]),
    ],
    ids=["whole-part", "two-in-one-part", "unknown-left", "no-prefix-match", "longest-name", "non-string"],
)
def test_substitute_refs(command: list[str], parameters: dict[str, Any], expected: list[str]) -> None:
    assert substitute_refs(command, parameters) == expected


@pytest.mark.parametrize(
    ("script", "usable"),
    [
        ("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-0)'\n", True),
        ("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n", False),
        (None, False),
    ],
    ids=["lists-a-gpu", "driver-error", "not-installed"],
)
def test_gpu_check_uses_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str | None, usable: bool
) -> None:
    if script is not None:
        fake = tmp_path / "nvidia-smi"
        fake.write_text(script)
        fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert nvidia_gpu_usable() is usable


# -- the startup check ----------------------------------------------------------------------------


def test_a_second_local_aws_is_refused_and_the_first_keeps_working(stack: Stack) -> None:
    with pytest.raises(RuntimeError, match="already runs"):
        LocalAws().start()
    assert stack.client("dynamodb").describe_table(TableName=stack.table)["Table"]["TableName"] == stack.table


def test_startup_check_accepts_the_pinned_moto() -> None:
    check_moto_internals()


def _changed(self: Any, something_else: Any) -> None:
    """A stand-in with a different signature, as a moto upgrade might bring."""


@pytest.mark.parametrize(
    ("module", "owner", "name"),
    [
        ("moto.awslambda.models", "LambdaFunction", "_invoke_lambda"),
        ("moto.batch.models", "Job", "run"),
        ("moto.batch.models", "Job", "_mark_stopped"),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService",
            "_normalise_parameters",
        ),
        (
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
            "StateTaskService",
            "_normalise_response",
        ),
    ],
)
def test_startup_check_refuses_a_changed_signature(
    monkeypatch: pytest.MonkeyPatch, module: str, owner: str, name: str
) -> None:
    cls = getattr(__import__(module, fromlist=[owner]), owner)
    monkeypatch.setattr(cls, name, _changed)
    with pytest.raises(MotoInternalsChangedError, match=rf"{owner}\.{name} takes \(self, something_else\)"):
        check_moto_internals()


def test_startup_check_refuses_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(MotoInternalsChangedError, match=re.escape("'5.3.0', expected '5.2.5'")):
        check_moto_internals()


# --- process groups ------------------------------------------------------------------------------


def test_a_process_group_is_signalled_only_while_its_leader_is_not_reaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Process ids wrap within minutes of a burst (pid_max 32768 here): once a worker is reaped
    # its id may lead a new process's group, which a late kill must not hit.
    import signal
    import subprocess

    from posereel_local.hooks import common

    proc = subprocess.Popen(["true"], start_new_session=True)
    wait_until(lambda: common.has_exited(proc), what="the process to end")
    # Ended but not reaped: its id is still its own, so its group may be signalled
    assert proc.returncode is None
    signalled: list[int] = []
    monkeypatch.setattr(common.os, "killpg", lambda pgid, sig: signalled.append(pgid))
    common.kill_group(proc, signal.SIGKILL)
    assert signalled == [proc.pid]
    # Reaped: the id is free for anyone, nothing is signalled any more
    assert proc.wait() == 0
    common.kill_group(proc, signal.SIGKILL)
    assert signalled == [proc.pid]
