"""api and finalize services: announcing uploads (form POST or multipart), listing, reading,
deleting jobs and their results, and reconciling jobs whose workflow execution ended without
writing a terminal status."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from posereel.errors import ConflictError, InvalidFieldError, TooLargeError
from posereel.jobs import JobRecord, JobResult, JobStatus, SourceObject, Stage
from posereel.metrics import jitter_level
from posereel.pipeline.api import (
    MAX_PARTS,
    CompletedPart,
    CompleteUploadRequest,
    CreateUploadsRequest,
    JobView,
    UploadFile,
    UploadTicket,
    complete_upload,
    create_uploads,
    delete_job,
    get_job,
    job_results,
    list_jobs,
    part_size,
    people,
    segments_in_reel,
    timeline,
    upload_progress,
)
from posereel.pipeline.events import ExecutionStatusChange, ExecutionStatusEvent
from posereel.pipeline.files import source_key
from posereel.pipeline.finalize import finalize_execution, reconcile_job
from posereel.schemas import (
    AnalysisResult,
    EnergySeries,
    ReelWindow,
    Segment,
    TrackMetrics,
    TrackSummary,
    VideoInfo,
)
from posereel.settings import JobOptions, PipelineSettings
from tests import builders
from tests.builders import RESULTS, SETTINGS, UPLOADS, pipeline_settings
from tests.fakes import FakeFunctions, FakeJobStore, FakeMediaStore, FakeWorkflow

JOB = "0123456789abcdef0123456789abcdef"
API_URL = "https://api.example.test/prod"
MIB = 1024**2


def video_file(name: str = "a.mp4", size_bytes: int = 5_000) -> UploadFile:
    return UploadFile(filename=name, size_bytes=size_bytes, content_type="video/mp4")


def announce(
    *files: UploadFile, jobs: FakeJobStore, media: FakeMediaStore, owner: str = "user-1", **settings: int
) -> list[UploadTicket]:
    request = CreateUploadsRequest(files=list(files))
    created = create_uploads(
        request, owner=owner, api_url=API_URL, settings=pipeline_settings(**settings), jobs=jobs, media=media
    )
    return created.uploads


# --- announcing uploads -----------------------------------------------------------------------


def test_the_choices_an_upload_carries_are_kept_on_its_job_and_shown() -> None:
    # Given a file announced with choices for its first reel, and one without
    jobs, media = FakeJobStore(), FakeMediaStore()
    options = JobOptions(min_still_s=0.4, buffer_before_s=0.0)
    chosen = UploadFile(filename="a.mp4", size_bytes=5_000, content_type="video/mp4", options=options)
    with_options, plain = announce(chosen, video_file("b.mp4"), jobs=jobs, media=media)
    # Then the job keeps them (the plan stage reads them there), and its view shows them
    assert jobs.records[with_options.job_id].options == options
    assert JobView.of(jobs.records[with_options.job_id], costs=SETTINGS.costs).options == options
    assert jobs.records[plain.job_id].options is None


def test_announcing_files_creates_an_awaiting_job_and_a_form_per_file() -> None:
    # Given
    jobs, media = FakeJobStore(), FakeMediaStore()
    # When
    tickets = announce(video_file("My Dance (1).mp4"), video_file("b.mp4", 7_000), jobs=jobs, media=media)
    # Then one job per file, each uploading to its own key
    assert len({t.job_id for t in tickets}) == 2 and set(jobs.records) == {t.job_id for t in tickets}
    expected = [("My Dance (1).mp4", 5_000, "My_Dance_1_.mp4"), ("b.mp4", 7_000, "b.mp4")]
    for ticket, (name, size, safe_name) in zip(tickets, expected, strict=True):
        record = jobs.records[ticket.job_id]
        assert (record.status, record.stage) == (JobStatus.AWAITING_UPLOAD, Stage.UPLOAD)
        assert record.owner == "user-1" and record.upload_id is None and record.expires_at is not None
        assert record.source is not None and (record.source.name, record.source.size_bytes) == (name, size)
        assert record.source.key == f"uploads/{ticket.job_id}/{safe_name}"
        assert ticket.post is not None and ticket.post.fields["key"] == record.source.key
        assert ticket.multipart is None and ticket.filename == name and ticket.expires_in_s > 0


def test_one_file_over_the_limit_refuses_the_whole_request() -> None:
    # Given a request whose second file is too large
    jobs, media = FakeJobStore(), FakeMediaStore()
    # When
    with pytest.raises(TooLargeError, match=r"files\.1"):
        announce(
            video_file("ok.mp4", 2_000),
            video_file("big.mp4", 2_001),
            jobs=jobs,
            media=media,
            max_upload_bytes=2_000,
        )
    # Then no job was made for any file, and no upload started
    assert jobs.records == {} and media.uploads == {}


def test_a_file_above_the_threshold_gets_a_multipart_upload_with_a_url_per_part() -> None:
    # Given parts of 5 MiB and a file of 12 MiB + 1 byte, above the 8 MiB threshold
    jobs, media = FakeJobStore(), FakeMediaStore()
    # When
    (ticket,) = announce(
        video_file("big.mp4", 12 * MIB + 1),
        jobs=jobs,
        media=media,
        multipart_threshold_bytes=8 * MIB,
        multipart_part_bytes=5 * MIB,
    )
    # Then
    assert ticket.post is None and ticket.multipart is not None
    assert ticket.multipart.part_size_bytes == 5 * MIB
    assert [p.part_number for p in ticket.multipart.parts] == [1, 2, 3]
    assert len({p.url for p in ticket.multipart.parts}) == 3
    record = jobs.records[ticket.job_id]
    assert record.upload_id == ticket.multipart.upload_id and record.upload_id in media.uploads


@pytest.mark.parametrize(
    ("size_bytes", "expected"),
    [
        (100 * MIB, 16 * MIB),
        (MAX_PARTS * 16 * MIB, 16 * MIB),
        (MAX_PARTS * 16 * MIB + 1, 16 * MIB + 1),
        (MAX_PARTS * 40 * MIB, 40 * MIB),
    ],
    ids=["small", "exactly-10000-parts", "one-byte-more", "huge"],
)
def test_the_part_size_grows_so_that_no_file_needs_more_than_10000_parts(
    size_bytes: int, expected: int
) -> None:
    settings = pipeline_settings(multipart_part_bytes=16 * MIB)
    size = part_size(size_bytes, settings)
    assert size == expected and math.ceil(size_bytes / size) <= MAX_PARTS


# --- completing multipart uploads -------------------------------------------------------------

LARGE = {"multipart_threshold_bytes": 5 * MIB, "multipart_part_bytes": 5 * MIB}


def announce_large(jobs: FakeJobStore, media: FakeMediaStore, size_bytes: int) -> UploadTicket:
    (ticket,) = announce(video_file("big.mp4", size_bytes), jobs=jobs, media=media, **LARGE)
    assert ticket.multipart is not None
    return ticket


def put_parts(media: FakeMediaStore, ticket: UploadTicket, *chunks: bytes) -> CompleteUploadRequest:
    """Upload each chunk as the next part, as the browser does; the body that completes them."""
    assert ticket.multipart is not None
    upload_id = ticket.multipart.upload_id
    etags = [media.upload_part(upload_id, n, data) for n, data in enumerate(chunks, start=1)]
    return CompleteUploadRequest(
        parts=[CompletedPart(part_number=n, etag=etag) for n, etag in enumerate(etags, start=1)]
    )


def test_completing_a_multipart_upload_joins_its_parts_into_the_object() -> None:
    # Given a 6 MiB file uploaded in two parts
    jobs, media = FakeJobStore(), FakeMediaStore()
    ticket = announce_large(jobs, media, 6 * MIB)
    body = put_parts(media, ticket, b"a" * 5 * MIB, b"b" * MIB)
    # When
    record = complete_upload(ticket.job_id, body, caller="user-1", jobs=jobs, media=media)
    # Then the object is there, whole, and the upload is finished
    assert record is not None and record.source is not None and record.job_id == ticket.job_id
    assert media.read_bytes(UPLOADS, record.source.key) == b"a" * 5 * MIB + b"b" * MIB
    assert media.uploads == {}


def test_a_client_that_lost_track_learns_which_parts_are_held_and_gets_links_for_the_rest() -> None:
    # Given a 12 MiB file in three parts, of which the first and the last reached S3
    jobs, media = FakeJobStore(), FakeMediaStore()
    ticket = announce_large(jobs, media, 12 * MIB)
    assert ticket.multipart is not None
    upload_id = ticket.multipart.upload_id
    first = media.upload_part(upload_id, 1, b"a" * 5 * MIB)
    media.upload_part(upload_id, 3, b"c" * 2 * MIB)
    settings = pipeline_settings(**LARGE)
    # When a restarted client asks where the upload stands
    progress = upload_progress(ticket.job_id, caller="user-1", settings=settings, jobs=jobs, media=media)
    # Then it learns the held parts with their ETags, and gets a link for the missing one only
    assert progress is not None and (progress.upload_id, progress.part_count) == (upload_id, 3)
    assert [(p.part_number, p.size_bytes) for p in progress.uploaded] == [(1, 5 * MIB), (3, 2 * MIB)]
    assert progress.uploaded[0].etag == first
    assert [p.part_number for p in progress.parts] == [2]
    assert 0 < progress.expires_in_s <= ticket.expires_in_s
    # And completing with the held ETags and the new part joins the whole file
    second = media.upload_part(upload_id, 2, b"b" * 5 * MIB)
    etags = {p.part_number: p.etag for p in progress.uploaded} | {2: second}
    body = CompleteUploadRequest(parts=[CompletedPart(part_number=n, etag=etags[n]) for n in (1, 2, 3)])
    record = complete_upload(ticket.job_id, body, caller="user-1", jobs=jobs, media=media)
    assert record is not None and record.source is not None
    assert media.read_bytes(UPLOADS, record.source.key) == b"a" * 5 * MIB + b"b" * 5 * MIB + b"c" * 2 * MIB
    # Someone else's key learns nothing; once completed there is nothing to resume (a conflict)
    assert upload_progress(ticket.job_id, caller="user-2", settings=settings, jobs=jobs, media=media) is None
    with pytest.raises(ConflictError):
        upload_progress(ticket.job_id, caller="user-1", settings=settings, jobs=jobs, media=media)


def test_parts_adding_up_to_more_than_announced_are_refused_and_the_upload_dropped() -> None:
    # Given a file announced as 6 MiB whose parts add up to 6 MiB + 1 byte
    jobs, media = FakeJobStore(), FakeMediaStore()
    ticket = announce_large(jobs, media, 6 * MIB)
    body = put_parts(media, ticket, b"a" * 5 * MIB, b"b" * (MIB + 1))
    # When
    with pytest.raises(TooLargeError):
        complete_upload(ticket.job_id, body, caller="user-1", jobs=jobs, media=media)
    # Then nothing was stored and the parts are gone
    assert ticket.multipart is not None and media.aborted == [ticket.multipart.upload_id]
    assert media.keys(UPLOADS) == [] and media.uploads == {}


def test_completing_a_job_that_waits_for_no_multipart_upload_is_a_conflict() -> None:
    # Given a small file (form POST) and a large one whose upload completed and was queued
    jobs, media = FakeJobStore(), FakeMediaStore()
    (small,) = announce(video_file("small.mp4"), jobs=jobs, media=media, **LARGE)
    queued = announce_large(jobs, media, 6 * MIB)
    jobs.records[queued.job_id] = jobs.records[queued.job_id].model_copy(update={"status": JobStatus.QUEUED})
    body = CompleteUploadRequest(parts=[CompletedPart(part_number=1, etag='"x"')])
    # Then
    for ticket in (small, queued):
        with pytest.raises(ConflictError):
            complete_upload(ticket.job_id, body, caller="user-1", jobs=jobs, media=media)


@pytest.mark.parametrize("numbers", [[2, 1], [1, 1, 2]], ids=["out-of-order", "duplicated"])
def test_parts_out_of_order_or_twice_are_an_invalid_field(numbers: list[int]) -> None:
    jobs, media = FakeJobStore(), FakeMediaStore()
    ticket = announce_large(jobs, media, 6 * MIB)
    put_parts(media, ticket, b"a" * 5 * MIB, b"b" * MIB)
    body = CompleteUploadRequest(parts=[CompletedPart(part_number=n, etag='"x"') for n in numbers])
    with pytest.raises(InvalidFieldError) as caught:
        complete_upload(ticket.job_id, body, caller="user-1", jobs=jobs, media=media)
    assert caught.value.field == "parts"
    assert media.keys(UPLOADS) == []


def test_parts_with_a_wrong_etag_are_an_invalid_field() -> None:
    jobs, media = FakeJobStore(), FakeMediaStore()
    ticket = announce_large(jobs, media, 6 * MIB)
    body = put_parts(media, ticket, b"a" * 5 * MIB, b"b" * MIB)
    wrong = CompleteUploadRequest(parts=[body.parts[0], CompletedPart(part_number=2, etag='"not-it"')])
    with pytest.raises(InvalidFieldError):
        complete_upload(ticket.job_id, wrong, caller="user-1", jobs=jobs, media=media)


def test_completing_another_owners_upload_finds_no_job() -> None:
    jobs, media = FakeJobStore(), FakeMediaStore()
    ticket = announce_large(jobs, media, 6 * MIB)
    body = put_parts(media, ticket, b"a" * 5 * MIB, b"b" * MIB)
    assert complete_upload(ticket.job_id, body, caller="user-2", jobs=jobs, media=media) is None
    assert media.keys(UPLOADS) == [] and len(media.uploads) == 1


# --- listing jobs -----------------------------------------------------------------------------


def owned(n: int, owner: str = "user-1", status: JobStatus = JobStatus.QUEUED) -> JobRecord:
    return JobRecord(
        job_id=f"{n:032x}", owner=owner, status=status, created_at=f"2026-01-{n:02d}T00:00:00.000Z"
    )


def test_pages_of_jobs_give_every_job_once_newest_first() -> None:
    # Given five jobs of user-1 and one of user-2
    jobs = FakeJobStore(*(owned(n) for n in range(1, 6)), owned(6, "user-2"))
    # When the pages are read two by two
    seen, cursor, pages = [], None, 0
    while True:
        page = list_jobs(
            caller="user-1", status=None, limit=2, cursor=cursor, jobs=jobs, costs=SETTINGS.costs
        )
        seen += [job.job_id for job in page.jobs]
        pages += 1
        if (cursor := page.next_cursor) is None:
            break
    # Then
    assert seen == [f"{n:032x}" for n in (5, 4, 3, 2, 1)] and pages == 3


def test_a_status_filter_lists_only_jobs_of_that_status() -> None:
    jobs = FakeJobStore(owned(1, status=JobStatus.FAILED), owned(2), owned(3, status=JobStatus.FAILED))
    page = list_jobs(
        caller="user-1", status=JobStatus.FAILED, limit=20, cursor=None, jobs=jobs, costs=SETTINGS.costs
    )
    assert [job.job_id for job in page.jobs] == [f"{3:032x}", f"{1:032x}"] and page.next_cursor is None


def test_a_forged_cursor_or_another_owners_is_an_invalid_field() -> None:
    # Given a cursor of user-2's listing
    jobs = FakeJobStore(*(owned(n, "user-2") for n in range(1, 4)))
    theirs = list_jobs(
        caller="user-2", status=None, limit=1, cursor=None, jobs=jobs, costs=SETTINGS.costs
    ).next_cursor
    assert theirs is not None
    # Then neither it nor a made-up one lists anything for user-1
    for cursor in (theirs, "bm90IGEgY3Vyc29y"):
        with pytest.raises(InvalidFieldError) as caught:
            list_jobs(caller="user-1", status=None, limit=1, cursor=cursor, jobs=jobs, costs=SETTINGS.costs)
        assert caught.value.field == "cursor"


# --- results ----------------------------------------------------------------------------------

RESULT_PREFIX = f"results/{JOB}/"


def analysis() -> AnalysisResult:
    """Three segments: two in reel windows (2.0 s into [1.5, 4.5] and 10.0 s into [9.0, 12.5]),
    the third in none; one track's energy at 10 Hz."""
    video = VideoInfo(
        name="a.mp4", duration_s=20.0, fps=30.0, width=640, height=360, codec="h264", has_audio=False
    )

    def segment(index: int, start_s: float, end_s: float) -> Segment:
        return builders.segment(index, start_s, end_s, track_ids=(1,), peak_energy=1.2)

    return AnalysisResult(
        video=video,
        analysis_fps=10.0,
        model="lite",
        devices=["cpu"],
        range_s=(0.0, 20.0),
        primary_track_id=1,
        tracks=[],
        segments=[segment(0, 2.0, 4.0), segment(1, 10.0, 12.0), segment(2, 15.0, 16.0)],
        metrics=[],
        energy=[EnergySeries(track_id=1, t_s=[i / 10 for i in range(200)], energy=[0.5] * 200)],
        reel_windows=[
            ReelWindow(start_s=1.5, end_s=4.5, segment_indices=[0]),
            ReelWindow(start_s=9.0, end_s=12.5, segment_indices=[1]),
        ],
    )


