"""The workflow file obeys the rules the pipeline relies on: the same substitution keys as
posereel.resources, a timeout on every task, the agreed Retry/Catch on every Lambda task, small
state payloads, and a rejection parser that only parses what the handler boundary writes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posereel.errors import MalwareError
from posereel.observability import error_payload
from posereel.pipeline.events import SourceRef, WorkflowInput
from posereel.resources import FUNCTIONS, STAGE_COMMAND, SUBSTITUTION_KEYS
from posereel_local.stack import render_definition

DEFINITION = Path(__file__).resolve().parents[2] / "statemachine" / "pipeline.asl.json"
LAMBDA_RETRY_ERRORS = [
    "TransientError",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
LAMBDA_TASKS = {
    "Validate": "validate",
    "Scan": "scan",
    "Plan": "plan",
    "Merge": "merge",
    "Compile": "compile",
}


@pytest.fixture(scope="module")
def text() -> str:
    return DEFINITION.read_text()


@pytest.fixture(scope="module")
def workflow(text: str) -> dict[str, Any]:
    return json.loads(text)


def all_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        if state["Type"] == "Map":
            yield from all_states(state["ItemProcessor"]["States"])


def test_placeholders_are_exactly_the_substitution_keys(text: str) -> None:
    assert set(re.findall(r"\$\{(\w+)\}", text)) == set(SUBSTITUTION_KEYS)


def test_every_state_is_reachable_and_every_next_exists(workflow: dict[str, Any]) -> None:
    def check(machine: dict[str, Any]) -> None:
        states = machine["States"]
        targets = {machine["StartAt"]}
        for state in states.values():
            targets.update(t for t in [state.get("Next"), state.get("Default")] if t)
            targets.update(c["Next"] for c in state.get("Choices", []) + state.get("Catch", []))
            if state["Type"] == "Map":
                check(state["ItemProcessor"])
        assert targets <= set(states), f"unknown targets: {targets - set(states)}"
        assert set(states) <= targets, f"unreachable: {set(states) - targets}"

    check(workflow)


def test_every_task_has_a_timeout_and_the_workflow_one_too(workflow: dict[str, Any]) -> None:
    assert workflow["TimeoutSeconds"] > 0
    tasks = [(n, s) for n, s in all_states(workflow["States"]) if s["Type"] == "Task"]
    assert tasks
    for name, state in tasks:
        assert "TimeoutSeconds" in state or "TimeoutSecondsPath" in state, name


@pytest.mark.parametrize(("state_name", "function"), LAMBDA_TASKS.items())
def test_lambda_tasks_retry_transient_errors_and_catch_rejections_then_everything(
    workflow: dict[str, Any], state_name: str, function: str
) -> None:
    state = workflow["States"][state_name]
    assert state["Parameters"]["FunctionName"] == f"${{{function.capitalize()}FunctionArn}}"
    [retry] = state["Retry"]
    assert retry["ErrorEquals"] == LAMBDA_RETRY_ERRORS
    assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 2
    assert [c["ErrorEquals"] for c in state["Catch"]] == [["InputError"], ["States.ALL"]]
    assert [c["Next"] for c in state["Catch"]] == ["ReadRejection", "ReadFailure"]
    # The state waits longer than the function may run, so the function's own timeout wins.
    assert state["TimeoutSeconds"] > FUNCTIONS[function].timeout_s
    # Only ids and keys travel: a task's result is dropped or cut down to named fields.
    assert state["ResultPath"] is None or "ResultSelector" in state


def test_stages_are_marked_in_order(workflow: dict[str, Any]) -> None:
    states = workflow["States"]
    order, name = [], workflow["StartAt"]
    while name in states and states[name]["Type"] not in ("Succeed", "Fail"):
        order.append(name)
        state = states[name]
        name = state["Default"] if state["Type"] == "Choice" else state["Next"]
    assert order == [
        "Configure", "OpenRecord",
        "MarkScanning", "PlaceScan", "Scan", "MarkValidating", "Validate", "MarkPlanning", "Plan",
        "MarkAnalyzing", "Analyze", "MarkMerging", "PlaceMerge", "Merge",
        "MarkCompiling", "PlaceCompile", "Compile", "MarkSucceeded",
    ]  # fmt: skip
    for marker in [n for n in order if n.startswith("Mark") and n != "MarkSucceeded"]:
        update = states[marker]["Parameters"]
        assert "stage_started.#stage_name = :now" in update["UpdateExpression"]
        assert "NOT (#status IN (:succeeded, :failed, :rejected))" in update["ConditionExpression"]


def test_chunks_run_on_the_gpu_then_the_cpu_queue_and_are_counted_once(workflow: dict[str, Any]) -> None:
    analyze = workflow["States"]["Analyze"]
    assert analyze["ItemsPath"] == "$.plan.chunks"
    assert analyze["ResultPath"] is None, "the Map's output (job descriptions) must not grow the state"
    inner = analyze["ItemProcessor"]["States"]
    gpu, cpu, done = inner["GpuJob"], inner["CpuJob"], inner["ChunkDone"]
    assert gpu["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.gpu_failure", "Next": "CpuJob"}]
    for state, device in ((gpu, "gpu"), (cpu, "cpu")):
        assert state["Resource"] == "arn:aws:states:::batch:submitJob.sync"
        assert state["Parameters"]["Parameters"]["device"] == device
        assert state["Parameters"]["JobQueue"] == f"${{{device.capitalize()}JobQueueArn}}"
        assert set(state["ResultSelector"]) == {"batch_job_id.$", "device"}
    assert cpu["Retry"] and "Retry" not in gpu
    assert "ADD chunks_done :one" in done["Parameters"]["UpdateExpression"]
    assert "attribute_not_exists(devices.#chunk)" in done["Parameters"]["ConditionExpression"]


def test_terminal_states_record_the_outcome_without_overwriting_one(workflow: dict[str, Any]) -> None:
    states = workflow["States"]
    for name, status in (
        ("RecordRejected", ":rejected"),
        ("RecordFailed", ":failed"),
        ("MarkSucceeded", ":succeeded"),
    ):
        update = states[name]["Parameters"]
        assert f"#status = {status}" in update["UpdateExpression"]
        assert "finished_at = :now" in update["UpdateExpression"]
        assert "#status" in update["ConditionExpression"]
    for name in ("RecordRejected", "RecordFailed"):
        assert "error_stage = #stage" in states[name]["Parameters"]["UpdateExpression"]
    assert states["RecordRejected"]["Next"] == "Rejected" and states["Rejected"]["Type"] == "Succeed"
    assert states["RecordFailed"]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"


def _asl_matches(pattern: str, value: str) -> bool:
    """Step Functions' StringMatches, for patterns without escaped stars: "*" matches any run."""
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), value, re.DOTALL) is not None


