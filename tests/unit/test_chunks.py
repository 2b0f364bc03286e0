"""Chunk planning and merging: owned ranges tile the video, and a chunked run numbers people
exactly like one pass over the whole sequence."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import pytest

from posereel.chunks import merge_chunk_results, plan_chunks
from posereel.errors import ChunkMergeError, InputError
from posereel.linking import drop_short_tracks
from posereel.schemas import ChunkResult, ChunkSpec, FramePoses, PersonPose, VideoInfo
from posereel.settings import TrackingSettings
from posereel.tracking import track_frames

FPS = 10.0
VIDEO = VideoInfo(
    name="synthetic.mp4", duration_s=14.0, fps=30.0, width=1280, height=720, codec="h264", has_audio=False
)
ASPECT = VIDEO.width / VIDEO.height
TRACKING = TrackingSettings()

# --- plan_chunks ----------------------------------------------------------------------------------

PLANS = [
    pytest.param(95.0, 30.0, 2.0, 10.0, id="several chunks"),
    pytest.param(30.0, 30.0, 2.0, 10.0, id="exactly one chunk"),
    pytest.param(7.7, 30.0, 2.0, 10.0, id="shorter than a chunk"),
    pytest.param(40.0, 30.0, 2.0, 10.0, id="small remainder folded"),
    pytest.param(44.0, 30.0, 2.0, 10.0, id="large remainder kept"),
    pytest.param(100.0, 10.0, 0.0, 10.0, id="no overlap"),
    pytest.param(12.34, 5.0, 1.0, 10.0, id="duration off the grid"),
    pytest.param(61.0, 10.0, 1.3, 29.97, id="fractional fps"),
    pytest.param(18.0, 5.0, 0.5, 10.0, id="odd overlap in grid steps"),
    pytest.param(0.05, 5.0, 1.0, 10.0, id="shorter than a grid step"),
]


def on_grid(t_s: float, fps: float) -> bool:
    return abs(t_s * fps - round(t_s * fps)) < 1e-6


@pytest.mark.parametrize(("duration", "chunk", "overlap", "fps"), PLANS)
def test_plan_chunks_tiles_the_video(duration: float, chunk: float, overlap: float, fps: float) -> None:
    # When a video is planned
    specs = plan_chunks(duration, chunk_seconds=chunk, overlap_seconds=overlap, grid_fps=fps)
    # Then the owned ranges tile [0, duration) exactly, in order
    assert [s.index for s in specs] == list(range(len(specs)))
    assert specs[0].start_s == specs[0].own_start_s == 0
    assert specs[-1].end_s == specs[-1].own_end_s == duration
    for a, b in pairwise(specs):
        assert a.own_end_s == b.own_start_s
    for s in specs:
        assert s.start_s <= s.own_start_s < s.own_end_s <= s.end_s
    # And every border except the video's end is on the grid
    for s in specs:
        assert on_grid(s.start_s, fps) and on_grid(s.own_start_s, fps)
        if s is not specs[-1]:
            assert on_grid(s.end_s, fps) and on_grid(s.own_end_s, fps)


@pytest.mark.parametrize(("duration", "chunk", "overlap", "fps"), PLANS)
def test_plan_chunks_overlaps_and_sizes(duration: float, chunk: float, overlap: float, fps: float) -> None:
    specs = plan_chunks(duration, chunk_seconds=chunk, overlap_seconds=overlap, grid_fps=fps)
    step = 1 / fps
    snapped_overlap = round(overlap * fps) / fps
    for a, b in pairwise(specs):
        # consecutive chunks share the overlap, and the border sits in its middle (within a grid step)
        assert math.isclose(a.end_s - b.start_s, snapped_overlap, abs_tol=1e-9)
        assert abs(b.own_start_s - (b.start_s + a.end_s) / 2) <= step / 2 + 1e-9
    lengths = [s.end_s - s.start_s for s in specs]
    # all but the last are one chunk long; the last is neither tiny nor much more than a chunk
    for length in lengths[:-1]:
        assert math.isclose(length, round(chunk * fps) / fps, abs_tol=1e-9)
    assert lengths[-1] < 1.5 * chunk + step
    if len(specs) > 1:
        assert lengths[-1] >= 0.5 * chunk
    else:
        assert duration < 1.5 * chunk + step


@pytest.mark.parametrize(("duration", "chunk", "overlap", "fps"), PLANS)
def test_every_grid_frame_is_owned_once_and_decoded_by_its_owner(
    duration: float, chunk: float, overlap: float, fps: float
) -> None:
    specs = plan_chunks(duration, chunk_seconds=chunk, overlap_seconds=overlap, grid_fps=fps)
    for i in range(math.ceil(duration * fps - 1e-6)):
        t = i / fps
        owners = [s for s in specs if s.own_start_s - 1e-9 <= t < s.own_end_s - 1e-9]
        assert len(owners) == 1, (i, owners)
        assert owners[0].start_s - 1e-9 <= t < owners[0].end_s - 1e-9


@pytest.mark.parametrize(
    ("duration", "expected_chunks"),
    [(5.0, 1), (30.0, 1), (40.0, 1), (42.9, 1), (43.0, 2), (58.0, 2), (70.9, 2), (71.0, 3)],
)
def test_plan_chunks_count(duration: float, expected_chunks: int) -> None:
    # 30 s chunks, 2 s overlap (28 s stride): a last chunk under 15 s is folded into the one before
    specs = plan_chunks(duration, chunk_seconds=30, overlap_seconds=2, grid_fps=10)
    assert len(specs) == expected_chunks


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(
            {"duration_s": 60, "chunk_seconds": 10, "overlap_seconds": 10, "grid_fps": 10}, id="overlap=chunk"
        ),
        pytest.param(
            {"duration_s": 60, "chunk_seconds": 10, "overlap_seconds": 12, "grid_fps": 10}, id="overlap>chunk"
        ),
        pytest.param(
            {"duration_s": 60, "chunk_seconds": 10, "overlap_seconds": -1, "grid_fps": 10}, id="negative"
        ),
        pytest.param(
            {"duration_s": 0, "chunk_seconds": 10, "overlap_seconds": 1, "grid_fps": 10}, id="empty video"
        ),
        pytest.param(
            {"duration_s": 60, "chunk_seconds": 10, "overlap_seconds": 1, "grid_fps": 0}, id="no grid"
        ),
        pytest.param(
            {"duration_s": 60, "chunk_seconds": 0.01, "overlap_seconds": 0, "grid_fps": 10}, id="tiny chunk"
        ),
        pytest.param(
            {"duration_s": 60, "chunk_seconds": 1.0, "overlap_seconds": 0.96, "grid_fps": 10},
            id="overlap snaps to chunk",
        ),
    ],
)
def test_plan_chunks_rejects_bad_input(kwargs: dict[str, float]) -> None:
    duration = kwargs.pop("duration_s")  # the end of the range, from 0
    with pytest.raises(InputError):
        plan_chunks(duration, **kwargs)


# --- a synthetic multi-person sequence ---------------------------------------------------------------

# Standing body template in body heights relative to the hip centre (y down), 33 landmarks.
_TEMPLATE = [
    (0.0, -0.45), (-0.01, -0.47), (-0.015, -0.47), (-0.02, -0.47), (0.01, -0.47), (0.015, -0.47),
    (0.02, -0.47), (-0.03, -0.46), (0.03, -0.46), (-0.01, -0.43), (0.01, -0.43), (-0.1, -0.32),
    (0.1, -0.32), (-0.14, -0.17), (0.14, -0.17), (-0.16, -0.04), (0.16, -0.04), (-0.17, -0.01),
    (0.17, -0.01), (-0.16, -0.01), (0.16, -0.01), (-0.15, -0.02), (0.15, -0.02), (-0.06, 0.0),
    (0.06, 0.0), (-0.06, 0.24), (0.06, 0.24), (-0.06, 0.46), (0.06, 0.46), (-0.06, 0.48),
    (0.06, 0.48), (-0.04, 0.5), (0.04, 0.5),
]  # fmt: skip


@dataclass(frozen=True)
class Walker:
    """A person walking from x0 to x1 (fractions of the width) between t0_s and t1_s."""

    t0_s: float
    t1_s: float
    x0: float
    x1: float
    y: float = 0.6
    height: float = 0.45
    missed: tuple[int, ...] = ()  # grid indices where the detector misses them

    def at(self, index: int) -> PersonPose | None:
        t = index / FPS
        if not self.t0_s <= t < self.t1_s or index in self.missed:
            return None
        x = self.x0 + (self.x1 - self.x0) * (t - self.t0_s) / (self.t1_s - self.t0_s)
        swing = 0.03 * math.sin(2 * t)
        landmarks = [
            (x + (dx * (1 + swing * (k > 12))) * self.height / ASPECT, self.y + dy * self.height, 0.0, 0.95)
            for k, (dx, dy) in enumerate(_TEMPLATE)
        ]
        xs, ys = [p[0] for p in landmarks], [p[1] for p in landmarks]
        return PersonPose(score=0.9, box=(min(xs), min(ys), max(xs), max(ys)), landmarks=landmarks)


CROWD = [
    Walker(0.0, 14.0, 0.1, 0.9, missed=(38, 39, 40)),  # whole video, missed around the 4 s border
    Walker(1.0, 9.5, 0.85, 0.15, y=0.5, height=0.35),  # crosses the first one around 5 s
    Walker(3.2, 6.0, 0.45, 0.6, y=0.75),  # a short visit over a chunk border
    Walker(8.0, 14.0, 0.95, 0.55, y=0.55, height=0.4),  # enters late
    Walker(10.7, 10.9, 0.3, 0.3, y=0.3),  # a 2-frame flicker
]


def sequence(walkers: list[Walker], duration_s: float = VIDEO.duration_s) -> list[FramePoses]:
    frames = []
    for i in range(round(duration_s * FPS)):
        persons = [p for p in (w.at(i) for w in walkers) if p is not None]
        frames.append(FramePoses(index=i, t_s=i / FPS, persons=persons))
    return frames


def chunk_results(
    frames: list[FramePoses],
    specs: list[ChunkSpec],
    *,
    video: VideoInfo = VIDEO,
    tracking: TrackingSettings = TRACKING,
) -> list[ChunkResult]:
    """Track each chunk on its own, as a worker does, then scramble the local ids so that they
    differ from chunk to chunk."""
    results = []
    for spec in specs:
        decoded = [f for f in frames if spec.start_s - 1e-9 <= f.t_s < spec.end_s - 1e-9]
        local = track_frames(decoded, tracking, fps=FPS)
        scrambled = [
            f.model_copy(
                update={
                    "persons": [
                        p.model_copy(update={"track_id": 50 + 7 * spec.index - (p.track_id or 0)})
                        for p in f.persons
                    ]
                }
            )
            for f in local
        ]
        results.append(
            ChunkResult(
                chunk=spec, video=video, analysis_fps=FPS, model="lite", device="cpu", frames=scrambled
            )
        )
    return results


def ids_by_position(frames: list[FramePoses]) -> list[list[tuple[int, int | None]]]:
    """Per frame, (hip x in thousandths, track id) of every person."""
    return [
        sorted((round(500 * (p.landmarks[23][0] + p.landmarks[24][0])), p.track_id) for p in f.persons)
        for f in frames
    ]


def one_pass_of(frames: list[FramePoses]) -> list[FramePoses]:
    """The sequence tracked in one pass, ids renumbered by first appearance."""
    return drop_short_tracks(track_frames(frames, TRACKING, fps=FPS), min_frames=1)


def merged_frames(results: list[ChunkResult], *, tracking: TrackingSettings) -> list[FramePoses]:
    """The merged frames, ids renumbered by first appearance (as one pass is)."""
    return drop_short_tracks(merge_chunk_results(results, tracking=tracking).frames, min_frames=1)


# --- merge_chunk_results --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunk_s", "overlap_s"),
    [(4.0, 1.0), (5.0, 1.0), (3.0, 0.6), (6.0, 2.0), (30.0, 2.0)],
)
def test_chunked_run_equals_one_pass(chunk_s: float, overlap_s: float) -> None:
    # Given a multi-person sequence tracked in one pass
    frames = sequence(CROWD)
    one_pass = one_pass_of(frames)
    assert len({p.track_id for f in one_pass for p in f.persons}) == 5  # the flicker too
    # And the same sequence tracked chunk by chunk, results arriving in reverse order
    specs = plan_chunks(VIDEO.duration_s, chunk_seconds=chunk_s, overlap_seconds=overlap_s, grid_fps=FPS)
    results = chunk_results(frames, specs)[::-1]
    # When merged
    merged = merged_frames(results, tracking=TRACKING)
    # Then frames and ids are exactly those of the single pass
    assert merged == one_pass


def test_single_chunk_is_just_renumbered() -> None:
    frames = sequence(CROWD)
    [spec] = plan_chunks(VIDEO.duration_s, chunk_seconds=60, overlap_seconds=2, grid_fps=FPS)
    merged = merged_frames(chunk_results(frames, [spec]), tracking=TRACKING)
    assert merged == one_pass_of(frames)
    assert sorted({p.track_id for f in merged for p in f.persons}) == [0, 1, 2, 3, 4]


def test_stitching_tolerates_detections_that_differ_between_chunks() -> None:
    # Given chunks whose overlap frames came out slightly differently (each worker ran its own
    # detector): chunk 1 sees everyone shifted by 0.4 % of the width
    frames = sequence(CROWD)
    specs = plan_chunks(VIDEO.duration_s, chunk_seconds=5, overlap_seconds=1, grid_fps=FPS)
    shifted = [
        f.model_copy(
            update={
                "persons": [
                    p.model_copy(
                        update={
                            "landmarks": [(x + 0.004, y, z, v) for x, y, z, v in p.landmarks],
                            "box": (p.box[0] + 0.004, p.box[1], p.box[2] + 0.004, p.box[3]),
                        }
                    )
                    for p in f.persons
                ]
            }
        )
        for f in frames
    ]
    results = chunk_results(frames, specs)
    results[1] = chunk_results(shifted, specs)[1]
    # When merged
    merged = merged_frames(results, tracking=TRACKING)
    # Then the ids per person are those of one pass
    one_pass = one_pass_of(frames)
    assert [[tid for _, tid in f] for f in ids_by_position(merged)] == [
        [tid for _, tid in f] for f in ids_by_position(one_pass)
    ]


def test_empty_chunk_in_the_middle() -> None:
    # Given people before 3 s and after 10 s only, and chunks of 4 s
    walkers = [Walker(0.0, 3.0, 0.2, 0.4), Walker(10.0, 14.0, 0.7, 0.5), Walker(10.5, 14.0, 0.2, 0.3, y=0.5)]
    frames = sequence(walkers)
    specs = plan_chunks(VIDEO.duration_s, chunk_seconds=4, overlap_seconds=1, grid_fps=FPS)
    results = chunk_results(frames, specs)
    assert any(not any(f.persons for f in r.frames) for r in results)
    # When merged
    merged = merged_frames(results, tracking=TRACKING)
    # Then it matches one pass: three people, numbered by first appearance
    assert merged == one_pass_of(frames)
    assert sorted({p.track_id for f in merged for p in f.persons}) == [0, 1, 2]


def test_people_who_do_not_overlap_in_time_are_not_stitched() -> None:
    # Given one person leaving just before a border and another entering just after it
    # at the same place (nobody is seen in both chunks at once)
    walkers = [Walker(0.0, 4.3, 0.3, 0.5), Walker(4.7, 9.0, 0.5, 0.7)]
    frames = sequence(walkers, duration_s=9.0)
    video = VIDEO.model_copy(update={"duration_s": 9.0})
    specs = plan_chunks(9.0, chunk_seconds=5, overlap_seconds=1, grid_fps=FPS)
    tracking = TrackingSettings(lost_after_s=0.2)
    merged = merged_frames(chunk_results(frames, specs, video=video, tracking=tracking), tracking=tracking)
    # Then they are two people
    assert sorted({p.track_id for f in merged for p in f.persons}) == [0, 1]


def test_each_grid_index_appears_once_in_order() -> None:
    frames = sequence(CROWD)
    specs = plan_chunks(VIDEO.duration_s, chunk_seconds=3, overlap_seconds=1, grid_fps=FPS)
    merged = merged_frames(chunk_results(frames, specs), tracking=TRACKING)
    assert [f.index for f in merged] == [f.index for f in frames]


def _results() -> list[ChunkResult]:
    specs = plan_chunks(VIDEO.duration_s, chunk_seconds=5, overlap_seconds=1, grid_fps=FPS)
    return chunk_results(sequence(CROWD), specs)


def _without_chunk(index: int) -> list[ChunkResult]:
    return [r for r in _results() if r.chunk.index != index]


def _with_fps(fps: float) -> list[ChunkResult]:
    results = _results()
    results[1] = results[1].model_copy(update={"analysis_fps": fps})
    return results


def _with_video(name: str) -> list[ChunkResult]:
    results = _results()
    results[2] = results[2].model_copy(update={"video": VIDEO.model_copy(update={"name": name})})
    return results


def _with_untracked_person() -> list[ChunkResult]:
    results = _results()
    frames = list(results[0].frames)
    frames[5] = frames[5].model_copy(
        update={"persons": [p.model_copy(update={"track_id": None}) for p in frames[5].persons]}
    )
    results[0] = results[0].model_copy(update={"frames": frames})
    return results


def _with_repeated_chunk() -> list[ChunkResult]:
    results = _results()
    return [*results, results[1]]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: [], id="nothing to merge"),
        pytest.param(lambda: _without_chunk(1), id="missing middle chunk"),
        pytest.param(lambda: _without_chunk(0), id="missing first chunk"),
        pytest.param(_with_repeated_chunk, id="repeated chunk"),
        pytest.param(lambda: _with_fps(5.0), id="different analysis fps"),
        pytest.param(lambda: _with_video("other.mp4"), id="different video"),
        pytest.param(_with_untracked_person, id="person without track id"),
    ],
)
def test_merge_rejects_inconsistent_results(make) -> None:
    # A pipeline fault (the job FAILS), not a bad upload (it would be REJECTED).
    with pytest.raises(ChunkMergeError):
        merge_chunk_results(make(), tracking=TRACKING)
