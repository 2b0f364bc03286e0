"""Give every person a stable track id across analysed frames.

MediaPipe in VIDEO mode returns people in no stable order, sometimes misses a frame and can
briefly return a ghost (a near-copy of a real pose). ``Tracker`` matches each frame's people to
the live tracks with the Hungarian algorithm on a similarity that mixes box IoU and an OKS-like
keypoint similarity, so ids survive reordering, short misses and people crossing.

Coordinates: landmark and box x/y arrive normalised separately to the frame width and height.
Inside this module x is multiplied by the aspect ratio (width / height), so both axes are in
frame heights and distances are isotropic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from posereel.errors import InputError
from posereel.schemas import NUM_LANDMARKS, FramePoses, PersonPose
from posereel.settings import TrackingSettings

FloatArray = NDArray[np.float64]

# Similarity defaults, tuned on MediaPipe lite output of the shared clips at 10 fps: box IoU
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


def _centres(boxes: FloatArray) -> FloatArray:
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def _track_id(person: PersonPose) -> int:
    return -1 if person.track_id is None else person.track_id


def _creation_order(poses: PoseArrays) -> list[int]:
    """Order in which unmatched people start tracks: left to right, then top to bottom, so ids
    do not depend on the order MediaPipe happened to return people in."""
    centres = _centres(poses.boxes)
    return sorted(range(len(poses)), key=lambda i: (centres[i, 0], centres[i, 1]))


class Tracker:
    """Assign stable track ids (0, 1, 2, ... in order of creation) to the people of successive
    frames. Feed frames in increasing ``index`` order to :meth:`update`.

    A track unseen for more than ``settings.max_gap_frames`` grid frames ends; a person who comes
    back later gets a new id. A detection matches a track only when their similarity reaches
    ``settings.min_similarity``.
    """

    def __init__(
        self,
        settings: TrackingSettings,
        *,
        aspect: float,
        iou_weight: float = IOU_WEIGHT,
        keypoint_sigma: float = KEYPOINT_SIGMA,
        predict_motion: bool = True,
        velocity_smoothing: float = 0.5,
        duplicate_iou: float = 0.5,
        duplicate_keypoint_similarity: float = 0.7,
    ) -> None:
        """``aspect`` is frame width / height. ``duplicate_*``: two people of one frame whose box
        IoU and keypoint similarity both reach these are one person seen twice (a MediaPipe
        ghost); the lower-scored copy is dropped. ``predict_motion`` also compares each detection
        with the track's pose moved along its smoothed box velocity."""
        if aspect <= 0:
            raise InputError(f"aspect must be positive, got {aspect}")
        if not 0 <= iou_weight <= 1:
            raise InputError(f"iou_weight must be in [0, 1], got {iou_weight}")
        if keypoint_sigma <= 0:
            raise InputError(f"keypoint_sigma must be positive, got {keypoint_sigma}")
        if not 0 <= velocity_smoothing < 1:
            raise InputError(f"velocity_smoothing must be in [0, 1), got {velocity_smoothing}")
        self.settings = settings
        self.aspect = aspect
        self.iou_weight = iou_weight
        self.keypoint_sigma = keypoint_sigma
        self.predict_motion = predict_motion
        self.velocity_smoothing = velocity_smoothing
        self.duplicate_iou = duplicate_iou
        self.duplicate_keypoint_similarity = duplicate_keypoint_similarity
        self._next_id = 0
        self._last_index: int | None = None
        # Live tracks, one row each.
        self._ids = np.zeros(0, dtype=np.int64)
        self._landmarks = np.zeros((0, NUM_LANDMARKS, 4))
        self._boxes = np.zeros((0, 4))
        self._velocity = np.zeros((0, 2))  # box centre, frame heights per grid frame
        self._seen_at = np.zeros(0, dtype=np.int64)
        self._hits = np.zeros(0, dtype=np.int64)

    @property
    def live_track_ids(self) -> list[int]:
        """Ids of the tracks that can still be continued."""
        return [int(i) for i in self._ids]

    def update(self, frame: FramePoses) -> FramePoses:
        """Return ``frame`` with ``track_id`` set on each person, ghosts removed and persons
        sorted by track id."""
        if self._last_index is not None and frame.index <= self._last_index:
            raise InputError(
                f"frames must come in increasing index order: {frame.index} after {self._last_index}"
            )
        self._last_index = frame.index
        self._end_stale_tracks(frame.index)

        found = PoseArrays.from_persons(frame.persons, aspect=self.aspect)
        kept = self._drop_duplicates(frame.persons, found)
        persons = [frame.persons[i] for i in kept]
        dets = PoseArrays(found.landmarks[kept], found.boxes[kept])

        det_to_track = self._match(dets, frame.index)
        assigned: list[int] = [-1] * len(persons)
        for det, row in det_to_track.items():
            self._continue_track(row, dets, det, frame.index)
            assigned[det] = int(self._ids[row])
        for det in _creation_order(dets):
            if assigned[det] < 0:
                assigned[det] = self._start_track(dets, det, frame.index)

        out = [p.model_copy(update={"track_id": tid}) for p, tid in zip(persons, assigned, strict=True)]
        out.sort(key=_track_id)
        return frame.model_copy(update={"persons": out})

    def _end_stale_tracks(self, index: int) -> None:
        unseen = index - self._seen_at - 1
        alive = unseen <= self.settings.max_gap_frames
        if not alive.all():
            self._ids = self._ids[alive]
            self._landmarks = self._landmarks[alive]
            self._boxes = self._boxes[alive]
            self._velocity = self._velocity[alive]
            self._seen_at = self._seen_at[alive]
            self._hits = self._hits[alive]

    def _drop_duplicates(self, persons: Sequence[PersonPose], poses: PoseArrays) -> list[int]:
        """Indices of the persons to keep, in input order: of each group of near-identical
        poses only the best (highest score, then most visible) survives."""
        n = len(persons)
        if n < 2:
            return list(range(n))
        iou = box_iou(poses.boxes, poses.boxes)
        oks = keypoint_similarity(poses, poses, keypoint_sigma=self.keypoint_sigma)
        same = (iou >= self.duplicate_iou) & (oks >= self.duplicate_keypoint_similarity)
        if not same[np.triu_indices(n, k=1)].any():
            return list(range(n))
        visibility = poses.landmarks[:, :, 3].sum(axis=1)
        centres = _centres(poses.boxes)
        best_first = sorted(
            range(n), key=lambda i: (-persons[i].score, -visibility[i], centres[i, 0], centres[i, 1])
        )
        kept: list[int] = []
        for i in best_first:
            if not any(same[i, j] for j in kept):
                kept.append(i)
        return sorted(kept)

    def _match(self, dets: PoseArrays, index: int) -> dict[int, int]:
        """Map detection row -> track row for the pairs the assignment accepts."""
        if len(dets) == 0 or len(self._ids) == 0:
            return {}
        tracks = PoseArrays(self._landmarks, self._boxes)
        sim = pose_similarity(dets, tracks, iou_weight=self.iou_weight, keypoint_sigma=self.keypoint_sigma)
        if self.predict_motion:
            steps = (index - self._seen_at).astype(np.float64)
            shift = self._velocity * steps[:, None]
            moved_landmarks = self._landmarks.copy()
            moved_landmarks[:, :, :2] += shift[:, None, :]
            moved = PoseArrays(moved_landmarks, self._boxes + np.tile(shift, 2))
            sim = np.maximum(
                sim,
                pose_similarity(dets, moved, iou_weight=self.iou_weight, keypoint_sigma=self.keypoint_sigma),
            )
        rows, cols = linear_sum_assignment(sim, maximize=True)
        return {
            int(r): int(c)
            for r, c in zip(rows, cols, strict=True)
            if sim[r, c] >= self.settings.min_similarity
        }

    def _continue_track(self, row: int, dets: PoseArrays, det: int, index: int) -> None:
        steps = index - self._seen_at[row]
        new_centre = _centres(dets.boxes[det : det + 1])[0]
        old_centre = _centres(self._boxes[row : row + 1])[0]
        measured = (new_centre - old_centre) / steps
        if self._hits[row] == 1:
            self._velocity[row] = measured
        else:
            a = self.velocity_smoothing
            self._velocity[row] = a * self._velocity[row] + (1 - a) * measured
        self._landmarks[row] = dets.landmarks[det]
        self._boxes[row] = dets.boxes[det]
        self._seen_at[row] = index
        self._hits[row] += 1

    def _start_track(self, dets: PoseArrays, det: int, index: int) -> int:
        track_id = self._next_id
        self._next_id += 1
        self._ids = np.append(self._ids, track_id)
        self._landmarks = np.concatenate([self._landmarks, dets.landmarks[det : det + 1]])
        self._boxes = np.concatenate([self._boxes, dets.boxes[det : det + 1]])
        self._velocity = np.concatenate([self._velocity, np.zeros((1, 2))])
        self._seen_at = np.append(self._seen_at, index)
        self._hits = np.append(self._hits, 1)
        return track_id


