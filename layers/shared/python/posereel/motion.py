"""Motion energy per track: how fast a person's body moves, in body lengths per second.

Units and conventions:

* Landmarks arrive normalised to the displayed frame (see ``schemas``); they are converted to
  pixels with the video's width and height first, so a non-square frame does not stretch motion.
  Landmark ``z`` is not used (MediaPipe's depth is too noisy to difference).
* One *body length* is about the person's standing height, estimated as
  ``BODY_LENGTHS_PER_TORSO`` x the torso length (pixel distance from the shoulder centre,
  landmarks 11/12, to the hip centre, 23/24). The torso is used because it does not change when
  arms are raised or legs bend (a box height does); it is a running median over
  ``BODY_LENGTH_WINDOW_S`` so that one bad frame does not change the scale. Dividing by it makes
  energy independent of the distance to the camera and of the video resolution. On the shared
  clips: standing still 0.02-0.07, held dance poses 0.1-0.2, lateral raises peak at 0.45-0.65,
  taiji about 0.9, walking about 1.3.
* A landmark's speed is its displacement between two consecutive analysed frames (grid indices
  ``i - 1`` and ``i``) divided by the body length and by ``dt = 1 / fps``. Landmarks whose
  visibility is below ``min_visibility`` in either frame are ignored.
* A body part's energy is the mean speed of its visible landmarks. A track's energy is the mean
  of its ``TOP_PARTS_FOR_ENERGY`` most-moving parts: arm-only movement (lateral raises) registers
  at full strength, whole-body translation (walking) moves every part and registers too, while a
  person standing still only shows landmark jitter, which stays small in every part.
* Raw energies are smoothed with a centred moving average over ``smooth_window_s``; samples
  where the track is absent are NaN (a gap), never zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from posereel.schemas import NUM_LANDMARKS, EnergySeries, FramePoses, PersonPose
from posereel.settings import MotionSettings

# BlazePose landmark indices of each body part.
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "head": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
    "torso": (11, 12, 23, 24),
    "left_arm": (13, 15, 17, 19, 21),
    "right_arm": (14, 16, 18, 20, 22),
    "left_leg": (25, 27, 29, 31),
    "right_leg": (26, 28, 30, 32),
}
PART_NAMES: tuple[str, ...] = tuple(BODY_PARTS)

LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_HIP, RIGHT_HIP = 11, 12, 23, 24
# The running median that gives the body length spans this many seconds.
BODY_LENGTH_WINDOW_S = 2.0
# Standing height / torso length, measured on the shared clips (box height / torso: 3.0-3.3).
BODY_LENGTHS_PER_TORSO = 3.0
# A track's energy is the mean of this many most-moving parts.
TOP_PARTS_FOR_ENERGY = 2


@dataclass(frozen=True)
class TrackEnergy:
    """Motion energy of one track over its lifetime (first to last sighting) on the analysis grid.

    ``t_s[i]`` is the time of grid frame ``first_index + i``. ``energy`` and every
    ``part_energy[name]`` are in body lengths per second, smoothed, NaN where the track is absent
    (a gap). ``present`` says where the track was seen; ``body_length_px`` is the scale used per
    frame (NaN where absent). ``posture`` (n, 33, 2): each landmark relative to the hip centre,
    in body lengths (NaN where absent or not visible), which says where the body is back in the
    pose it started from (``posture_distance``).
    """

    track_id: int
    first_index: int
    fps: float
    t_s: np.ndarray
    energy: np.ndarray
    part_energy: dict[str, np.ndarray]
    present: np.ndarray
    body_length_px: np.ndarray = field(repr=False)
    posture: np.ndarray | None = field(default=None, repr=False)

    @property
    def frames_seen(self) -> int:
        """Analysed frames in which the track was seen."""
        return int(np.count_nonzero(self.present))

    @property
    def seen_s(self) -> float:
        """Seconds the track was seen (frames seen / fps)."""
        return self.frames_seen / self.fps

    @property
    def mean_energy(self) -> float:
        """Mean energy over the frames where it is known (body lengths per second); 0 if none."""
        finite = self.energy[np.isfinite(self.energy)]
        return float(finite.mean()) if finite.size else 0.0

    def to_series(self) -> EnergySeries:
        """The schema form of ``energy`` (NaN becomes null)."""
        return EnergySeries(
            track_id=self.track_id,
            t_s=[round(float(t), 6) for t in self.t_s],
            energy=[float(e) if np.isfinite(e) else None for e in self.energy],
        )


@dataclass(frozen=True)
class TrackArrays:
    """One track's landmarks over its lifetime on the analysis grid, in pixels."""

    first_index: int
    xy_px: np.ndarray  # (n, 33, 2), NaN where absent
    visibility: np.ndarray  # (n, 33), 0 where absent
    present: np.ndarray  # (n,) bool


