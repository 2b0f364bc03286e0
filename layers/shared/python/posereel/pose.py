"""Multi-person pose estimation with MediaPipe's Tasks PoseLandmarker (VIDEO mode).

MediaPipe's output is converted into PersonPose in one place (``persons_from_landmarks``).
Coordinates follow posereel.schemas: x, y normalised to the frame given to ``detect``
(0..1, origin top-left; landmarks of body parts outside the picture may lie outside 0..1),
z MediaPipe's relative depth, visibility 0..1.

MediaPipe's C++ side logs to the process's stderr (absl logging; GLOG_minloglevel has no effect
in mediapipe 1.2). With ``quiet_native_logs`` (the default) that output is captured while the
landmarker is created and on the first frame (where nearly all of it is written) and passed to
this module's logger at DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from posereel.errors import ModelError
from posereel.schemas import NUM_LANDMARKS, Box, Device, Landmark, PersonPose
from posereel.settings import PoseSettings

log = logging.getLogger(__name__)

_NOTE_MAX_CHARS = 300


class _MpLandmark(Protocol):
    x: float | None
    y: float | None
    z: float | None
    visibility: float | None


class PoseEstimator:
    """Finds up to ``settings.num_poses`` people per frame. Use as a context manager.

    ``settings.delegate``: "cpu" runs on the CPU. "gpu" and "auto" try MediaPipe's GPU delegate
    (OpenGL ES through EGL) and fall back to the CPU when the landmarker cannot be created on it;
    "gpu" logs the fallback at WARNING (it was asked for explicitly), "auto" at INFO. After
    construction ``device`` says where inference runs ("cpu" or "gpu") and ``device_note`` why
    the CPU was used when a GPU was asked for (None otherwise). Only creation is guarded: a GPU
    that fails later, during inference, raises.
    """

    def __init__(self, settings: PoseSettings, model_path: Path, *, quiet_native_logs: bool = True) -> None:
        self.settings = settings
        self.model_path = Path(model_path)
        self._quiet = quiet_native_logs
        self._last_t_ms: int | None = None
        self.device: Device = "cpu"
        self.device_note: str | None = None
        if not self.model_path.is_file():
            raise ModelError(f"pose model {self.model_path} not found")
        self._landmarker: Any = self._create()

    # --- life cycle -------------------------------------------------------------------------

    def _create(self) -> Any:
        if self.settings.delegate in ("gpu", "auto"):
            try:
                landmarker = self._create_on("gpu")
            except Exception as exc:  # mediapipe raises RuntimeError; any failure means "no GPU"
                self.device_note = f"GPU delegate unavailable: {_short_reason(exc)}"
                level = logging.WARNING if self.settings.delegate == "gpu" else logging.INFO
                log.log(level, "pose: running on the CPU; %s", self.device_note)
                log.debug("pose: GPU delegate failure in full: %s", exc)
            else:
                self.device = "gpu"
                return landmarker
        self.device = "cpu"
        try:
            return self._create_on("cpu")
        except Exception as exc:
            raise ModelError(f"cannot load pose model {self.model_path}: {_short_reason(exc)}") from exc

    def _create_on(self, device: Device) -> Any:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        delegate = BaseOptions.Delegate.GPU if device == "gpu" else BaseOptions.Delegate.CPU
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path), delegate=delegate),
            running_mode=vision.RunningMode.VIDEO,
            num_poses=self.settings.num_poses,
            min_pose_detection_confidence=self.settings.min_detection_confidence,
            min_pose_presence_confidence=self.settings.min_presence_confidence,
            min_tracking_confidence=self.settings.min_tracking_confidence,
            output_segmentation_masks=False,
        )
        with self._native_logs():
            return vision.PoseLandmarker.create_from_options(options)

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- inference --------------------------------------------------------------------------

    def detect(self, rgb: np.ndarray, t_ms: int) -> list[PersonPose]:
        """People in one frame. ``rgb`` is HxWx3 uint8 in RGB order (not BGR); ``t_ms`` the frame's
        time in milliseconds, strictly increasing from call to call (MediaPipe tracks between
        frames). Returned persons have ``track_id`` None."""
        if self._landmarker is None:
            raise RuntimeError("PoseEstimator is closed")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 RGB array, got shape {rgb.shape} dtype {rgb.dtype}")
        t_ms = int(t_ms)
        if self._last_t_ms is not None and t_ms <= self._last_t_ms:
            raise ValueError(f"timestamps must increase strictly: {t_ms} ms after {self._last_t_ms} ms")

        from mediapipe import Image, ImageFormat  # imported lazily: Lambda images lack mediapipe

        image = Image(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        first = self._last_t_ms is None
        with self._native_logs() if first else contextlib.nullcontext():
            result = self._landmarker.detect_for_video(image, t_ms)
        self._last_t_ms = t_ms
        return [persons_from_landmarks(landmarks) for landmarks in result.pose_landmarks]

    def _native_logs(self) -> contextlib.AbstractContextManager[None]:
        return _native_stderr_to_log() if self._quiet else contextlib.nullcontext()


def persons_from_landmarks(
    landmarks: Sequence[_MpLandmark], *, box_min_visibility: float = 0.5
) -> PersonPose:
    """The one conversion of MediaPipe's output: one pose's 33 NormalizedLandmarks -> PersonPose.

    ``landmarks`` are (x, y, z, visibility) floats (a missing visibility counts as 0). ``box`` is
    the extent of the landmarks with visibility >= ``box_min_visibility`` (all of them when none
    is), clipped to [0, 1]. ``score`` is the mean landmark visibility, so it can be recomputed from
    stored landmarks; a person half out of the picture scores lower.
    """
    if len(landmarks) != NUM_LANDMARKS:
        raise ValueError(f"expected {NUM_LANDMARKS} landmarks, got {len(landmarks)}")
    points: list[Landmark] = [
        (_num(lm.x), _num(lm.y), _num(lm.z), min(1.0, max(0.0, _num(lm.visibility)))) for lm in landmarks
    ]
    visible = [p for p in points if p[3] >= box_min_visibility] or points
    xs = [p[0] for p in visible]
    ys = [p[1] for p in visible]
    box: Box = (_clip01(min(xs)), _clip01(min(ys)), _clip01(max(xs)), _clip01(max(ys)))
    score = sum(p[3] for p in points) / len(points)
    return PersonPose(track_id=None, score=score, box=box, landmarks=points)


def _num(value: float | None) -> float:
    return float(value) if value is not None and np.isfinite(value) else 0.0


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    # mediapipe's GPU failure names the whole calculator path before the reason.
    marker = "cannot be created: "
    if marker in text:
        text = text.split(marker, 1)[1]
    return text[:_NOTE_MAX_CHARS]


@contextlib.contextmanager
def _native_stderr_to_log() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 meanwhile to this logger at DEBUG.

    Process-wide for its duration (other threads' stderr lands there too), so it is kept short."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                log.debug("MediaPipe native log:\n%s", text)
