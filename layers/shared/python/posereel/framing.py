"""What a reel's frames show besides the source: a crop that follows the chosen people (9:16 or
1:1) and blurred faces.

The crop. Its size is the largest rectangle of the asked aspect inside the frame, at the source's
height (or width, for a portrait source cut square). Its centre follows the union of the chosen
people's boxes (``tracks.json``, on the analysis grid): interpolated to every source frame,
smoothed with a Gaussian of ``CROP_SMOOTH_S`` so the frame does not jitter, then pulled back
inside the people's box where the smoothing lagged behind, and kept inside the frame. Each reel
window is a shot of its own: its path is smoothed over the window only.

Faces. Every frame is blurred where a face is, from two sources, so that neither one's misses
show a face: the heads of the pose tracks (nose, eyes, ears and mouth landmarks, interpolated
between analysis frames, sized from the body), and BlazeFace (MediaPipe's short-range face
detector, the official model) on the frame, whose boxes are held ``FACE_HOLD_S`` after their last
detection. A blurred region is covered with its own average colour.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posereel.errors import ModelError
from posereel.schemas import FramePoses
from posereel.settings import Aspect

CROP_SMOOTH_S = 0.4
# Head landmarks of BlazePose's 33: nose, eyes (inner, centre, outer), ears, mouth corners.
HEAD_LANDMARKS = tuple(range(11))
HEAD_MIN_VISIBILITY = 0.3
# A head is about a fifth of a standing body's box; its box is this much of the body's height
# at least, and this many times the spread of the head landmarks.
HEAD_OF_BODY = 0.2
HEAD_OF_SPREAD = 2.2
# Heads between analysis frames move: a box grows by this share of its size for safety.
HEAD_MARGIN = 0.4
# The head landmarks sit at eye level and above the chin: the face's box is centred this share
# of its size below their centre (a profile's chin and neck showed under a centred box).
HEAD_DROP = 0.12
FACE_MIN_SCORE = 0.5
FACE_HOLD_S = 0.3
# The detector looks for a tracked head's face in a square this many times the head's size.
FACE_SEARCH = 2.5
FACE_MARGIN = 0.35

ASPECTS: dict[str, float] = {"9:16": 9 / 16, "1:1": 1.0}


# --- the crop ---------------------------------------------------------------------------------


def crop_size(frame_px: tuple[int, int], aspect: Aspect) -> tuple[int, int]:
    """(width, height) in pixels of the crop: the largest of ``aspect`` inside a frame of
    ``frame_px`` (even sizes), both even; the whole frame for "source"."""
    width, height = frame_px
    if aspect == "source":
        return width, height
    ratio = ASPECTS[aspect]
    if width / height > ratio:
        return max(2, int(height * ratio) // 2 * 2), height
    return width, max(2, int(width / ratio) // 2 * 2)


@dataclass(frozen=True)
class SubjectPath:
    """Where the chosen people are, per analysis frame: times and their union box (normalised)."""

    t_s: np.ndarray
    boxes: np.ndarray  # (N, 4) x0, y0, x1, y1

    @classmethod
    def of(cls, frames: Iterable[FramePoses], track_ids: Iterable[int]) -> SubjectPath:
        wanted = set(track_ids)
        times, boxes = [], []
        for frame in frames:
            chosen = [p.box for p in frame.persons if p.track_id in wanted]
            if chosen:
                b = np.array(chosen, dtype=float)
                times.append(frame.t_s)
                boxes.append((b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()))
        return cls(np.array(times, dtype=float), np.array(boxes, dtype=float).reshape(-1, 4))


def crop_origins(
    path: SubjectPath, times_s: np.ndarray, *, frame_px: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """(N, 2) integer top-left corners of the crop for the source frames at ``times_s`` (one
    window): centred on the chosen people, smoothed, kept on them and inside the frame."""
    width, height = frame_px
    crop_w, crop_h = size
    n = len(times_s)
    if n == 0:
        return np.zeros((0, 2), dtype=int)
    if len(path.t_s) == 0:  # nobody chosen is seen in this window: the middle of the frame
        centre = np.tile([0.5, 0.5], (n, 1))
        boxes = np.tile([0.0, 0.0, 1.0, 1.0], (n, 1))
    else:
        boxes = np.stack([np.interp(times_s, path.t_s, path.boxes[:, k]) for k in range(4)], axis=1)
        centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
        fps = (n - 1) / max(times_s[-1] - times_s[0], 1e-6) if n > 1 else 1.0
        centre = np.stack([_gaussian(centre[:, k], sigma=CROP_SMOOTH_S * fps) for k in range(2)], axis=1)
        # Smoothing lags a fast subject: never let the centre leave the people's box.
        centre[:, 0] = np.clip(centre[:, 0], boxes[:, 0], boxes[:, 2])
        centre[:, 1] = np.clip(centre[:, 1], boxes[:, 1], boxes[:, 3])
    x = np.clip(np.round(centre[:, 0] * width - crop_w / 2), 0, width - crop_w)
    y = np.clip(np.round(centre[:, 1] * height - crop_h / 2), 0, height - crop_h)
    return np.stack([x, y], axis=1).astype(int)


def _gaussian(values: np.ndarray, *, sigma: float) -> np.ndarray:
    """``values`` smoothed by a Gaussian of ``sigma`` samples, the ends held (no pull to zero)."""
    if sigma < 0.5 or len(values) < 3:
        return values.copy()
    radius = math.ceil(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, radius, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


# --- faces ------------------------------------------------------------------------------------

PixelBox = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class HeadTrack:
    """One track's head over the analysis frames: times, centres and sizes (pixels)."""

    t_s: np.ndarray
    centre: np.ndarray  # (N, 2)
    size: np.ndarray  # (N,)

    def at(self, t_s: float, *, max_gap_s: float) -> tuple[float, float, float] | None:
        """The head's centre and size at ``t_s``, interpolated between sightings at most
        ``max_gap_s`` apart (or that close to one); None where the track is not there."""
        i = int(np.searchsorted(self.t_s, t_s))
        before, after = i - 1, i
        if after < len(self.t_s) and before >= 0 and self.t_s[after] - self.t_s[before] <= max_gap_s:
            w = (t_s - self.t_s[before]) / max(self.t_s[after] - self.t_s[before], 1e-9)
            c = self.centre[before] * (1 - w) + self.centre[after] * w
            s = self.size[before] * (1 - w) + self.size[after] * w
            return float(c[0]), float(c[1]), float(s)
        for j in (before, after):
            if 0 <= j < len(self.t_s) and abs(self.t_s[j] - t_s) <= max_gap_s / 2:
                return float(self.centre[j][0]), float(self.centre[j][1]), float(self.size[j])
        return None


