"""api handler (API Gateway REST proxy events) on moto, and finalize: files are announced with a
size-limited presigned POST or a multipart upload; every route but /health needs an owner (an API
key's id or a JWT's sub) and sees only that owner's jobs; jobs are listed in pages, read back
reconciled with their executions, give links to their results, and are deleted with their files."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from posereel.jobs import JobRecord, JobResult, JobStatus, Stage
from posereel.schemas import EnergySeries, VideoInfo
from posereel_functions import api, finalize, job_store
from tests.builders import (
    JOB,
    OWNER,
    RESULTS,
    UPLOADS,
    LambdaContext,
    analysis_with_segments,
    api_request,
    execution_status_change,
)
from tests.functional.moto_pipeline import PipelineAws, pipeline_aws

MIB = 1024**2
PART = 5 * MIB  # S3's smallest part (but the last)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineAws]:
    with pipeline_aws(
        monkeypatch, max_upload_bytes=10_000_000, multipart_threshold_bytes=PART, multipart_part_bytes=PART
    ) as stack:
        yield stack


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = api.handler(event, LambdaContext())
    assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
    return response["statusCode"], json.loads(response["body"])


def file(name: str = "a.mp4", size_bytes: int = 1_000, content_type: str = "video/mp4") -> dict[str, Any]:
    return {"filename": name, "size_bytes": size_bytes, "content_type": content_type}


def announce(*files: dict[str, Any], api_key_id: str = OWNER) -> list[dict[str, Any]]:
    status, body = call(api_request("POST", "/uploads", {"files": list(files)}, api_key_id=api_key_id))
    assert status == 201, body
    return list(body["uploads"])


# --- identity and health ----------------------------------------------------------------------


def test_health_needs_no_identity(aws: PipelineAws) -> None:
    status, body = call(api_request("GET", "/health", api_key_id=None))
    assert status == 200 and body["status"] == "ok" and body["version"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/uploads", {"files": [file()]}),
        ("GET", "/jobs", None),
        ("GET", f"/jobs/{JOB}", None),
        ("GET", f"/jobs/{JOB}/results", None),
        ("DELETE", f"/jobs/{JOB}", None),
        ("POST", f"/uploads/{JOB}/complete", {"parts": [{"part_number": 1, "etag": '"e"'}]}),
    ],
)
def test_a_call_without_an_api_key_or_token_is_forbidden(
    aws: PipelineAws, method: str, path: str, body: Any
) -> None:
    status, payload = call(api_request(method, path, body, api_key_id=None))
    assert (status, payload["code"]) == (403, "FORBIDDEN") and payload["message"]
    assert job_store().list_page(OWNER) == ([], None)


def test_a_jwt_subject_owns_the_jobs_it_announces(aws: PipelineAws) -> None:
    event = api_request("POST", "/uploads", {"files": [file()]}, claims={"sub": "user-7"}, api_key_id=None)
    status, body = call(event)
    record = aws.job(body["uploads"][0]["job_id"])
    assert status == 201 and record is not None and record.owner == "user-7"


# --- announcing uploads -----------------------------------------------------------------------


def test_post_uploads_returns_a_presigned_post_limited_to_the_declared_size(aws: PipelineAws) -> None:
    # When
    (upload,) = announce(file("Dance 1.mov", 123_456, "video/quicktime"))
    # Then
    job_id, post = upload["job_id"], upload["post"]
    key = f"uploads/{job_id}/Dance_1.mov"
    assert upload["multipart"] is None and upload["filename"] == "Dance 1.mov" and upload["expires_in_s"] > 0
    assert post["fields"]["key"] == key and post["fields"]["Content-Type"] == "video/quicktime"
    conditions = json.loads(base64.b64decode(post["fields"]["policy"]))["conditions"]
    assert ["content-length-range", 1, 123_456] in conditions
    assert ["eq", "$Content-Type", "video/quicktime"] in conditions
    assert {"key": key} in conditions and {"bucket": UPLOADS} in conditions
    assert post["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    # and the job waits for its upload
    record = aws.job(job_id)
    assert record is not None and (record.status, record.owner) == (JobStatus.AWAITING_UPLOAD, OWNER)


def test_post_uploads_makes_a_job_per_file(aws: PipelineAws) -> None:
    uploads = announce(file("a.mp4"), file("b.mp4"), file("c.mp4"))
    assert [u["filename"] for u in uploads] == ["a.mp4", "b.mp4", "c.mp4"]
    keys = {u["post"]["fields"]["key"] for u in uploads}
    assert keys == {f"uploads/{u['job_id']}/{u['filename']}" for u in uploads}


def files_body(n: int = 1, **changes: Any) -> dict[str, Any]:
    """n good files, the first with ``changes`` (None removes a field)."""
    first = {k: v for k, v in {**file(), **changes}.items() if v is not None}
    return {"files": [first] + [file() for _ in range(n - 1)]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (files_body(size_bytes=0), "files.0.size_bytes"),
        (files_body(content_type="image/png"), "files.0.content_type"),
        (files_body(filename=""), "files.0.filename"),
        (files_body(filename=None), "files.0.filename"),
        (files_body(size_bytes="ten"), "files.0.size_bytes"),
        (files_body(size_bytes="1000"), "files.0.size_bytes"),
        (files_body(size_bytes=True), "files.0.size_bytes"),
        (files_body(filename="a\x00.mp4"), "files.0.filename"),
        (files_body(filename="line\nbreak.mp4"), "files.0.filename"),
        (files_body(content_type="video/html"), "files.0.content_type"),
        (files_body(filename=7), "files.0.filename"),
        (files_body(owner="me"), "files.0.owner"),
        ({**files_body(), "owner": "me"}, "owner"),
        ({"files": []}, "files"),
        (files_body(11), "files"),
        ({"filename": "a.mp4", "size_bytes": 10, "content_type": "video/mp4"}, "files"),
    ],
    ids=[
        "zero-size",
        "not-video",
        "empty-name",
        "no-name",
        "size-not-int",
        "size-a-string-of-digits",
        "size-a-bool",
        "nul-in-name",
        "newline-in-name",
        "video-html",
        "name-a-number",
        "unknown-file-field",
        "unknown-field",
        "no-files",
        "eleven-files",
        "old-single-file-shape",
    ],
)
def test_bad_bodies_get_422_naming_the_field(aws: PipelineAws, body: dict[str, Any], field: str) -> None:
    status, payload = call(api_request("POST", "/uploads", body))
    assert status == 422 and payload["code"] == "INVALID_REQUEST"
    assert field in [f["field"] for f in payload["fields"]] and field in payload["message"]


@pytest.mark.parametrize("depth", [100, 100_000], ids=["100-deep", "100k-deep"])
def test_a_deeply_nested_body_gets_a_4xx_in_the_api_shape(aws: PipelineAws, depth: int) -> None:
    status, payload = call(api_request("POST", "/uploads", "[" * depth + "]" * depth))
    assert (status, payload["code"]) == (422, "INVALID_REQUEST"), payload


def test_an_integer_written_with_a_zero_fraction_is_an_integer(aws: PipelineAws) -> None:
    status, _ = call(api_request("POST", "/uploads", {"files": [file(size_bytes=1000.0)]}))  # type: ignore[arg-type]
    assert status == 201  # JSON Schema's integer: what the OpenAPI document promises


def test_form_data_without_its_boundary_gets_415(aws: PipelineAws) -> None:
    event = api_request("POST", "/uploads", files_body())
    event["headers"] = {"Content-Type": "multipart/form-data"}
    status, payload = call(event)
    assert (status, payload["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_body_that_is_not_utf8_gets_422(aws: PipelineAws) -> None:
    event = api_request("POST", "/uploads", "x")
    event["body"] = base64.b64encode(b"\\\xd9\x9b8\x8f{0").decode()
    event["isBase64Encoded"] = True
    status, payload = call(event)
    assert (status, payload["code"]) == (422, "INVALID_REQUEST")


def test_a_body_that_is_no_json_gets_422(aws: PipelineAws) -> None:
    status, payload = call(api_request("POST", "/uploads", "{not json"))
    assert status == 422 and payload["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain"], ids=["form", "text"]
)
def test_a_json_body_not_labelled_json_gets_415_naming_the_fix(aws: PipelineAws, content_type: str) -> None:
    # Given a good body sent the way `curl -d` sends it (labelled form-urlencoded), or as text
    event = api_request("POST", "/uploads", files_body())
    event["headers"] = {"Content-Type": content_type}
    # Then the caller is told to send JSON, not that every field is missing
    status, payload = call(event)
    assert (status, payload["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in payload["message"]


def test_a_json_body_without_a_content_type_is_read_as_json(aws: PipelineAws) -> None:
    event = api_request("POST", "/uploads", files_body())
    event["headers"] = {}
    status, _ = call(event)
    assert status == 201


def test_one_file_over_the_limit_gets_413_and_no_job(aws: PipelineAws) -> None:
    body = {"files": [file("ok.mp4"), file("big.mp4", 10_000_001)]}
    status, payload = call(api_request("POST", "/uploads", body))
    assert (status, payload["code"]) == (413, "TOO_LARGE")
    assert job_store().list_page(OWNER) == ([], None)


# --- multipart uploads ------------------------------------------------------------------------


def put_part(url: str, data: bytes) -> str:
    """PUT a part to its presigned URL, as the browser does; the ETag S3 answers."""
    response = requests.put(url, data=data, timeout=10)
    assert response.status_code == 200, response.text
    return str(response.headers["ETag"])


def complete(job_id: str, etags: list[str], api_key_id: str = OWNER) -> tuple[int, dict[str, Any]]:
    parts = [{"part_number": n, "etag": etag} for n, etag in enumerate(etags, start=1)]
    return call(api_request("POST", f"/uploads/{job_id}/complete", {"parts": parts}, api_key_id=api_key_id))


def test_a_large_file_goes_up_in_parts_and_completes_into_the_upload(aws: PipelineAws) -> None:
    # Given a file above the threshold announced: one URL per 5 MiB part
    size = PART + 10
    (upload,) = announce(file("big.mp4", size))
    multipart = upload["multipart"]
    assert upload["post"] is None and multipart["part_size_bytes"] == PART
    assert [p["part_number"] for p in multipart["parts"]] == [1, 2]
    # When the parts are PUT to their URLs and the upload completed with their ETags
    data = b"a" * PART + b"b" * 10
    etags = [put_part(p["url"], data[i * PART : (i + 1) * PART]) for i, p in enumerate(multipart["parts"])]
    status, body = complete(upload["job_id"], etags)
    # Then the whole file is the job's upload
    assert status == 200 and body["job_id"] == upload["job_id"]
    assert body["source"] == {"name": "big.mp4", "size_bytes": size, "content_type": "video/mp4"}
    key = f"uploads/{upload['job_id']}/big.mp4"
    s3 = aws.client("s3")
    assert s3.head_object(Bucket=UPLOADS, Key=key)["ContentLength"] == size
    assert s3.get_object(Bucket=UPLOADS, Key=key)["Body"].read() == data


def test_parts_larger_than_announced_get_413_and_no_upload(aws: PipelineAws) -> None:
    # Given a file announced as 5 MiB + 10 bytes whose parts are one byte longer
    (upload,) = announce(file("big.mp4", PART + 10))
    parts = upload["multipart"]["parts"]
    etags = [put_part(parts[0]["url"], b"a" * PART), put_part(parts[1]["url"], b"b" * 11)]
    # When
    status, payload = complete(upload["job_id"], etags)
    # Then nothing was stored and the upload is gone
    assert (status, payload["code"]) == (413, "TOO_LARGE")
    assert aws.keys(UPLOADS) == []
    assert aws.client("s3").list_multipart_uploads(Bucket=UPLOADS).get("Uploads", []) == []


def test_completing_a_small_files_upload_is_a_conflict(aws: PipelineAws) -> None:
    (upload,) = announce(file("small.mp4"))
    status, payload = complete(upload["job_id"], ['"e"'])
    assert (status, payload["code"]) == (409, "CONFLICT")


# --- another owner's jobs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("GET", "/results", None),
        ("DELETE", "", None),
        ("POST", "/complete", {"parts": [{"part_number": 1, "etag": '"e"'}]}),
    ],
    ids=["job", "results", "delete", "complete"],
)
def test_another_owners_job_is_not_found(
    aws: PipelineAws, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    # Given a job of OWNER awaiting a multipart upload
    (upload,) = announce(file("big.mp4", PART + 10))
    job_id = upload["job_id"]
    path = f"/uploads/{job_id}/complete" if suffix == "/complete" else f"/jobs/{job_id}{suffix}"
    # When someone else asks for it
    status, payload = call(api_request(method, path, body, api_key_id="someone-else"))
    # Then it does not exist for them, and is untouched
    assert (status, payload["code"]) == (404, "NOT_FOUND")
    assert aws.job(job_id) is not None


def test_an_unknown_job_gets_404_json(aws: PipelineAws) -> None:
    status, payload = call(api_request("GET", f"/jobs/{JOB}"))
    assert (status, payload["code"]) == (404, "NOT_FOUND") and payload["message"]


@pytest.mark.parametrize("job_id", ["..", "not-a-job-id-because-UPPER", "short"])
def test_a_malformed_job_id_gets_422_naming_it(aws: PipelineAws, job_id: str) -> None:
    status, payload = call(api_request("GET", f"/jobs/{job_id}"))
    assert (status, payload["code"]) == (422, "INVALID_REQUEST")
    assert [f["field"] for f in payload["fields"]] == ["job_id"]


def test_unknown_routes_get_404_json(aws: PipelineAws) -> None:
    status, payload = call(api_request("GET", "/nothing/here"))
    assert (status, payload["code"]) == (404, "NOT_FOUND")


# --- listing jobs -----------------------------------------------------------------------------


def stored_job(n: int, *, owner: str = OWNER, status: JobStatus = JobStatus.QUEUED) -> str:
    job_id = f"{n:032x}"
    record = JobRecord(job_id=job_id, owner=owner, status=status, created_at=f"2026-01-{n:02d}T00:00:00.000Z")
    assert job_store().create_if_absent(record)
    return job_id


def list_pages(query: dict[str, str]) -> list[list[str]]:
    """Every page of GET /jobs with ``query``, following next_cursor: the job ids of each."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while len(pages) < 10:
        status, body = call(
            api_request("GET", "/jobs", query={**query, **({"cursor": cursor} if cursor else {})})
        )
        assert status == 200, body
        pages.append([job["job_id"] for job in body["jobs"]])
        if (cursor := body["next_cursor"]) is None:
            break
    return pages


