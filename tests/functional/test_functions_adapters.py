"""The AWS adapters the functions use, on moto: what the handler tests do not reach (owner
listings in pages, conditional failures, prefix deletes, downloads by presigned URL, multipart
uploads, stopping executions, transient errors)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
import requests
from botocore.stub import Stubber

from posereel.aws import JobStore, MediaStore, Workflow
from posereel.aws.mediastore import s3_requests
from posereel.errors import ObjectNotFoundError, TransientError
from posereel.jobs import JobError, JobRecord, JobStatus
from posereel.usage import Platform, StageUse
from tests.builders import REGION, RESULTS, TABLE, UPLOADS
from tests.functional.moto_pipeline import PipelineAws, pipeline_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineAws]:
    with pipeline_aws(monkeypatch) as stack:
        yield stack


def job(n: int, owner: str, status: JobStatus = JobStatus.QUEUED) -> JobRecord:
    return JobRecord(
        job_id=f"{n:032x}", owner=owner, status=status, created_at=f"2026-01-{n:02d}T00:00:00.000Z"
    )


def ids(*numbers: int) -> list[str]:
    return [f"{n:032x}" for n in numbers]


def test_a_page_of_jobs_is_the_owners_newest_first(aws: PipelineAws) -> None:
    store = JobStore(TABLE)
    for record in (job(1, "ann"), job(2, "bob"), job(3, "ann"), job(4, "ann")):
        assert store.create_if_absent(record)
    # When
    page, cursor = store.list_page("ann", limit=2)
    rest, end = store.list_page("ann", limit=2, cursor=cursor)
    # Then
    assert [r.job_id for r in page] == ids(4, 3) and cursor is not None
    assert [r.job_id for r in rest] == ids(1) and end is None
    assert store.create_if_absent(job(1, "eve")) is False  # the id is taken


def test_a_status_filter_carries_on_across_pages(aws: PipelineAws) -> None:
    # Given ann's failed jobs spread between others
    store = JobStore(TABLE)
    failed = {1, 4, 5, 8}
    for n in range(1, 10):
        store.create_if_absent(job(n, "ann", JobStatus.FAILED if n in failed else JobStatus.RUNNING))
    # When the failed ones are read two by two
    seen: list[str] = []
    records, cursor = store.list_page("ann", status="FAILED", limit=2)
    seen += [r.job_id for r in records]
    while cursor is not None and len(seen) < 20:
        assert len(records) <= 2
        records, cursor = store.list_page("ann", status="FAILED", limit=2, cursor=cursor)
        seen += [r.job_id for r in records]
    # Then each comes once, newest first, and nothing else
    assert seen == ids(8, 5, 4, 1)


@pytest.mark.parametrize("forged", [None, "bm90IGEgY3Vyc29y", "%%%"], ids=["bobs", "not-json", "not-base64"])
def test_a_cursor_of_another_owner_or_made_up_is_refused(aws: PipelineAws, forged: str | None) -> None:
    store = JobStore(TABLE)
    for n in (1, 2, 3):
        store.create_if_absent(job(n, "bob"))
    _, bobs = store.list_page("bob", limit=1)
    assert bobs is not None
    with pytest.raises(ValueError):
        store.list_page("ann", cursor=forged or bobs)


def test_deleting_a_job_removes_its_record_and_a_missing_one_is_no_error(aws: PipelineAws) -> None:
    store = JobStore(TABLE)
    store.create_if_absent(job(1, "ann"))
    store.delete(f"{1:032x}")
    store.delete(f"{1:032x}")
    assert store.get(f"{1:032x}") is None and store.list_page("ann") == ([], None)


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


def use(wall_s: float, *, peak_mb: float = 100.0, platform: Platform = Platform.LAMBDA) -> StageUse:
    return StageUse(
        platform=platform, wall_s=wall_s, cpu_s=wall_s / 2, memory_mb=1024, peak_memory_mb=peak_mb, s3_gets=3
    )


def test_usage_adds_up_over_runs_and_a_total_replaces(aws: PipelineAws) -> None:
    # Given a job whose item was stored before usage was kept (no usage attribute at all)
    store = JobStore(TABLE)
    store.create_if_absent(job(1, "o"))
    boto3.client("dynamodb").update_item(
        TableName=TABLE, Key={"job_id": {"S": ids(1)[0]}}, UpdateExpression="REMOVE #u",
        ExpressionAttributeNames={"#u": "usage"},
    )  # fmt: skip
    # When a stage runs twice and the workers' total is stored twice
    assert store.add_usage(ids(1)[0], "SCAN", use(10.0, peak_mb=300))
    assert store.add_usage(ids(1)[0], "SCAN", use(4.0, peak_mb=200))
    worker = use(60.0, platform=Platform.CPU_WORKER)
    for _ in range(2):
        assert store.add_usage(ids(1)[0], "ANALYZE_CPU", worker, replace=True)
    # Then the stage's runs add up (peak: the larger), the total is kept once
    record = store.get(ids(1)[0])
    assert record is not None
    scan = record.usage["SCAN"]
    assert (scan.runs, scan.wall_s, scan.cpu_s, scan.peak_memory_mb, scan.s3_gets) == (2, 14.0, 7.0, 300, 6)
    assert record.usage["ANALYZE_CPU"] == worker
    # And no job, no usage
    assert not store.add_usage(ids(2)[0], "SCAN", use(1.0))
    assert store.get(ids(2)[0]) is None


def test_the_sdk_requests_of_a_media_store_are_counted_by_price_tier(aws: PipelineAws) -> None:
    media = MediaStore()
    gets, puts = s3_requests()
    media.put_bytes(b"abc", RESULTS, "work/j/a.json", content_type="application/json")  # PUT
    media.head(RESULTS, "work/j/a.json")  # HEAD: GET tier
    media.read_bytes(RESULTS, "work/j/a.json")  # GET
    media.list_keys(RESULTS, "work/j/")  # LIST: PUT tier
    media.delete(RESULTS, "work/j/a.json")  # free
    assert (s3_requests()[0] - gets, s3_requests()[1] - puts) == (2, 2)


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
    # Inline unless asked: the page's player may stream it either way
    assert "Content-Disposition" not in response.headers


def test_a_presigned_download_link_answers_as_an_attachment_of_that_name(aws: PipelineAws) -> None:
    media = MediaStore()
    media.put_bytes(b"reel bytes", RESULTS, "results/j/reel.mp4", content_type="video/mp4")
    url = media.presigned_get(RESULTS, "results/j/reel.mp4", expires_in_s=60, download_as="Tänze-reel.mp4")
    response = requests.get(url, timeout=10)
    assert (response.status_code, response.content) == (200, b"reel bytes")
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"T_nze-reel.mp4\"; filename*=UTF-8''T%C3%A4nze-reel.mp4"
    )


def test_starting_an_execution_twice_is_not_an_error(aws: PipelineAws) -> None:
    workflow = Workflow(aws.state_machine_arn)
    first = workflow.start("a" * 32, {"job_id": "a" * 32})
    again = workflow.start("a" * 32, {"job_id": "a" * 32, "other": "input"})
    assert first == again == workflow.execution_arn("a" * 32)
    assert len(aws.executions()) == 1
    described = workflow.describe(first)
    assert described is not None and described.status in ("RUNNING", "SUCCEEDED")
    assert workflow.describe(workflow.execution_arn("b" * 32)) is None


def test_stopping_a_running_execution_aborts_it(aws: PipelineAws) -> None:
    # Given
    workflow = Workflow(aws.state_machine_arn)
    arn = workflow.start("a" * 32, {"job_id": "a" * 32})
    # When
    workflow.stop(arn, cause="deleted by its owner")
    # Then
    described = workflow.describe(arn)
    assert described is not None and described.status == "ABORTED"


def test_stopping_an_execution_that_never_started_is_no_error(aws: PipelineAws) -> None:
    workflow = Workflow(aws.state_machine_arn)
    workflow.stop(workflow.execution_arn("b" * 32), cause="deleted by its owner")
    assert workflow.describe(workflow.execution_arn("b" * 32)) is None


MIB = 1024**2


def test_a_multipart_upload_round_trip(aws: PipelineAws) -> None:
    # Given an upload of two parts (S3's smallest part is 5 MiB, but the last)
    media, s3, key = MediaStore(), aws.client("s3"), "uploads/j/big.mp4"
    upload_id = media.create_multipart(UPLOADS, key, content_type="video/mp4")
    chunks = [b"a" * 5 * MIB, b"b" * 7]
    etags = [
        s3.upload_part(Bucket=UPLOADS, Key=key, UploadId=upload_id, PartNumber=n, Body=data)["ETag"]
        for n, data in enumerate(chunks, start=1)
    ]
    # When
    listed = media.list_parts(UPLOADS, key, upload_id=upload_id)
    media.complete_multipart(UPLOADS, key, upload_id=upload_id, parts=list(enumerate(etags, start=1)))
    # Then
    assert [(p.part_number, p.size_bytes, p.etag) for p in listed] == [
        (1, 5 * MIB, etags[0]),
        (2, 7, etags[1]),
    ]
    info = media.head(UPLOADS, key)
    assert info is not None and (info.size_bytes, info.content_type) == (5 * MIB + 7, "video/mp4")


def test_presigned_part_urls_sign_a_put_of_each_part(aws: PipelineAws) -> None:
    media, key = MediaStore(), "uploads/j/big.mp4"
    upload_id = media.create_multipart(UPLOADS, key, content_type="video/mp4")
    urls = media.presigned_part_urls(UPLOADS, key, upload_id=upload_id, parts=2, expires_in_s=60)
    for number, url in enumerate(urls, start=1):
        assert f"partNumber={number}" in url and f"uploadId={upload_id}" in url
    response = requests.put(urls[0], data=b"part", timeout=10)
    assert response.status_code == 200
    assert [p.size_bytes for p in media.list_parts(UPLOADS, key, upload_id=upload_id)] == [4]


def test_an_aborted_upload_is_gone_and_aborting_again_is_no_error(aws: PipelineAws) -> None:
    media, s3, key = MediaStore(), aws.client("s3"), "uploads/j/big.mp4"
    upload_id = media.create_multipart(UPLOADS, key, content_type="video/mp4")
    s3.upload_part(Bucket=UPLOADS, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part")
    # When
    media.abort_multipart(UPLOADS, key, upload_id=upload_id)
    media.abort_multipart(UPLOADS, key, upload_id=upload_id)
    # Then
    assert s3.list_multipart_uploads(Bucket=UPLOADS).get("Uploads", []) == []
    with pytest.raises(ObjectNotFoundError):
        media.list_parts(UPLOADS, key, upload_id=upload_id)
    assert media.head(UPLOADS, key) is None


def test_a_wrong_part_list_is_refused_as_a_value_error(aws: PipelineAws) -> None:
    media, s3, key = MediaStore(), aws.client("s3"), "uploads/j/big.mp4"
    upload_id = media.create_multipart(UPLOADS, key, content_type="video/mp4")
    s3.upload_part(Bucket=UPLOADS, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part")
    with pytest.raises(ValueError):
        media.complete_multipart(UPLOADS, key, upload_id=upload_id, parts=[(1, '"0000"')])
    assert media.head(UPLOADS, key) is None


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
