"""The whole pipeline on the local stack, driven as a user drives it: a real clip goes in through
the HTTP API and the presigned form POST, the upload notification starts the workflow, Lambda
handlers and Batch worker processes run the real code, and the results come back from S3.
Bad uploads end REJECTED with their own code, and nothing is left running."""

from __future__ import annotations

import json
import subprocess
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote_plus

import pytest

from posereel import engine
from posereel.aws.jobstore import JobStore
from posereel.jobs import STAGE_ORDER, JobStatus, Stage, results_prefix, upload_key
from posereel.pipeline.api import JobView
from posereel.pipeline.files import chunk_key, plan_key
from posereel.resources import FUNCTIONS
from posereel.settings import AnalysisSettings, ChunkSettings, RuntimeSettings
from posereel_local.client import ApiClient, ApiError
from posereel_local.run import RunOutcome, run_video
from posereel_local.stack import EICAR, LocalStack
from tests.support import wait_until

pytestmark = pytest.mark.media

T = TypeVar("T")

CLIP = "sports2d_walk_in_out"  # 13.4 s, one person: the fastest clip with a clear segment
CHUNK_S = 8.0  # two chunks for the clip
OVERLAP_S = 2.0
MAX_DURATION_S = 15.0  # the clip passes; hybrik_taiji (17.2 s) is over-long
TIMEOUT_S = 240.0
STAGE_INDEX = {stage: index for index, stage in enumerate(STAGE_ORDER)}


@pytest.fixture(scope="module")
def stack(models_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(
        api_port=0,
        model_dir=models_dir,
        settings={
            "chunks": {"chunk_seconds": CHUNK_S, "overlap_seconds": OVERLAP_S},
            "max_duration_s": MAX_DURATION_S,
        },
    ) as local:
        yield local


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, api_key=stack.api_key)


@dataclass(frozen=True)
class Finished:
    """A job that ended, with its workflow execution."""

    record: JobView
    execution: dict[str, Any]
    history: list[dict[str, Any]]

    def entered(self) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e
        ]


def wait_in_table(stack: LocalStack, job_id: str) -> JobView:
    """A job that no API key owns (its file went straight into the bucket), once it ended."""
    store = JobStore(stack.settings.jobs_table, client=stack.client("dynamodb"))
    record = wait_until(
        lambda: (r := store.get(job_id)) is not None and r.status.terminal and r,
        what=f"job {job_id} to end",
        timeout_s=TIMEOUT_S,
    )
    return JobView.of(record, costs=stack.settings.costs)


def finished(stack: LocalStack, record: JobView) -> Finished:
    """The job's execution once it has stopped (the record can end a moment before it)."""
    stored = JobStore(stack.settings.jobs_table, client=stack.client("dynamodb")).get(record.job_id)
    arn = stored.execution_arn if stored is not None else None
    assert arn, f"job {record.job_id} has no execution"
    sfn = stack.client("stepfunctions")
    execution = wait_until(
        lambda: (d := sfn.describe_execution(executionArn=arn))["status"] != "RUNNING" and d,
        what=f"the execution of job {record.job_id} to stop",
    )
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return Finished(record, execution, history)


