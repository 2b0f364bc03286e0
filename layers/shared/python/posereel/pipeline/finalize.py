"""Reconcile a job with its workflow execution, so that no job stays running forever.

The workflow writes a job's terminal status itself, but an execution that times out, is aborted
or fails outside its Catch (a failing dynamodb:updateItem, a States.Runtime error) never does.
``reconcile_job`` marks such a job FAILED with code EXECUTION_{STATUS}. It runs when a client
reads a job (api) and on EventBridge "Step Functions Execution Status Change" events (finalize).

``finalize_execution`` also hands every job that has ended, however it ended, to the notify
function (posereel.pipeline.notify), which tells its owner.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from posereel.jobs import JobError, JobRecord, JobStatus, is_job_id, utc_now
from posereel.pipeline.causes import readable_cause
from posereel.pipeline.events import ExecutionStatusEvent, FinalizeResult, NotifyEvent
from posereel.pipeline.ports import ExecutionInfo, FunctionsPort, JobStorePort, WorkflowPort

log = logging.getLogger(__name__)

ENDED_BADLY = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


def execution_error(record: JobRecord, execution: ExecutionInfo) -> JobError:
    _, cause = readable_cause(execution.cause)
    detail = ": ".join(part for part in (execution.error, cause) if part)
    message = f"the workflow execution ended {execution.status}" + (f" ({detail})" if detail else "")
    return JobError(code=f"EXECUTION_{execution.status}", message=message, stage=record.stage.value)


def reconcile_job(
    record: JobRecord,
    *,
    jobs: JobStorePort,
    workflow: WorkflowPort,
    execution: ExecutionInfo | None = None,
) -> JobRecord:
    """The record, marked FAILED when it is not terminal but its execution ended badly.

    ``execution``: what is known already (from an event); otherwise the execution is described
    (by the recorded ARN, or the one named by the job id). Returns the record as stored after."""
    if record.status.terminal or record.status == JobStatus.AWAITING_UPLOAD:
        return record
    if execution is None:
        arn = record.execution_arn or workflow.execution_arn(record.job_id)
        execution = workflow.describe(arn)
    if execution is None or execution.status not in ENDED_BADLY:
        return record
    error = execution_error(record, execution)
    if jobs.mark_failed(record.job_id, error, finished_at=execution.stopped_at or utc_now()):
        log.warning("job %s: %s", record.job_id, error.message)
    return jobs.get(record.job_id) or record


def finalize_execution(
    event: ExecutionStatusEvent,
    *,
    jobs: JobStorePort,
    workflow: WorkflowPort,
    functions: FunctionsPort,
    notify_function: str,
) -> FinalizeResult:
    """Reconcile the job of an execution that changed status (executions are named by job id),
    then, when the job has ended, have ``notify_function`` announce it."""
    detail = event.detail
    job_id = detail.name if is_job_id(detail.name) else None
    if job_id is None:
        log.info("ignoring execution %s: its name is no job id", detail.execution_arn)
        return FinalizeResult(job_id=None, status=None, changed=False)
    record = jobs.get(job_id)
    if record is None:
        log.info("ignoring execution %s: job %s has no record", detail.execution_arn, job_id)
        return FinalizeResult(job_id=job_id, status=None, changed=False)
    stopped = (
        datetime.fromtimestamp(detail.stop_date / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
        if detail.stop_date
        else None
    )
    execution = ExecutionInfo(
        arn=detail.execution_arn,
        status=detail.status,
        error=detail.error,
        cause=detail.cause,
        stopped_at=stopped,
    )
    after = reconcile_job(record, jobs=jobs, workflow=workflow, execution=execution)
    if after.status.terminal:
        functions.invoke_async(notify_function, NotifyEvent(job_id=job_id).model_dump(mode="json"))
    return FinalizeResult(job_id=job_id, status=after.status.value, changed=after.status != record.status)
