"""The AWS adapters the functions use, on moto: what the handler tests do not reach (owner
listings, conditional failures, prefix deletes, downloads by presigned URL, transient errors)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
import requests
from botocore.stub import Stubber

from posereel.aws import JobStore, MediaStore, Workflow
from posereel.errors import ObjectNotFoundError, TransientError
from posereel.jobs import JobError, JobRecord, JobStatus
from tests.functional.events import REGION, RESULTS, TABLE, UPLOADS, PipelineAws, pipeline_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineAws]:
    with pipeline_aws(monkeypatch) as stack:
        yield stack


def job(n: int, owner: str, status: JobStatus = JobStatus.QUEUED) -> JobRecord:
    return JobRecord(job_id=f"{n:032x}", owner=owner, status=status, created_at=f"2026-01-0{n}T00:00:00.000Z")


def test_jobs_are_listed_by_owner_newest_first(aws: PipelineAws) -> None:
    store = JobStore(TABLE)
    for record in (job(1, "ann"), job(2, "bob"), job(3, "ann"), job(4, "ann")):
        assert store.create_if_absent(record)
    assert [r.job_id for r in store.list_by_owner("ann", limit=2)] == [f"{4:032x}", f"{3:032x}"]
    assert store.create_if_absent(job(1, "eve")) is False  # the id is taken


@pytest.mark.parametrize(
    ("status", "changed"),
    [(JobStatus.RUNNING, True), (JobStatus.SUCCEEDED, False), (JobStatus.REJECTED, False)],
)
def test_mark_failed_never_overwrites_an_ended_job(
    aws: PipelineAws, status: JobStatus, changed: bool
) -> None:
    store = JobStore(TABLE)
    store.create_if_absent(job(1, "ann", status))
    error = JobError(code="EXECUTION_ABORTED", message="stopped", stage="ANALYZE")
    assert store.mark_failed(f"{1:032x}", error, finished_at="2026-01-02T00:00:00.000Z") is changed
    record = store.get(f"{1:032x}")
    assert record is not None
    assert (record.status, record.error) == ((JobStatus.FAILED, error) if changed else (status, None))


def test_updates_never_create_a_job(aws: PipelineAws) -> None:
    store = JobStore(TABLE)
    with pytest.raises(ObjectNotFoundError):
        store.set_chunks_total("f" * 32, 3)
    assert store.get("f" * 32) is None


def test_objects_round_trip_and_prefixes_are_deleted(aws: PipelineAws) -> None:
    media = MediaStore()
    for i in range(5):
        media.put_bytes(b"x" * i, RESULTS, f"work/j/chunks/{i:04d}.json", content_type="application/json")
    media.put_bytes(b"keep", RESULTS, "work/k/plan.json", content_type="application/json")
    info = media.head(RESULTS, "work/j/chunks/0003.json")
    assert info is not None and (info.size_bytes, info.content_type) == (3, "application/json")
    assert media.read_bytes(RESULTS, "work/j/chunks/0000.json", length=16) == b""  # empty object, ranged
    assert media.delete_prefix(RESULTS, "work/j/") == 5
    assert aws.keys(RESULTS) == ["work/k/plan.json"]
    with pytest.raises(ObjectNotFoundError):
        media.read_bytes(RESULTS, "work/j/chunks/0000.json")
    assert media.head(RESULTS, "nothing") is None


def test_a_presigned_get_downloads_the_object(aws: PipelineAws) -> None:
    media = MediaStore()
    media.put_bytes(b"reel bytes", RESULTS, "results/j/reel.mp4", content_type="video/mp4")
    url = media.presigned_get(RESULTS, "results/j/reel.mp4", expires_in_s=60)
    response = requests.get(url, timeout=10)
    assert (response.status_code, response.content) == (200, b"reel bytes")


def test_starting_an_execution_twice_is_not_an_error(aws: PipelineAws) -> None:
    workflow = Workflow(aws.state_machine_arn)
    first = workflow.start("a" * 32, {"job_id": "a" * 32})
    again = workflow.start("a" * 32, {"job_id": "a" * 32, "other": "input"})
    assert first == again == workflow.execution_arn("a" * 32)
    assert len(aws.executions()) == 1
    described = workflow.describe(first)
    assert described is not None and described.status in ("RUNNING", "SUCCEEDED")
    assert workflow.describe(workflow.execution_arn("b" * 32)) is None


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("ThrottlingException", 400, True),
        ("SlowDown", 503, True),
        ("InternalError", 500, True),
        ("AccessDenied", 403, False),
    ],
)
def test_throttling_and_server_errors_become_transient(code: str, status: int, transient: bool) -> None:
    client = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("put_object", service_error_code=code, http_status_code=status)
        media = MediaStore(client=client)
        if transient:
            with pytest.raises(TransientError):
                media.put_bytes(b"x", UPLOADS, "k", content_type="video/mp4")
        else:
            with pytest.raises(Exception) as caught:
                media.put_bytes(b"x", UPLOADS, "k", content_type="video/mp4")
            assert not isinstance(caught.value, TransientError)
