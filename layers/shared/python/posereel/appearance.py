"""What a person looks like, to tell people apart when their tracks are linked over the whole
video (posereel.linking): colour histograms of the torso (shoulders to hips) and the thighs (hips
to knees), hue against saturation, normalised so that a near and a far view compare.

Computed in the worker, where the pixels are, and summed per track over the chunk; the merge
stage compares the sums (``distance``). Clothing is what it sees, so two people dressed alike look
alike here: linking weighs position, timing and size too.
"""

from __future__ import annotations

import cv2
import numpy as np

from posereel.schemas import PersonPose

HUE_BINS = 12
SATURATION_BINS = 4
SIZE = 2 * HUE_BINS * SATURATION_BINS
_REGIONS = ((11, 12, 24, 23), (23, 24, 26, 25))  # torso, thighs (landmark indices, a quad each)
_MIN_VISIBILITY = 0.5
_MIN_PIXELS = 12


def hsv_frame(rgb: np.ndarray) -> np.ndarray:
    """The frame in OpenCV's HSV (hue 0..179), computed once for every person of the frame."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)


def describe(hsv: np.ndarray, person: PersonPose) -> np.ndarray | None:
    """The person's histogram (SIZE floats, each region summing to 1 where it was seen, 0 where
    not), or None when neither region is visible enough."""
    height, width = hsv.shape[:2]
    parts = []
    for region in _REGIONS:
        points = [person.landmarks[i] for i in region]
        if min(p[3] for p in points) < _MIN_VISIBILITY:
            parts.append(np.zeros(HUE_BINS * SATURATION_BINS, np.float32))
            continue
        quad = np.array([(p[0] * width, p[1] * height) for p in points], np.float32)
        parts.append(_histogram(hsv, quad))
    if not any(part.any() for part in parts):
        return None
    return np.concatenate(parts)


def _histogram(hsv: np.ndarray, quad: np.ndarray) -> np.ndarray:
    height, width = hsv.shape[:2]
    x0, y0 = np.floor(quad.min(axis=0)).astype(int).clip(0, [width - 1, height - 1])
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int).clip(0, [width - 1, height - 1]) + 1
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros(HUE_BINS * SATURATION_BINS, np.float32)
    patch = hsv[y0:y1, x0:x1]
    mask = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad - [x0, y0]).astype(np.int32), 255)
    if int(np.count_nonzero(mask)) < _MIN_PIXELS:
        return np.zeros(HUE_BINS * SATURATION_BINS, np.float32)
    hist = cv2.calcHist([patch], [0, 1], mask, [HUE_BINS, SATURATION_BINS], [0, 180, 0, 256]).reshape(-1)
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """0 (the same colours) .. 1 (nothing in common): one minus the histogram intersection, over
    the regions both were seen in; 0.5 when they share none (nothing to compare)."""
    half = HUE_BINS * SATURATION_BINS
    scores = []
    for part in (slice(0, half), slice(half, SIZE)):
        pa, pb = a[part], b[part]
        sa, sb = float(pa.sum()), float(pb.sum())
        if sa > 0 and sb > 0:
            scores.append(1.0 - float(np.minimum(pa / sa, pb / sb).sum()))
    return float(np.mean(scores)) if scores else 0.5
