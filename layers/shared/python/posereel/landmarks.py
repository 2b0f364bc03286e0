"""33 body landmarks for each person, from MediaPipe's BlazePose landmark model (the
``pose_landmarks_detector.tflite`` inside the official pose bundles) run on that person's own crop
with LiteRT; the second step of posereel.pose's top-down design.

A person's crop is a region of interest (``Roi``): a square around the body, rotated so the body is
upright in it, as MediaPipe's pose graph makes it (AlignmentPointsRects from the hip centre to the
full-body point, RectTransformation 1.25, square). From a detector box it is an upright square; from
the landmarks of the frame before (auxiliary landmarks 33 and 34) it follows the body, turning
with it through a cartwheel or a backflip, so the detector need not run on every frame.

Crops snap to a coarse lattice (``snap``): a crop's size to steps of 2 %, its centre to 1/64 of
its side, its rotation to 2 degrees. Each crop comes from the landmarks of the crop before, so two
analyses of the same frames that started apart (a chunk starts on detector boxes, one pass on the
crops of the frames before it) would differ by a little for ever; on the lattice they come to the
same crop within a few frames and from then on give the same landmarks, bit for bit, which is what
makes the result independent of how the video is chunked. The offset (at most 2 crop pixels, 1 %,
1 degree) is well inside the jitter the model was trained with.

Coordinates: pixels of the RGB frame given to ``run``; rotation in radians, 0 = upright.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posereel.errors import ModelError

CROP = 256
LANDMARKS = 39  # 33 body landmarks + 6 auxiliary ones (33: hip centre, 34: full-body point, ...)
MEMBER = "pose_landmarks_detector.tflite"  # inside each pose_landmarker_*.task bundle
ROI_SCALE = 1.25
SIDE_STEP = 1.02  # ratio between neighbouring crop sizes on the lattice
CENTRE_STEPS = 64  # per crop side
ROTATION_STEP = math.pi / 90


@dataclass(frozen=True, slots=True)
class Roi:
    """A square crop: centre (cx, cy) and side in frame pixels, rotation in radians."""

    cx: float
    cy: float
    side: float
    rotation: float = 0.0

    def corners(self) -> np.ndarray:
        """(4, 2) top-left, top-right, bottom-right, bottom-left of the crop, frame pixels."""
        c, s = math.cos(self.rotation), math.sin(self.rotation)
        offsets = np.array([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)]) * self.side
        return np.stack(
            [
                self.cx + offsets[:, 0] * c - offsets[:, 1] * s,
                self.cy + offsets[:, 0] * s + offsets[:, 1] * c,
            ],
            axis=1,
        )


def snap(cx: float, cy: float, side: float, rotation: float) -> Roi:
    """The crop on the lattice nearest to (cx, cy, side, rotation); rotation in [-pi, pi)."""
    log_step = math.log(SIDE_STEP)
    side = math.exp(round(math.log(max(side, 1.0)) / log_step) * log_step)
    step = side / CENTRE_STEPS
    rotation = round(rotation / ROTATION_STEP) * ROTATION_STEP
    rotation -= 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
    return Roi(round(cx / step) * step, round(cy / step) * step, side, rotation)


def roi_from_box(box: tuple[float, float, float, float]) -> Roi:
    """An upright square around a detector box (x0, y0, x1, y1): 1.25 x its longer side."""
    x0, y0, x1, y1 = box
    return snap((x0 + x1) / 2, (y0 + y1) / 2, ROI_SCALE * max(x1 - x0, y1 - y0), 0.0)


def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
    """The next frame's crop from a pose's auxiliary landmarks, (39, >=2) frame pixels: centred on
    the hip centre (33), side 2.5 x its distance to the full-body point (34), turned so that point
    is straight above the hips."""
    (x0, y0), (x1, y1) = landmarks[33, :2], landmarks[34, :2]
    side = 2.0 * math.hypot(x1 - x0, y1 - y0) * ROI_SCALE
    rotation = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
    return snap(float(x0), float(y0), side, rotation)


def crop(rgb: np.ndarray, roi: Roi) -> np.ndarray:
    """The ROI of an RGB frame as the model's input: (256, 256, 3) float32 in [0, 1]."""
    src = roi.corners()[[0, 1, 3]].astype(np.float32)
    dst = np.array([[0, 0], [CROP, 0], [0, CROP]], np.float32)
    matrix = cv2.getAffineTransform(src, dst)
    pixels = cv2.warpAffine(rgb, matrix, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return pixels.astype(np.float32) / 255.0


def to_frame(raw: np.ndarray, roi: Roi) -> np.ndarray:
    """The model's (39, 5) output (x, y, z in crop pixels, visibility and presence logits) as
    (39, 5) frame pixels with visibility and presence as probabilities (z scaled like x)."""
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    u = raw[:, 0] / CROP - 0.5
    v = raw[:, 1] / CROP - 0.5
    out = np.empty_like(raw, dtype=np.float64)
    out[:, 0] = roi.cx + (u * c - v * s) * roi.side
    out[:, 1] = roi.cy + (u * s + v * c) * roi.side
    out[:, 2] = raw[:, 2] / CROP * roi.side
    out[:, 3:5] = 1.0 / (1.0 + np.exp(-np.clip(raw[:, 3:5], -50, 50)))
    return out


def read_model(bundle: Path) -> bytes:
    """The landmark model inside an official pose bundle (.task, a zip)."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            return archive.read(MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelError(f"{bundle} holds no {MEMBER}: {exc}") from exc


class LandmarkModel:
    """BlazePose's landmark model on LiteRT. ``run`` takes every person's crop of a frame in one
    call (the interpreter is resized to the batch), which is what a GPU worker wants; on these CPUs
    the cost per crop is the same either way."""

    def __init__(self, bundle: Path, *, threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(model_content=read_model(bundle), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load the landmark model of {bundle}: {exc}") from exc
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        self._landmarks, self._presence = outputs["Identity"], outputs["Identity_1"]
        self._batch = 0
        self.device = "cpu"
        self.device_note: str | None = None

    def run(self, rgb: np.ndarray, rois: list[Roi]) -> tuple[np.ndarray, np.ndarray]:
        """(landmarks (N, 39, 5) frame pixels as to_frame gives them, pose presence (N,)) for the
        crops ``rois`` of an HxWx3 uint8 RGB frame."""
        if not rois:
            return np.zeros((0, LANDMARKS, 5)), np.zeros(0)
        batch = np.stack([crop(rgb, roi) for roi in rois])
        if len(rois) != self._batch:
            self._interpreter.resize_tensor_input(self._input, [len(rois), CROP, CROP, 3])
            self._interpreter.allocate_tensors()
            self._batch = len(rois)
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._landmarks).reshape(len(rois), LANDMARKS, 5)
        presence = self._interpreter.get_tensor(self._presence).reshape(len(rois))
        return np.stack([to_frame(raw[i], roi) for i, roi in enumerate(rois)]), presence.astype(np.float64)
