"""plan, merge and compile handlers on moto S3/DynamoDB with real ffprobe/ffmpeg: the plan tiles
the video and is keyframe-aware, merge stitches chunk results, compile uploads every artefact
with its content type and records the result. Chunk results are synthetic (no pose models)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from posereel.jobs import JobRecord, JobStatus, Stage
from posereel.pipeline.files import MergedFile, PlanFile, chunk_key, merged_key, plan_key
from posereel.video import grid_indices
from posereel_functions import compile, job_store, media_store, merge, plan
from tests.builders import (
    JOB,
    RESULTS,
    LambdaContext,
    analysis_with_segments,
    chunk_result,
    job_event,
    pattern_video,
    stage_event,
    upload_key,
)
from tests.functional.moto_pipeline import PipelineAws, pipeline_aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, clip: Callable[[str], Path]) -> Iterator[PipelineAws]:
    """A running job whose upload is the basketball clip (10 s), chunked 4 s with 1 s overlap."""
    with pipeline_aws(monkeypatch, chunks={"chunk_seconds": 4, "overlap_seconds": 1}) as stack:
        stack.put_upload(clip("mmaction2_basketball"), upload_key())
        assert job_store().create_if_absent(JobRecord(job_id=JOB, status=JobStatus.RUNNING, stage=Stage.PLAN))
        yield stack


def stored_plan() -> PlanFile:
    return media_store().read_model(RESULTS, plan_key(JOB), PlanFile)


def test_plan_writes_a_tiling_of_the_video_and_counts_the_chunks(aws: PipelineAws) -> None:
    # When
    result = plan.handler(stage_event(), LambdaContext())
    # Then
    assert result == {
        "plan_key": f"work/{JOB}/plan.json",
        "chunks": [{"index": 0}, {"index": 1}, {"index": 2}],
        "placement": {"merge": "lambda", "compile": "lambda"},  # 10 s of video: the Lambdas
    }
    stored = stored_plan()
    assert stored.video.width == 426 and stored.settings.chunks.chunk_seconds == 4
    chunks = stored.chunks
    assert chunks[0].own_start_s == 0 and chunks[-1].own_end_s == pytest.approx(stored.video.duration_s)
    assert all(a.own_end_s == b.own_start_s for a, b in pairwise(chunks))
    record = aws.job()
    assert record is not None and record.chunks_total == 3
    # A second run plans the same
    assert plan.handler(stage_event(), LambdaContext()) == result
    assert stored_plan() == stored


def test_chunk_starts_land_a_seek_preroll_after_a_keyframe(aws: PipelineAws, tmp_path: Path) -> None:
    # Given a 12 s video with a keyframe every 1.7 s; nominal starts 0, 2, 4, 6, 8 (4 s chunks, 2 s overlap)
    aws.configure(chunks={"chunk_seconds": 4, "overlap_seconds": 2})
    aws.put_upload(pattern_video(tmp_path / "gop17.mp4", 12.0, fps=10, gop=17), upload_key())
    # When
    plan.handler(stage_event(), LambdaContext())
    # Then each start is 0.5 s (the worker's seek preroll) after a keyframe, within 1 s of nominal
    assert [c.start_s for c in stored_plan().chunks] == pytest.approx([0.0, 2.2, 3.9, 5.6, 7.3])


def test_merge_stitches_the_chunk_results(aws: PipelineAws) -> None:
    # Given a plan and a result for each of its chunks, one person standing in all of them
    plan.handler(stage_event(), LambdaContext())
    planned = stored_plan()
    media = media_store()
    for chunk in planned.chunks:
        media.write_model(chunk_result(chunk, planned.video), RESULTS, chunk_key(JOB, chunk.index))
    # When
    result = merge.handler(job_event(), LambdaContext())
    # Then one track across the three chunks, standing still: no segment
    assert result == {"segments": 0, "tracks": 1}
    merged = media.read_model(RESULTS, merged_key(JOB), MergedFile)
    # and a second run reads what the first wrote
    assert merge.handler(job_event(), LambdaContext()) == result
    duration = planned.video.duration_s
    assert [f.index for f in merged.tracks.frames] == list(
        grid_indices(0, duration, target_fps=10, duration_s=duration)
    )


def test_merge_without_the_chunk_results_fails_naming_what_is_missing(aws: PipelineAws) -> None:
    plan.handler(stage_event(), LambdaContext())
    with pytest.raises(Exception) as caught:
        merge.handler(job_event(), LambdaContext())
    assert type(caught.value).__name__ == "ObjectNotFoundError" and "chunks/0000.json" in str(caught.value)


@pytest.mark.parametrize(
    ("spans", "reel"),
    [([(2.0, 4.0), (6.0, 7.5)], True), ([], False)],
    ids=["two-segments", "no-segments"],
)
def test_compile_uploads_every_artefact_with_its_type_and_records_the_result(
    aws: PipelineAws, spans: list[tuple[float, float]], reel: bool
) -> None:
    # Given a plan and a merged analysis
    plan.handler(stage_event(), LambdaContext())
    video = stored_plan().video
    result, tracks = analysis_with_segments(video, spans)
    media_store().write_model(MergedFile(job_id=JOB, result=result, tracks=tracks), RESULTS, merged_key(JOB))
    # When
    out = compile.handler(job_event(), LambdaContext())
    # Then
    prefix = f"results/{JOB}/"
    assert out["reel_key"] == (prefix + "reel.mp4" if reel else None)
    expected_duration = sum(min(video.duration_s, b + 0.5) - max(0.0, a - 0.5) for a, b in spans)
    assert out["reel_duration_s"] == pytest.approx(expected_duration, abs=0.1)
    s3 = aws.client("s3")
    types = {
        key.removeprefix(prefix): s3.head_object(Bucket=RESULTS, Key=key)["ContentType"]
        for key in aws.keys(RESULTS)
        if key.startswith(prefix)
    }
    expected = {
        "result.json": "application/json",
        "tracks.json": "application/json",
        "segments.json": "application/json",
        "metrics.json": "application/json",
        "segments.csv": "text/csv",
        "segments.edl": "text/plain",
        "reel.json": "application/json",
        "timeline.png": "image/png",
        "results.zip": "application/zip",
    }
    expected |= {f"thumbnails/segment_{i:03d}.jpg": "image/jpeg" for i in range(len(spans))}
    if reel:
        expected["reel.mp4"] = "video/mp4"
    assert types == expected
    record = aws.job()
    assert record is not None and record.result is not None
    assert (record.result.prefix, record.result.segments) == (prefix, len(spans))
    assert record.result.reel_duration_s == pytest.approx(out["reel_duration_s"])
    # A second run returns the same without rendering again
    assert compile.handler(job_event(), LambdaContext()) == out