def head_tracks(frames: Iterable[FramePoses], *, frame_px: tuple[int, int]) -> list[HeadTrack]:
    """Every track's head: the centre of its visible head landmarks, its size from the landmarks'
    spread and the body's height (so a face seen from the side or far away is still covered)."""
    found: dict[int, tuple[list[float], list[tuple[float, float]], list[float]]] = {}
    for frame in frames:
        for number, person in enumerate(frame.persons):
            head = [
                person.landmarks[k] for k in HEAD_LANDMARKS if person.landmarks[k][3] >= HEAD_MIN_VISIBILITY
            ]
            if not head:
                continue
            xs = np.array([p[0] for p in head]) * frame_px[0]
            ys = np.array([p[1] for p in head]) * frame_px[1]
            body_h = (person.box[3] - person.box[1]) * frame_px[1]
            spread = max(float(np.ptp(xs)), float(np.ptp(ys)))
            size = max(HEAD_OF_BODY * body_h, HEAD_OF_SPREAD * spread) * (1 + HEAD_MARGIN)
            key = person.track_id if person.track_id is not None else -(frame.index * 1000 + number) - 1
            times, centres, sizes = found.setdefault(key, ([], [], []))
            times.append(frame.t_s)
            centres.append((float(xs.mean()), float(ys.mean()) + HEAD_DROP * size))
            sizes.append(size)
    return [
        HeadTrack(np.array(t), np.array(c, dtype=float).reshape(-1, 2), np.array(s))
        for t, c, s in found.values()
    ]


