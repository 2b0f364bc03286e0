"""The perception models on real pictures: the person detector, the landmark model on crops, and
PersonFinder putting them together (the whole-clip checks are in test_perception.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posereel.detection import PersonDetector
from posereel.errors import ModelError
from posereel.landmarks import LandmarkModel, roi_from_box
from posereel.pose import ModelFiles, PersonFinder
from posereel.settings import PoseSettings
from posereel.video import probe, sample_frames

NOSE, LEFT_HIP, RIGHT_HIP = 0, 23, 24
pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def astronaut_rgb(media_dir: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(media_dir / "astronaut.png"))
    assert bgr is not None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def models(models_dir: Path, detector_model: Path) -> ModelFiles:
    return ModelFiles(landmarks=models_dir / "pose_landmarker_lite.task", detector=detector_model)


def frames_of(path: Path, *, start_s: float, end_s: float, fps: float = 10):
    info = probe(path)
    return list(
        sample_frames(path, info=info, start_s=start_s, end_s=end_s, target_fps=fps, max_height_px=480)
    )


# --- the models one by one ----------------------------------------------------------------------


def test_the_detector_finds_the_astronaut_and_the_landmarks_land_on_her(astronaut_rgb, models):
    # When the detector looks at the photo
    [found] = [d for d in PersonDetector(models.detector).detect(astronaut_rgb) if d.score >= 0.5]
    # Then one person, a box inside the photo
    height, width = astronaut_rgb.shape[:2]
    x0, y0, x1, y1 = found.box
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    # And the landmark model on that box's crop puts the nose above the hips, inside the box
    landmarks, presence = LandmarkModel(models.landmarks).run(astronaut_rgb, [roi_from_box(found.box)])
    assert presence[0] > 0.9
    nose, hips_y = landmarks[0, NOSE], (landmarks[0, LEFT_HIP, 1] + landmarks[0, RIGHT_HIP, 1]) / 2
    assert x0 <= nose[0] <= x1 and y0 <= nose[1] < hips_y
    assert nose[3] > 0.9  # the face is clearly visible


def test_the_landmark_model_takes_several_crops_in_one_call(astronaut_rgb, models):
    # Given the same crop twice and an empty corner of the photo
    model = LandmarkModel(models.landmarks)
    [found] = [d for d in PersonDetector(models.detector).detect(astronaut_rgb) if d.score >= 0.5]
    person, corner = roi_from_box(found.box), roi_from_box((0, 0, 40, 40))
    single, single_presence = model.run(astronaut_rgb, [person])
    batch, presence = model.run(astronaut_rgb, [person, corner, person])
    # Then each crop's answer is the one it gets alone, and the corner holds nobody
    assert np.allclose(batch[0], single[0], atol=1e-3) and np.allclose(batch[2], single[0], atol=1e-3)
    assert presence[0] == pytest.approx(single_presence[0], abs=1e-4)
    assert presence[1] < 0.5


def test_missing_or_damaged_models_are_model_errors(tmp_path, models):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\0" * 1000)
    with pytest.raises(ModelError, match="cannot load"):
        PersonDetector(junk)
    with pytest.raises(ModelError):
        PersonDetector(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match=r"pose_landmarks_detector\.tflite"):
        LandmarkModel(junk)


def test_a_gpu_request_runs_on_the_cpu_and_says_why(astronaut_rgb, models):
    # This machine has no CUDA: "gpu" must still work, on the CPU, and say why.
    with PersonFinder(PoseSettings(delegate="gpu"), models, fps=10) as finder:
        assert finder.device == "cpu"
        assert finder.device_note and "CUDA" in finder.device_note
        assert len(finder.find(astronaut_rgb, 0)) == 1


# --- PersonFinder -------------------------------------------------------------------------------


def test_the_astronaut_photo_gives_one_person(astronaut_rgb, models):
    with PersonFinder(PoseSettings(), models, fps=10) as finder:
        persons = finder.find(astronaut_rgb, 0)
    [person] = persons
    assert len(person.landmarks) == 33 and person.track_id is None
    assert 0.5 < person.score <= 1.0
    x0, y0, x1, y1 = person.box
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    nose = person.landmarks[NOSE]
    assert 0.25 < nose[0] < 0.65 and nose[1] < 0.45  # upper middle of the photo


def test_frames_must_come_in_order_and_be_rgb_uint8(astronaut_rgb, models):
    with PersonFinder(PoseSettings(), models, fps=10) as finder:
        assert len(finder.find(astronaut_rgb, 99)) == 1  # a detector frame (every 3rd at 10 fps)
        with pytest.raises(ValueError, match="increasing index order"):
            finder.find(astronaut_rgb, 99)
        with pytest.raises(ValueError, match="RGB"):
            finder.find(astronaut_rgb.astype(np.float32), 100)
        with pytest.raises(ValueError, match="RGB"):
            finder.find(astronaut_rgb[:, :, 0], 100)
        assert len(finder.find(astronaut_rgb, 100)) == 1  # followed from the frame before


def test_the_detector_runs_on_the_global_schedule_only(clip, models):
    # Given 3 s of the taiji clip from 4.0 s (grid indices 40..69) and a detector every 0.3 s
    frames = frames_of(clip("hybrik_taiji"), start_s=4.0, end_s=7.0)
    with PersonFinder(PoseSettings(detect_every_s=0.3), models, fps=10) as finder:
        counts = [len(finder.find(f.rgb, f.index)) for f in frames]
        # Then it ran on the indices divisible by 3 (42, 45, ..., 69), whatever the start, and
        # the landmarks followed the one person on every frame in between
        assert finder.detector_runs == len([f for f in frames if f.index % 3 == 0]) == 10
    assert counts == [0, 0] + [1] * 28  # nobody is followed until the first detector frame


def test_basketball_shows_two_people_apart(clip, models):
    frames = frames_of(clip("mmaction2_basketball"), start_s=0.0, end_s=2.0)
    with PersonFinder(PoseSettings(), models, fps=10) as finder:
        found = [finder.find(f.rgb, f.index) for f in frames]
    two = [persons for persons in found if len(persons) == 2]
    assert len(two) >= 0.8 * len(found)
    for a, b in ((p.box for p in persons) for persons in two):
        assert abs((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) > 0.05