def finished_job(settings: PipelineSettings, media: FakeMediaStore, *files: str) -> FakeJobStore:
    """A SUCCEEDED job of user-1 with result.json and the named files stored."""
    media.write_model(analysis(), settings.results_bucket, RESULT_PREFIX + "result.json")
    for name in files:
        media.put(settings.results_bucket, RESULT_PREFIX + name, name.encode())
    result = JobResult(prefix=RESULT_PREFIX, segments=3, reel_duration_s=6.5, primary_track_id=1)
    return FakeJobStore(running(owner="user-1", status=JobStatus.SUCCEEDED, stage=Stage.DONE, result=result))


def test_results_link_only_the_files_that_were_stored() -> None:
    # Given a finished job with a reel and one thumbnail, but no overlay
    settings, media = pipeline_settings(), FakeMediaStore()
    jobs = finished_job(settings, media, "reel.mp4", "thumbnails/segment_001.jpg")
    # When
    results = job_results(JOB, caller="user-1", settings=settings, jobs=jobs, media=media)
    # Then
    assert results is not None
    assert set(results.files) == {"reel", "result"}
    reel = results.files["reel"]
    assert (reel.name, reel.content_type, reel.size_bytes) == ("reel.mp4", "video/mp4", len(b"reel.mp4"))
    # And every link downloads, saved under the video's name
    source = jobs.get(JOB).source
    stem = source.name.rsplit(".", 1)[0] if source else "video"
    assert reel.url.endswith(f"{RESULT_PREFIX}reel.mp4?download-as={stem}-reel.mp4")
    assert [
        (t.segment_index, t.url.endswith(f"segment_001.jpg?download-as={stem}-segment_001.jpg"))
        for t in results.thumbnails
    ] == [(1, True)]
    assert (results.reel_duration_s, results.primary_track_id) == (6.5, 1)
    assert results.expires_in_s == settings.results_link_expiry_s
    assert [s.reel_start_s for s in results.segments] == [0.5, 4.0, None]
    assert results.timeline.tracks[0].track_id == 1 and results.timeline.tracks[0].primary


