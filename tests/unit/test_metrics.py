"""Track metrics on constructed tracks with known gaps, distance and jitter."""

from __future__ import annotations

import numpy as np
import pytest

from posereel.metrics import range_indices, track_metrics
from posereel.motion import BODY_LENGTHS_PER_TORSO
from posereel.schemas import FramePoses, PersonPose

FPS = 10.0
W, H = 1280, 720

# --- builders ---------------------------------------------------------------------------------

# 33 landmarks in body lengths around the hip centre: a fixed spread of points, with the
# shoulders exactly one torso (1 / BODY_LENGTHS_PER_TORSO) above the hips.
_OFFSETS = np.random.default_rng(3).uniform(-0.3, 0.3, (33, 2))
_OFFSETS[[11, 12]] = [(0.1, -1 / BODY_LENGTHS_PER_TORSO), (-0.1, -1 / BODY_LENGTHS_PER_TORSO)]
_OFFSETS[[23, 24]] = [(0.06, 0.0), (-0.06, 0.0)]


def body(
    hip_px: tuple[float, float], *, body_px: float, track_id: int | None, offsets: np.ndarray = _OFFSETS
) -> PersonPose:
    norm = (np.asarray(hip_px) + offsets * body_px) / np.array([W, H])
    landmarks = [(float(x), float(y), 0.0, 0.99) for x, y in norm]
    box = (float(norm[:, 0].min()), float(norm[:, 1].min()), float(norm[:, 0].max()), float(norm[:, 1].max()))
    return PersonPose(track_id=track_id, score=0.9, box=box, landmarks=landmarks)


def frames_of(n: int, place) -> list[FramePoses]:
    """n grid frames; place(index) -> list of PersonPose in that frame."""
    return [FramePoses(index=i, t_s=i / FPS, persons=place(i)) for i in range(n)]


def one(metrics, track_id=0):
    [m] = [m for m in metrics if m.track_id == track_id]
    return m


# --- coverage and gaps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seen", "coverage", "gaps", "longest_gap_s"),
    [
        pytest.param(range(100), 100.0, 0, 0.0, id="always seen"),
        pytest.param(range(10, 90), 80.0, 0, 0.0, id="enters late, leaves early: no gap"),
        pytest.param(
            [i for i in range(10, 90) if not (30 <= i < 35 or 60 <= i < 62)], 73.0, 2, 0.5, id="two gaps"
        ),
        pytest.param([0, 99], 2.0, 1, 9.8, id="seen at both ends only"),
    ],
)
def test_coverage_and_gaps(seen, coverage, gaps, longest_gap_s):
    # Given a track seen on some of 100 frames (10 s at 10 fps)
    seen = set(seen)
    frames = frames_of(100, lambda i: [body((640, 400), body_px=200, track_id=0)] if i in seen else [])
    m = one(track_metrics(frames, range_s=(0.0, 10.0), fps=FPS, width=W, height=H))
    assert m.coverage_pct == pytest.approx(coverage)
    assert m.gaps == gaps
    assert m.longest_gap_s == pytest.approx(longest_gap_s)


def test_only_the_range_counts():
    # Given a track seen on frames 0-49 and a range of 2.0-4.0 s
    frames = frames_of(100, lambda i: [body((640, 400), body_px=200, track_id=0)] if i < 50 else [])
    # Then the range has 20 frames, the track is in 100 % of them, and tracks outside are absent
    assert range_indices((2.0, 4.0), FPS) == (20, 40)
    assert one(track_metrics(frames, range_s=(2.0, 4.0), fps=FPS, width=W, height=H)).coverage_pct == 100.0
    assert track_metrics(frames, range_s=(6.0, 9.0), fps=FPS, width=W, height=H) == []


def test_tracks_are_listed_by_id_and_untracked_people_ignored():
    frames = frames_of(
        20,
        lambda i: [
            body((300, 400), body_px=200, track_id=5),
            body((900, 400), body_px=200, track_id=2),
            body((640, 400), body_px=200, track_id=None),
        ],
    )
    assert [m.track_id for m in track_metrics(frames, range_s=(0, 2), fps=FPS, width=W, height=H)] == [2, 5]


# --- distance and jitter ------------------------------------------------------------------------


@pytest.mark.parametrize("body_px", [100.0, 300.0])
@pytest.mark.parametrize("speed", [0.5, 1.5])
def test_distance_is_the_hip_path_in_body_lengths(speed, body_px):
    # Given a body walking at `speed` body lengths per second for 10 s, one second missed midway
    def place(i: int):
        if 50 <= i < 60:
            return []
        return [
            body((50 + speed * body_px * i / FPS, 400 + 0.2 * body_px * i / FPS), body_px=body_px, track_id=0)
        ]

    m = one(track_metrics(frames_of(100, place), range_s=(0, 10), fps=FPS, width=W, height=H))
    # Then the distance is speed x time along the path (the gap's straight line included)
    path = np.hypot(speed, 0.2) * 9.9
    assert m.distance_body_lengths == pytest.approx(path, rel=0.05)
    assert (m.gaps, m.longest_gap_s) == (1, 1.0)


def test_a_still_body_travels_nowhere_and_is_perfectly_steady():
    frames = frames_of(50, lambda i: [body((640, 400), body_px=200, track_id=0)])
    m = one(track_metrics(frames, range_s=(0, 5), fps=FPS, width=W, height=H))
    assert m.distance_body_lengths == pytest.approx(0.0, abs=1e-9)
    assert m.jitter == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("body_px", [100.0, 300.0])
def test_jitter_measures_landmark_noise_in_body_lengths(body_px):
    # Given a still body whose landmarks shake by sigma body lengths (noise, no real motion)
    rng = np.random.default_rng(11)
    sigma = 0.01

    def place(i: int):
        shaken = _OFFSETS + rng.normal(0.0, sigma, _OFFSETS.shape)
        return [body((640, 400), body_px=body_px, track_id=0, offsets=shaken)]

    m = one(track_metrics(frames_of(200, place), range_s=(0, 20), fps=FPS, width=W, height=H))
    # Then jitter is the mean |second difference|: sqrt(6) sigma per axis, Rayleigh mean
    expected = np.sqrt(6) * sigma * np.sqrt(np.pi / 2)
    assert m.jitter == pytest.approx(expected, rel=0.1)
    # And smoothing keeps the hip path well below the raw shaking (hip centre: sigma / sqrt(2) per
    # axis, so a raw step averages sigma * sqrt(pi / 2))
    raw_path = 199 * sigma * np.sqrt(np.pi / 2)
    assert m.distance_body_lengths < 0.5 * raw_path


def test_steadier_track_has_lower_jitter():
    rng = np.random.default_rng(5)

    def place(i: int):
        calm = _OFFSETS + rng.normal(0, 0.002, _OFFSETS.shape)
        shaky = _OFFSETS + rng.normal(0, 0.02, _OFFSETS.shape)
        return [
            body((300, 400), body_px=200, track_id=1, offsets=calm),
            body((900, 400), body_px=200, track_id=2, offsets=shaky),
        ]

    calm, shaky = track_metrics(frames_of(50, place), range_s=(0, 5), fps=FPS, width=W, height=H)
    assert calm.jitter < shaky.jitter / 5
