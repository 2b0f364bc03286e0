"""pose: the MediaPipe -> PersonPose conversion, and PoseEstimator on real footage."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from posereel.pose import AdaptivePoseEstimator, PoseEstimator
from posereel.settings import PoseSettings
from posereel.video import probe, sample_frames

NOSE, LEFT_HIP, RIGHT_HIP = 0, 23, 24


@pytest.fixture(scope="module")
def astronaut_rgb(media_dir) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(media_dir / "astronaut.png"))
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def lite_model(models_dir):
    return models_dir / "pose_landmarker_lite.task"


# --- PoseEstimator --------------------------------------------------------------------------


@pytest.mark.media
def test_astronaut_photo_gives_one_person(astronaut_rgb, lite_model):
    with PoseEstimator(PoseSettings(num_poses=2), lite_model) as estimator:
        persons = estimator.detect(astronaut_rgb, 0)
    assert len(persons) == 1
    (person,) = persons
    assert len(person.landmarks) == 33
    assert 0.3 < person.score <= 1.0
    x0, y0, x1, y1 = person.box
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    nose = person.landmarks[NOSE]
    hips_y = (person.landmarks[LEFT_HIP][1] + person.landmarks[RIGHT_HIP][1]) / 2
    assert nose[3] > 0.9  # the face is clearly visible
    assert 0.25 < nose[0] < 0.65 and nose[1] < 0.45  # upper middle of the photo
    assert nose[1] < hips_y  # upright
    assert estimator.device == "cpu" and estimator.device_note is None


@pytest.mark.media
def test_gpu_request_falls_back_to_cpu_with_a_reason(astronaut_rgb, lite_model, caplog):
    # This machine has no usable GPU/EGL: "gpu" must still work, on the CPU, and say why.
    with (
        caplog.at_level(logging.WARNING, logger="posereel.pose"),
        PoseEstimator(PoseSettings(delegate="gpu"), lite_model) as estimator,
    ):
        assert estimator.device == "cpu"
        assert estimator.device_note
        assert len(estimator.detect(astronaut_rgb, 0)) == 1
    assert any(r.levelno == logging.WARNING and "CPU" in r.getMessage() for r in caplog.records)


@pytest.mark.media
def test_native_logs_are_kept_off_stderr(astronaut_rgb, lite_model, capfd, caplog):
    with (
        caplog.at_level(logging.DEBUG, logger="posereel.pose"),
        PoseEstimator(PoseSettings(delegate="auto"), lite_model) as estimator,
    ):
        estimator.detect(astronaut_rgb, 0)
    assert "gl_context" not in capfd.readouterr().err
    assert any("MediaPipe native log" in r.getMessage() for r in caplog.records)


@pytest.mark.media
def test_timestamps_must_increase(astronaut_rgb, lite_model):
    with PoseEstimator(PoseSettings(), lite_model) as estimator:
        estimator.detect(astronaut_rgb, 100)
        with pytest.raises(ValueError, match="increase strictly"):
            estimator.detect(astronaut_rgb, 100)
        with pytest.raises(ValueError, match="increase strictly"):
            estimator.detect(astronaut_rgb, 50)
        assert len(estimator.detect(astronaut_rgb, 101)) == 1


@pytest.mark.media
def test_rejects_frames_that_are_not_rgb_uint8(astronaut_rgb, lite_model):
    with PoseEstimator(PoseSettings(), lite_model) as estimator:
        with pytest.raises(ValueError, match="RGB"):
            estimator.detect(astronaut_rgb.astype(np.float32), 0)
        with pytest.raises(ValueError, match="RGB"):
            estimator.detect(astronaut_rgb[:, :, 0], 0)
    with pytest.raises(RuntimeError, match="closed"):
        estimator.detect(astronaut_rgb, 1)


@pytest.mark.media
def test_taiji_frames_show_one_person_each(clip, lite_model):
    path = clip("hybrik_taiji")
    info = probe(path)
    with PoseEstimator(PoseSettings(num_poses=2), lite_model) as estimator:
        counts = [
            len(estimator.detect(f.rgb, round(f.t_s * 1000)))
            for f in sample_frames(path, info=info, start_s=5.0, end_s=7.0, target_fps=4, max_height_px=480)
        ]
    assert counts == [1] * 8


@pytest.mark.media
def test_basketball_shows_two_people(clip, lite_model):
    path = clip("mmaction2_basketball")
    info = probe(path)
    with PoseEstimator(PoseSettings(num_poses=2), lite_model) as estimator:
        frames = [
            estimator.detect(f.rgb, round(f.t_s * 1000))
            for f in sample_frames(path, info=info, start_s=0.0, end_s=1.0, target_fps=5, max_height_px=480)
        ]
    assert max(len(persons) for persons in frames) == 2
    two = next(persons for persons in frames if len(persons) == 2)
    # two different people: their boxes are apart
    (a, b) = (p.box for p in two)
    assert abs((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) > 0.1


def _counts(estimator, frames) -> list[int]:
    return [len(estimator.detect(f.rgb, round(f.t_s * 1000))) for f in frames]


def _frames(clip_path, *, start_s: float, end_s: float):
    info = probe(clip_path)
    return list(
        sample_frames(clip_path, info=info, start_s=start_s, end_s=end_s, target_fps=10, max_height_px=480)
    )


@pytest.mark.media
def test_adaptive_tracks_one_person_cheaply_and_finds_the_same_people(clip, lite_model):
    # Given one person on screen
    frames = _frames(clip("hybrik_taiji"), start_s=4.0, end_s=7.0)
    settings = PoseSettings(num_poses=4)
    with (
        PoseEstimator(settings, lite_model) as plain,
        AdaptivePoseEstimator(settings, lite_model) as adaptive,
    ):
        plain_counts, adaptive_counts = _counts(plain, frames), _counts(adaptive, frames)
        # Then the adaptive estimator stays at num_poses=1 and sees what the plain one sees
        assert adaptive.current_num_poses == 1
    assert adaptive_counts == plain_counts == [1] * len(frames)


@pytest.mark.media
def test_adaptive_goes_wide_when_a_second_person_is_there(clip, lite_model):
    # Given two players on court
    frames = _frames(clip("mmaction2_basketball"), start_s=0.0, end_s=2.5)
    with AdaptivePoseEstimator(PoseSettings(num_poses=4), lite_model) as adaptive:
        counts = _counts(adaptive, frames)
        # Then it tracks everyone from then on
        assert adaptive.current_num_poses == 4
    assert max(counts) >= 2
    assert sum(c >= 2 for c in counts) >= len(counts) // 2


@pytest.mark.media
def test_adaptive_keeps_people_it_tracked_when_it_goes_wide(clip, lite_model):
    # Given a man doing jumping jacks, joined after 1.3 s by a woman walking past below
    frames = _frames(clip("sports2d_park_walk"), start_s=0.0, end_s=4.0)
    settings = PoseSettings(num_poses=4)
    with (
        PoseEstimator(settings, lite_model) as plain,
        AdaptivePoseEstimator(settings, lite_model) as adaptive,
    ):
        plain_counts, adaptive_counts = _counts(plain, frames), _counts(adaptive, frames)
    # Then switching to wide tracking loses nobody the plain estimator keeps (the man on the
    # roof is hard to detect afresh; the new tracker replays the last second to pick him up)
    assert sum(adaptive_counts) >= 0.9 * sum(plain_counts), (adaptive_counts, plain_counts)
    two_plus = [i for i, c in enumerate(plain_counts) if c >= 2]
    assert sum(adaptive_counts[i] >= 2 for i in two_plus) >= 0.9 * len(two_plus)