def test_results_link_the_checked_copy_of_the_video_for_the_page_to_play() -> None:
    # Given a finished job whose scanned copy is still in work/
    settings, media = pipeline_settings(), FakeMediaStore()
    done = finished_job(settings, media, "reel.mp4").get(JOB)
    assert done is not None
    source = SourceObject(
        bucket=settings.uploads_bucket, key=f"uploads/{JOB}/dance class.mov", name="dance class.mov"
    )
    jobs = FakeJobStore(done.model_copy(update={"source": source}))
    media.put(settings.results_bucket, source_key(JOB, source.name), b"video bytes")
    # When
    results = job_results(JOB, caller="user-1", settings=settings, jobs=jobs, media=media)
    # Then it is linked under the owner's name, apart from the result files
    assert results is not None and results.source is not None
    assert (results.source.name, results.source.size_bytes) == (source.name, len(b"video bytes"))
    assert results.source.url.endswith(f"{source_key(JOB, source.name)}?download-as=dance%20class.mov")
    assert results.source.content_type == "video/mp4"  # as the copy was stored
    assert "source" not in results.files
    # And once the copy is gone, there is no link
    media.delete_prefix(settings.results_bucket, source_key(JOB, ""))
    gone = job_results(JOB, caller="user-1", settings=settings, jobs=jobs, media=media)
    assert gone is not None and gone.source is None


