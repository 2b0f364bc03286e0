"""Motion energy on synthetic poses: units, invariances, gaps, visibility, the primary subject."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from posereel.motion import (
    PART_NAMES,
    TrackEnergy,
    all_track_energies,
    choose_primary,
    track_energy,
)
from posereel.schemas import FramePoses
from posereel.segments import find_segments
from posereel.settings import MotionSettings, SegmentSettings
from tests.builders import person_px, skeleton

FPS = 10.0

# --- scenes ---------------------------------------------------------------------------------

# A scene: t_s -> (offsets in body lengths, hip position px, body length px), or None if absent.
Scene = Callable[[float], tuple[np.ndarray, tuple[float, float], float] | None]


def film(
    scene: Scene, *, seconds: float, width: int = 1280, height: int = 720, noise_bl: float = 0.0
) -> list[FramePoses]:
    """Sample a scene on the analysis grid, adding Gaussian landmark jitter (in body lengths)."""
    rng = np.random.default_rng(7)
    frames = []
    for index in range(round(seconds * FPS)):
        t = index / FPS
        shot = scene(t)
        persons = []
        if shot is not None:
            offsets, hip, body_px = shot
            offsets = offsets + rng.normal(0.0, noise_bl, offsets.shape) if noise_bl else offsets
            persons.append(person_px(offsets, hip_px=hip, body_px=body_px, width=width, height=height))
        frames.append(FramePoses(index=index, t_s=t, persons=persons))
    return frames


def walking(speed_bl_s: float, *, body_px: float, start: tuple[float, float], direction=(1.0, 0.0)) -> Scene:
    """A rigid body translating at speed_bl_s body lengths per second."""

    def scene(t: float):
        d = np.asarray(direction) * speed_bl_s * body_px * t
        return skeleton(), (start[0] + d[0], start[1] + d[1]), body_px

    return scene


def raising(
    *, body_px: float, hip: tuple[float, float], begin_s: float, end_s: float, period_s: float = 2.0
) -> Scene:
    """Lateral raises with both arms (0 -> 80 degrees -> 0 each period) between begin_s and end_s."""

    def scene(t: float):
        angle = 0.0
        if begin_s <= t < end_s:
            angle = math.radians(80) * (1 - math.cos(2 * math.pi * (t - begin_s) / period_s)) / 2
        return skeleton(left_arm=angle, right_arm=angle), hip, body_px

    return scene


def energy_of(frames: list[FramePoses], *, width: int = 1280, height: int = 720, **kw) -> TrackEnergy:
    return track_energy(
        frames, track_id=0, width=width, height=height, fps=FPS, settings=MotionSettings(**kw)
    )


def made_energy(values: list[float], *, track_id: int, fps: float = FPS) -> TrackEnergy:
    """A TrackEnergy from raw values (NaN = absent), for choose_primary."""
    energy = np.asarray(values, dtype=float)
    present = np.isfinite(energy)
    return TrackEnergy(
        track_id=track_id,
        first_index=0,
        fps=fps,
        t_s=np.arange(energy.size) / fps,
        energy=energy,
        part_energy={name: energy for name in PART_NAMES},
        present=present,
        body_length_px=np.where(present, 100.0, np.nan),
    )


# --- units and invariances ---------------------------------------------------------------------


@pytest.mark.parametrize("speed", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("body_px", [80.0, 400.0])
@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1080, 1920)])
def test_rigid_walk_energy_is_its_speed_in_body_lengths_per_second(speed, body_px, width, height):
    # Given a body gliding sideways at a known speed
    scene = walking(speed, body_px=body_px, start=(0.1 * width, 0.6 * height))
    frames = film(scene, seconds=3, width=width, height=height)
    # When its energy is measured
    energy = energy_of(frames, width=width, height=height).energy
    # Then every sample reads that speed, whatever the body's size in pixels or the frame's aspect
    assert np.allclose(energy, speed, rtol=1e-6)


@pytest.mark.parametrize("direction", [(1.0, 0.0), (0.0, 1.0), (0.6, 0.8)])
def test_energy_does_not_depend_on_direction_in_a_non_square_frame(direction):
    frames = film(walking(0.8, body_px=150, start=(300, 150), direction=direction), seconds=2)
    assert np.allclose(energy_of(frames).energy, 0.8, rtol=1e-6)


def test_same_motion_at_half_size_elsewhere_in_frame_gives_the_same_energy():
    # Given the same lateral raises filmed big on the left and at half size on the right
    big = film(raising(body_px=400, hip=(300, 450), begin_s=1, end_s=5), seconds=6)
    small = film(raising(body_px=200, hip=(1000, 300), begin_s=1, end_s=5), seconds=6)
    # Then the energies (and each part's) agree
    a, b = energy_of(big), energy_of(small)
    assert np.allclose(a.energy, b.energy, rtol=1e-9)
    for name in PART_NAMES:
        assert np.allclose(a.part_energy[name], b.part_energy[name], rtol=1e-9, equal_nan=True)
    assert a.energy.max() > 0.3


# --- what registers as movement ----------------------------------------------------------------


def test_still_pose_with_jitter_stays_far_below_the_enter_threshold_and_makes_no_segment():
    # Given a person standing still with landmark jitter (about what MediaPipe lite shows)
    scene = raising(body_px=250, hip=(640, 450), begin_s=99, end_s=99)
    frames = film(scene, seconds=10, noise_bl=0.005)
    energies = all_track_energies(frames, width=1280, height=720, fps=FPS, settings=MotionSettings())
    # Then energy stays low and no segment is found
    defaults = SegmentSettings()
    assert np.nanmax(energies[0].energy) < 0.5 * defaults.enter_threshold
    assert find_segments(energies, settings=defaults) == []


def test_arm_only_movement_registers_and_names_the_arms():
    # Given still, then four lateral raises (2-10 s), then still, with jitter
    frames = film(raising(body_px=250, hip=(640, 450), begin_s=2, end_s=10), seconds=13, noise_bl=0.004)
    energies = all_track_energies(frames, width=1280, height=720, fps=FPS, settings=MotionSettings())
    # Then the arms carry the energy
    te = energies[0]
    moving = (te.t_s > 2.5) & (te.t_s < 9.5)
    for part in ("head", "torso", "left_leg", "right_leg"):
        assert np.nanmean(te.part_energy[part][moving]) < 0.1
    assert np.nanmean(te.energy[moving]) > 0.3
    # And one segment covers the reps, starting and ending near the truth
    found = find_segments(energies, settings=SegmentSettings())
    assert len(found) == 1
    assert found[0].start_s == pytest.approx(2.0, abs=0.5)
    assert found[0].end_s == pytest.approx(10.0, abs=0.5)
    assert set(found[0].top_parts[:2]) == {"left_arm", "right_arm"}


def test_energy_is_the_mean_of_the_two_most_moving_parts():
    frames = film(raising(body_px=250, hip=(640, 450), begin_s=0, end_s=4), seconds=4)
    te = energy_of(frames, smooth_window_s=0)
    parts = np.stack([te.part_energy[name] for name in PART_NAMES], axis=1)[1:]
    top_two = np.sort(parts, axis=1)[:, -2:].mean(axis=1)
    assert np.allclose(te.energy[1:], top_two)


@pytest.mark.parametrize(("visibility", "moves"), [(0.1, False), (0.9, True)])
def test_landmarks_below_min_visibility_are_ignored(visibility, moves):
    # Given a still body whose left wrist flickers wildly
    rng = np.random.default_rng(1)
    vis = np.full(33, 0.99)
    vis[15] = visibility
    frames = []
    for index in range(30):
        offsets = skeleton()
        offsets[15] = rng.uniform(-1, 1, 2)
        frames.append(
            FramePoses(
                index=index,
                t_s=index / FPS,
                persons=[
                    person_px(offsets, hip_px=(640, 450), body_px=250, width=1280, height=720, visibility=vis)
                ],
            )
        )
    # Then the flicker only counts when the wrist is visible enough
    te = energy_of(frames, min_visibility=0.5)
    assert bool(np.nanmax(te.energy) > 0.5) is moves
    if not moves:
        assert np.nanmax(te.energy) == 0.0


# --- gaps, grid and lifetime ------------------------------------------------------------------


def test_absent_frames_are_nan_not_zero():
    # Given a walk in which the person is missed for frames 30-39
    walk = walking(1.0, body_px=150, start=(100, 400))
    frames = film(lambda t: None if 3.0 <= t < 4.0 - 1e-9 else walk(t), seconds=6)
    te = energy_of(frames)
    gap = (te.t_s >= 3.0 - 1e-9) & (te.t_s < 4.0 - 1e-9)
    # Then the gap is NaN in the energy and in every part, and the rest still reads the speed
    assert gap.sum() == 10 and np.isnan(te.energy[gap]).all()
    for name in PART_NAMES:
        assert np.isnan(te.part_energy[name][gap]).all()
    assert np.allclose(te.energy[~gap], 1.0, rtol=1e-6)
    assert te.frames_seen == 50 and te.seen_s == pytest.approx(5.0)


def test_series_spans_the_track_lifetime_and_untracked_people_are_ignored():
    # Given track 3 seen from 1.0 s to 2.9 s, and an untracked person all along
    frames = []
    for index in range(50):
        persons = [
            person_px(skeleton(), hip_px=(200, 400), body_px=200, width=1280, height=720, track_id=None)
        ]
        if 10 <= index < 30:
            persons.append(
                person_px(skeleton(), hip_px=(900, 400), body_px=200, width=1280, height=720, track_id=3)
            )
        frames.append(FramePoses(index=index, t_s=index / FPS, persons=persons))
    energies = all_track_energies(frames, width=1280, height=720, fps=FPS)
    assert list(energies) == [3]
    te = energies[3]
    assert te.t_s[0] == pytest.approx(1.0) and te.t_s[-1] == pytest.approx(2.9)
    assert te.first_index == 10 and te.energy.shape == (20,)
    series = te.to_series()
    assert series.track_id == 3 and len(series.energy) == 20


def test_to_series_writes_gaps_as_null():
    series = made_energy([0.1, math.nan, 0.3], track_id=1).to_series()
    assert series.energy == [0.1, None, 0.3]
    assert series.t_s == [0.0, 0.1, 0.2]


def test_one_collapsed_torso_frame_does_not_change_the_scale():
    walk = walking(1.0, body_px=200, start=(100, 400))

    def scene(t: float):
        offsets, hip, body = walk(t)
        if abs(t - 1.5) < 1e-9:
            offsets = offsets.copy()
            offsets[[11, 12], 1] = -0.01  # shoulders drop onto the hips for one frame
        return offsets, hip, body

    te = energy_of(film(scene, seconds=3))
    assert np.allclose(te.body_length_px, 200.0)


# --- the primary subject ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tracks", "primary"),
    [
        ({}, None),
        ({1: [0.05] * 100, 2: [0.05] * 40 + [math.nan] * 60}, 1),  # seen longer wins
        ({1: [0.02] * 100, 2: [0.4] * 100}, 2),  # same time seen: the one moving wins
        ({1: [0.02] * 100, 2: [5.0] * 40 + [math.nan] * 60}, 1),  # wild but brief loses
        ({4: [0.1] * 50, 2: [0.1] * 50}, 2),  # a tie goes to the lower id
        ({1: [math.nan] * 10}, None),  # never seen
    ],
)
def test_choose_primary(tracks, primary):
    energies = {tid: made_energy(values, track_id=tid) for tid, values in tracks.items()}
    assert choose_primary(energies, fps=FPS) == primary


@pytest.mark.parametrize("frames_seen", [1, 2, 3, 7])
def test_tracks_shorter_than_the_smoothing_window_work(frames_seen):
    walk = walking(1.0, body_px=150, start=(100, 400))
    frames = film(lambda t: walk(t) if t < frames_seen / FPS - 1e-9 else None, seconds=2)
    te = energy_of(frames, smooth_window_s=1.0)
    assert te.energy.shape == (frames_seen,)
    if frames_seen > 1:
        assert np.allclose(te.energy, 1.0, rtol=1e-6)
    else:
        assert np.isnan(te.energy).all()