@pytest.fixture(scope="module")
def walk(
    stack: LocalStack, clip: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> RunOutcome:
    """The clip through ``posereel run``'s code path, asking for the overlay video (off by
    default); the tests below check one part each."""
    return run_video(
        stack, clip(CLIP), tmp_path_factory.mktemp("walk"), timeout_s=TIMEOUT_S, options={"overlay": True}
    )


@pytest.fixture(scope="module")
def walk_execution(stack: LocalStack, walk: RunOutcome) -> Finished:
    return finished(stack, walk.record)


# -- a real clip, end to end --------------------------------------------------------------------


@pytest.mark.slow
def test_job_succeeds_with_every_stage_timed(walk: RunOutcome) -> None:
    record = walk.record
    assert record.status == JobStatus.SUCCEEDED, record.error
    assert record.stage == Stage.DONE
    assert record.percent == 100.0
    assert record.chunks_total == 2
    assert record.chunks_done == record.chunks_total
    assert list(record.stage_seconds) == ["SCAN", "VALIDATE", "PLAN", "ANALYZE", "MERGE", "COMPILE"]
    assert record.finished_at is not None
    assert record.result is not None and record.result.segments >= 1
    assert walk.exit_code == 0


@pytest.mark.slow
def test_the_job_says_what_each_stage_used_and_what_it_cost(
    walk: RunOutcome, walk_execution: Finished
) -> None:
    record = walk.record
    # Every stage recorded its run; the chunk workers' together, on the device they ran on
    workers = {f"ANALYZE_{device.upper()}" for device in record.devices.values()}
    assert set(record.usage) == {"SCAN", "VALIDATE", "PLAN", "MERGE", "COMPILE"} | workers
    assert sum(record.usage[key].runs for key in workers) == record.chunks_total
    for key, use in record.usage.items():
        assert use.wall_s > 0 and use.peak_memory_mb > 0 and use.s3_gets > 0, (key, use)
    assert record.usage["COMPILE"].memory_mb == FUNCTIONS["compile"].memory_mb
    assert record.usage["COMPILE"].cpu_s > 0  # ffmpeg's encode counts, though a child process
    # And the estimate prices them, with the workflow's transitions as the execution made them
    assert record.cost is not None and record.cost.total_usd > 0
    assert record.cost.transitions == len(walk_execution.entered())
    assert record.cost.per_video_minute_usd is not None


@pytest.mark.slow
def test_the_bytes_each_stage_read_are_told_apart(
    stack: LocalStack, walk: RunOutcome, clip: Callable[[str], Path]
) -> None:
    # Every request names its job and stage in its User-Agent: the SDK's and ffmpeg's alike.
    # (How much each reads of a long source is make bench-long's to measure: on a clip this
    # short the socket buffers hold all of it, so any range read may be sent the whole rest.)
    size = clip(CLIP).stat().st_size
    assert stack.aws.s3_reads is not None
    read = stack.aws.s3_reads.of_job(walk.record.job_id)
    chunks = {f"ANALYZE/{index}" for index in range(walk.record.chunks_total)}
    assert set(read) == {"SCAN", "VALIDATE", "PLAN", "MERGE", "COMPILE"} | chunks, read
    assert size <= read["SCAN"] < 1.01 * size  # every byte, once (the copy into work/ is in S3)
    assert all(n > 0 for n in read.values()), read


@pytest.mark.slow
def test_execution_runs_every_state_of_the_workflow(walk_execution: Finished) -> None:
    assert walk_execution.execution["status"] == "SUCCEEDED"
    entered = walk_execution.entered()
    for state in ("Validate", "Scan", "Plan", "Analyze", "Merge", "Compile", "MarkSucceeded", "Succeeded"):
        assert state in entered, f"{state} never ran: {entered}"
    assert entered.count("ChunkDone") == 2
    assert not {"RecordFailed", "RecordRejected"} & set(entered)


@pytest.mark.slow
def test_each_chunk_runs_on_the_gpu_queue_or_falls_back_to_the_cpu(
    stack: LocalStack, walk: RunOutcome, walk_execution: Finished
) -> None:
    batch = stack.client("batch")
    jobs = {
        j["jobName"]: j
        for queue in stack.resources.job_queues.values()
        for status in ("SUCCEEDED", "FAILED")
        for j in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        if walk.record.job_id in j["jobName"]
    }
    described = {
        j["jobName"]: j for j in batch.describe_jobs(jobs=[j["jobId"] for j in jobs.values()])["jobs"]
    }
    if stack.aws.hooks.batch_runner.gpu_available:
        pytest.skip("this machine has a GPU: the CPU fallback is covered where there is none")
    for index in ("0", "1"):
        gpu = described[f"posereel-{walk.record.job_id}-{index}-gpu"]
        cpu = described[f"posereel-{walk.record.job_id}-{index}-cpu"]
        assert gpu["status"] == "FAILED"
        assert "no GPU usable" in gpu["statusReason"]
        assert cpu["status"] == "SUCCEEDED"
        assert cpu["container"]["exitCode"] == 0
    assert walk.record.devices == {"0": "cpu", "1": "cpu"}
    assert walk_execution.entered().count("CpuJob") == 2


@pytest.mark.slow
def test_results_are_in_s3_and_downloaded(stack: LocalStack, walk: RunOutcome) -> None:
    record = walk.record
    assert record.result is not None and walk.out_dir is not None
    s3 = stack.client("s3")
    bucket = stack.settings.results_bucket
    prefix = results_prefix(record.job_id)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    keys = {o["Key"].removeprefix(prefix) for o in listed}
    for name in ("reel.mp4", "overlay.mp4", "result.json", "tracks.json", "segments.json", "timeline.png"):
        assert name in keys
    assert {p.relative_to(walk.out_dir).as_posix() for p in walk.files} == keys
    # And "download all" is one zip of every other file, in a folder named after the video
    with zipfile.ZipFile(walk.out_dir / "results.zip") as bundle:
        inside = set(bundle.namelist())
        assert bundle.testzip() is None
    folder = next(iter(inside)).split("/", 1)[0]
    assert folder.endswith("-results")
    assert {name.removeprefix(folder + "/") for name in inside} == keys - {"results.zip"}
    # The intermediates stay under work/: the plan and one result per chunk.
    for key in (plan_key(record.job_id), chunk_key(record.job_id, 0), chunk_key(record.job_id, 1)):
        s3.head_object(Bucket=bucket, Key=key)
    reel = walk.out_dir / "reel.mp4"
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(reel)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(probed.stdout) == pytest.approx(record.result.reel_duration_s, abs=0.2)


@pytest.mark.slow
def test_segments_equal_the_engine_on_the_same_chunks(
    walk: RunOutcome, clip: Callable[[str], Path], models_dir: Path, tmp_path: Path
) -> None:
    assert walk.out_dir is not None
    pipeline = json.loads((walk.out_dir / "result.json").read_text())["segments"]
    settings = AnalysisSettings(chunks=ChunkSettings(chunk_seconds=CHUNK_S, overlap_seconds=OVERLAP_S))
    local, _ = engine.analyze_video(
        clip(CLIP),
        tmp_path,
        settings=settings,
        runtime=RuntimeSettings(model_dir=models_dir),
        workers=2,
    )
    assert len(pipeline) == len(local.segments) >= 1
    for ours, theirs in zip(pipeline, local.segments, strict=True):
        assert ours["start_s"] == pytest.approx(theirs.start_s, abs=0.3)
        assert ours["end_s"] == pytest.approx(theirs.end_s, abs=0.3)


# -- rejected uploads ---------------------------------------------------------------------------


def submit_and_wait(api: ApiClient, path: Path) -> JobView:
    job_id = api.submit(path)
    return api.wait(job_id, timeout_s=TIMEOUT_S, poll_s=0.2)


def assert_rejected(stack: LocalStack, record: JobView, code: str, stage: Stage) -> Finished:
    assert record.status == JobStatus.REJECTED, record
    assert record.error is not None
    assert (record.error.code, record.error.stage) == (code, stage.value)
    assert record.finished_at is not None
    done = finished(stack, record)
    # A rejection is a handled outcome: the execution succeeds, through RecordRejected.
    assert done.execution["status"] == "SUCCEEDED"
    assert "RecordRejected" in done.entered()
    assert "Analyze" not in done.entered(), "a rejected upload must never reach the workers"
    return done


def _quarantined(stack: LocalStack, job_id: str) -> list[str]:
    listing = stack.client("s3").list_objects_v2(
        Bucket=stack.settings.quarantine_bucket, Prefix=f"quarantine/{job_id}/"
    )
    return [o["Key"] for o in listing.get("Contents", [])]


def _job_objects(stack: LocalStack, job_id: str) -> list[str]:
    """Every object of the job outside quarantine: its upload, work files and results."""
    s3, settings = stack.client("s3"), stack.settings
    return [
        f"{bucket}/{o['Key']}"
        for bucket, prefix in (
            (settings.uploads_bucket, f"uploads/{job_id}/"),
            (settings.results_bucket, f"work/{job_id}/"),
            (settings.results_bucket, f"results/{job_id}/"),
        )
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    ]


def test_infected_upload_is_rejected_and_quarantined(
    stack: LocalStack, api: ApiClient, clip: Callable[[str], Path], tmp_path: Path
) -> None:
    # A real video (so it would pass validation) that carries the EICAR test string.
    infected = tmp_path / "infected.mp4"
    infected.write_bytes(clip(CLIP).read_bytes() + EICAR)
    record = submit_and_wait(api, infected)
    assert_rejected(stack, record, "MALWARE", Stage.SCAN)
    assert record.error is not None and "EICAR" in record.error.message
    assert _job_objects(stack, record.job_id) == []
    assert _quarantined(stack, record.job_id) == [f"quarantine/{record.job_id}/infected.mp4"]


def test_the_eicar_file_alone_is_scanned_before_anything_parses_it(
    stack: LocalStack, api: ApiClient, tmp_path: Path
) -> None:
    # Not a video at all: the scan, which comes first, must still see it (not "NOT_A_VIDEO").
    alone = tmp_path / "eicar.mp4"
    alone.write_bytes(EICAR)
    record = submit_and_wait(api, alone)
    assert_rejected(stack, record, "MALWARE", Stage.SCAN)
    assert _job_objects(stack, record.job_id) == []
    assert _quarantined(stack, record.job_id) == [f"quarantine/{record.job_id}/eicar.mp4"]


def test_a_form_posted_again_after_acceptance_changes_nothing_that_is_analysed(
    stack: LocalStack, api: ApiClient, clip: Callable[[str], Path], tmp_path: Path
) -> None:
    # Given a short clean clip, and a longer one carrying the EICAR string for the second post
    clean = tmp_path / "clip.mp4"
    cut = ["ffmpeg", "-v", "error", "-y", "-i", str(clip(CLIP)), "-t", "2.5", "-c", "copy", str(clean)]
    subprocess.run(cut, check=True)
    swapped = tmp_path / "swapped.mp4"
    swapped.write_bytes(clip(CLIP).read_bytes() + EICAR)
    # When the form (valid for minutes) is used for the clean clip, then again once it was accepted
    upload = api.create_upload(clean, content_type="video/mp4", size_bytes=swapped.stat().st_size)
    api.upload_file(upload, clean, content_type="video/mp4")
    wait_until(
        lambda: (
            (view := api.get_job(upload.job_id)).status.terminal
            or STAGE_INDEX[view.stage] > STAGE_INDEX[Stage.SCAN]
        ),
        what="the scan to accept the clean clip",
        timeout_s=TIMEOUT_S,
    )
    api.upload_file(upload, swapped, content_type="video/mp4")
    record = api.wait(upload.job_id, timeout_s=TIMEOUT_S, poll_s=0.2)
    # Then the clean clip is what was analysed, the second file is gone and nothing was quarantined
    assert record.status == JobStatus.SUCCEEDED, record
    s3 = stack.client("s3")
    plan = json.loads(
        s3.get_object(Bucket=stack.settings.results_bucket, Key=plan_key(upload.job_id))["Body"].read()
    )
    assert plan["video"]["duration_s"] == pytest.approx(2.5, abs=0.2)
    uploads = stack.settings.uploads_bucket
    wait_until(
        lambda: s3.list_objects_v2(Bucket=uploads, Prefix=f"uploads/{upload.job_id}/")["KeyCount"] == 0,
        what="the second post to be deleted",
    )
    assert _quarantined(stack, upload.job_id) == []


def _text(path: Path) -> None:
    path.write_text("Meeting notes, not a video at all.\n" * 20)


def _truncated(path: Path, source: Path) -> None:
    path.write_bytes(source.read_bytes()[:300_000])


def _audio_only(path: Path) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=3",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda p, src: _text(p), "NOT_A_VIDEO"),
        (_truncated, "UNREADABLE"),
        (lambda p, src: _audio_only(p), "NO_VIDEO_STREAM"),
        (lambda p, src: p.write_bytes(src.read_bytes()), "TOO_LONG"),
    ],
    ids=["text-renamed-mp4", "truncated-mp4", "audio-only", "over-long"],
)
def test_unusable_upload_is_rejected_with_its_code(
    stack: LocalStack,
    api: ApiClient,
    clip: Callable[[str], Path],
    tmp_path: Path,
    make: Callable[[Path, Path], None],
    code: str,
) -> None:
    upload = tmp_path / "upload.mp4"
    make(upload, clip("hybrik_taiji"))  # 17.2 s: over this stack's limit of 15 s
    record = submit_and_wait(api, upload)
    assert_rejected(stack, record, code, Stage.VALIDATE)