def test_a_segment_plays_in_the_reel_after_the_windows_before_it() -> None:
    # Window 0 lasts 3.0 s; segment 1 starts 1.0 s into window 1; segment 2 is in no window
    views = segments_in_reel(analysis())
    assert [(v.index, v.start_s, v.reel_start_s) for v in views] == [
        (0, 2.0, 0.5),
        (1, 10.0, 4.0),
        (2, 15.0, None),
    ]


@pytest.mark.parametrize("status", [JobStatus.RUNNING, JobStatus.FAILED, JobStatus.AWAITING_UPLOAD])
def test_results_of_an_unfinished_job_are_not_ready(status: JobStatus) -> None:
    jobs, media = FakeJobStore(running(owner="user-1", status=status)), FakeMediaStore()
    with pytest.raises(ConflictError) as caught:
        job_results(JOB, caller="user-1", settings=pipeline_settings(), jobs=jobs, media=media)
    assert caught.value.code == "NOT_READY"


def test_results_of_another_owners_job_are_not_found() -> None:
    settings, media = pipeline_settings(), FakeMediaStore()
    jobs = finished_job(settings, media, "reel.mp4")
    assert job_results(JOB, caller="user-2", settings=settings, jobs=jobs, media=media) is None


def test_the_timeline_keeps_each_bins_peak_and_marks_empty_bins_null() -> None:
    # Given ten samples 0.1 s apart, read into at most four points (bins of three)
    energy = [0.1, 0.5, 0.2, None, None, None, 0.3, None, 0.9, 0.4]
    result = analysis().model_copy(
        update={"energy": [EnergySeries(track_id=7, t_s=[1.0 + i / 10 for i in range(10)], energy=energy)]}
    )
    # When
    (track,) = timeline(result, max_points=4).tracks
    # Then
    assert track.energy == [0.5, None, 0.9, 0.4]
    assert (track.track_id, track.primary, track.t0_s, track.dt_s) == (7, False, 1.0, 0.3)