def test_jobs_are_listed_newest_first_in_pages_each_job_once(aws: PipelineAws) -> None:
    # Given five jobs of the caller and one of someone else
    mine = [stored_job(n) for n in range(1, 6)]
    stored_job(6, owner="someone-else")
    # When they are read two by two
    pages = list_pages({"limit": "2"})
    # Then
    assert pages == [[mine[4], mine[3]], [mine[2], mine[1]], [mine[0]]]


def test_jobs_are_listed_by_status(aws: PipelineAws) -> None:
    # Given failed jobs between others
    statuses = [JobStatus.FAILED, JobStatus.QUEUED, JobStatus.FAILED, JobStatus.RUNNING, JobStatus.FAILED]
    ids = [stored_job(n, status=s) for n, s in enumerate(statuses, start=1)]
    # When only the failed ones are listed, two by two
    pages = list_pages({"status": "FAILED", "limit": "2"})
    # Then every failed job comes once, newest first
    assert [job_id for page in pages for job_id in page] == [ids[4], ids[2], ids[0]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"status": "BOGUS"}, "status"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
    ],
    ids=["limit-0", "limit-101", "unknown-status", "forged-cursor"],
)
def test_bad_list_queries_get_422_naming_the_parameter(
    aws: PipelineAws, query: dict[str, str], field: str
) -> None:
    status, payload = call(api_request("GET", "/jobs", query=query))
    assert (status, payload["code"]) == (422, "INVALID_REQUEST")
    assert [f["field"] for f in payload["fields"]] == [field]