def test_zero_byte_upload_is_refused_by_the_api_and_rejected_by_the_pipeline(
    stack: LocalStack, api: ApiClient, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ApiError) as refused:
        api.submit(empty)
    assert refused.value.status == 422
    # A client that skips the API (or a form without the length condition) still gets no further.
    job_id = uuid.uuid4().hex
    stack.client("s3").put_object(
        Bucket=stack.settings.uploads_bucket, Key=upload_key(job_id, "empty.mp4"), Body=b""
    )
    record = wait_in_table(stack, job_id)
    assert_rejected(stack, record, "EMPTY_FILE", Stage.SCAN)
    assert (
        stack.client("s3")
        .list_objects_v2(Bucket=stack.settings.uploads_bucket, Prefix=f"uploads/{job_id}/")
        .get("KeyCount")
        == 0
    ), "a rejected upload is deleted at once"


# -- deletes that win ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_clip(clip: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2.5 s of the clip: one chunk, so each stage is short and the job quick."""
    out = tmp_path_factory.mktemp("short") / "short.mp4"
    cut = ["ffmpeg", "-v", "error", "-y", "-i", str(clip(CLIP)), "-t", "2.5", "-c", "copy", str(out)]
    subprocess.run(cut, check=True)
    return out


@pytest.mark.parametrize("stage", [s for s in STAGE_ORDER if s != Stage.UPLOAD], ids=str)
def test_a_job_deleted_at_any_stage_leaves_nothing_behind(
    stack: LocalStack, api: ApiClient, short_clip: Path, stage: Stage
) -> None:
    # Given a job seen at the stage (read from the table, polled fast; a stage may be past)
    store = JobStore(stack.settings.jobs_table, client=stack.client("dynamodb"))
    job_id = api.submit(short_clip)
    seen = wait_until(
        lambda: (
            (r := store.get(job_id)) is not None
            and (STAGE_INDEX[r.stage] >= STAGE_INDEX[stage] or r.status.terminal)
            and r
        ),
        what=f"job {job_id} to reach {stage}",
        timeout_s=TIMEOUT_S,
        every_s=0.01,
    )
    # When its owner deletes it, and whatever still ran of it has finished
    api.delete_job(job_id)
    arn = f"{stack.resources.state_machine_arn.replace(':stateMachine:', ':execution:')}:{job_id}"
    sfn = stack.client("stepfunctions")
    wait_until(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", what="the stop")
    wait_until(lambda: stack.in_flight() == 0, what="every stage to finish", timeout_s=TIMEOUT_S)
    # Then nothing of the job is left, and it is gone from the API
    assert _job_objects(stack, job_id) == [], f"deleted at {seen.stage} ({seen.status})"
    assert store.get(job_id) is None
    with pytest.raises(ApiError) as gone:
        api.get_job(job_id)
    assert gone.value.status == 404


# -- at-least-once delivery, and nothing left behind --------------------------------------------


def test_the_same_upload_event_twice_gives_one_execution_and_one_job(
    stack: LocalStack, api: ApiClient, tmp_path: Path
) -> None:
    job_id = uuid.uuid4().hex
    key = upload_key(job_id, "notes one.mp4")
    body = b"not a video, so the job ends fast"
    stack.client("s3").put_object(Bucket=stack.settings.uploads_bucket, Key=key, Body=body)  # event no. 1
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": stack.settings.uploads_bucket},
                    "object": {"key": quote_plus(key), "size": len(body)},
                },
            }
        ]
    }
    lam = stack.client("lambda")
    for _ in range(2):  # delivered again, twice
        response = lam.invoke(FunctionName=stack.resources.functions["start"], Payload=json.dumps(event))
        answer = json.loads(response["Payload"].read())
        assert "FunctionError" not in response, answer
        assert answer["started"] == [] and answer["already_started"] == [job_id]
    record = wait_in_table(stack, job_id)
    assert_rejected(stack, record, "NOT_A_VIDEO", Stage.VALIDATE)
    executions = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.resources.state_machine_arn
    )
    assert [e["name"] for e in executions["executions"]].count(job_id) == 1
    items = stack.client("dynamodb").scan(TableName=stack.settings.jobs_table)["Items"]
    assert [i["job_id"]["S"] for i in items].count(job_id) == 1


