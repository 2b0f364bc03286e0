"""How alike two sets of poses are: box overlap and keypoint similarity (chunk stitching,
posereel.chunks).

Coordinates: landmark and box x/y arrive normalised separately to the frame width and height.
For similarities x is multiplied by the aspect ratio (width / height), so both axes are in frame
heights and distances are isotropic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from posereel.schemas import NUM_LANDMARKS, PersonPose

FloatArray = NDArray[np.float64]

# Similarity defaults, tuned on BlazePose lite landmarks of the shared clips at 10 fps: box IoU
# suffers when limbs swing (the box is the landmarks' extent), so keypoints weigh more.
IOU_WEIGHT = 0.2
KEYPOINT_SIGMA = 0.2

# Smallest body scale (frame heights) used in the keypoint similarity, so a degenerate box
# cannot make every distance look huge.
_MIN_SCALE = 0.01


@dataclass(frozen=True, slots=True)
class PoseArrays:
    """People of one frame as arrays, x scaled to frame heights.

    ``landmarks`` is (n, 33, 4) of (x, y, z, visibility); ``boxes`` is (n, 4) of (x0, y0, x1, y1).
    """

    landmarks: FloatArray
    boxes: FloatArray

    @classmethod
    def from_persons(cls, persons: Sequence[PersonPose], *, aspect: float) -> PoseArrays:
        """Convert persons to arrays; ``aspect`` is frame width / height."""
        n = len(persons)
        if n == 0:
            return cls(np.zeros((0, NUM_LANDMARKS, 4)), np.zeros((0, 4)))
        landmarks = np.array([p.landmarks for p in persons], dtype=np.float64)
        boxes = np.array([p.box for p in persons], dtype=np.float64)
        landmarks[:, :, 0] *= aspect
        boxes[:, [0, 2]] *= aspect
        return cls(landmarks, boxes)

    def __len__(self) -> int:
        return len(self.boxes)


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4): an (n, m) array."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def keypoint_similarity(a: PoseArrays, b: PoseArrays, *, keypoint_sigma: float) -> FloatArray:
    """OKS-like similarity (n, m) in [0, 1] between the poses of ``a`` and ``b``.

    Each landmark contributes exp(-d^2 / (2 s^2 sigma^2)), d its distance and s the body scale
    (square root of the mean box area), weighted by the product of both visibilities. Pairs
    with no landmark visible in both score 0.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    diff = a.landmarks[:, None, :, :2] - b.landmarks[None, :, :, :2]
    d2 = np.einsum("nmkc,nmkc->nmk", diff, diff)
    area_a = (a.boxes[:, 2] - a.boxes[:, 0]) * (a.boxes[:, 3] - a.boxes[:, 1])
    area_b = (b.boxes[:, 2] - b.boxes[:, 0]) * (b.boxes[:, 3] - b.boxes[:, 1])
    scale2 = np.maximum((area_a[:, None] + area_b[None, :]) / 2, _MIN_SCALE**2)
    weight = a.landmarks[:, None, :, 3] * b.landmarks[None, :, :, 3]
    closeness = np.exp(-d2 / (2 * scale2[:, :, None] * keypoint_sigma**2))
    total = weight.sum(axis=2)
    num = (weight * closeness).sum(axis=2)
    return np.divide(num, total, out=np.zeros_like(num), where=total > 1e-6)


def pose_similarity(
    a: PoseArrays, b: PoseArrays, *, iou_weight: float = IOU_WEIGHT, keypoint_sigma: float = KEYPOINT_SIGMA
) -> FloatArray:
    """Similarity (n, m) in [0, 1]: ``iou_weight`` * box IoU + the rest * keypoint similarity."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iou = box_iou(a.boxes, b.boxes)
    oks = keypoint_similarity(a, b, keypoint_sigma=keypoint_sigma)
    return iou_weight * iou + (1 - iou_weight) * oks
