"""Every person in each frame, with 33 landmarks: the top-down design (docs/PERCEPTION.md).

1. A person detector (posereel.detection, NanoDet on the whole frame) runs on the analysis grid
   frames whose index is a multiple of ``detect_every``; the schedule depends on the global grid
   index only, so every chunk of a video detects on the same frames.
2. Each person gets a crop: from a new detection, or from the landmarks of the frame before
   (posereel.landmarks.roi_from_landmarks), which follows the body between detector frames and
   through poses a detector misses (a backflip, a tumble).
3. BlazePose's landmark model runs on every crop of the frame in one call; a new crop whose pose
   presence is below ``min_presence`` is no person (this also rejects the detector's false
   boxes), a followed person is kept while it stays above ``keep_presence``, and two crops that
   ended on one person keep the better pose.

MediaPipe's output is converted into PersonPose in one place (``person_from_landmarks``).
Coordinates follow posereel.schemas: x, y normalised to the frame given to ``find`` (0..1, origin
top-left; landmarks of body parts outside the picture may lie outside 0..1), z like x, visibility
0..1; ``score`` is the landmark model's pose presence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from scipy.optimize import linear_sum_assignment

from posereel.detection import Detection, PersonDetector, box_iou
from posereel.landmarks import LandmarkModel, Roi, roi_from_box, roi_from_landmarks
from posereel.motion import LEFT_HIP, LEFT_SHOULDER, RIGHT_HIP, RIGHT_SHOULDER
from posereel.schemas import NUM_LANDMARKS, Box, Device, Landmark, PersonPose
from posereel.settings import PoseSettings

log = logging.getLogger(__name__)

# A detection that overlaps a followed person's box this much is that person, not a newcomer.
_KNOWN_IOU = 0.35
# Two poses of one frame are one person when their torsos (shoulders and hips) lie at the same
# place and most of their landmarks agree; their boxes may differ (one crop has an arm held out,
# the other not), so the box overlap does not decide (PETS, 8.4 s: a walker's two crops overlapped
# at IoU 0.35 with 85 % of the landmarks and all four torso points within 5 % of the body).
_SAME_KEYPOINTS = 0.6
_TORSO = [LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP]
# A person's box: the extent of their landmarks visible at BOX_MIN_VISIBILITY, padded to the body's
# outline (the head above the eyes, hands and feet beyond their landmarks) and at least MIN_WIDTH
# as wide as tall (a body seen from the side), in fractions of the extent's height. Calibrated on
# the labelled clips (tests/data/tracking): 93-100 % of the matched boxes overlap their label by
# at least half (IoU), 0.73-0.83 on average.
BOX_MIN_VISIBILITY = 0.3
_PAD_TOP, _PAD_BOTTOM, _PAD_SIDE, _MIN_WIDTH = 0.10, 0.03, 0.05, 0.3


@dataclass(frozen=True)
class ModelFiles:
    """Where the two models of the design are: a pose bundle (.task) and the detector (.onnx)."""

    landmarks: Path
    detector: Path


class PersonFinder:
    """Finds the people of successive frames of one sequence; use as a context manager.

    ``find`` takes frames in increasing grid index order. ``device`` says where the detector runs
    ("cpu" or "gpu", ``device_note`` why not the GPU asked for); the landmark model runs on the CPU.
    """

    def __init__(self, settings: PoseSettings, models: ModelFiles, *, fps: float, threads: int = 2) -> None:
        self.settings = settings
        self.detect_every = max(1, round(settings.detect_every_s * fps))
        self._detector = PersonDetector(
            models.detector, min_score=settings.min_detection_score, device=settings.delegate, threads=threads
        )
        self._landmarks = LandmarkModel(models.landmarks, threads=threads)
        self.device: Device = "gpu" if self._detector.device == "gpu" else "cpu"
        self.device_note = self._detector.device_note
        self._followed: list[tuple[Roi, Box]] = []  # next crop and last box (pixels) per person
        self._last_index: int | None = None
        self.detector_runs = 0

    def find(self, rgb: np.ndarray, index: int) -> list[PersonPose]:
        """The people of one HxWx3 uint8 RGB frame at grid ``index``; ``track_id`` None."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB array, got shape {rgb.shape} dtype {rgb.dtype}")
        if self._last_index is not None and index <= self._last_index:
            raise ValueError(f"frames must come in increasing index order: {index} after {self._last_index}")
        if self._last_index is not None and index != self._last_index + 1:
            self._followed = []  # a gap: the crops of the frame before no longer fit
        self._last_index = index
        rois = [roi for roi, _ in self._followed]
        # What a crop's pose presence must reach: a followed person stays while it is at least
        # keep_presence (through a moment of blur or occlusion); a newcomer needs min_presence,
        # or less when the detector is sure of it (someone cut by the frame's edge).
        needed = [self.settings.keep_presence] * len(rois)
        if index % self.detect_every == 0:
            self.detector_runs += 1
            for d in self._newcomers(self._detector.detect(rgb)):
                rois.append(roi_from_box(d.box))
                sure = d.score >= self.settings.sure_detection_score
                needed.append(self.settings.keep_presence if sure else self.settings.min_presence)
        rois, needed = rois[: self.settings.max_people * 2], needed[: self.settings.max_people * 2]
        landmarks, presence = self._landmarks.run(rgb, rois)
        kept = [i for i in np.argsort(-presence, kind="stable") if presence[i] >= needed[i]]
        kept = _distinct(kept, landmarks)[: self.settings.max_people]
        height, width = rgb.shape[:2]
        persons = [
            person_from_landmarks(landmarks[i], float(presence[i]), width=width, height=height) for i in kept
        ]
        self._followed = [
            (roi_from_landmarks(landmarks[i]), _pixels(p.box, width, height))
            for i, p in zip(kept, persons, strict=True)
        ]
        return persons

    def _newcomers(self, detections: list[Detection]) -> list[Detection]:
        """The detections of people not followed yet: each followed person explains at most one
        detection (the one overlapping it most, one to one), so of two people walking side by
        side, the one beside a followed person is found too."""
        if not self._followed or not detections:
            return detections
        known = np.array([box for _, box in self._followed], dtype=np.float64)
        overlap = np.stack([box_iou(np.asarray(d.box), known) for d in detections])
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        explained = {int(r) for r, c in zip(rows, cols, strict=True) if overlap[r, c] >= _KNOWN_IOU}
        return [d for i, d in enumerate(detections) if i not in explained]

    def close(self) -> None:
        self._followed = []

    def __enter__(self) -> PersonFinder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _distinct(order: list[int], landmarks: np.ndarray) -> list[int]:
    """Of poses in ``order`` (best first), those that are not a copy of a better one: two crops
    can end on one person (a newcomer detection of someone already followed, two crops drifting
    together)."""
    kept: list[int] = []
    scales = {i: _scale(_extent(landmarks[i])) for i in order}
    for i in order:
        duplicate = False
        for j in kept:
            near = _near(landmarks[i], landmarks[j], scale=scales[j])
            if near[_TORSO].all() and near.mean() >= _SAME_KEYPOINTS:
                duplicate = True
                break
        if not duplicate:
            kept.append(i)
    return kept


