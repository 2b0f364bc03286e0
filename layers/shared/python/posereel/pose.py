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

import collections
import contextlib
import logging
import os
import sys
import tempfile
import threading
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

    def __init__(
        self,
        settings: PoseSettings,
        model_path: Path,
        *,
        quiet_native_logs: bool = True,
        video_mode: bool = True,
    ) -> None:
        self.settings = settings
        self.model_path = Path(model_path)
        self._quiet = quiet_native_logs
        # VIDEO mode tracks people from frame to frame (and needs increasing timestamps); IMAGE
        # mode looks at each frame afresh, with no memory of earlier ones.
        self._video_mode = video_mode
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
            running_mode=vision.RunningMode.VIDEO if self._video_mode else vision.RunningMode.IMAGE,
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
        if self._video_mode and self._last_t_ms is not None and t_ms <= self._last_t_ms:
            raise ValueError(f"timestamps must increase strictly: {t_ms} ms after {self._last_t_ms} ms")

        from mediapipe import Image, ImageFormat  # imported lazily: Lambda images lack mediapipe

        image = Image(image_format=ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        first = self._last_t_ms is None
        with self._native_logs() if first else contextlib.nullcontext():
            if self._video_mode:
                result = self._landmarker.detect_for_video(image, t_ms)
            else:
                result = self._landmarker.detect(image)
        self._last_t_ms = t_ms
        return [persons_from_landmarks(landmarks) for landmarks in result.pose_landmarks]

    def _native_logs(self) -> contextlib.AbstractContextManager[None]:
        return _native_stderr_to_log() if self._quiet else contextlib.nullcontext()


class AdaptivePoseEstimator:
    """Up to ``settings.num_poses`` people per frame, at the cost of one person while one is there.

    MediaPipe's VIDEO-mode landmarker runs its person detector on every frame while it tracks
    fewer people than its ``num_poses``, which nearly doubles the cost per frame when one person
    is in view (measured here: lite, 480p, 13.6 ms/frame at num_poses=1 vs 24.5 ms at 4), and one
    person in view is the common case (a coach, a dancer, a skater). So:

    - a *scout* (IMAGE mode, no memory between frames, num_poses = the maximum) looks at the
      first frame and every ``discover_every``-th frame after it;
    - the frames in between go to a VIDEO-mode *tracker* with num_poses=1 until anyone (scout or
      tracker) has seen two people at once; from then on, for the rest of this estimator's life,
      the tracker runs at the full num_poses, exactly as PoseEstimator would.

    A second person who shows up between scout frames is found within ``discover_every`` frames.
    The tracker is made anew on the switch: a VIDEO-mode landmarker that skipped frames tracks
    from stale positions and reports "people" where they stood a while ago.
    Same interface as PoseEstimator.
    """

    def __init__(
        self,
        settings: PoseSettings,
        model_path: Path,
        *,
        discover_every: int = 10,
        quiet_native_logs: bool = True,
        replay_frames: int = 20,
    ) -> None:
        self.settings = settings
        self.model_path = Path(model_path)
        self._quiet = quiet_native_logs
        self._discover_every = max(1, discover_every)
        # The last frames, replayed into the wide tracker when it takes over (see _go_wide).
        self._recent: collections.deque[tuple[np.ndarray, int]] = collections.deque(
            maxlen=max(0, replay_frames)
        )
        self._scout: PoseEstimator | None = None
        if settings.num_poses > 1:
            self._scout = PoseEstimator(
                settings, model_path, quiet_native_logs=quiet_native_logs, video_mode=False
            )
        single = settings.model_copy(update={"num_poses": 1})
        self._tracker = PoseEstimator(single, model_path, quiet_native_logs=quiet_native_logs)
        self._frames = 0
        self._followed: list[PersonPose] = []
        self.device = self._tracker.device
        self.device_note = self._tracker.device_note

    @property
    def current_num_poses(self) -> int:
        return self._tracker.settings.num_poses

    def detect(self, rgb: np.ndarray, t_ms: int) -> list[PersonPose]:
        """As PoseEstimator.detect: RGB uint8 frame, strictly increasing ``t_ms``."""
        scouting = self._scout is not None and self._frames % self._discover_every == 0
        self._frames += 1
        if self._scout is not None and self._recent.maxlen:
            self._recent.append((rgb, t_ms))
        if scouting:
            assert self._scout is not None
            persons = self._scout.detect(rgb, t_ms)
            # Someone the tracker is not following counts as a second person too.
            newcomer = any(all(_box_iou(p.box, q.box) < 0.1 for q in self._followed) for p in persons)
            seen = len(persons) + (len(self._followed) if newcomer and self._followed else 0)
        else:
            persons = self._tracker.detect(rgb, t_ms)
            self._followed = persons
            seen = len(persons)
        if seen > 1 and self._scout is not None:
            self._go_wide()
            # This frame again, from the tracker that has now seen the frames before it.
            persons = self._tracker.detect(rgb, t_ms)
        return persons

    def _go_wide(self) -> None:
        """Two people seen: from now on track everyone, like a plain PoseEstimator.

        The new tracker first replays the last frames (up to this one), so it picks people up
        where they were easier to detect than now; tracking then carries them on, as it would
        have done had it run from the start."""
        self._tracker.close()
        self._tracker = PoseEstimator(self.settings, self.model_path, quiet_native_logs=self._quiet)
        replay = list(self._recent)
        self._recent.clear()
        for rgb, t_ms in replay[:-1]:
            self._tracker.detect(rgb, t_ms)
        if self._scout is not None:
            self._scout.close()
            self._scout = None

    def close(self) -> None:
        self._tracker.close()
        if self._scout is not None:
            self._scout.close()

    def __enter__(self) -> AdaptivePoseEstimator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


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


def _box_iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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


# Redirecting fd 2 is process-wide: chunks analysed in parallel threads take turns.
_STDERR_LOCK = threading.RLock()


@contextlib.contextmanager
def _native_stderr_to_log() -> Iterator[None]:
    """Send what native code writes to file descriptor 2 meanwhile to this logger at DEBUG.

    Process-wide for its duration (other threads' stderr lands there too), so it is kept short."""
    with _STDERR_LOCK, _redirected_stderr():
        yield


@contextlib.contextmanager
def _redirected_stderr() -> Iterator[None]:
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
