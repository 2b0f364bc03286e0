"""Re-cuts as the api records them (posereel.pipeline.reels, on fakes): who may ask, the choice
of people checked against the job's, ids given out in order and capped, the first reel always
listed, a reel past its deadline read as failed, and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from posereel.errors import ConflictError, InvalidFieldError, TransientError
from posereel.jobs import REEL_TIMED_OUT, JobRecord, JobResult, JobStatus, ReelRecord, ReelStatus, iso_utc
from posereel.pipeline import reels
from posereel.schemas import TrackSummary, VideoInfo
from posereel.settings import JobOptions, ReelRequest
from tests.builders import OWNER, SETTINGS, analysis_with_segments, job_record
from tests.fakes import FakeFunctions, FakeJobStore, FakeMediaStore

VIDEO = VideoInfo(
    name="clip.mp4", duration_s=20.0, fps=30.0, width=1280, height=720, codec="h264", has_audio=False
)


def finished_job(media: FakeMediaStore, *, tracks: tuple[int, ...] = (0, 3)) -> JobRecord:
    record = job_record(1, status=JobStatus.SUCCEEDED)
    prefix = f"results/{record.job_id}/"
    record = record.model_copy(
        update={
            "result": JobResult(prefix=prefix, segments=1, reel_duration_s=5.0, primary_track_id=0),
            "options": JobOptions(min_still_s=1.0, model="full"),
            "finished_at": "2026-01-01T00:10:00.000Z",
        }
    )
    result, _ = analysis_with_segments(VIDEO, [(2.0, 4.0)])
    summaries = [TrackSummary(track_id=t, first_s=0, last_s=1, frames=10, mean_energy=0.1) for t in tracks]
    media.write_model(
        result.model_copy(update={"tracks": summaries}), SETTINGS.results_bucket, prefix + "result.json"
    )
    return record


@pytest.fixture
def media() -> FakeMediaStore:
    return FakeMediaStore()


@pytest.fixture
def functions() -> FakeFunctions:
    return FakeFunctions()


def create(
    jobs: FakeJobStore, media: FakeMediaStore, functions: FakeFunctions, job_id: str, **body: object
) -> reels.ReelView | None:
    return reels.create_reel(
        job_id,
        ReelRequest.model_validate(body),
        caller=OWNER,
        settings=SETTINGS,
        jobs=jobs,
        media=media,
        functions=functions,
    )


def test_a_recut_is_recorded_queued_and_handed_to_the_recut_function(
    media: FakeMediaStore, functions: FakeFunctions
) -> None:
    record = finished_job(media)
    jobs = FakeJobStore(record)
    first = create(jobs, media, functions, record.job_id, track_ids=[3], aspect="9:16")
    second = create(jobs, media, functions, record.job_id)
    assert first is not None and second is not None
    assert (first.reel_id, first.status, second.reel_id) == (1, ReelStatus.QUEUED, 2)
    assert functions.events == [
        (SETTINGS.recut_function, {"job_id": record.job_id, "reel_id": 1}),
        (SETTINGS.recut_function, {"job_id": record.job_id, "reel_id": 2}),
    ]
    stored = jobs.records[record.job_id].reels["1"]
    assert stored.request.track_ids == [3] and stored.request.aspect == "9:16"


def test_the_list_starts_with_the_first_reel_and_its_upload_choices(
    media: FakeMediaStore, functions: FakeFunctions
) -> None:
    record = finished_job(media)
    jobs = FakeJobStore(record)
    create(jobs, media, functions, record.job_id, min_still_s=0.4)
    listed = reels.list_reels(record.job_id, caller=OWNER, jobs=jobs)
    assert listed is not None
    assert [(r.reel_id, r.status) for r in listed.reels] == [
        (0, ReelStatus.SUCCEEDED),
        (1, ReelStatus.QUEUED),
    ]
    # Reel 0 shows what the upload chose for it (the model is the analysis's, not the reel's)
    assert listed.reels[0].options == ReelRequest(min_still_s=1.0)
    assert listed.reels[0].duration_s == 5.0


def test_only_the_jobs_people_can_be_chosen(media: FakeMediaStore, functions: FakeFunctions) -> None:
    record = finished_job(media, tracks=(0, 3))
    jobs = FakeJobStore(record)
    with pytest.raises(InvalidFieldError) as caught:
        create(jobs, media, functions, record.job_id, track_ids=[3, 5])
    assert (
        caught.value.field == "track_ids" and "5" in caught.value.message and "0, 3" in caught.value.message
    )
    assert functions.events == [] and jobs.records[record.job_id].reels_made == 0


def test_an_unfinished_job_or_another_owners_cannot_be_recut(
    media: FakeMediaStore, functions: FakeFunctions
) -> None:
    running = job_record(2, status=JobStatus.RUNNING)
    theirs = finished_job(media).model_copy(update={"owner": "someone-else"})
    jobs = FakeJobStore(running, theirs)
    with pytest.raises(ConflictError) as caught:
        create(jobs, media, functions, running.job_id)
    assert caught.value.code == "NOT_READY"
    assert create(jobs, media, functions, theirs.job_id) is None


def test_re_cuts_are_capped_per_job(media: FakeMediaStore, functions: FakeFunctions) -> None:
    record = finished_job(media).model_copy(update={"reels_made": reels.MAX_REELS_PER_JOB})
    with pytest.raises(ConflictError) as caught:
        create(FakeJobStore(record), media, functions, record.job_id)
    assert caught.value.code == "TOO_MANY_REELS"


def test_a_reel_that_cannot_be_started_says_so(media: FakeMediaStore, functions: FakeFunctions) -> None:
    record = finished_job(media)
    jobs = FakeJobStore(record)
    functions.fail = True
    with pytest.raises(TransientError):
        create(jobs, media, functions, record.job_id)
    stored = jobs.records[record.job_id].reels["1"]
    assert stored.status == ReelStatus.FAILED and stored.error is not None


def test_a_reel_past_its_deadline_reads_failed() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    reel = ReelRecord(
        reel_id=1,
        status=ReelStatus.RUNNING,
        request=ReelRequest(),
        deadline=iso_utc(now - timedelta(seconds=1)),
    )
    seen = reel.seen_at(now)
    assert seen.status == ReelStatus.FAILED and seen.error is not None and seen.error.code == REEL_TIMED_OUT
    # Before the deadline, and once it ended, it reads as stored
    assert reel.seen_at(now - timedelta(minutes=1)) == reel
    done = reel.model_copy(update={"status": ReelStatus.SUCCEEDED})
    assert done.seen_at(now) == done


def test_a_recut_is_deleted_with_its_files_and_the_first_reel_is_not(
    media: FakeMediaStore, functions: FakeFunctions
) -> None:
    record = finished_job(media)
    jobs = FakeJobStore(record)
    create(jobs, media, functions, record.job_id)
    prefix = f"results/{record.job_id}/reels/1/"
    media.put(SETTINGS.results_bucket, prefix + "reel.mp4", b"video")
    assert reels.delete_reel(record.job_id, 1, caller=OWNER, settings=SETTINGS, jobs=jobs, media=media)
    assert media.list_keys(SETTINGS.results_bucket, prefix) == []
    assert "1" not in jobs.records[record.job_id].reels
    assert not reels.delete_reel(record.job_id, 1, caller=OWNER, settings=SETTINGS, jobs=jobs, media=media)
    with pytest.raises(ConflictError):
        reels.delete_reel(record.job_id, 0, caller=OWNER, settings=SETTINGS, jobs=jobs, media=media)