def test_a_long_timeline_is_downsampled_to_at_most_max_points() -> None:
    result = analysis().model_copy(
        update={
            "energy": [EnergySeries(track_id=1, t_s=[i / 10 for i in range(2_500)], energy=[1.0] * 2_500)]
        }
    )
    (track,) = timeline(result, max_points=1_000).tracks
    assert len(track.energy) <= 1_000 and track.dt_s == pytest.approx(0.3)


# --- deleting jobs ----------------------------------------------------------------------------


def stored_job_files(settings: PipelineSettings, media: FakeMediaStore, job_id: str) -> None:
    media.put(settings.uploads_bucket, f"uploads/{job_id}/a.mp4", b"video")
    media.put(settings.results_bucket, f"work/{job_id}/plan.json", b"{}")
    media.put(settings.results_bucket, f"results/{job_id}/reel.mp4", b"reel")


def test_deleting_a_running_job_stops_it_and_removes_its_files_and_record() -> None:
    # Given a running job with an upload, work files and results, and another job's files
    settings, media, workflow = pipeline_settings(), FakeMediaStore(), FakeWorkflow()
    other = f"{9:032x}"
    jobs = FakeJobStore(running(owner="user-1"), owned(9))
    stored_job_files(settings, media, JOB)
    stored_job_files(settings, media, other)
    arn = workflow.start(JOB, {})
    # When
    deleted = delete_job(JOB, caller="user-1", settings=settings, jobs=jobs, media=media, workflow=workflow)
    # Then
    assert deleted is True and JOB not in jobs.records
    assert workflow.stopped == [arn]
    execution = workflow.describe(arn)
    assert execution is not None and execution.status == "ABORTED"
    assert media.keys(UPLOADS) == [f"uploads/{other}/a.mp4"]
    assert media.keys(RESULTS) == [f"results/{other}/reel.mp4", f"work/{other}/plan.json"]