def _extent(landmarks: np.ndarray) -> np.ndarray:
    body = landmarks[:NUM_LANDMARKS]
    seen = body[body[:, 3] >= 0.5] if (body[:, 3] >= 0.5).sum() >= 4 else body
    return np.array([seen[:, 0].min(), seen[:, 1].min(), seen[:, 0].max(), seen[:, 1].max()])


def _scale(extent: np.ndarray) -> float:
    return float(max(extent[3] - extent[1], extent[2] - extent[0], 1.0))


def _near(a: np.ndarray, b: np.ndarray, *, scale: float) -> np.ndarray:
    """Per landmark of the 33: whether two poses put it at the same place (within 10 % of the body)."""
    d = np.hypot(*(a[:NUM_LANDMARKS, :2] - b[:NUM_LANDMARKS, :2]).T)
    return np.asarray(d < 0.1 * scale)


def _pixels(box: Box, width: int, height: int) -> Box:
    return (box[0] * width, box[1] * height, box[2] * width, box[3] * height)


def person_from_landmarks(landmarks: np.ndarray, presence: float, *, width: int, height: int) -> PersonPose:
    """The one conversion of the landmark model's output: (>=33, 5) frame pixels (x, y, z,
    visibility, presence) -> PersonPose, normalised to the frame. ``box`` is the extent of the
    landmarks visible at BOX_MIN_VISIBILITY or more (all of them when fewer than 4 are), padded
    to the body's outline, clipped to [0, 1]; ``score`` is the pose presence."""
    body = np.asarray(landmarks[:NUM_LANDMARKS], dtype=np.float64)
    points: list[Landmark] = [
        (float(x / width), float(y / height), float(z / width), float(min(1.0, max(0.0, v))))
        for x, y, z, v in body[:, :4]
    ]
    shown = body[:, 3] >= BOX_MIN_VISIBILITY
    visible = body[shown] if shown.sum() >= 4 else body
    x0, y0, x1, y1 = visible[:, 0].min(), visible[:, 1].min(), visible[:, 0].max(), visible[:, 1].max()
    tall = max(y1 - y0, 1.0)
    x0, x1 = x0 - _PAD_SIDE * tall, x1 + _PAD_SIDE * tall
    y0, y1 = y0 - _PAD_TOP * tall, y1 + _PAD_BOTTOM * tall
    if x1 - x0 < _MIN_WIDTH * (y1 - y0):
        centre, half = (x0 + x1) / 2, _MIN_WIDTH * (y1 - y0) / 2
        x0, x1 = centre - half, centre + half
    box: Box = (_clip01(x0 / width), _clip01(y0 / height), _clip01(x1 / width), _clip01(y1 / height))
    return PersonPose(track_id=None, score=min(1.0, max(0.0, presence)), box=box, landmarks=points)


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))