def drop_short_tracks(frames: Iterable[FramePoses], *, min_frames: int) -> list[FramePoses]:
    """Drop tracks with fewer than ``min_frames`` detections and renumber the rest 0, 1, ... by
    first appearance (frame index, then box centre left to right, then top to bottom).

    Persons without a track id are dropped too. Within each frame persons are sorted by id.
    """
    frames = list(frames)
    counts: dict[int, int] = {}
    first_seen: dict[int, tuple[int, float, float]] = {}
    for frame in frames:
        for p in frame.persons:
            if p.track_id is None:
                continue
            counts[p.track_id] = counts.get(p.track_id, 0) + 1
            if p.track_id not in first_seen:
                x0, y0, x1, y1 = p.box
                first_seen[p.track_id] = (frame.index, (x0 + x1) / 2, (y0 + y1) / 2)
    kept = sorted((tid for tid, n in counts.items() if n >= min_frames), key=lambda t: first_seen[t])
    new_id = {old: new for new, old in enumerate(kept)}
    out: list[FramePoses] = []
    for frame in frames:
        persons = [
            p.model_copy(update={"track_id": new_id[p.track_id]})
            for p in frame.persons
            if p.track_id is not None and p.track_id in new_id
        ]
        persons.sort(key=_track_id)
        out.append(frame.model_copy(update={"persons": persons}))
    return out


def track_frames(
    frames: Iterable[FramePoses], settings: TrackingSettings, *, aspect: float
) -> list[FramePoses]:
    """Track a whole sequence (frames in increasing index order) with one :class:`Tracker`, drop
    tracks with fewer than ``settings.min_track_frames`` detections and renumber the survivors
    0, 1, ... by first appearance. ``aspect`` is frame width / height."""
    tracker = Tracker(settings, aspect=aspect)
    tracked = [tracker.update(frame) for frame in frames]
    return drop_short_tracks(tracked, min_frames=settings.min_track_frames)
