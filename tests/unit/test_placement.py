"""Where the stages that grow with the upload run, and the stage job: it runs the same service as
the stage's Lambda and stores its outcome, which the Lambda then answers with, a rejection as
the very same error. S3 and the jobs table are in-memory fakes; the pipeline tests run both
paths on moto."""

from __future__ import annotations

import pytest

from posereel.errors import (
    InputError,
    InvalidFieldError,
    MalwareError,
    PoseReelError,
    TooLargeError,
    TransientError,
)
from posereel.jobs import JobRecord, JobStatus
from posereel.pipeline.events import AnalysisPlacement, ScanEvent, ScanResult, SourceRef
from posereel.pipeline.files import stage_outcome_key
from posereel.pipeline.placement import (
    StageOutcome,
    StoredError,
    analysis_placement,
    scan_placement,
    store_outcome,
    stored_outcome,
)
from posereel.pipeline.scan import scan_upload
from posereel.usage import Platform
from posereel_worker import stage
from tests.builders import RESULTS, UPLOADS, pipeline_settings
from tests.fakes import FakeJobStore, FakeMediaStore, FakeScanner

JOB = "0123456789abcdef0123456789abcdef"
KEY = f"uploads/{JOB}/clip.mp4"
SOURCE = SourceRef(bucket=UPLOADS, key=KEY)
BAD = b"pretend this is malware"
SETTINGS = pipeline_settings(lambda_scan_max_bytes=100, lambda_video_max_s=60)


def live() -> FakeJobStore:
    return FakeJobStore(JobRecord.model_validate({"job_id": JOB, "status": JobStatus.RUNNING}))


def test_the_scan_runs_in_its_lambda_up_to_the_limit_and_in_a_job_above_it_or_when_the_size_is_unknown() -> (
    None
):
    assert scan_placement(100, SETTINGS).scan == "lambda"
    assert scan_placement(101, SETTINGS).scan == "container"
    assert scan_placement(None, SETTINGS).scan == "container"
    assert scan_placement(1, pipeline_settings(lambda_scan_max_bytes=0)).scan == "container"


def test_merge_and_compile_run_in_a_job_for_videos_longer_than_the_limit() -> None:
    assert analysis_placement(60, SETTINGS) == AnalysisPlacement(merge="lambda", compile="lambda")
    assert analysis_placement(60.1, SETTINGS) == AnalysisPlacement(merge="container", compile="container")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (MalwareError("clip.mp4 is infected (Eicar)"), MalwareError),
        (TooLargeError("too large"), TooLargeError),
        (InputError("odd", code="SOMETHING"), InputError),
        # Built from more than a message: its nearest ancestor that is, with the same code.
        (InvalidFieldError("track_ids", "no such track"), InputError),
    ],
)
def test_a_stored_error_is_raised_again_as_the_same_class_code_and_message(
    error: PoseReelError, kind: type[PoseReelError]
) -> None:
    again = StoredError.model_validate_json(StoredError.of(error).model_dump_json()).error()
    assert (type(again), again.code, again.message) == (kind, error.code, error.message)


def test_an_error_class_unknown_here_comes_back_as_a_pipeline_error_with_its_code() -> None:
    again = StoredError(type="FromTheFuture", code="NEW", message="m").error()
    assert (type(again), again.code, again.message) == (PoseReelError, "NEW", "m")


def test_without_a_stored_outcome_the_lambda_runs_the_stage_itself() -> None:
    assert stored_outcome("scan", JOB, ScanResult, media=FakeMediaStore(), settings=SETTINGS) is None


def test_an_outcome_of_another_stage_is_never_taken_for_this_one() -> None:
    media = FakeMediaStore()
    outcome = StageOutcome(job_id=JOB, stage="merge", result={"segments": 1, "tracks": 1})
    media.write_model(outcome, RESULTS, stage_outcome_key(JOB, "scan"))
    with pytest.raises(PoseReelError, match="another stage"):
        stored_outcome("scan", JOB, ScanResult, media=media, settings=SETTINGS)


def test_only_the_stages_that_grow_with_the_upload_store_outcomes() -> None:
    with pytest.raises(ValueError, match="does not run in a container"):
        store_outcome(StageOutcome(job_id=JOB, stage="plan"), media=FakeMediaStore(), settings=SETTINGS)


