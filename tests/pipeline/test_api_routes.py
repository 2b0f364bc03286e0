"""Every route of the public API over HTTP against the local stack, as a client uses it: API keys
and owner isolation, validation errors, pagination, uploads refused above their declared size
(form POST and multipart), a real clip through a multipart upload to its results, and deletes
that leave nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import ProxyHandler, Request, build_opener

import pytest

from posereel.jobs import JobStatus
from posereel.settings import JobOptions
from posereel_local.client import ApiClient, ApiError, Upload
from posereel_local.stack import LocalStack
from tests.support import wait_until

pytestmark = pytest.mark.media

CLIP = "sports2d_walk_in_out"  # 13.4 s, 0.8 MB: over the multipart threshold below
MULTIPART_THRESHOLD = 512 * 1024
TIMEOUT_S = 240.0
_opener = build_opener(ProxyHandler({}))


@pytest.fixture(scope="module")
def stack(models_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(
        api_port=0,
        model_dir=models_dir,
        settings={"multipart_threshold_bytes": MULTIPART_THRESHOLD, "chunks": {"chunk_seconds": 8.0}},
    ) as local:
        yield local


@pytest.fixture(scope="module")
def alice(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, api_key=stack.api_key)


@pytest.fixture(scope="module")
def bob(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, api_key=stack.new_api_key("bob"))


def http(
    method: str, url: str, *, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """(status, JSON body or None) of one plain HTTP request, errors included."""
    data = json.dumps(body).encode() if body is not None else None
    request = Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with _opener.open(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except HTTPError as exc:
        status, payload = exc.code, exc.read()
    return status, json.loads(payload) if payload else None


def announce(api: ApiClient, *sizes: int, name: str = "clip.mp4") -> list[dict[str, Any]]:
    files = [{"filename": name, "size_bytes": size, "content_type": "video/mp4"} for size in sizes]
    return list(api._json("POST", "/uploads", {"files": files})["uploads"])


def stored_keys(stack: LocalStack, job_id: str) -> list[str]:
    s3 = stack.client("s3")
    keys = []
    for bucket in (stack.settings.uploads_bucket, stack.settings.results_bucket):
        for prefix in (f"uploads/{job_id}/", f"work/{job_id}/", f"results/{job_id}/"):
            keys += [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return keys


# --- keys and owners --------------------------------------------------------------------------


def test_health_needs_no_key(stack: LocalStack) -> None:
    status, body = http("GET", f"{stack.api_url}/health")
    assert status == 200 and body["status"] == "ok" and body["version"]


@pytest.mark.parametrize("key", [None, "not-a-key"], ids=["no-key", "wrong-key"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs"),
        ("POST", "/uploads"),
        ("GET", "/jobs/0123456789abcdef"),
        ("DELETE", "/jobs/0123456789abcdef"),
    ],
)
def test_every_other_route_needs_a_valid_key(
    stack: LocalStack, key: str | None, method: str, path: str
) -> None:
    headers = {"x-api-key": key} if key else {}
    status, body = http(method, stack.api_url + path, body={} if method == "POST" else None, headers=headers)
    assert (status, body["code"]) == (403, "FORBIDDEN") and "x-api-key" in body["message"]


def test_another_owner_sees_none_of_my_jobs(alice: ApiClient, bob: ApiClient) -> None:
    # Given a job of alice's
    job_id = announce(alice, 1000)[0]["job_id"]
    # Then bob can neither read, list, delete nor complete it, and learns nothing of it
    for call in (
        lambda: bob.get_job(job_id),
        lambda: bob.results(job_id),
        lambda: bob.delete_job(job_id),
        lambda: bob._json(
            "POST", f"/uploads/{job_id}/complete", {"parts": [{"part_number": 1, "etag": "x"}]}
        ),
    ):
        with pytest.raises(ApiError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")
    assert job_id not in [j["job_id"] for j in bob.list_jobs()["jobs"]]
    # and it is still alice's, untouched
    assert alice.get_job(job_id).status == JobStatus.AWAITING_UPLOAD


# --- validation and paging --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/uploads",
            {"files": [{"filename": "a.mp4", "size_bytes": 0, "content_type": "video/mp4"}]},
            "files.0.size_bytes",
        ),
        (
            "POST",
            "/uploads",
            {"files": [{"filename": "a.png", "size_bytes": 9, "content_type": "image/png"}]},
            "files.0.content_type",
        ),
        ("POST", "/uploads", {"files": []}, "files"),
        ("GET", "/jobs?limit=0", None, "limit"),
        ("GET", "/jobs?status=DANCING", None, "status"),
        ("GET", "/jobs?cursor=bm90LWEtY3Vyc29y", None, "cursor"),
    ],
    ids=["zero-size", "not-a-video", "no-files", "limit", "status", "forged-cursor"],
)
def test_bad_requests_get_422_naming_the_field(
    stack: LocalStack, method: str, path: str, body: Any, field: str
) -> None:
    status, answer = http(method, stack.api_url + path, body=body, headers={"x-api-key": stack.api_key})
    assert (status, answer["code"]) == (422, "INVALID_REQUEST")
    assert field in [f["field"] for f in answer["fields"]]


def test_jobs_are_listed_newest_first_in_pages(stack: LocalStack) -> None:
    # Given a fresh owner with five jobs
    carol = ApiClient(stack.api_url, api_key=stack.new_api_key("carol"))
    made = [announce(carol, 1000 + i)[0]["job_id"] for i in range(5)]
    # When they are read two at a time
    seen, cursor, pages = [], None, 0
    while True:
        page = carol.list_jobs(limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [j["job_id"] for j in page["jobs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Then each comes once, newest first
    assert seen == made[::-1] and pages >= 3
    assert carol.list_jobs(status="SUCCEEDED")["jobs"] == []
    assert len(carol.list_jobs(status="AWAITING_UPLOAD", limit=100)["jobs"]) == 5


def test_several_files_get_a_job_each(alice: ApiClient) -> None:
    uploads = announce(alice, 1000, 2000)
    assert len({u["job_id"] for u in uploads}) == 2
    assert all(u["post"] and u["multipart"] is None for u in uploads)


# --- uploads held to their declared size ------------------------------------------------------


def test_a_form_post_larger_than_declared_is_refused(
    stack: LocalStack, alice: ApiClient, tmp_path: Path
) -> None:
    # Given an upload announced at 1000 bytes
    ticket = announce(alice, 1000)[0]
    bigger = tmp_path / "clip.mp4"
    bigger.write_bytes(os.urandom(3000))
    # When 3000 bytes are posted to its form
    with pytest.raises(ApiError) as caught:
        alice.upload_file(Upload.from_ticket(ticket), bigger, content_type="video/mp4")
    # Then S3 refuses it and nothing is stored; the job still waits for its upload
    assert (caught.value.status, caught.value.code) == (400, "EntityTooLarge")
    assert stored_keys(stack, ticket["job_id"]) == []
    assert alice.get_job(ticket["job_id"]).status == JobStatus.AWAITING_UPLOAD


def test_multipart_parts_larger_than_declared_are_refused(
    stack: LocalStack, alice: ApiClient, tmp_path: Path
) -> None:
    # Given a multipart upload announced just over the threshold
    declared = MULTIPART_THRESHOLD + 1
    ticket = announce(alice, declared)[0]
    assert ticket["post"] is None and len(ticket["multipart"]["parts"]) == 1
    # When a bigger part is PUT and the upload completed
    request = Request(
        ticket["multipart"]["parts"][0]["url"],
        data=os.urandom(declared + 5000),
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with _opener.open(request, timeout=30) as response:
        etag = response.headers["ETag"]
    with pytest.raises(ApiError) as caught:
        alice._json(
            "POST", f"/uploads/{ticket['job_id']}/complete", {"parts": [{"part_number": 1, "etag": etag}]}
        )
    # Then it is refused, the upload dropped, and nothing stored
    assert (caught.value.status, caught.value.code) == (413, "TOO_LARGE")
    assert stored_keys(stack, ticket["job_id"]) == []


def test_a_multipart_upload_resumes_after_its_client_restarts(
    stack: LocalStack, alice: ApiClient, clip: Any
) -> None:
    # Given a multipart upload announced by a client that stopped before sending anything
    path = clip(CLIP)
    upload = alice.create_upload(path, content_type="video/mp4")
    assert upload.fields is None and upload.part_urls
    # When a new client asks where it stands and finishes it
    restarted = ApiClient(stack.api_url, api_key=stack.api_key)
    status, progress = http(
        "GET", f"{stack.api_url}/uploads/{upload.job_id}/parts", headers={"x-api-key": stack.api_key}
    )
    assert status == 200 and progress["uploaded"] == []
    assert [p["part_number"] for p in progress["parts"]] == list(range(1, len(upload.part_urls) + 1))
    restarted.resume_upload(upload.job_id, path)
    # Then the job runs to its end as if nothing had happened, and there is nothing left to resume
    record = restarted.wait(upload.job_id, timeout_s=TIMEOUT_S)
    assert record.status == JobStatus.SUCCEEDED, record.error
    with pytest.raises(ApiError) as caught:
        restarted._json("GET", f"/uploads/{upload.job_id}/parts")
    assert caught.value.status == 409


# --- a real clip through a multipart upload, its results, and its delete ----------------------


@pytest.fixture(scope="module")
def finished_job(stack: LocalStack, alice: ApiClient, clip: Any) -> str:
    path = clip(CLIP)
    job_id = alice.submit(path)  # over the threshold: parts and complete, as the web client does
    record = alice.wait(job_id, timeout_s=TIMEOUT_S)
    assert record.status == JobStatus.SUCCEEDED, record.error
    return job_id


def test_results_link_every_file_and_place_segments_in_the_reel(
    alice: ApiClient, finished_job: str, tmp_path: Path
) -> None:
    results = alice.results(finished_job)
    record = alice.get_job(finished_job)
    assert record.result is not None and record.result.segments == len(results["segments"]) >= 1
    files = set(results["files"])
    assert {"reel", "timeline", "tracks", "segments", "metrics", "result", "segments_csv"} <= files
    assert "overlay" not in files  # made only when the upload asks for it
    assert [t["segment_index"] for t in results["thumbnails"]] == [s["index"] for s in results["segments"]]
    # The reel link downloads a video as long as the job says
    reel = tmp_path / "reel.mp4"
    with _opener.open(results["files"]["reel"]["url"], timeout=30) as response:
        reel.write_bytes(response.read())
    assert reel.stat().st_size == results["files"]["reel"]["size_bytes"]
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(reel)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert abs(float(probed.stdout) - results["reel_duration_s"]) < 0.1
    # Every link downloads (the page's links would otherwise replace the page with the file),
    # saved under the video's name
    stem = CLIP  # the uploaded file is CLIP.mp4
    links = [f["url"] for f in results["files"].values()] + [t["url"] for t in results["thumbnails"]]
    for url in links:
        request = Request(url, headers={"Range": "bytes=0-0"})
        with _opener.open(request, timeout=30) as response:
            disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment;") and f'filename="{stem}-' in disposition, disposition
    # Each segment starts inside the reel; the timeline covers the analysed range
    for segment in results["segments"]:
        assert 0 <= segment["reel_start_s"] < results["reel_duration_s"]
    timeline = results["timeline"]
    assert timeline["tracks"] and all(len(t["energy"]) <= 1000 for t in timeline["tracks"])
    assert sum(t["primary"] for t in timeline["tracks"]) == 1


def test_the_choices_an_upload_carries_shape_its_reel(alice: ApiClient, clip: Any) -> None:
    # Given the clip announced with no buffers around the segments
    path = clip(CLIP)
    options = {"buffer_before_s": 0, "buffer_after_s": 0, "min_segment_s": 1.0}
    upload = alice.create_upload(path, content_type="video/mp4", options=options)
    alice.upload_file(upload, path, content_type="video/mp4")
    record = alice.wait(upload.job_id, timeout_s=TIMEOUT_S)
    assert record.status == JobStatus.SUCCEEDED, record.error
    # Then the job shows the choices, and the reel is the segments alone
    assert alice.get_job(upload.job_id).options == JobOptions.model_validate(options)
    results = alice.results(upload.job_id)
    segments = results["segments"]
    assert segments and all(s["end_s"] - s["start_s"] >= 1.0 for s in segments)
    assert results["reel_duration_s"] == pytest.approx(
        sum(s["end_s"] - s["start_s"] for s in segments), abs=0.2
    )


def test_results_of_an_unfinished_job_are_not_ready(alice: ApiClient) -> None:
    job_id = announce(alice, 1000)[0]["job_id"]
    with pytest.raises(ApiError) as caught:
        alice.results(job_id)
    assert (caught.value.status, caught.value.code) == (409, "NOT_READY")


def test_delete_removes_every_object_and_the_record(
    stack: LocalStack, alice: ApiClient, finished_job: str
) -> None:
    # Given a finished job with its accepted upload, chunks and results stored
    keys = stored_keys(stack, finished_job)
    assert not any(k.startswith("uploads/") for k in keys), "scan took the upload out of uploads/"
    assert any(k.startswith(f"work/{finished_job}/source/") for k in keys)
    assert any(k.startswith("results/") for k in keys)
    # When its owner deletes it
    status, body = http(
        "DELETE", f"{stack.api_url}/jobs/{finished_job}", headers={"x-api-key": stack.api_key}
    )
    # Then every object and the record are gone
    assert (status, body) == (204, None)
    assert stored_keys(stack, finished_job) == []
    with pytest.raises(ApiError) as caught:
        alice.get_job(finished_job)
    assert caught.value.status == 404


def chunk_jobs(stack: LocalStack, job_id: str) -> list[dict[str, Any]]:
    batch = stack.client("batch")
    return [
        job
        for queue in stack.resources.job_queues.values()
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
        for job in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        if job_id in job["jobName"]
    ]


def test_deleting_a_running_job_stops_its_execution_and_its_chunk_jobs(
    stack: LocalStack, alice: ApiClient, clip: Any
) -> None:
    # Given a job whose chunks are being analysed
    job_id = alice.submit(clip(CLIP))
    wait_until(
        lambda: any(j["status"] == "RUNNING" for j in chunk_jobs(stack, job_id)),
        what="a chunk job to run",
        timeout_s=TIMEOUT_S,
    )
    sfn = stack.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=stack.settings.state_machine_arn)["executions"]
    arn = next(e["executionArn"] for e in executions if e["name"] == job_id)
    # When it is deleted
    alice.delete_job(job_id)
    # Then its execution is stopped (and stays ABORTED), the job is gone, and its chunk jobs are
    # terminated, as Step Functions does with the job of a stopped .sync task
    wait_until(lambda: sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", what="the abort")
    with pytest.raises(ApiError):
        alice.get_job(job_id)
    wait_until(
        lambda: all(j["status"] in ("SUCCEEDED", "FAILED") for j in chunk_jobs(stack, job_id)),
        what="the chunk jobs to end",
        timeout_s=60,
    )
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_the_openapi_document_is_served_with_the_web_client(stack: LocalStack) -> None:
    if not stack.serves_web:
        pytest.skip("web/ has no index.html")
    with urllib.request.build_opener(ProxyHandler({})).open(f"{stack.api_url}/openapi.json", timeout=30) as r:
        document = json.loads(r.read())
    assert set(document["paths"]) >= {
        "/uploads",
        "/jobs",
        "/jobs/{job_id}",
        "/jobs/{job_id}/results",
        "/health",
    }
