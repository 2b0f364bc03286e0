"""Split a video into overlapping chunks and merge the per-chunk results back into one sequence.

Times are seconds from the start of the video. Chunk borders lie on the analysis grid
(multiples of 1 / grid fps), so chunks that overlap analyse the same grid frames; the shared
frames are what track ids are stitched on.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.optimize import linear_sum_assignment

from posereel import grid
from posereel.errors import ChunkMergeError, InputError
from posereel.schemas import ChunkResult, ChunkSpec, FramePoses
from posereel.settings import TrackingSettings
from posereel.similarity import PoseArrays, pose_similarity


def plan_chunks(
    end_s: float,
    *,
    chunk_seconds: float,
    overlap_seconds: float,
    grid_fps: float,
    start_s: float = 0.0,
    keyframes: Sequence[float] = (),
    seek_preroll_s: float = 0.0,
    min_last_chunk_fraction: float = 0.5,
) -> list[ChunkSpec]:
    """Plan the chunks that cover [start_s, end_s) of a video (the whole of it: start 0, end its
    duration); ``start_s`` is on the analysis grid.

    Chunk i decodes [start_s, end_s) and owns [own_start_s, own_end_s). Starts and ends lie on
    the grid (the last end is ``end_s`` itself); consecutive chunks overlap by ``overlap_seconds``
    (snapped to the grid) and their ownership border sits in the middle of the overlap, so the owned
    ranges tile [start_s, end_s) exactly. A last chunk shorter than ``min_last_chunk_fraction`` of
    a chunk is folded into the one before it.

    ``keyframes`` (times of the video's keyframes, when known) move each chunk start, within half
    the overlap, to where a worker's seek (``seek_preroll_s`` before the start) lands just after a
    keyframe, so it decodes least: a start *on* a keyframe would be the worst place, decoding the
    whole previous group of pictures.
    """
    if not end_s > start_s >= 0 or not math.isfinite(end_s):
        raise InputError(f"the range [{start_s}, {end_s}) of the video is empty or not finite")
    if not grid_fps > 0:
        raise InputError(f"grid_fps must be positive, got {grid_fps}")
    if not chunk_seconds > 0:
        raise InputError(f"chunk_seconds must be positive, got {chunk_seconds}")
    if not 0 <= overlap_seconds < chunk_seconds:
        raise InputError(
            f"overlap_seconds must be in [0, chunk_seconds): got {overlap_seconds} with chunk {chunk_seconds}"
        )
    # Work in whole grid steps.
    chunk = round(chunk_seconds * grid_fps)
    overlap = round(overlap_seconds * grid_fps)
    if chunk < 1:
        raise InputError(f"chunk_seconds={chunk_seconds} is shorter than one grid step at {grid_fps} fps")
    if overlap >= chunk:
        raise InputError(
            f"overlap of {overlap_seconds}s is not shorter than the chunk of {chunk_seconds}s on the grid"
        )
    first = grid.index_at_or_after(start_s, grid_fps)
    stride = chunk - overlap
    total = end_s * grid_fps - first  # the range in grid steps, not necessarily whole

    count = 1 if total <= chunk else math.ceil((total - overlap) / stride - grid.GRID_EPS)
    if count > 1 and total - (count - 1) * stride < min_last_chunk_fraction * chunk:
        count -= 1
    starts = [first + i * stride for i in range(count)]
    if keyframes and count > 1:
        half_s = overlap_seconds / 2
        aligned = [first] + [
            _aligned_start(s, keyframes, grid_fps=grid_fps, half_s=half_s, preroll_s=seek_preroll_s)
            for s in starts[1:]
        ]
        # Kept only when it is still a plan: starts increase, the last chunk owns something.
        if all(a < b for a, b in pairwise(aligned)) and aligned[-1] + overlap // 2 < end_s * grid_fps:
            starts = aligned
    specs: list[ChunkSpec] = []
    for i, start in enumerate(starts):
        last = i == count - 1
        own_start = first if i == 0 else start + overlap // 2
        specs.append(
            ChunkSpec(
                index=i,
                start_s=start / grid_fps,
                end_s=end_s if last else (starts[i + 1] + overlap) / grid_fps,
                own_start_s=own_start / grid_fps,
                own_end_s=end_s if last else (starts[i + 1] + overlap // 2) / grid_fps,
            )
        )
    return specs


def _aligned_start(
    planned: int, keyframes: Sequence[float], *, grid_fps: float, half_s: float, preroll_s: float
) -> int:
    """Grid index of the best start near ``planned``: the first grid time at least ``preroll_s``
    after the keyframe nearest to (planned - preroll), if within half_s of the planned start."""
    seek = planned / grid_fps - preroll_s
    i = bisect.bisect_left(keyframes, seek)
    best = planned
    best_shift = math.inf
    for k in keyframes[max(0, i - 1) : i + 1]:
        candidate = grid.index_at_or_after(k + preroll_s, grid_fps)
        shift = abs(candidate - planned) / grid_fps
        if candidate > 0 and shift <= half_s + grid.GRID_EPS and shift < best_shift:
            best, best_shift = candidate, shift
    return best


def _check_results(results: Sequence[ChunkResult]) -> list[ChunkResult]:
    if not results:
        raise ChunkMergeError("no chunk results to merge")
    ordered = sorted(results, key=lambda r: r.chunk.index)
    indices = [r.chunk.index for r in ordered]
    if indices != list(range(len(ordered))):
        missing = sorted(set(range(max(indices) + 1)) - set(indices))
        raise ChunkMergeError(
            f"chunk results must be numbered 0..n-1 once each: missing {missing}, got {indices}"
        )
    first = ordered[0]
    for r in ordered[1:]:
        if not math.isclose(r.analysis_fps, first.analysis_fps, rel_tol=1e-9):
            raise ChunkMergeError(
                f"chunk {r.chunk.index} was analysed at {r.analysis_fps} fps, chunk 0 at {first.analysis_fps}"
            )
        if r.video != first.video:
            raise ChunkMergeError(f"chunk {r.chunk.index} is from a different video than chunk 0")
    for a, b in pairwise(ordered):
        if not math.isclose(a.chunk.own_end_s, b.chunk.own_start_s, abs_tol=1e-6):
            raise ChunkMergeError(
                f"chunks {a.chunk.index} and {b.chunk.index} do not meet: "
                f"{a.chunk.own_end_s} != {b.chunk.own_start_s}"
            )
    for r in ordered:
        seen = [f.index for f in r.frames]
        if len(seen) != len(set(seen)):
            raise ChunkMergeError(f"chunk {r.chunk.index} repeats a frame index")
        for f in r.frames:
            ids = [p.track_id for p in f.persons]
            if None in ids:
                raise ChunkMergeError(f"chunk {r.chunk.index} frame {f.index} has persons without a track id")
            if len(ids) != len(set(ids)):
                raise ChunkMergeError(
                    f"chunk {r.chunk.index} frame {f.index} gives one track id to two persons"
                )
    return ordered


def _stitch(
    a: ChunkResult,
    b: ChunkResult,
    *,
    aspect: float,
    min_similarity: float,
    min_shared_frames: int,
) -> dict[int, int]:
    """Match local track ids of ``b`` to local track ids of ``a`` on the frames both analysed.

    A pair scores the summed per-frame similarity over frames where both appear, divided by the
    number of shared frames where either appears; the Hungarian assignment keeps pairs that
    reach ``min_similarity`` and co-occur in at least ``min_shared_frames`` frames.
    """
    frames_a = {f.index: f for f in a.frames}
    frames_b = {f.index: f for f in b.frames}
    shared = sorted(frames_a.keys() & frames_b.keys())
    ids_a = sorted({p.track_id for i in shared for p in frames_a[i].persons if p.track_id is not None})
    ids_b = sorted({p.track_id for i in shared for p in frames_b[i].persons if p.track_id is not None})
    if not ids_a or not ids_b:
        return {}
    row = {t: k for k, t in enumerate(ids_a)}
    col = {t: k for k, t in enumerate(ids_b)}
    total = np.zeros((len(ids_a), len(ids_b)))
    together = np.zeros_like(total)
    present_a = np.zeros(len(ids_a))
    present_b = np.zeros(len(ids_b))
    for i in shared:
        pa, pb = frames_a[i].persons, frames_b[i].persons
        ra = [row[p.track_id] for p in pa if p.track_id is not None]
        cb = [col[p.track_id] for p in pb if p.track_id is not None]
        present_a[ra] += 1
        present_b[cb] += 1
        if not pa or not pb:
            continue
        sim = pose_similarity(
            PoseArrays.from_persons(pa, aspect=aspect), PoseArrays.from_persons(pb, aspect=aspect)
        )
        total[np.ix_(ra, cb)] += sim
        together[np.ix_(ra, cb)] += 1
    score = total / np.maximum(present_a[:, None], present_b[None, :])
    need = min(min_shared_frames, len(shared))
    rows, cols = linear_sum_assignment(score, maximize=True)
    return {
        ids_b[c]: ids_a[r]
        for r, c in zip(rows, cols, strict=True)
        if score[r, c] >= min_similarity and together[r, c] >= need
    }


@dataclass(frozen=True)
class Stitched:
    """The chunks as one sequence: frames with global track ids (each grid index once), and what
    each global track looked like (the sum of its chunk tracks' colour histograms)."""

    frames: list[FramePoses]
    appearance: dict[int, np.ndarray]


def merge_chunk_results(
    results: Sequence[ChunkResult],
    *,
    tracking: TrackingSettings,
    min_stitch_similarity: float = 0.5,
    min_shared_frames: int = 3,
) -> Stitched:
    """Merge per-chunk poses (chunk-local track ids) into one sequence with global track ids.

    Each grid index appears once, taken from the chunk that owns its time, in index order.
    Local tracks of consecutive chunks are matched on the frames both analysed (see
    ``_stitch``); a matched track inherits the earlier chunk's global id, an unmatched one gets
    a new id (so chunks planned without overlap stitch nobody; posereel.linking joins what is
    left over the whole video). ``results`` may come in any order.
    """
    ordered = _check_results(results)
    fps = ordered[0].analysis_fps
    video = ordered[0].video
    aspect = video.width / video.height
    threshold = max(min_stitch_similarity, tracking.min_similarity)

    next_global = 0
    to_global: list[dict[int, int]] = []
    for k, result in enumerate(ordered):
        local_ids = sorted({p.track_id for f in result.frames for p in f.persons if p.track_id is not None})
        inherited: dict[int, int] = {}
        if k > 0:
            matches = _stitch(
                ordered[k - 1],
                result,
                aspect=aspect,
                min_similarity=threshold,
                min_shared_frames=min_shared_frames,
            )
            inherited = {b: to_global[k - 1][a] for b, a in matches.items()}
        mapping: dict[int, int] = {}
        for tid in local_ids:
            if tid in inherited:
                mapping[tid] = inherited[tid]
            else:
                mapping[tid] = next_global
                next_global += 1
        to_global.append(mapping)

    merged: list[FramePoses] = []
    appearance: dict[int, np.ndarray] = {}
    for result, mapping in zip(ordered, to_global, strict=True):
        lo = grid.index_at_or_after(result.chunk.own_start_s, fps)
        hi = grid.index_at_or_after(result.chunk.own_end_s, fps)
        for frame in sorted(result.frames, key=lambda f: f.index):
            if lo <= frame.index < hi:
                persons = [
                    p.model_copy(update={"track_id": mapping[p.track_id]})
                    for p in frame.persons
                    if p.track_id is not None
                ]
                merged.append(frame.model_copy(update={"persons": persons}))
        for track in result.tracks:
            if track.track_id in mapping:
                gid = mapping[track.track_id]
                appearance[gid] = appearance.get(gid, 0) + np.asarray(track.histogram, dtype=np.float64)
    return Stitched(frames=merged, appearance=appearance)