def _stage_job(
    media: FakeMediaStore, jobs: FakeJobStore, scanner: FakeScanner, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(stage, "clamav", lambda settings, media: scanner)
    task = stage.StageTask(stage="scan", job_id=JOB, source=SOURCE)
    return stage.run_stage(task, settings=SETTINGS, media=media, jobs=jobs)


def test_a_clean_scan_in_a_job_gives_the_lambda_the_answer_the_lambda_would_have_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the same upload on two stores
    by_lambda, by_job = FakeMediaStore(), FakeMediaStore()
    for media in (by_lambda, by_job):
        media.put(UPLOADS, KEY, b"fine")
    # When one is scanned in the Lambda, the other in a stage job and then handed on
    direct = scan_upload(
        ScanEvent(job_id=JOB, source=SOURCE),
        settings=SETTINGS,
        media=by_lambda,
        jobs=live(),
        scanner=FakeScanner(),
    )
    jobs = live()
    outcome = _stage_job(by_job, jobs, FakeScanner(), monkeypatch)
    handed = stored_outcome("scan", JOB, ScanResult, media=by_job, settings=SETTINGS)
    # Then the answers are the same, and the job's use is recorded as a worker's, apart from the Lambda's
    assert outcome.error is None and handed == direct
    record = jobs.get(JOB)
    assert record is not None and record.usage["SCAN_JOB"].platform == Platform.CPU_WORKER
    assert "SCAN" not in record.usage


def test_an_infected_upload_scanned_in_a_job_is_rejected_by_the_lambda_with_the_same_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an infected upload, scanned in a Lambda on one store and in a stage job on the other
    by_lambda, by_job = FakeMediaStore(), FakeMediaStore()
    for media in (by_lambda, by_job):
        media.put(UPLOADS, KEY, BAD)
    with pytest.raises(MalwareError) as direct:
        scan_upload(
            ScanEvent(job_id=JOB, source=SOURCE),
            settings=SETTINGS,
            media=by_lambda,
            jobs=live(),
            scanner=FakeScanner({BAD: "Test.Bad"}),
        )
    outcome = _stage_job(by_job, live(), FakeScanner({BAD: "Test.Bad"}), monkeypatch)
    # Then the job stored the rejection (it ended: nothing to retry) and the Lambda raises it
    assert outcome.error is not None and outcome.error.code == "MALWARE"
    with pytest.raises(MalwareError) as handed:
        stored_outcome("scan", JOB, ScanResult, media=by_job, settings=SETTINGS)
    assert handed.value.message == direct.value.message
    assert by_job.keys(SETTINGS.quarantine_bucket) == by_lambda.keys(SETTINGS.quarantine_bucket) != []


def test_a_stage_job_run_again_gives_the_same_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    media = FakeMediaStore()
    media.put(UPLOADS, KEY, b"fine")
    first = _stage_job(media, live(), FakeScanner(), monkeypatch)
    again = _stage_job(media, live(), FakeScanner(), monkeypatch)
    assert again.result == first.result


def test_a_transient_failure_stores_nothing_so_the_next_attempt_runs_the_stage_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Flaky(FakeScanner):
        def scan(self, data, *, name):  # type: ignore[no-untyped-def]
            raise TransientError("the network blinked")

    media = FakeMediaStore()
    media.put(UPLOADS, KEY, b"fine")
    with pytest.raises(TransientError):
        _stage_job(media, live(), Flaky(), monkeypatch)
    assert stored_outcome("scan", JOB, ScanResult, media=media, settings=SETTINGS) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--job-id", JOB, "--source", SOURCE.model_dump_json()],  # not a container stage
        ["scan", "--job-id", "NOT A JOB", "--source", SOURCE.model_dump_json()],
        ["scan", "--job-id", JOB, "--source", "{}"],
        ["scan", "--job-id", JOB],
    ],
)
def test_the_stage_command_refuses_what_it_cannot_run(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        stage.parse_args(argv)
    assert exit_.value.code == 2


def test_the_stage_command_takes_what_the_workflow_passes() -> None:
    task = stage.parse_args(["compile", "--job-id", JOB, "--source", '{"bucket": "b", "key": "k"}'])
    assert task == stage.StageTask(stage="compile", job_id=JOB, source=SourceRef(bucket="b", key="k"))