def sightings(frames: Iterable[FramePoses]) -> dict[int, list[tuple[int, PersonPose]]]:
    """Per track id, its (grid index, person) pairs in frame order; if an id repeats within a
    frame, the highest-scoring person is kept. Untracked persons are skipped."""
    by_track: dict[int, dict[int, PersonPose]] = {}
    for frame in frames:
        for person in frame.persons:
            if person.track_id is None:
                continue
            seen = by_track.setdefault(person.track_id, {})
            kept = seen.get(frame.index)
            if kept is None or person.score > kept.score:
                seen[frame.index] = person
    return {tid: sorted(seen.items(), key=lambda item: item[0]) for tid, seen in by_track.items()}


def arrays_from_sightings(found: Sequence[tuple[int, PersonPose]], *, width: int, height: int) -> TrackArrays:
    """Lay one track's sightings onto the grid from its first to its last sighting, converting
    normalised x/y to pixels of a ``width`` x ``height`` (displayed) frame."""
    if not found:
        empty = np.empty((0, NUM_LANDMARKS))
        return TrackArrays(0, np.empty((0, NUM_LANDMARKS, 2)), empty, np.empty(0, dtype=bool))
    first = min(i for i, _ in found)
    n = max(i for i, _ in found) - first + 1
    xy = np.full((n, NUM_LANDMARKS, 2), np.nan)
    vis = np.zeros((n, NUM_LANDMARKS))
    present = np.zeros(n, dtype=bool)
    scale = np.array([float(width), float(height)])
    for index, person in found:
        lm = np.asarray(person.landmarks, dtype=float)
        xy[index - first] = lm[:, :2] * scale
        vis[index - first] = lm[:, 3]
        present[index - first] = True
    return TrackArrays(first_index=first, xy_px=xy, visibility=vis, present=present)


def track_arrays(frames: Sequence[FramePoses], *, track_id: int, width: int, height: int) -> TrackArrays:
    """One track's landmarks in pixels from its first to its last sighting (empty if the id
    never occurs)."""
    return arrays_from_sightings(sightings(frames).get(track_id, []), width=width, height=height)


