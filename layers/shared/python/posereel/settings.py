"""Typed settings, validated once at start-up. Domain code receives these objects; it never
reads the environment itself."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PoseModelName = Literal["lite", "full", "heavy"]
DelegateName = Literal["cpu", "gpu", "auto"]


class _Knobs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplingSettings(_Knobs):
    target_fps: float = Field(10.0, gt=0, le=60, description="analysis frames per second")
    max_height_px: int = Field(480, ge=128, le=2160, description="frames taller than this are scaled down")


class PoseSettings(_Knobs):
    model: PoseModelName = "lite"
    num_poses: int = Field(4, ge=1, le=20)
    delegate: DelegateName = "cpu"
    min_detection_confidence: float = Field(0.5, ge=0, le=1)
    min_presence_confidence: float = Field(0.5, ge=0, le=1)
    min_tracking_confidence: float = Field(0.5, ge=0, le=1)
    adaptive: bool = Field(
        True, description="run MediaPipe at the number of people in view, checking for newcomers each second"
    )


class TrackingSettings(_Knobs):
    max_gap_frames: int = Field(10, ge=0, description="a track survives this many analysed frames unseen")
    min_similarity: float = Field(0.2, ge=0, le=1, description="below this a detection starts a new track")
    min_track_frames: int = Field(3, ge=1, description="shorter tracks are dropped as noise")


class MotionSettings(_Knobs):
    # Calibrated on the shared clips (see motion.py); energies are body lengths per second.
    smooth_window_s: float = Field(0.5, ge=0, description="centred moving average over this many seconds")
    min_visibility: float = Field(0.5, ge=0, le=1, description="landmarks less visible than this are ignored")


class SegmentSettings(_Knobs):
    # Calibrated on the shared clips (energy in body lengths/s): standing still 0.02-0.07, held
    # dance poses 0.1-0.2 (peaks 0.33), lateral raises peak 0.47-0.65, taiji ~0.9, walking ~1.3.
    # Every clip target still holds with enter +-10 %, exit +-15 %, min_motion_s +-0.1 s,
    # min_still_s/merge_gap_s +-0.3 s and min_segment_s +-0.2 s, and with times shifted +-0.1 s.
    enter_threshold: float = Field(0.5, gt=0, description="energy (body lengths/s) that starts movement")
    exit_threshold: float = Field(0.25, gt=0, description="energy below which movement may end")
    min_motion_s: float = Field(0.3, ge=0, description="energy must stay above enter for this long")
    min_still_s: float = Field(2.0, ge=0, description="energy must stay below exit for this long to end")
    merge_gap_s: float = Field(1.5, ge=0, description="segments closer than this are joined")
    min_segment_s: float = Field(0.6, ge=0, description="shorter segments are dropped")
    focus: Literal["all", "primary"] = Field(
        "all", description="all: anyone's movement makes a segment; primary: only the primary subject's"
    )

    @model_validator(mode="after")
    def _hysteresis(self) -> SegmentSettings:
        if self.exit_threshold > self.enter_threshold:
            raise ValueError("exit_threshold must not exceed enter_threshold")
        return self


class ReelSettings(_Knobs):
    buffer_before_s: float = Field(2.0, ge=0)
    buffer_after_s: float = Field(3.0, ge=0)
    crf: int = Field(23, ge=0, le=51)
    # superfast: 720p reels encode ~1.3x faster than veryfast for ~1.6x the bytes at the same crf.
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "superfast"
    overlay_max_height_px: int = Field(480, ge=128)


class ChunkSettings(_Knobs):
    chunk_seconds: float = Field(30.0, gt=0)
    overlap_seconds: float = Field(2.0, ge=0)


class AnalysisSettings(_Knobs):
    """Every knob of one analysis. Part of the result, so a result says how it was made."""

    sampling: SamplingSettings = SamplingSettings()
    pose: PoseSettings = PoseSettings()
    tracking: TrackingSettings = TrackingSettings()
    motion: MotionSettings = MotionSettings()
    segments: SegmentSettings = SegmentSettings()
    reel: ReelSettings = ReelSettings()
    chunks: ChunkSettings = ChunkSettings()


def default_model_dir() -> Path:
    return Path.home() / ".cache" / "posereel" / "models"


class RuntimeSettings(BaseSettings):
    """Where things live on this machine; read from POSEREEL_* environment variables once."""

    model_config = SettingsConfigDict(env_prefix="POSEREEL_", extra="ignore")

    model_dir: Path = Field(default_factory=default_model_dir)
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"


class PipelineSettings(BaseSettings):
    """What every Lambda and the worker read from their environment (POSEREEL_*), once at start.

    The CDK app and the local stack set the same variables from ``posereel.resources``."""

    model_config = SettingsConfigDict(env_prefix="POSEREEL_", extra="ignore", frozen=True)

    env: str = "local"
    uploads_bucket: str
    results_bucket: str
    quarantine_bucket: str
    jobs_table: str
    state_machine_arn: str = ""
    # Upload limits (validate rejects what is outside them, each with its own code).
    # ClamAV cannot scan files of 2 GiB or more.
    max_upload_bytes: int = Field(2047 * 1024**2, gt=0)
    max_duration_s: float = Field(20 * 60, gt=0)
    max_width_px: int = Field(4096, gt=0)
    max_height_px: int = Field(4096, gt=0)
    # Browser uploads (api): files above the threshold go up as S3 multipart uploads in parts of
    # this size (S3: parts of 5 MiB to 5 GiB, at most 10,000 of them).
    multipart_threshold_bytes: int = Field(64 * 1024**2, gt=0)
    multipart_part_bytes: int = Field(16 * 1024**2, ge=5 * 1024**2)
    # How long the presigned links of GET /jobs/{id}/results work.
    results_link_expiry_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    # Chunking of the analysis (plan).
    chunk_seconds: float = Field(30.0, gt=0)
    overlap_seconds: float = Field(2.0, ge=0)
    # ClamAV signature databases: a local directory, or s3://bucket/prefix/ to download from.
    clamav_db: str = "/var/lib/clamav"
    job_ttl_days: int = Field(30, ge=1)
    model_dir: Path = Field(default_factory=default_model_dir)
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"


class WatchdogSettings(BaseSettings):
    """What the watchdog function reads from its environment (POSEREEL_*), once at start: where the
    chunk workers run and the two queues to watch. The CDK app sets them for its worker backend."""

    model_config = SettingsConfigDict(env_prefix="POSEREEL_", extra="ignore", frozen=True)

    env: str = "local"
    worker_backend: Literal["batch", "ecs"]
    gpu_queue: str = Field(
        min_length=1,
        description="batch: the GPU job queue (name or ARN); ecs: the GPU task definition family",
    )
    cpu_queue: str = Field(
        min_length=1,
        description="batch: the CPU job queue (name or ARN); ecs: the CPU task definition family",
    )
    worker_cluster: str | None = Field(None, description="ecs only: the workers cluster (name or ARN)")

    @model_validator(mode="after")
    def _cluster(self) -> WatchdogSettings:
        if self.worker_backend == "ecs" and not self.worker_cluster:
            raise ValueError("worker_cluster is required with worker_backend ecs")
        return self

    @property
    def queues(self) -> dict[str, str]:
        """The Queue dimension's value -> the queue (or family) it names."""
        return {"gpu": self.gpu_queue, "cpu": self.cpu_queue}