def test_deleting_a_job_awaiting_its_multipart_upload_drops_the_upload() -> None:
    jobs, media, workflow = FakeJobStore(), FakeMediaStore(), FakeWorkflow()
    ticket = announce_large(jobs, media, 6 * MIB)
    put_parts(media, ticket, b"a" * 5 * MIB)
    assert delete_job(
        ticket.job_id,
        caller="user-1",
        settings=pipeline_settings(),
        jobs=jobs,
        media=media,
        workflow=workflow,
    )
    assert media.uploads == {} and jobs.records == {} and workflow.stopped == []


def test_deleting_another_owners_job_touches_nothing() -> None:
    settings, media, workflow = pipeline_settings(), FakeMediaStore(), FakeWorkflow()
    jobs = FakeJobStore(running(owner="user-1"))
    stored_job_files(settings, media, JOB)
    workflow.start(JOB, {})
    assert (
        delete_job(JOB, caller="user-2", settings=settings, jobs=jobs, media=media, workflow=workflow)
        is False
    )
    assert JOB in jobs.records and len(media.objects) == 3 and workflow.stopped == []


def test_deleting_a_finished_job_stops_no_execution() -> None:
    # Given a SUCCEEDED job whose execution is still wrapping up
    settings, media, workflow = pipeline_settings(), FakeMediaStore(), FakeWorkflow()
    jobs = FakeJobStore(running(owner="user-1", status=JobStatus.SUCCEEDED, stage=Stage.DONE))
    workflow.start(JOB, {})
    # When
    assert delete_job(JOB, caller="user-1", settings=settings, jobs=jobs, media=media, workflow=workflow)
    # Then
    assert workflow.stopped == [] and jobs.records == {}