@pytest.mark.parametrize(
    "message",
    ["plain", 'with "quotes", commas: and {braces}', "ünïcode ✓ and \\ backslashes", ""],
)
def test_the_rejection_parser_recognises_every_boundary_message(
    workflow: dict[str, Any], message: str
) -> None:
    """The parse (an intrinsic that cannot be caught when it fails) runs only on this shape."""
    [pattern] = [
        c["StringMatches"] for c in workflow["States"]["ReadLambdaError"]["Choices"] if "StringMatches" in c
    ]
    payload = error_payload(MalwareError(message))
    assert _asl_matches(pattern, payload)
    assert json.loads(payload) == {"code": "MALWARE", "message": message}
    assert not _asl_matches(pattern, "{this is not json}")


def test_render_definition_fills_every_key_and_refuses_a_missing_one(text: str) -> None:
    values = {key: f"value-of-{key}" for key in SUBSTITUTION_KEYS}
    values["ChunkTimeoutSeconds"], values["MaxConcurrency"] = "900", "4"
    rendered = json.loads(render_definition(text, values))
    assert rendered["States"]["Validate"]["Parameters"]["FunctionName"] == "value-of-ValidateFunctionArn"
    with pytest.raises(ValueError, match="MaxConcurrency"):
        render_definition(text, {**values, "MaxConcurrency": ""})
    assert render_definition('{"a": "${Key}"}', {"Key": 'say "hi"\\'}) == '{"a": "say \\"hi\\"\\\\"}'


@pytest.mark.parametrize(
    ("choice", "stage", "variable"),
    [
        ("PlaceScan", "scan", "$.placement.scan"),
        ("PlaceMerge", "merge", "$.plan.placement.merge"),
        ("PlaceCompile", "compile", "$.plan.placement.compile"),
    ],
)
def test_a_long_uploads_stage_runs_as_a_stage_job_first_then_in_its_lambda(
    workflow: dict[str, Any], choice: str, stage: str, variable: str
) -> None:
    states = workflow["States"]
    place = states[choice]
    assert LAMBDA_TASKS[place["Default"]] == stage
    # The placement the start function (scan) or the plan (merge, compile) made; an execution
    # started before placements existed has none and runs every stage in its Lambda.
    (rule,) = place["Choices"]
    assert rule["And"] == [
        {"Variable": variable, "IsPresent": True},
        {"Variable": variable, "StringEquals": "container"},
    ]
    assert WorkflowInput(job_id="j", source=SourceRef(bucket="b", key="k")).model_dump()["placement"]
    assert states["Plan"]["ResultSelector"]["placement.$"] == "$.Payload.placement"
    assert states["Plan"]["ResultPath"] == "$.plan"
    # The job: the stage command's parameters, on the CPU queue, waited for with a limit; any
    # failure of it fails the job, and its outcome is the Lambda's to hand on
    job = states[rule["Next"]]
    assert job["Resource"] == "arn:aws:states:::batch:submitJob.sync"
    assert job["Parameters"]["JobDefinition"] == "${StageJobDefinitionArn}"
    assert job["Parameters"]["JobQueue"] == "${CpuJobQueueArn}"
    parameters = job["Parameters"]["Parameters"]
    refs = {part.removeprefix("Ref::") for part in STAGE_COMMAND if part.startswith("Ref::")}
    assert {name.removesuffix(".$") for name in parameters} == refs
    assert parameters["stage"] == stage
    assert job["TimeoutSecondsPath"] == "$.limits.stage_job_wait_s"
    assert job["ResultPath"] is None and job["Next"] == place["Default"]
    assert job["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "ReadFailure"}]