def test_another_owners_cursor_gets_422(aws: PipelineAws) -> None:
    for n in (1, 2):
        stored_job(n, owner="someone-else")
    _, theirs = call(api_request("GET", "/jobs", query={"limit": "1"}, api_key_id="someone-else"))
    assert theirs["next_cursor"]
    status, payload = call(api_request("GET", "/jobs", query={"cursor": theirs["next_cursor"]}))
    assert (status, payload["fields"][0]["field"]) == (422, "cursor")


# --- reading a job ----------------------------------------------------------------------------


def running_job(aws: PipelineAws, *, started: bool = True) -> str:
    """A RUNNING job (analysis under way) with a real execution in moto; returns its ARN."""
    arn = ""
    if started:
        arn = aws.client("stepfunctions").start_execution(stateMachineArn=aws.state_machine_arn, name=JOB)[
            "executionArn"
        ]
    record = JobRecord(
        job_id=JOB,
        owner=OWNER,
        status=JobStatus.RUNNING,
        stage=Stage.ANALYZE,
        execution_arn=arn or None,
        chunks_total=4,
        chunks_done=1,
        stage_started={"VALIDATE": "2026-01-01T00:00:00.000Z", "ANALYZE": "2026-01-01T00:00:10.000Z"},
    )
    assert job_store().create_if_absent(record)
    return arn