# --- reading and reconciling jobs -------------------------------------------------------------


def running(**extra: object) -> JobRecord:
    return JobRecord.model_validate(
        {"job_id": JOB, "status": JobStatus.RUNNING, "stage": Stage.ANALYZE, **extra}
    )


@pytest.mark.parametrize(
    ("record", "execution", "status", "code"),
    [
        (running(), "FAILED", JobStatus.FAILED, "EXECUTION_FAILED"),
        (running(), "TIMED_OUT", JobStatus.FAILED, "EXECUTION_TIMED_OUT"),
        (running(), "ABORTED", JobStatus.FAILED, "EXECUTION_ABORTED"),
        (
            running(status=JobStatus.QUEUED, stage=Stage.UPLOAD),
            "ABORTED",
            JobStatus.FAILED,
            "EXECUTION_ABORTED",
        ),
        (running(), "RUNNING", JobStatus.RUNNING, None),
        (running(), "SUCCEEDED", JobStatus.RUNNING, None),
        (running(), None, JobStatus.RUNNING, None),
        (running(status=JobStatus.REJECTED), "FAILED", JobStatus.REJECTED, None),
        (running(status=JobStatus.AWAITING_UPLOAD), "ABORTED", JobStatus.AWAITING_UPLOAD, None),
    ],
)
def test_reconcile_fails_only_unfinished_jobs_whose_execution_ended_badly(
    record: JobRecord, execution: str | None, status: JobStatus, code: str | None
) -> None:
    # Given
    jobs, workflow = FakeJobStore(record), FakeWorkflow()
    if execution is not None:
        workflow.start(JOB, {})
        workflow.end(JOB, execution, error="States.Timeout" if execution == "TIMED_OUT" else None)
    # When
    after = reconcile_job(record, jobs=jobs, workflow=workflow)
    # Then
    assert after.status == status
    assert (after.error.code if after.error else None) == code
    if code is not None:
        assert after.error is not None and after.error.stage == record.stage.value
        assert after.finished_at == "2026-01-01T00:00:00.000Z"


def test_get_job_is_reconciled_and_private_to_its_owner() -> None:
    jobs, workflow = FakeJobStore(running(owner="user-1")), FakeWorkflow()
    workflow.start(JOB, {})
    workflow.end(JOB, "TIMED_OUT")
    assert get_job(JOB, caller="user-2", jobs=jobs, workflow=workflow) is None
    mine = get_job(JOB, caller="user-1", jobs=jobs, workflow=workflow)
    assert mine is not None and mine.status == JobStatus.FAILED
    assert get_job("../etc", caller="user-1", jobs=jobs, workflow=workflow) is None


def status_event(name: str, status: str, cause: str | None = None) -> ExecutionStatusEvent:
    detail = ExecutionStatusChange(
        executionArn=f"arn:aws:states:us-east-1:1:execution:sm:{name}",
        stateMachineArn="arn:aws:states:us-east-1:1:stateMachine:sm",
        name=name,
        status=status,
        error="States.Runtime" if cause else None,
        cause=cause,
        stopDate=1767225600000,
    )
    return ExecutionStatusEvent.model_validate(
        {"detail-type": "Step Functions Execution Status Change", "detail": detail.model_dump(by_alias=True)}
    )


def test_finalize_fails_the_job_of_a_failed_execution_with_a_readable_message() -> None:
    jobs = FakeJobStore(running())
    cause = "An error occurred while executing the state 'MarkRunning'. The JSONPath '$.x' could not be found"
    functions = FakeFunctions()
    result = finalize_execution(
        status_event(JOB, "FAILED", cause),
        jobs=jobs,
        workflow=FakeWorkflow(),
        functions=functions,
        notify_function="notify",
    )
    assert (result.job_id, result.status, result.changed) == (JOB, "FAILED", True)
    assert functions.events == [("notify", {"job_id": JOB})]
    error = jobs.records[JOB].error
    assert error is not None and error.code == "EXECUTION_FAILED"
    assert "States.Runtime" in error.message and "MarkRunning" in error.message
    assert jobs.records[JOB].finished_at == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("name", "known"), [("not a job id", False), (JOB, False)], ids=["foreign-execution", "unknown-job"]
)
def test_finalize_ignores_executions_without_a_job(name: str, known: bool) -> None:
    functions = FakeFunctions()
    result = finalize_execution(
        status_event(name, "ABORTED"),
        jobs=FakeJobStore(),
        workflow=FakeWorkflow(),
        functions=functions,
        notify_function="notify",
    )
    assert result.changed is False and result.status is None and functions.events == []


