"""The engine on real footage, checked against ../shared/media/MANIFEST.md.

Each clip is analysed once per session (the fixture caches results); tests then assert what a
coach would check: where movement is found, how many people, and whether the reel is right.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from posereel import engine
from posereel.chunks import plan_chunks
from posereel.schemas import AnalysisResult, Segment, TracksFile
from posereel.settings import AnalysisSettings, ChunkSettings, RuntimeSettings
from posereel.stages.compile import Outputs

pytestmark = [pytest.mark.media, pytest.mark.slow]


class Analysed:
    def __init__(self, result: AnalysisResult, outputs: Outputs) -> None:
        self.result = result
        self.outputs = outputs

    @property
    def segments(self) -> list[Segment]:
        return self.result.segments

    def tracks(self) -> TracksFile:
        return TracksFile.model_validate_json(self.outputs.tracks.read_text())


@pytest.fixture(scope="session")
def analyse(tmp_path_factory, clip, models_dir):
    """analyse(name, chunk_seconds=..., overlap_seconds=..., workers=...) -> Analysed, cached per session."""
    cache: dict[tuple, Analysed] = {}
    runtime = RuntimeSettings(model_dir=models_dir)

    def run(
        name: str, *, chunk_seconds: float = 30.0, overlap_seconds: float = 2.0, workers: int = 1
    ) -> Analysed:
        key = (name, chunk_seconds, overlap_seconds, workers)
        if key not in cache:
            settings = AnalysisSettings(
                chunks=ChunkSettings(chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds)
            )
            out = tmp_path_factory.mktemp(f"{name}-{chunk_seconds:g}")
            result, outputs = engine.analyze_video(
                clip(name), out, settings=settings, runtime=runtime, workers=workers
            )
            cache[key] = Analysed(result, outputs)
        return cache[key]

    return run


def overlap_s(seg: Segment, start: float, end: float) -> float:
    return max(0.0, min(seg.end_s, end) - max(seg.start_s, start))


def covered_s(segments: list[Segment], start: float, end: float) -> float:
    return sum(overlap_s(s, start, end) for s in segments)


def test_walk_in_out_has_nothing_in_the_empty_room(analyse):
    # Given a clip whose last 1.5 s show an empty room
    run = analyse("sports2d_walk_in_out")
    # Then no segment reaches into it and no person is tracked there
    assert run.segments, "the walk itself is movement"
    assert all(overlap_s(s, 11.9, 13.4) == 0 for s in run.segments), run.segments
    late = [f for f in run.tracks().frames if f.t_s >= 11.9 and f.persons]
    assert late == []


def test_lateral_raise_reps_are_inside_segments_and_stillness_outside(analyse):
    run = analyse("sports2d_fitness_lateral_raise")
    assert covered_s(run.segments, 0.0, 1.3) == 0, run.segments
    assert covered_s(run.segments, 16.5, 18.0) == 0, run.segments
    # The manifest's boundaries are +-0.5 s: the core of every rep must be covered.
    for start, end in [(1.3, 5.0), (5.6, 8.9), (9.7, 12.7), (13.6, 16.5)]:
        core = (start + 0.5, end - 0.5)
        assert covered_s(run.segments, *core) == pytest.approx(core[1] - core[0], abs=0.11), (
            start,
            run.segments,
        )


def test_taiji_first_segment_starts_when_the_form_starts(analyse):
    run = analyse("hybrik_taiji")
    assert run.segments
    assert run.segments[0].start_s == pytest.approx(2.0, abs=0.6)


def test_crowd_gives_at_least_three_tracks(analyse):
    run = analyse("pets2009_vtest_crowd_walking")
    ids = {p.track_id for f in run.tracks().frames for p in f.persons}
    assert len(ids) >= 3, ids
    assert None not in ids


def test_chunked_run_agrees_with_one_pass(analyse):
    # Given the same clip analysed in one pass and as 5 s chunks with 1 s overlap
    one = analyse("hybrik_taiji")
    chunked = analyse("hybrik_taiji", chunk_seconds=5.0, overlap_seconds=1.0, workers=2)
    assert len(chunked.result.devices) >= 3, "the clip must really be split"
    # Then the segments agree within 0.3 s
    assert len(chunked.segments) == len(one.segments)
    for a, b in zip(one.segments, chunked.segments, strict=True):
        assert a.start_s == pytest.approx(b.start_s, abs=0.3)
        assert a.end_s == pytest.approx(b.end_s, abs=0.3)
    # And the primary subject keeps one id across every chunk border
    primary = chunked.result.primary_track_id
    assert primary is not None and primary == one.result.primary_track_id
    seen = [f.t_s for f in chunked.tracks().frames if any(p.track_id == primary for p in f.persons)]
    start, end = one.result.range_s
    plan = plan_chunks(
        end, start_s=start, chunk_seconds=5.0, overlap_seconds=1.0, grid_fps=one.result.analysis_fps
    )
    borders = [c.own_start_s for c in plan[1:]]
    assert len(borders) >= 2
    for border in borders:
        assert min(seen) < border < max(seen)
    ids = {p.track_id for f in chunked.tracks().frames for p in f.persons}
    assert ids == {p.track_id for f in one.tracks().frames for p in f.persons}


def _ffprobe_duration(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


def test_reel_is_the_sum_of_its_windows_and_decodes_cleanly(analyse):
    run = analyse("sports2d_fitness_lateral_raise")
    windows = run.result.reel_windows
    assert windows and run.outputs.reel is not None
    expected = sum(w.duration_s for w in windows)
    frame = 1.0 / run.result.video.fps
    assert _ffprobe_duration(run.outputs.reel) == pytest.approx(expected, abs=frame * len(windows))
    errors = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(run.outputs.reel), "-f", "null", "-"],
        capture_output=True,
        text=True,
    ).stderr
    assert errors == ""
    # And the EDL is the reel as cut: one event per window, back to back, as long as the reel
    events = [
        line.split() for line in run.outputs.segments_edl.read_text().splitlines() if line[:3].isdigit()
    ]
    assert len(events) == len(windows)
    base = round(run.result.video.fps)

    def seconds(tc: str) -> float:
        hh, mm, ss, ff = (int(part) for part in tc.split(":"))
        return hh * 3600 + mm * 60 + ss + ff / base

    assert [(seconds(e[4]), seconds(e[5])) for e in events] == [
        pytest.approx((w.start_s, w.end_s), abs=frame) for w in windows
    ]
    assert seconds(events[-1][7]) == pytest.approx(
        _ffprobe_duration(run.outputs.reel), abs=frame * len(windows)
    )


def test_every_artefact_is_written_and_readable(analyse):
    run = analyse("hybrik_taiji")
    o = run.outputs
    for path in (
        o.result,
        o.tracks,
        o.segments_json,
        o.metrics_json,
        o.segments_csv,
        o.segments_edl,
        o.timeline,
    ):
        assert path.stat().st_size > 0, path
    assert o.overlay is None  # the overlay video is made only when asked for
    assert len(o.thumbnails) == len(run.segments)
    frames = run.tracks().frames
    assert all(len(p.landmarks) == 33 for f in frames for p in f.persons)
    assert json.loads(o.result.read_text())["schema_version"] == "2"
    primary = [m for m in run.result.metrics if m.track_id == run.result.primary_track_id]
    assert primary and primary[0].coverage_pct > 90