def test_get_job_returns_the_record_with_progress(aws: PipelineAws) -> None:
    running_job(aws)
    status, body = call(api_request("GET", f"/jobs/{JOB}"))
    assert status == 200
    assert (body["job_id"], body["status"], body["stage"]) == (JOB, "RUNNING", "ANALYZE")
    assert body["percent"] == 28.8  # validate+scan+plan (10) and 1 of 4 chunks of analyze (75), to 0.1
    assert body["stage_seconds"] == {"VALIDATE": 10.0}


def test_get_job_fails_a_running_job_whose_execution_was_aborted(aws: PipelineAws) -> None:
    # Given a job marked RUNNING whose execution is gone (stopped by an operator)
    arn = running_job(aws)
    aws.client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stuck")
    # When a client polls it
    status, body = call(api_request("GET", f"/jobs/{JOB}"))
    # Then it is FAILED for good, saying why, instead of running forever
    assert status == 200 and body["status"] == "FAILED"
    assert body["error"]["code"] == "EXECUTION_ABORTED" and body["error"]["stage"] == "ANALYZE"
    assert body["finished_at"]
    stored = aws.job()
    assert stored is not None and stored.status == JobStatus.FAILED


# --- results ----------------------------------------------------------------------------------


def finished_job(aws: PipelineAws) -> None:
    """A SUCCEEDED job with result.json (segments at 2-4 s and 10-12 s, reel windows 0.5 s around
    them), reel.mp4 and one thumbnail stored."""
    video = VideoInfo(
        name="a.mp4", duration_s=20.0, fps=30.0, width=320, height=240, codec="h264", has_audio=False
    )
    result, _ = analysis_with_segments(video, [(2.0, 4.0), (10.0, 12.0)])
    energy = EnergySeries(track_id=0, t_s=[i / 10 for i in range(200)], energy=[0.5] * 100 + [None] * 100)
    result = result.model_copy(update={"energy": [energy]})
    s3, prefix = aws.client("s3"), f"results/{JOB}/"
    s3.put_object(Bucket=RESULTS, Key=prefix + "result.json", Body=result.model_dump_json().encode())
    s3.put_object(Bucket=RESULTS, Key=prefix + "reel.mp4", Body=b"reel bytes")
    s3.put_object(Bucket=RESULTS, Key=prefix + "thumbnails/segment_000.jpg", Body=b"jpeg")
    record = JobRecord(
        job_id=JOB,
        owner=OWNER,
        status=JobStatus.SUCCEEDED,
        stage=Stage.DONE,
        result=JobResult(prefix=prefix, segments=2, reel_duration_s=6.0, primary_track_id=0),
    )
    assert job_store().create_if_absent(record)


