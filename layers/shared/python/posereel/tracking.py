"""Give every person a track id from frame to frame within one chunk, with a maintained
multi-object tracker (roboflow ``trackers``: ByteTrack or OC-SORT, Kalman motion models on the
people's boxes).

A chunk's track ids are local to it; the merge stage stitches chunks on the frames they share
(posereel.chunks) and links the pieces of one person over the whole video (posereel.linking).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from posereel.errors import InputError
from posereel.schemas import FramePoses, PersonPose
from posereel.settings import TrackingSettings
from posereel.similarity import box_iou


class Tracker:
    """Track ids for the people of successive frames of one chunk (0, 1, 2, ... in order of
    creation). Feed frames in increasing ``index`` order to :meth:`update`, then call
    :meth:`flush` once.

    The library tracker associates each frame's boxes to its tracks (predicted by their Kalman
    filters): confident poses (score at least ``settings.confident_score``) first, then the rest;
    a track unmatched for ``settings.lost_after_s`` ends. A pose the tracker gives no track (a
    doubtful one no track wants) is left out of the frame.

    The library names a new track on its second sighting, so a frame is final only once the
    next one is seen: ``update`` returns the frame before (None at first), with the first
    sighting of each track that began in it given back to that track.
    """

    def __init__(self, settings: TrackingSettings, *, fps: float) -> None:
        import supervision as sv
        from trackers import ByteTrackTracker, OCSORTTracker

        self._sv = sv
        self.settings = settings
        # The library counts its lost-track buffer in frames of a 30 fps video.
        buffer = max(1, round(settings.lost_after_s * 30))
        self._tracker: OCSORTTracker | ByteTrackTracker
        if settings.algorithm == "ocsort":
            self._tracker = OCSORTTracker(
                lost_track_buffer=buffer,
                frame_rate=fps,
                minimum_consecutive_frames=1,
                minimum_iou_threshold=settings.min_iou,
                high_conf_det_threshold=settings.confident_score,
            )
        else:
            self._tracker = ByteTrackTracker(
                lost_track_buffer=buffer,
                frame_rate=fps,
                track_activation_threshold=settings.confident_score,
                minimum_consecutive_frames=1,
                minimum_iou_threshold=settings.min_iou,
                high_conf_det_threshold=settings.confident_score,
            )
        self._last_index: int | None = None
        self._ids: dict[int, int] = {}  # the library's id -> ours, numbered in order of creation
        # The frame waiting for the next one: its persons, their track ids, and the persons
        # without one that may have begun a track.
        self._pending: tuple[FramePoses, dict[int, int], list[int]] | None = None

    def update(self, frame: FramePoses) -> FramePoses | None:
        """The frame before ``frame``, final: ``track_id`` set on each person it keeps, persons
        sorted by track id; None for the first frame."""
        if self._last_index is not None and frame.index <= self._last_index:
            raise InputError(
                f"frames must come in increasing index order: {frame.index} after {self._last_index}"
            )
        steps = 1 if self._last_index is None else frame.index - self._last_index
        self._last_index = frame.index
        persons = list(frame.persons)
        detections = self._sv.Detections(
            xyxy=np.array([p.box for p in persons], dtype=np.float64).reshape(-1, 4),
            confidence=np.array([p.score for p in persons], dtype=np.float64),
            data={"person": np.arange(len(persons))},
        )
        for _ in range(steps - 1):  # grid frames that were not analysed: the tracks coast
            self._tracker.update(self._sv.Detections.empty())
        tracked = self._tracker.update(detections)
        assigned: dict[int, int] = {}
        untracked: list[int] = []
        began: dict[int, int] = {}  # person -> a track named in this frame
        named: list[tuple[int, int]] = []  # (person, library id) of the tracks named now
        if len(tracked) and tracked.tracker_id is not None:
            for person, library_id in zip(tracked.data["person"], tracked.tracker_id, strict=True):
                if library_id < 0:
                    if persons[int(person)].score >= self.settings.confident_score:
                        untracked.append(int(person))
                elif int(library_id) in self._ids:
                    assigned[int(person)] = self._ids[int(library_id)]
                else:
                    named.append((int(person), int(library_id)))
        # New tracks are numbered left to right (then top to bottom), whatever the input order.
        for person, library_id in sorted(named, key=lambda n: persons[n[0]].box):
            began[person] = assigned[person] = self._ids[library_id] = len(self._ids)
        untracked.sort(key=lambda i: persons[i].box)
        done = self._finish(began, persons) if steps == 1 else self._finish({}, persons)
        self._pending = (frame, assigned, untracked)
        return done

    def flush(self) -> FramePoses | None:
        """The last frame, final (None when there was none)."""
        return self._finish({}, [])

    def _finish(self, began: dict[int, int], persons: list[PersonPose]) -> FramePoses | None:
        """The pending frame with its persons' ids, plus the first sightings of the tracks named
        in the frame after it (``began``: person there -> track id): a new track was spawned
        from one of the pending frame's untracked persons, the one its box overlaps most."""
        if self._pending is None:
            return None
        frame, assigned, untracked = self._pending
        self._pending = None
        if began and untracked:
            before = np.array([frame.persons[i].box for i in untracked], dtype=np.float64)
            after = np.array([persons[i].box for i in began], dtype=np.float64)
            overlap = box_iou(before, after)
            rows, cols = linear_sum_assignment(overlap, maximize=True)
            track_ids = list(began.values())
            for r, c in zip(rows, cols, strict=True):
                if overlap[r, c] >= max(self.settings.min_iou, 1e-6):
                    assigned[untracked[r]] = track_ids[c]
        out = [frame.persons[i].model_copy(update={"track_id": tid}) for i, tid in assigned.items()]
        out.sort(key=_track_id)
        return frame.model_copy(update={"persons": out})


def _track_id(person: PersonPose) -> int:
    return -1 if person.track_id is None else person.track_id


def track_frames(frames: Iterable[FramePoses], settings: TrackingSettings, *, fps: float) -> list[FramePoses]:
    """Track a whole sequence (frames in increasing index order) with one :class:`Tracker`."""
    tracker = Tracker(settings, fps=fps)
    out = [done for frame in frames if (done := tracker.update(frame)) is not None]
    last = tracker.flush()
    return out if last is None else [*out, last]