def _anchors() -> np.ndarray:
    """BlazeFace short-range's 896 SSD anchor centres (normalised): strides 8 (2 per cell) and
    16 (6 per cell) on its 128 px input; all anchors are 1 x 1 (fixed size)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = 128 // stride
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.array(centres, dtype=np.float32)


class FaceDetector:
    """BlazeFace short range (``blaze_face_short_range.tflite``) on LiteRT: faces of a whole frame
    as pixel boxes. The frame is letterboxed to the model's square 128 px input."""

    INPUT = 128

    def __init__(self, model: Path, *, threads: int = 2, min_score: float = FACE_MIN_SCORE) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(model_path=str(model), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load the face detector {model}: {exc}") from exc
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._interpreter.get_output_details()}
        self._boxes, self._scores = outputs["regressors"], outputs["classificators"]
        self._anchors = _anchors()
        self.min_score = min_score

    def detect(self, rgb: np.ndarray, region: PixelBox | None = None) -> list[tuple[PixelBox, float]]:
        """Faces in an HxWx3 uint8 RGB frame, or in the square ``region`` of it (pixels; the model
        finds faces that fill a good part of its input, so a small face is looked for in a region
        around the head): (frame pixel box, score), at least ``min_score``."""
        x0, y0, x1, y1 = region if region is not None else (0, 0, rgb.shape[1], rgb.shape[0])
        side = max(x1 - x0, y1 - y0, 1)
        scale = self.INPUT / side
        height, width = rgb.shape[:2]
        # The region (or the frame) letterboxed into the model's square input.
        square = np.zeros((self.INPUT, self.INPUT, 3), dtype=np.uint8)
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if cx1 - cx0 < 2 or cy1 - cy0 < 2:
            return []
        part = rgb[cy0:cy1, cx0:cx1]
        size = (max(1, round((cx1 - cx0) * scale)), max(1, round((cy1 - cy0) * scale)))
        resized = cv2.resize(part, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        if region is None:
            left, top = (self.INPUT - size[0]) // 2, (self.INPUT - size[1]) // 2
            origin = (-left / scale, -top / scale)
        else:
            left, top = round((cx0 - x0) * scale), round((cy0 - y0) * scale)
            origin = (float(x0), float(y0))
        h, w = min(resized.shape[0], self.INPUT - top), min(resized.shape[1], self.INPUT - left)
        square[top : top + h, left : left + w] = resized[:h, :w]
        self._interpreter.set_tensor(self._input, (square.astype(np.float32) / 127.5 - 1.0)[None])
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self._interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64), -80, 80)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        # Anchor-relative centres and sizes (in input pixels) back to frame pixels.
        cx = (raw[keep, 0] / self.INPUT + self._anchors[keep, 0]) * side + origin[0]
        cy = (raw[keep, 1] / self.INPUT + self._anchors[keep, 1]) * side + origin[1]
        bw, bh = raw[keep, 2] / self.INPUT * side, raw[keep, 3] / self.INPUT * side
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        return [
            ((int(b[0]), int(b[1]), math.ceil(b[2]), math.ceil(b[3])), float(scores[keep][i]))
            for i in _nms(boxes, scores[keep], iou=0.3)
            for b in [boxes[i]]
        ]