def test_a_large_files_part_urls_last_long_enough_for_a_slow_upload() -> None:
    # Given a 1.5 GB file, which takes ~50 min at 500 kB/s
    settings = pipeline_settings(max_upload_bytes=2 * 1024**3)
    request = CreateUploadsRequest(
        files=[UploadFile(filename="long.mp4", size_bytes=1_500_000_000, content_type="video/mp4")]
    )
    # When it is announced
    ticket = create_uploads(
        request, owner="u", api_url=API_URL, settings=settings, jobs=FakeJobStore(), media=FakeMediaStore()
    ).uploads[0]
    # Then its part URLs outlive that upload, where a small file's form lasts 15 minutes
    assert ticket.multipart is not None and ticket.expires_in_s == 3000


def test_every_time_of_a_record_reads_utc_with_z() -> None:
    # Step Functions' $$.State.EnteredTime may come as +00:00 (moto) where the API writes Z
    record = JobRecord.model_validate(
        {
            "job_id": "0123456789abcdef",
            "status": "SUCCEEDED",
            "created_at": "2026-11-21T02:26:48.144Z",
            "updated_at": "2026-11-21T02:26:58.131117+00:00",
            "finished_at": "2026-11-21T02:26:58.131117+00:00",
            "stage_started": {"VALIDATE": "2026-11-21T02:26:49.5+00:00"},
        }
    )
    assert (record.created_at, record.updated_at, record.finished_at) == (
        "2026-11-21T02:26:48.144Z",
        "2026-11-21T02:26:58.131Z",
        "2026-11-21T02:26:58.131Z",
    )
    assert record.stage_started == {"VALIDATE": "2026-11-21T02:26:49.500Z"}


def test_the_people_are_shown_in_plain_numbers_the_main_subject_first() -> None:
    # Given two tracked people, the main one (1) steady, the other (0) seen briefly and shaky
    summary = {"first_s": 0.5, "last_s": 19.0, "frames": 180, "mean_energy": 0.4, "score": 0.9}
    result = analysis().model_copy(
        update={
            "tracks": [
                TrackSummary(track_id=0, is_primary=False, **summary),
                TrackSummary(track_id=1, is_primary=True, **summary),
            ],
            "metrics": [
                TrackMetrics(track_id=0, coverage_pct=12.345, gaps=0, longest_gap_s=0.0,
                             distance_body_lengths=1.04, jitter=0.21),
                TrackMetrics(track_id=1, coverage_pct=92.04, gaps=2, longest_gap_s=0.8,
                             distance_body_lengths=14.26, jitter=0.07),
            ],
        }
    )  # fmt: skip
    # Then
    main, other = people(result)
    assert (main.track_id, main.primary, other.track_id, other.primary) == (1, True, 0, False)
    assert (main.on_screen_pct, main.gaps, main.longest_gap_s, main.moved_body_lengths) == (
        92.0,
        2,
        0.8,
        14.3,
    )
    assert (main.jitter_level, other.jitter_level) == ("low", "high")
    assert other.on_screen_pct == 12.3


@pytest.mark.parametrize(
    ("jitter", "level"), [(0.0, "low"), (0.089, "low"), (0.09, "medium"), (0.15, "high")]
)
def test_jitter_in_words(jitter: float, level: str) -> None:
    assert jitter_level(jitter) == level


def test_a_size_past_what_s3_can_store_is_no_size() -> None:
    # S3 holds objects of at most 5 TiB: a larger size is a bad request (422), not a file too big
    # for this environment (413)
    with pytest.raises(ValidationError):
        UploadFile(filename="a.mp4", size_bytes=5 * 2**40 + 1, content_type="video/mp4")


@pytest.mark.parametrize("etag", ['"abc\u00e9"', '"ab c"', "\u0000", '"a\nb"'])
def test_an_etag_s3_could_not_have_given_is_refused(etag: str) -> None:
    # S3's ETags are quoted hex (visible ASCII); anything else is a bad request, never sent to S3
    with pytest.raises(ValidationError):
        CompletedPart(part_number=1, etag=etag)
    assert CompletedPart(part_number=1, etag='"9b2cf535f27731c974343645a3985328"').part_number == 1