def test_results_of_a_finished_job_link_its_stored_files(aws: PipelineAws) -> None:
    # Given
    finished_job(aws)
    # When
    status, body = call(api_request("GET", f"/jobs/{JOB}/results"))
    # Then links to exactly the stored files, which download
    assert status == 200 and (body["job_id"], body["reel_duration_s"], body["primary_track_id"]) == (
        JOB,
        6.0,
        0,
    )
    assert set(body["files"]) == {"reel", "result"}
    reel = body["files"]["reel"]
    assert (reel["name"], reel["content_type"], reel["size_bytes"]) == ("reel.mp4", "video/mp4", 10)
    assert requests.get(reel["url"], timeout=10).content == b"reel bytes"
    (thumbnail,) = body["thumbnails"]
    assert thumbnail["segment_index"] == 0 and requests.get(thumbnail["url"], timeout=10).content == b"jpeg"
    # and where each segment plays in the reel: window 0 lasts 3.0 s, segment 1 starts 0.5 s into window 1
    assert [(s["start_s"], s["reel_start_s"]) for s in body["segments"]] == [(2.0, 0.5), (10.0, 3.5)]
    (track,) = body["timeline"]["tracks"]
    assert (track["track_id"], track["primary"], track["dt_s"]) == (0, True, 0.1)
    assert track["energy"] == [0.5] * 100 + [None] * 100


