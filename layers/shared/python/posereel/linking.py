"""One identity per person over the whole video: the pieces of one person's track (cut by a
chunk border the stitching missed, a backflip, a moment behind someone else) are linked into one,
then people seen for less than a second are dropped as noise and the ids numbered by first
appearance. Runs in the merge stage, on the stitched sequence of every chunk.

A piece that ends can be continued by a piece that starts later when (1) the gap is short
(``link_gap_s``), (2) the later piece starts where the earlier one was heading (its last position
moved along its last velocity, within a distance that grows with the gap), (3) the two are about
the same size and (4) they look alike (posereel.appearance). Candidate links are chosen together
(one continuation per end, one predecessor per start, least cost first) and the rounds repeat
until nothing links, so the answer depends on the pieces, not on their order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from posereel import appearance as looks
from posereel.schemas import FramePoses, PersonPose
from posereel.settings import TrackingSettings

# A person moves at most this fast between two pieces (their own body heights per second: a
# brisk run), and a piece may start this far (in body heights) from where the earlier one was
# heading.
MAX_SPEED = 2.5
NEAR = 0.75
MAX_SIZE_RATIO = 2.0
# Colour histograms tell people apart only roughly (light, pose and a turn change them): they
# weigh in the cost, and forbid a link only when nothing at all is alike.
MAX_LOOK_DISTANCE = 0.85
MAX_COST = 0.6
_ENDS = 3  # frames averaged for a piece's first and last position
_VELOCITY_S = 1.0  # the last second of a piece gives its velocity


@dataclass
class Piece:
    """One track id's frames, in frame heights (x scaled by the aspect ratio)."""

    track_id: int
    indices: np.ndarray  # grid indices where it is seen, increasing
    centres: np.ndarray  # (n, 2) box centres
    heights: np.ndarray  # (n,) box heights

    @property
    def first(self) -> int:
        return int(self.indices[0])

    @property
    def last(self) -> int:
        return int(self.indices[-1])

    def start(self) -> np.ndarray:
        return np.asarray(self.centres[:_ENDS].mean(axis=0))

    def end(self) -> np.ndarray:
        return np.asarray(self.centres[-_ENDS:].mean(axis=0))

    def velocity(self, fps: float) -> np.ndarray:
        """The piece's velocity over its last second (frame heights per second), at most
        MAX_SPEED of its body heights per second."""
        recent = self.indices >= self.last - _VELOCITY_S * fps
        t = self.indices[recent] / fps
        if len(t) < 2 or t[-1] - t[0] <= 0:
            return np.zeros(2)
        v = np.array([np.polyfit(t, self.centres[recent, k], 1)[0] for k in (0, 1)])
        speed, limit = float(np.hypot(*v)), MAX_SPEED * self.size()
        return v * (limit / speed) if speed > limit else v

    def size(self) -> float:
        return float(np.median(self.heights))


def pieces(frames: Sequence[FramePoses], *, aspect: float) -> dict[int, Piece]:
    rows: dict[int, list[tuple[int, float, float, float]]] = {}
    for frame in frames:
        for p in frame.persons:
            if p.track_id is None:
                continue
            x0, y0, x1, y1 = p.box
            rows.setdefault(p.track_id, []).append(
                (frame.index, (x0 + x1) / 2 * aspect, (y0 + y1) / 2, max(y1 - y0, 1e-3))
            )
    out = {}
    for tid, seen in rows.items():
        data = np.array(sorted(seen))
        out[tid] = Piece(tid, data[:, 0].astype(int), data[:, 1:3], data[:, 3])
    return out


def link_cost(
    a: Piece,
    b: Piece,
    *,
    fps: float,
    settings: TrackingSettings,
    look_a: np.ndarray | None,
    look_b: np.ndarray | None,
) -> float | None:
    """The cost (0..1, lower is likelier) of ``b`` continuing ``a``, or None when it cannot."""
    gap_s = (b.first - a.last) / fps
    if gap_s <= 0 or gap_s > settings.link_gap_s:
        return None
    size_a, size_b = a.size(), b.size()
    if max(size_a, size_b) / min(size_a, size_b) > MAX_SIZE_RATIO:
        return None
    heading = a.end() + a.velocity(fps) * gap_s
    off = float(np.hypot(*(heading - b.start()))) / ((size_a + size_b) / 2)
    allowed = NEAR + MAX_SPEED * gap_s
    if off > allowed:
        return None
    look = looks.distance(look_a, look_b) if look_a is not None and look_b is not None else 0.5
    if look > MAX_LOOK_DISTANCE:
        return None
    return 0.55 * off / allowed + 0.25 * look + 0.2 * gap_s / max(settings.link_gap_s, 1e-6)


def link_tracks(
    frames: Sequence[FramePoses],
    *,
    fps: float,
    aspect: float,
    settings: TrackingSettings,
    appearance: Mapping[int, np.ndarray] | None = None,
) -> list[FramePoses]:
    """``frames`` with the pieces of each person under one id, people seen less than
    ``settings.min_track_s`` dropped, ids renumbered 0, 1, ... by first appearance.
    ``appearance``: track id -> the sum of its colour histograms (posereel.appearance)."""
    base = {tid: np.asarray(h, dtype=np.float64) for tid, h in (appearance or {}).items()}
    looks_of = dict(base)
    parent: dict[int, int] = {}

    def root(tid: int) -> int:
        while parent.get(tid, tid) != tid:
            tid = parent[tid]
        return tid

    relabelled = list(frames)
    for _ in range(20):  # each round links at most one continuation per piece
        current = pieces(relabelled, aspect=aspect)
        candidates = []
        for a in sorted(current):
            for b in sorted(current):
                if a != b:
                    c = link_cost(
                        current[a],
                        current[b],
                        fps=fps,
                        settings=settings,
                        look_a=looks_of.get(a),
                        look_b=looks_of.get(b),
                    )
                    if c is not None and c < MAX_COST:
                        candidates.append((c, a, b))
        # Least cost first, one continuation per end and one predecessor per start; ties in
        # cost go by id, so the answer does not depend on the order of the pieces.
        links, continued, preceded = [], set(), set()
        for _, a, b in sorted(candidates):
            if a not in continued and b not in preceded:
                links.append((a, b))
                continued.add(a)
                preceded.add(b)
        if not links:
            break
        for a, b in links:
            parent[b] = a
        looks_of = {}
        for tid, hist in base.items():
            looks_of[root(tid)] = looks_of.get(root(tid), 0) + hist
        relabelled = [
            f.model_copy(
                update={
                    "persons": [
                        p.model_copy(update={"track_id": root(p.track_id)})
                        for p in f.persons
                        if p.track_id is not None
                    ]
                }
            )
            for f in relabelled
        ]
    # Seen for less than min_track_s (frames seen, not the span: a flicker now and then is noise).
    return drop_short_tracks(relabelled, min_frames=max(1, round(settings.min_track_s * fps)))


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


def _track_id(person: PersonPose) -> int:
    return -1 if person.track_id is None else person.track_id