def _running_nan_median(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median over ``window`` samples, ignoring NaN; NaN where no value."""
    half = window // 2
    out = np.full(values.shape, np.nan)
    for i in range(values.size):
        chunk = values[max(0, i - half) : i + half + 1]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            out[i] = float(np.median(chunk))
    return out


def body_length_px(arrays: TrackArrays, *, fps: float) -> np.ndarray:
    """Body length in pixels per grid frame: ``BODY_LENGTHS_PER_TORSO`` x torso length (shoulder
    centre to hip centre), as a running median over ``BODY_LENGTH_WINDOW_S``; NaN where the
    track is absent."""
    xy = arrays.xy_px
    shoulders = (xy[:, LEFT_SHOULDER] + xy[:, RIGHT_SHOULDER]) / 2
    hips = (xy[:, LEFT_HIP] + xy[:, RIGHT_HIP]) / 2
    torso = BODY_LENGTHS_PER_TORSO * np.linalg.norm(shoulders - hips, axis=1)
    torso[~arrays.present] = np.nan
    length = _running_nan_median(torso, max(1, round(BODY_LENGTH_WINDOW_S * fps)))
    # A torso foreshortened for a whole window (bent double towards the camera) must not blow
    # energies up: never go below half the track's typical length.
    finite = length[np.isfinite(length)]
    if finite.size:
        floor = max(0.5 * float(np.median(finite)), 1e-6)
        length = np.where(np.isfinite(length), np.maximum(length, floor), np.nan)
    length[~arrays.present] = np.nan
    return length


def smooth(values: np.ndarray, *, window: int) -> np.ndarray:
    """Centred moving average over ``window`` samples (an even window grows by one) that ignores
    NaN; NaN where the window holds no value. Same length as ``values``, however short."""
    half = window // 2
    if half == 0 or values.size == 0:
        return values.copy()
    finite = np.isfinite(values)
    pad = np.zeros(half)
    kernel = np.ones(2 * half + 1)
    sums = np.convolve(np.concatenate([pad, np.where(finite, values, 0.0), pad]), kernel, mode="valid")
    counts = np.convolve(np.concatenate([pad, finite.astype(float), pad]), kernel, mode="valid")
    return np.where(counts > 0.5, sums / np.maximum(counts, 1.0), np.nan)


def window_samples(seconds: float, fps: float) -> int:
    """An odd number of samples spanning about ``seconds`` (at least 1)."""
    n = max(1, round(seconds * fps))
    return n if n % 2 == 1 else n + 1


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN for rows without a value (no RuntimeWarning)."""
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _top_mean(parts: np.ndarray, k: int) -> np.ndarray:
    """Per row, the mean of the ``k`` largest finite values (fewer if fewer are finite)."""
    filled = np.where(np.isfinite(parts), parts, -np.inf)
    top = -np.sort(-filled, axis=1)[:, :k]
    return _nanmean_rows(np.where(np.isfinite(top), top, np.nan))


def track_energy(
    frames: Sequence[FramePoses],
    *,
    track_id: int,
    width: int,
    height: int,
    fps: float,
    settings: MotionSettings | None = None,
) -> TrackEnergy:
    """Motion energy of one track in body lengths per second, from its first to its last sighting.

    ``width``/``height`` are the displayed frame size in pixels (landmarks are normalised to it),
    ``fps`` the analysis rate (grid index = t * fps).
    """
    arrays = track_arrays(frames, track_id=track_id, width=width, height=height)
    return energy_from_arrays(arrays, track_id=track_id, fps=fps, settings=settings)


def energy_from_arrays(
    arrays: TrackArrays, *, track_id: int, fps: float, settings: MotionSettings | None = None
) -> TrackEnergy:
    """``track_energy`` on landmarks already laid onto the grid (see ``track_arrays``)."""
    settings = settings or MotionSettings()
    n = arrays.present.size
    length = body_length_px(arrays, fps=fps)

    # Landmark speed at frame i: displacement from frame i - 1 to i, seen and visible in both.
    speed = np.full((n, NUM_LANDMARKS), np.nan)
    if n > 1:
        step = np.linalg.norm(np.diff(arrays.xy_px, axis=0), axis=2)  # (n - 1, 33) px
        visible = (arrays.visibility >= settings.min_visibility) & arrays.present[:, None]
        ok = visible[1:] & visible[:-1]
        scale = (length[1:] + length[:-1]) / 2  # NaN unless both frames are seen
        with np.errstate(invalid="ignore"):
            speed[1:] = np.where(ok, step / scale[:, None] * fps, np.nan)

    raw_parts = np.stack([_nanmean_rows(speed[:, list(BODY_PARTS[name])]) for name in PART_NAMES], axis=1)
    raw_energy = _top_mean(raw_parts, TOP_PARTS_FOR_ENERGY)

    window = window_samples(settings.smooth_window_s, fps)
    absent = ~arrays.present
    energy = smooth(raw_energy, window=window)
    energy[absent] = np.nan
    part_energy: dict[str, np.ndarray] = {}
    for j, name in enumerate(PART_NAMES):
        series = smooth(raw_parts[:, j], window=window)
        series[absent] = np.nan
        part_energy[name] = series
    hips = arrays.xy_px[:, [LEFT_HIP, RIGHT_HIP]].mean(axis=1)
    with np.errstate(invalid="ignore"):
        posture = (arrays.xy_px - hips[:, None, :]) / length[:, None, None]
    posture[~((arrays.visibility >= settings.min_visibility) & arrays.present[:, None])] = np.nan
    return TrackEnergy(
        track_id=track_id,
        first_index=arrays.first_index,
        fps=fps,
        t_s=(arrays.first_index + np.arange(n)) / fps,
        energy=energy,
        part_energy=part_energy,
        present=arrays.present,
        body_length_px=length,
        posture=posture,
    )


def posture_distance(posture: np.ndarray, i: int, j: int) -> float:
    """How far the body's pose at sample ``i`` is from its pose at ``j``: the mean distance of
    the landmarks visible in both, in body lengths (NaN when none is)."""
    step = np.linalg.norm(posture[i] - posture[j], axis=1)
    step = step[np.isfinite(step)]
    return float(step.mean()) if step.size else float("nan")


def all_track_energies(
    frames: Sequence[FramePoses],
    *,
    width: int,
    height: int,
    fps: float,
    settings: MotionSettings | None = None,
) -> dict[int, TrackEnergy]:
    """``track_energy`` for every tracked person, by track id. Persons without a ``track_id``
    are ignored."""
    return {
        tid: energy_from_arrays(
            arrays_from_sightings(found, width=width, height=height), track_id=tid, fps=fps, settings=settings
        )
        for tid, found in sorted(sightings(frames).items())
    }


def choose_primary(
    energies: Mapping[int, TrackEnergy],
    *,
    fps: float | None = None,
    activity_ref: float = 0.3,
) -> int | None:
    """The primary subject: the track with the highest ``seen_s * (1 + activity / activity_ref)``.

    ``seen_s`` is frames seen / ``fps`` (default: each series' own rate); ``activity`` is the
    track's mean energy (body lengths per second) capped at ``activity_ref``. Seconds seen
    dominate (a person in shot all along beats one walking through) and activity at most doubles
    a track's weight, so one wild short track cannot win on motion alone. Ties go to the lower
    id; None when no track was seen.
    """
    best: tuple[float, int] | None = None
    for tid in sorted(energies):
        te = energies[tid]
        seen_s = te.frames_seen / (fps or te.fps)
        if seen_s <= 0:
            continue
        activity = min(te.mean_energy, activity_ref)
        score = seen_s * (1.0 + activity / activity_ref)
        if best is None or score > best[0]:
            best = (score, tid)
    return None if best is None else best[1]
