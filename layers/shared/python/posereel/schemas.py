"""The one set of data shapes that flows through PoseReel.

Coordinates: landmark and box x/y are normalised to the *displayed* frame (after rotation):
x in [0, 1] of the width, y in [0, 1] of the height, origin top-left. Landmark z is MediaPipe's
relative depth (same scale as x). Times are seconds from the start of the source video.
Every file we store carries ``schema_version``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from posereel.usage import StageUse

# 2: PersonPose.score is the landmark model's pose presence; ChunkResult.tracks (appearance);
# TrackSummary.score (a track's mean presence).
SCHEMA_VERSION = "2"
NUM_LANDMARKS = 33

# (x, y, z, visibility)
Landmark = tuple[float, float, float, float]
# (x0, y0, x1, y1), normalised like the landmarks
Box = tuple[float, float, float, float]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoInfo(Model):
    """What ffprobe says about a source video. Width/height are as displayed (rotation applied)."""

    name: str
    duration_s: float = Field(gt=0)
    fps: float = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    rotation_deg: int = 0
    codec: str
    has_audio: bool
    frame_count: int | None = None
    size_bytes: int | None = None
    format_name: str | None = None


class PersonPose(Model):
    """One person in one analysed frame. ``score``: how sure the landmark model is that this is a
    person (pose presence, 0..1); ``box``: the body's outline, normalised like the landmarks."""

    track_id: int | None = None
    score: float = Field(ge=0, le=1)
    box: Box
    landmarks: Annotated[list[Landmark], Field(min_length=NUM_LANDMARKS, max_length=NUM_LANDMARKS)]


class FramePoses(Model):
    """All people found in one analysed frame. ``index`` is the frame's position on the global
    analysis grid (t = index / analysis fps), so chunks that overlap share indices."""

    index: int = Field(ge=0)
    t_s: float = Field(ge=0)
    persons: list[PersonPose] = Field(default_factory=list)


class ChunkSpec(Model):
    """A time range of the video analysed as one unit of work.

    The chunk decodes [start_s, end_s). It *owns* [own_start_s, own_end_s): when chunk results are
    merged, each analysed frame is taken from the chunk that owns its time. The rest is overlap,
    used to warm the pose tracker up and to stitch track ids across the border.
    """

    index: int = Field(ge=0)
    start_s: float = Field(ge=0)
    end_s: float
    own_start_s: float
    own_end_s: float


Device = Literal["cpu", "gpu"]


class TrackAppearance(Model):
    """What one chunk-local track looked like: the sum of its people's colour histograms
    (posereel.appearance) over the ``seen`` frames they were visible in, of the frames the chunk
    owns (a track seen only in the overlap the next chunk owns has none)."""

    track_id: int
    histogram: list[float]
    seen: int


class ChunkResult(Model):
    """What one worker produces for one chunk: poses with chunk-local track ids, and what each
    track looked like (to link one person's tracks over the whole video)."""

    schema_version: str = SCHEMA_VERSION
    chunk: ChunkSpec
    video: VideoInfo
    analysis_fps: float
    model: str
    device: Device
    device_note: str | None = None
    frames: list[FramePoses]
    tracks: list[TrackAppearance] = Field(default_factory=list)
    timings_s: dict[str, float] = Field(default_factory=dict)
    usage: StageUse | None = Field(None, description="what the worker used (the merge adds them up)")


class TrackSummary(Model):
    track_id: int
    first_s: float
    last_s: float
    frames: int
    mean_energy: float
    score: float = Field(1.0, description="the track's mean pose presence")
    is_primary: bool = False


class Segment(Model):
    """A stretch of real movement. Energies are body lengths per second (see motion.py)."""

    index: int
    start_s: float
    end_s: float
    track_ids: list[int]
    peak_energy: float
    mean_energy: float
    top_parts: list[str]
    score: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class TrackMetrics(Model):
    """Instructor-tracking metrics for one track over the analysed range."""

    track_id: int
    coverage_pct: float
    gaps: int
    longest_gap_s: float
    distance_body_lengths: float
    jitter: float


class EnergySeries(Model):
    """Motion energy sampled on the analysis grid; NaN (stored as null) where the track is absent."""

    track_id: int
    t_s: list[float]
    energy: list[float | None]


class ReelWindow(Model):
    start_s: float
    end_s: float
    segment_indices: list[int]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class AnalysisResult(Model):
    """Everything the analysis found, without the per-frame poses (those live in tracks.json)."""

    schema_version: str = SCHEMA_VERSION
    video: VideoInfo
    analysis_fps: float
    model: str
    devices: list[Device]
    range_s: tuple[float, float]
    primary_track_id: int | None
    tracks: list[TrackSummary]
    segments: list[Segment]
    metrics: list[TrackMetrics]
    energy: list[EnergySeries]
    reel_windows: list[ReelWindow]
    timings_s: dict[str, float] = Field(default_factory=dict)


class TracksFile(Model):
    """tracks.json: the per-frame poses with global track ids."""

    schema_version: str = SCHEMA_VERSION
    video: VideoInfo
    analysis_fps: float
    frames: list[FramePoses]


class SegmentsFile(Model):
    """segments.json: the segments and the reel windows cut from them."""

    schema_version: str = SCHEMA_VERSION
    video: str
    primary_track_id: int | None
    segments: list[Segment]
    reel_windows: list[ReelWindow]

    @classmethod
    def of(cls, result: AnalysisResult) -> SegmentsFile:
        return cls(
            video=result.video.name,
            primary_track_id=result.primary_track_id,
            segments=result.segments,
            reel_windows=result.reel_windows,
        )


class MetricsFile(Model):
    """metrics.json: per-track metrics and summaries."""

    schema_version: str = SCHEMA_VERSION
    video: str
    range_s: tuple[float, float]
    primary_track_id: int | None
    tracks: list[TrackSummary]
    metrics: list[TrackMetrics]

    @classmethod
    def of(cls, result: AnalysisResult) -> MetricsFile:
        return cls(
            video=result.video.name,
            range_s=result.range_s,
            primary_track_id=result.primary_track_id,
            tracks=result.tracks,
            metrics=result.metrics,
        )


class ReelFile(Model):
    """reel.json: one reel as cut: its windows in play order, the segments they show, its frame
    size and length (``duration_s`` 0 and no windows: nothing moved as asked, no reel.mp4)."""

    schema_version: str = SCHEMA_VERSION
    video: str
    reel_id: int = Field(ge=0)
    track_ids: list[int] | None
    size_px: tuple[int, int]
    duration_s: float = Field(ge=0)
    segments: list[Segment]
    windows: list[ReelWindow]
