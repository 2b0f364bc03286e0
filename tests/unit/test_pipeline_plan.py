"""plan: chunk borders move to where the worker's seek lands on a keyframe, the plan stays a
valid tiling of the video, and a re-run reuses the stored plan."""

from __future__ import annotations

import math
from itertools import pairwise
from unittest.mock import patch

import pytest

from posereel.chunks import plan_chunks
from posereel.jobs import JobRecord, JobStatus
from posereel.pipeline.events import PlanEvent, SourceRef
from posereel.pipeline.files import PlanFile, plan_key
from posereel.pipeline.plan import plan_job
from posereel.schemas import ChunkSpec, VideoInfo
from posereel.settings import AnalysisSettings, JobOptions
from tests.builders import RESULTS, UPLOADS, pipeline_settings
from tests.fakes import FakeJobStore, FakeMediaStore

JOB = "0123456789abcdef0123456789abcdef"
FPS = 10.0
PREROLL = 0.5


def assert_valid_plan(chunks: list[ChunkSpec], duration_s: float) -> None:
    assert chunks[0].start_s == 0 and chunks[0].own_start_s == 0
    assert math.isclose(chunks[-1].end_s, duration_s) and math.isclose(chunks[-1].own_end_s, duration_s)
    for c in chunks:
        assert c.start_s <= c.own_start_s < c.own_end_s <= c.end_s
        assert math.isclose(c.start_s * FPS, round(c.start_s * FPS))  # on the analysis grid
    for a, b in pairwise(chunks):
        assert a.own_end_s == b.own_start_s
        assert b.start_s < a.end_s  # they overlap


def nominal(
    duration_s: float = 100.0, chunk_s: float = 30.0, overlap_s: float = 2.0, keyframes: list[float] = ()
) -> list[ChunkSpec]:
    return plan_chunks(
        duration_s,
        chunk_seconds=chunk_s,
        overlap_seconds=overlap_s,
        grid_fps=FPS,
        keyframes=keyframes,
        seek_preroll_s=PREROLL,
    )


@pytest.mark.parametrize(
    ("keyframes", "expected_starts"),
    [
        pytest.param([], [0.0, 28.0, 56.0, 84.0], id="no-keyframes"),
        pytest.param([0.0, 27.2, 55.9, 84.3], [0.0, 27.7, 56.4, 84.8], id="near-keyframes"),
        pytest.param([0.0, 25.0, 60.0], [0.0, 28.0, 56.0, 84.0], id="too-far"),
        pytest.param([0.0, 27.54], [0.0, 28.1, 56.0, 84.0], id="rounded-up-onto-the-grid"),
    ],
)
def test_chunk_starts_move_to_a_preroll_after_a_keyframe_within_half_the_overlap(
    keyframes: list[float], expected_starts: list[float]
) -> None:
    # Given a 100 s video in 30 s chunks with 2 s overlap: starts 0, 28, 56, 84
    chunks = nominal()
    # When its keyframes are known
    aligned = nominal(keyframes=keyframes)
    # Then
    assert [c.start_s for c in aligned] == pytest.approx(expected_starts)
    assert_valid_plan(aligned, 100.0)
    for c, before in zip(aligned, chunks, strict=True):
        assert abs(c.start_s - before.start_s) <= 1.0 + 1e-9
    for a, b in pairwise(aligned):
        assert math.isclose(a.end_s - b.start_s, 2.0)  # the overlap keeps its length


def test_a_single_chunk_never_moves() -> None:
    assert nominal(duration_s=20.0, keyframes=[0.0, 3.0]) == nominal(duration_s=20.0)


def test_a_stored_plan_for_the_same_source_is_reused() -> None:
    # Given a plan stored by an earlier run, and no source to download
    source = SourceRef(bucket=UPLOADS, key=f"uploads/{JOB}/v.mp4")
    info = VideoInfo(
        name="v.mp4", duration_s=50.0, fps=25.0, width=640, height=360, codec="h264", has_audio=False
    )
    settings = pipeline_settings()
    analysis = AnalysisSettings(chunks=settings.chunks)
    stored = PlanFile(job_id=JOB, source=source, video=info, settings=analysis, chunks=nominal(50.0))
    media = FakeMediaStore()
    media.write_model(stored, RESULTS, plan_key(JOB))
    jobs = FakeJobStore(JobRecord(job_id=JOB, status=JobStatus.RUNNING))
    # When
    result = plan_job(PlanEvent(job_id=JOB, source=source), settings=settings, media=media, jobs=jobs)
    # Then
    assert result.plan_key == f"work/{JOB}/plan.json"
    assert [c.index for c in result.chunks] == [0, 1]
    assert jobs.records[JOB].chunks_total == 2
    assert media.downloads == []


def test_the_plan_analyses_with_the_choices_the_upload_carried() -> None:
    # Given a job announced with a shorter rest and no buffers, and a stored plan made without them
    source = SourceRef(bucket=UPLOADS, key=f"uploads/{JOB}/v.mp4")
    options = JobOptions(min_still_s=0.4, buffer_before_s=0.0, buffer_after_s=0.0)
    settings = pipeline_settings()
    media = FakeMediaStore()
    media.put(UPLOADS, source.key, b"not read: probe is replaced")
    jobs = FakeJobStore(JobRecord(job_id=JOB, status=JobStatus.RUNNING, options=options))
    info = VideoInfo(
        name="v.mp4", duration_s=8.0, fps=25.0, width=640, height=360, codec="h264", has_audio=False
    )
    # When the plan is made
    with patch("posereel.pipeline.plan.probe", return_value=info):
        plan_job(PlanEvent(job_id=JOB, source=source), settings=settings, media=media, jobs=jobs)
    # Then the plan (which the workers, the merge and the compile read) carries them
    plan = media.read_model(RESULTS, plan_key(JOB), PlanFile)
    assert plan.settings == options.applied_to(AnalysisSettings(chunks=settings.chunks))
    assert plan.settings.segments.min_still_s == 0.4 and plan.settings.reel.buffer_after_s == 0.0


@pytest.mark.parametrize(("fps", "analysed_fps"), [(25.0, 10.0), (10.0, 10.0), (4.0, 4.0), (0.5, 0.5)])
def test_a_video_is_never_analysed_at_more_frames_than_it_has(fps: float, analysed_fps: float) -> None:
    # Given a video at ``fps`` (a 4 fps camera, a time-lapse)
    source = SourceRef(bucket=UPLOADS, key=f"uploads/{JOB}/v.mp4")
    media, jobs = FakeMediaStore(), FakeJobStore(JobRecord(job_id=JOB, status=JobStatus.RUNNING))
    media.put(UPLOADS, source.key, b"not read: probe is replaced")
    info = VideoInfo(
        name="v.mp4", duration_s=8.0, fps=fps, width=640, height=360, codec="h264", has_audio=False
    )
    # When the plan is made
    with patch("posereel.pipeline.plan.probe", return_value=info):
        result = plan_job(
            PlanEvent(job_id=JOB, source=source), settings=pipeline_settings(), media=media, jobs=jobs
        )
    # Then it analyses each of its frames once at most: no frame decoded twice onto the grid
    plan = media.read_model(RESULTS, plan_key(JOB), PlanFile)
    assert plan.settings.sampling.target_fps == analysed_fps
    assert result.placement.compile == "lambda"  # 8 seconds: the Lambdas merge and compile it
