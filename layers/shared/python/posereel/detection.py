"""The person detector: NanoDet-m 416 (COCO-trained, Apache-2.0), run with ONNX Runtime on the
whole frame, letterboxed (squeezing a 16:9 frame into its square input loses most people).

It finds people far smaller than MediaPipe's own pose detector does (the CCTV pedestrians of the
shared clips, 30-60 px tall, measured in docs/PERCEPTION.md), and is the first step of the
top-down design of posereel.pose: boxes here, 33 landmarks per box in posereel.landmarks.

Coordinates: boxes are (x0, y0, x1, y1) in pixels of the RGB frame given to ``detect``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posereel.errors import ModelError

log = logging.getLogger(__name__)

INPUT_SIZE = 416
STRIDES = (8, 16, 32)
BINS = 11  # GFL distance bins per box side
PERSON = 0  # COCO class index
# NanoDet's training normalisation, in BGR channel order.
_MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
_STD_BGR = np.array([57.375, 57.12, 58.395], np.float32)
# Output names per stride: (class scores, already a sigmoid; box distances, 4 sides x BINS).
_OUTPUTS = {8: ("Identity", "Identity_3"), 16: ("Identity_1", "Identity_4"), 32: ("Identity_2", "Identity_5")}


@dataclass(frozen=True, slots=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1, frame pixels
    score: float


def onnx_session(path: Path, *, device: str, threads: int) -> tuple[Any, str, str | None]:
    """An ONNX Runtime session for ``path`` on ``device`` ("cpu", "gpu" or "auto"): (session, the
    device it runs on, why the CPU was used when a GPU was asked for, else None)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # No busy-waiting between calls: the landmark model and the decoder need those cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    note = None
    providers = ["CPUExecutionProvider"]
    if device in ("gpu", "auto"):
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            note = "ONNX Runtime has no CUDA execution provider here (the onnxruntime-gpu build needs one)"
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own error classes
        raise ModelError(f"cannot load {path}: {exc}") from exc
    used = "gpu" if session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    return session, used, note


class PersonDetector:
    """People in a frame, as boxes with a score. ``detect`` takes an HxWx3 uint8 RGB frame."""

    def __init__(
        self,
        model_path: Path,
        *,
        min_score: float = 0.35,
        nms_iou: float = 0.5,
        device: str = "cpu",
        threads: int = 2,
    ) -> None:
        self.min_score = min_score
        self.nms_iou = nms_iou
        self._session, self.device, self.device_note = onnx_session(
            model_path, device=device, threads=threads
        )
        self._input = self._session.get_inputs()[0].name

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        tensor, scale = letterbox(rgb)
        names = [o.name for o in self._session.get_outputs()]
        outputs = dict(zip(names, self._session.run(None, {self._input: tensor}), strict=True))
        height, width = rgb.shape[:2]
        return decode(
            outputs, scale=scale, width=width, height=height, min_score=self.min_score, nms_iou=self.nms_iou
        )


def decode(
    outputs: dict[str, np.ndarray], *, scale: float, width: int, height: int, min_score: float, nms_iou: float
) -> list[Detection]:
    """The people in NanoDet's raw outputs (per stride: class scores (1, cells, 80) and GFL box
    distances (1, cells, 4 * BINS) in input pixels), as boxes in frame pixels, best first."""
    boxes, scores = [], []
    for stride, (cls_name, reg_name) in _OUTPUTS.items():
        cls = outputs[cls_name][0, :, PERSON]
        keep = np.flatnonzero(cls >= min_score)
        if keep.size == 0:
            continue
        reg = outputs[reg_name][0, keep].reshape(-1, 4, BINS)
        prob = np.exp(reg - reg.max(axis=2, keepdims=True))
        prob /= prob.sum(axis=2, keepdims=True)
        distance = (prob * np.arange(BINS)).sum(axis=2) * stride  # left, top, right, bottom
        centre = _GRID_CENTRES[stride][keep]
        boxes.append(np.concatenate([centre - distance[:, :2], centre + distance[:, 2:]], axis=1))
        scores.append(cls[keep])
    if not boxes:
        return []
    all_boxes = np.concatenate(boxes) / scale
    all_scores = np.concatenate(scores)
    all_boxes[:, [0, 2]] = all_boxes[:, [0, 2]].clip(0, width)
    all_boxes[:, [1, 3]] = all_boxes[:, [1, 3]].clip(0, height)
    kept = nms(all_boxes, all_scores, iou=nms_iou)
    return [Detection(tuple(float(v) for v in all_boxes[i]), float(all_scores[i])) for i in kept]  # type: ignore[arg-type]


def letterbox(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The detector's input (1, 3, 416, 416) float32 NCHW BGR, normalised, the frame scaled to fit
    and placed top-left on the mean colour (zero once normalised); and the scale (input pixels per
    frame pixel)."""
    height, width = rgb.shape[:2]
    scale = INPUT_SIZE / max(height, width)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    pixels = cv2.resize(rgb, (w, h), interpolation=interpolation)
    # RGB -> BGR, minus the mean (given in the swapped, BGR order), NCHW, in one pass; then each
    # channel over its deviation.
    mean = tuple(float(v) for v in _MEAN_BGR)
    blob = np.asarray(cv2.dnn.blobFromImage(pixels, mean=mean, swapRB=True), dtype=np.float32)
    blob *= (1.0 / _STD_BGR)[None, :, None, None]
    tensor = np.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    tensor[:, :, :h, :w] = blob
    return tensor, scale


def _centres(cells: int, stride: int) -> np.ndarray:
    ys, xs = np.divmod(np.arange(cells * cells), cells)
    return np.stack([(xs + 0.5) * stride, (ys + 0.5) * stride], axis=1).astype(np.float32)


# The centre of each cell of each stride's grid, in input pixels.
_GRID_CENTRES = {s: _centres(INPUT_SIZE // s, s) for s in STRIDES}


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) box with each of (n, 4) boxes."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return np.divide(inter, union - inter, out=np.zeros_like(inter), where=union - inter > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores, kind="stable")
    alive = np.ones(len(scores), bool)
    kept: list[int] = []
    for i in order:
        if alive[i]:
            kept.append(int(i))
            alive &= box_iou(boxes[i], boxes) <= iou
    return kept