def test_results_of_a_running_job_are_not_ready(aws: PipelineAws) -> None:
    running_job(aws)
    status, payload = call(api_request("GET", f"/jobs/{JOB}/results"))
    assert (status, payload["code"]) == (409, "NOT_READY")


# --- deleting a job ---------------------------------------------------------------------------


def test_deleting_a_running_job_stops_it_and_removes_everything(aws: PipelineAws) -> None:
    # Given a running job with its upload, intermediate files and results
    arn = running_job(aws)
    s3 = aws.client("s3")
    s3.put_object(Bucket=UPLOADS, Key=f"uploads/{JOB}/a.mp4", Body=b"video")
    for key in (f"work/{JOB}/plan.json", f"work/{JOB}/chunks/0000.json", f"results/{JOB}/reel.mp4"):
        s3.put_object(Bucket=RESULTS, Key=key, Body=b"x")
    # When
    response = api.handler(api_request("DELETE", f"/jobs/{JOB}"), LambdaContext())
    # Then
    assert response["statusCode"] == 204 and not response["body"]
    assert aws.keys(UPLOADS) == [] and aws.keys(RESULTS) == [] and aws.job() is None
    assert aws.client("stepfunctions").describe_execution(executionArn=arn)["status"] == "ABORTED"
    # and the job is gone for good
    status, payload = call(api_request("DELETE", f"/jobs/{JOB}"))
    assert (status, payload["code"]) == (404, "NOT_FOUND")
    assert call(api_request("GET", f"/jobs/{JOB}"))[0] == 404


# --- finalize ---------------------------------------------------------------------------------


def test_finalize_fails_the_job_of_a_timed_out_execution(aws: PipelineAws) -> None:
    running_job(aws, started=False)
    event = execution_status_change(JOB, "TIMED_OUT", state_machine_arn=aws.state_machine_arn)
    result = finalize.handler(event, LambdaContext())
    assert result == {"job_id": JOB, "status": "FAILED", "changed": True}
    record = aws.job()
    assert record is not None and record.error is not None and record.error.code == "EXECUTION_TIMED_OUT"
    # A second delivery changes nothing
    assert finalize.handler(event, LambdaContext())["changed"] is False


def test_answers_carry_cors_headers_for_a_web_client_on_another_origin(aws: PipelineAws) -> None:
    event = api_request("GET", "/jobs")
    event["headers"]["Origin"] = "https://d111111abcdef8.cloudfront.net"
    response = api.handler(event, LambdaContext())
    headers = response["multiValueHeaders"]
    assert response["statusCode"] == 200 and headers["Access-Control-Allow-Origin"] == ["*"]
    assert "x-api-key" in headers["Access-Control-Allow-Headers"][0].lower()


@pytest.mark.parametrize(
    ("origin", "allowed"), [("http://localhost:8080", True), ("https://elsewhere.example", False)]
)
def test_only_the_configured_origins_are_allowed(aws: PipelineAws, origin: str, allowed: bool) -> None:
    # Given an environment whose web client lives on two origins
    aws.configure(allowed_origins=["https://a.example", "http://localhost:8080"])
    # When a browser on ``origin`` calls
    event = api_request("GET", "/jobs")
    event["headers"]["Origin"] = origin
    headers = api.handler(event, LambdaContext())["multiValueHeaders"]
    # Then only a configured origin may read the answer
    assert headers.get("Access-Control-Allow-Origin") == ([origin] if allowed else None)