def test_nothing_is_left_running(stack: LocalStack) -> None:
    """Runs last in this module: every job above ended, and so did its execution and Batch jobs."""
    items = stack.client("dynamodb").scan(TableName=stack.settings.jobs_table)["Items"]
    assert items, "the tests above made jobs"
    open_jobs = [i["job_id"]["S"] for i in items if not JobStatus(i["status"]["S"]).terminal]
    assert open_jobs == []
    sfn = stack.client("stepfunctions")
    wait_until(
        lambda: (
            not sfn.list_executions(
                stateMachineArn=stack.resources.state_machine_arn, statusFilter="RUNNING"
            )["executions"]
        ),
        what="every execution to stop",
    )
    batch = stack.client("batch")
    for queue in stack.resources.job_queues.values():
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
            assert batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"] == []


def test_the_watchdog_finds_the_worker_queues_empty_afterwards(stack: LocalStack) -> None:
    """The watchdog (scheduled in AWS, invoked by hand here) reads the local Batch queues and
    publishes zeros for them: the stuck-job alarms' data when nothing waits."""
    lam = stack.client("lambda")
    response = lam.invoke(FunctionName=stack.resources.functions["watchdog"], Payload=b"{}")
    answer = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, answer
    assert answer["queues"] == [
        {"queue": "gpu", "waiting_jobs": 0, "oldest_wait_s": 0.0},
        {"queue": "cpu", "waiting_jobs": 0, "oldest_wait_s": 0.0},
    ]
    listed = stack.client("cloudwatch").list_metrics(Namespace="PoseReel")["Metrics"]
    published = {
        (m["MetricName"], next(d["Value"] for d in m["Dimensions"] if d["Name"] == "Queue")) for m in listed
    }
    assert published >= {
        (name, queue) for name in ("OldestRunnableAgeSeconds", "RunnableJobs") for queue in ("gpu", "cpu")
    }