def _nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float) -> list[int]:
    order = list(np.argsort(-scores))
    kept: list[int] = []
    while order:
        best = order.pop(0)
        kept.append(best)
        order = [i for i in order if _iou(boxes[best], boxes[i]) < iou]
    return kept


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class FaceBlur:
    """Blurs every face of a reel's frames (see the module docstring); one per reel, fed its
    frames in order (``reset`` between windows)."""

    heads: Sequence[HeadTrack]
    detector: FaceDetector | None
    fps: float
    analysis_fps: float
    _held: list[tuple[PixelBox, int]] = field(default_factory=list)
    _frame: int = 0

    def reset(self) -> None:
        self._held, self._frame = [], 0

    def faces(self, rgb: np.ndarray, t_s: float) -> list[PixelBox]:
        """The pixel boxes to blur in this frame (held detections included)."""
        self._frame += 1
        boxes: list[PixelBox] = []
        regions: list[PixelBox | None] = [None]
        for head in self.heads:
            at = head.at(t_s, max_gap_s=2.5 / self.analysis_fps)
            if at is not None:
                cx, cy, size = at
                boxes.append(square(cx, cy, size))
                regions.append(square(cx, cy, size * FACE_SEARCH))
        if self.detector is not None:
            hold = max(1, round(FACE_HOLD_S * self.fps))
            for region in regions:
                for box, _ in self.detector.detect(rgb, region):
                    self._held.append((_grow(box, FACE_MARGIN), self._frame + hold))
            self._held = [(b, until) for b, until in self._held if until >= self._frame]
            boxes.extend(b for b, _ in self._held)
        return boxes


def square(cx: float, cy: float, side: float) -> PixelBox:
    """The pixel box of side ``side`` centred on (cx, cy)."""
    half = side / 2
    return int(cx - half), int(cy - half), math.ceil(cx + half), math.ceil(cy + half)


def _grow(box: PixelBox, share: float) -> PixelBox:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * share / 2, (y1 - y0) * share / 2
    return int(x0 - dx), int(y0 - dy), math.ceil(x1 + dx), math.ceil(y1 + dy)


def blur_boxes(image: np.ndarray, boxes: Iterable[PixelBox]) -> None:
    """Cover each box of ``image`` in place (clipped to the image) with its own average colour:
    a blur, however strong, leaves a face-coloured blob that a detector still takes for a face
    (BlazeFace did, at 0.59, on a head shrunk to 3 x 3 pixels and blurred back)."""
    height, width = image.shape[:2]
    for x0, y0, x1, y1 in boxes:
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        region = image[y0:y1, x0:x1]
        region[:] = region.reshape(-1, region.shape[2]).mean(axis=0).astype(np.uint8)


# --- one frame --------------------------------------------------------------------------------


@dataclass
class Framing:
    """What the reel's frames get: a crop per window (from ``SubjectPath``s) and/or face blur.
    ``window(i, times)`` prepares window i's crop path; ``apply`` makes one output frame."""

    frame_px: tuple[int, int]
    size: tuple[int, int]
    paths: Sequence[SubjectPath] | None
    blur: FaceBlur | None
    _origins: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=int))

    def window(self, number: int, times_s: np.ndarray) -> None:
        if self.paths is not None:
            self._origins = crop_origins(self.paths[number], times_s, frame_px=self.frame_px, size=self.size)
        if self.blur is not None:
            self.blur.reset()

    def apply(self, rgb: np.ndarray, position: int, t_s: float) -> np.ndarray:
        """Frame ``position`` of the current window (shown at source time ``t_s``) as BGR, at
        ``size``: faces blurred on the whole frame first, then cropped."""
        image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self.blur is not None:
            blur_boxes(image, self.blur.faces(rgb, t_s))
        crop_w, crop_h = self.size
        if self.paths is not None:
            x, y = self._origins[min(position, len(self._origins) - 1)]
            return image[y : y + crop_h, x : x + crop_w]
        return image[:crop_h, :crop_w]
