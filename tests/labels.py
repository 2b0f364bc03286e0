"""The hand-made ground truth of tests/data/tracking (its README says how it was made), and how a
run's tracks are scored against it: recall and precision of people per labelled frame, id switches,
IDF1 and MOTA (motmetrics), coverage per labelled person.

A labelled box marked ``partial`` (heavily occluded, cut by the frame edge) is a "don't care":
finding it is no hit, missing it no miss, and a track on it no false positive. A track and a
label match when their boxes overlap by at least ``min_iou`` (intersection over union).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posereel.schemas import Box, FramePoses

DATA = Path(__file__).parent / "data" / "tracking"
LABELLED_CLIPS = (
    "sports2d_park_walk",
    "mmaction2_basketball",
    "pets2009_vtest_crowd_walking",
    "sports2d_walk_in_out",
)


@dataclass(frozen=True)
class LabelledPerson:
    id: int
    box: Box  # normalised to the frame, like posereel's boxes
    partial: bool


@dataclass(frozen=True)
class LabelledFrame:
    t_s: float
    persons: tuple[LabelledPerson, ...]


@dataclass(frozen=True)
class Labels:
    clip: str
    width: int
    height: int
    frames: tuple[LabelledFrame, ...]


def load(stem: str) -> Labels:
    raw = json.loads((DATA / f"{stem}.json").read_text())
    w, h = raw["width"], raw["height"]
    frames = tuple(
        LabelledFrame(
            t_s=float(f["t_s"]),
            persons=tuple(
                LabelledPerson(
                    id=int(p["id"]),
                    box=(p["box"][0] / w, p["box"][1] / h, p["box"][2] / w, p["box"][3] / h),
                    partial=bool(p["partial"]),
                )
                for p in f["persons"]
            ),
        )
        for f in raw["frames"]
    )
    return Labels(clip=raw["clip"], width=w, height=h, frames=frames)


def iou(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@dataclass
class Scores:
    """How a run's tracks agree with the labels (non-partial labels only)."""

    labelled: int = 0  # labelled people, over all labelled frames
    found: int = 0  # of them matched by a track
    tracked: int = 0  # track boxes in labelled frames (not on a partial label)
    false: int = 0  # of them matching no label
    id_switches: int = 0
    idf1: float = 0.0
    mota: float = 0.0
    recall_per_frame: list[float] = field(default_factory=list)
    coverage: dict[int, float] = field(default_factory=dict)  # label id -> share of its frames found
    ids_per_label: dict[int, set[int]] = field(default_factory=dict)  # label id -> track ids on it

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return (self.tracked - self.false) / self.tracked if self.tracked else 1.0


def score(labels: Labels, frames: Sequence[FramePoses], *, fps: float, min_iou: float = 0.5) -> Scores:
    """Score ``frames`` (a run's tracks on the analysis grid at ``fps``) against ``labels``."""
    import motmetrics as mm

    by_index = {f.index: f for f in frames}
    accumulator = mm.MOTAccumulator(auto_id=True)
    scores = Scores()
    seen: dict[int, list[bool]] = {}
    for labelled in labels.frames:
        frame = by_index.get(round(labelled.t_s * fps))
        tracks = [(p.track_id, p.box) for p in (frame.persons if frame else []) if p.track_id is not None]
        cared = [p for p in labelled.persons if not p.partial]
        dont_care = [p for p in labelled.persons if p.partial]
        # A track on a don't-care box only (not on a cared-for one) is left out.
        tracks = [
            (tid, box)
            for tid, box in tracks
            if any(iou(box, p.box) >= min_iou for p in cared)
            or not any(iou(box, p.box) >= min_iou for p in dont_care)
        ]
        distances = np.full((len(cared), len(tracks)), np.nan)
        for i, p in enumerate(cared):
            for j, (_, box) in enumerate(tracks):
                overlap = iou(p.box, box)
                if overlap >= min_iou:
                    distances[i, j] = 1.0 - overlap
        accumulator.update([p.id for p in cared], [tid for tid, _ in tracks], distances)
        matched = _matches(distances)
        scores.labelled += len(cared)
        scores.found += len(matched)
        scores.tracked += len(tracks)
        scores.false += len(tracks) - len(matched)
        scores.recall_per_frame.append(len(matched) / len(cared) if cared else 1.0)
        for i, p in enumerate(cared):
            j = matched.get(i)
            seen.setdefault(p.id, []).append(j is not None)
            if j is not None:
                scores.ids_per_label.setdefault(p.id, set()).add(int(tracks[j][0]))
    summary = mm.metrics.create().compute(accumulator, metrics=["num_switches", "idf1", "mota"], name="run")
    scores.id_switches = int(summary["num_switches"].iloc[0])
    scores.idf1 = float(summary["idf1"].iloc[0])
    scores.mota = float(summary["mota"].iloc[0])
    scores.coverage = {pid: sum(hits) / len(hits) for pid, hits in seen.items()}
    return scores


def _matches(distances: np.ndarray) -> dict[int, int]:
    """Label row -> track column of the best one-to-one matching (Hungarian on the distances)."""
    if distances.size == 0:
        return {}
    from scipy.optimize import linear_sum_assignment

    cost = np.where(np.isnan(distances), 10.0, distances)
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True) if not np.isnan(distances[r, c])}
