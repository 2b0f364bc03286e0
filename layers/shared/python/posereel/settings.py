"""Typed settings, validated once at start-up. Domain code receives these objects; it never
reads the environment itself."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from posereel.resources import ResourceNames

PoseModelName = Literal["lite", "full", "heavy"]
DelegateName = Literal["cpu", "gpu", "auto"]


class _Knobs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplingSettings(_Knobs):
    target_fps: float = Field(10.0, gt=0, le=60, description="analysis frames per second")
    max_height_px: int = Field(480, ge=128, le=2160, description="frames taller than this are scaled down")


class PoseSettings(_Knobs):
    """Who is found: a person detector every so often, then BlazePose's landmark model on each
    person's crop, frame after frame (posereel.pose)."""

    model: PoseModelName = Field("lite", description="the landmark model: lite, full or heavy")
    delegate: DelegateName = Field("cpu", description="where the detector runs: cpu, gpu or auto")
    detect_every_s: float = Field(
        0.3, gt=0, le=5, description="the detector looks for newcomers this often (and when nobody is seen)"
    )
    min_detection_score: float = Field(0.35, ge=0, le=1, description="detector boxes below this are ignored")
    min_presence: float = Field(0.5, ge=0, le=1, description="a newcomer's pose presence must reach this")
    keep_presence: float = Field(0.3, ge=0, le=1, description="a followed person stays while above this")
    sure_detection_score: float = Field(
        0.6, ge=0, le=1, description="a newcomer the detector is this sure of needs only keep_presence"
    )
    max_people: int = Field(20, ge=1, le=100, description="people followed per frame at most")


class TrackingSettings(_Knobs):
    """Who is who: a tracker within each chunk (posereel.tracking), then the pieces of one person
    linked over the whole video (posereel.linking)."""

    algorithm: Literal["bytetrack", "ocsort"] = Field("bytetrack", description="the chunk tracker")
    lost_after_s: float = Field(1.0, ge=0, description="a track unseen this long ends")
    min_iou: float = Field(0.1, ge=0, le=1, description="a box overlapping a track less than this is not it")
    confident_score: float = Field(0.6, ge=0, le=1, description="poses at least this sure start tracks")
    min_similarity: float = Field(0.2, ge=0, le=1, description="chunks stitch tracks at least this alike")
    link_gap_s: float = Field(4.0, ge=0, description="one person's pieces are linked across gaps this long")
    min_track_s: float = Field(1.0, ge=0, description="people seen less than this long are dropped as noise")


class MotionSettings(_Knobs):
    # Calibrated on the shared clips (see motion.py); energies are body lengths per second.
    smooth_window_s: float = Field(0.5, ge=0, description="centred moving average over this many seconds")
    min_visibility: float = Field(0.5, ge=0, le=1, description="landmarks less visible than this are ignored")


class SegmentSettings(_Knobs):
    # Calibrated on the shared clips (energy in body lengths/s): standing still 0.02-0.07, held
    # dance poses 0.1-0.2 (peaks 0.33), lateral raises peak 0.47-0.65, taiji ~0.9, walking ~1.3.
    # Every clip target still holds with enter +-10 %, exit +-15 %, min_motion_s +-0.1 s,
    # min_still_s/merge_gap_s +-0.3 s and min_segment_s +-0.2 s, and with times shifted +-0.1 s.
    enter_threshold: float = Field(0.45, gt=0, description="energy (body lengths/s) that starts movement")
    exit_threshold: float = Field(0.25, gt=0, description="energy below which movement may end")
    min_motion_s: float = Field(0.3, ge=0, description="energy must stay above enter for this long")
    min_still_s: float = Field(2.0, ge=0, description="energy must stay below exit for this long to end")
    merge_gap_s: float = Field(1.5, ge=0, description="segments closer than this are joined")
    min_segment_s: float = Field(0.6, ge=0, description="shorter segments are dropped")
    focus: Literal["all", "primary"] = Field(
        "all", description="all: anyone's movement makes a segment; primary: only the primary subject's"
    )
    track_ids: tuple[int, ...] | None = Field(
        None, description="only these people's movement makes a segment (a re-cut's choice; wins over focus)"
    )

    @model_validator(mode="after")
    def _hysteresis(self) -> SegmentSettings:
        if self.exit_threshold > self.enter_threshold:
            raise ValueError("exit_threshold must not exceed enter_threshold")
        return self


Aspect = Literal["source", "9:16", "1:1"]
ReelOrder = Literal["time", "energy"]


class ReelSettings(_Knobs):
    buffer_before_s: float = Field(2.0, ge=0)
    buffer_after_s: float = Field(3.0, ge=0)
    max_duration_s: float | None = Field(None, gt=0, description="keep the strongest segments that fit")
    order: ReelOrder = Field("time", description="the windows in source order, or strongest first")
    aspect: Aspect = Field("source", description="the source's frame, or a crop that follows the people")
    blur_faces: bool = False
    clips: bool = Field(False, description="also export each window as an MP4 of its own, zipped (clips.zip)")
    crf: int = Field(23, ge=0, le=51)
    # superfast: 720p reels encode ~1.3x faster than veryfast for ~1.6x the bytes at the same crf.
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "superfast"
    # The page draws skeletons over the reel and the source from tracks.json, so the overlay video
    # (as costly to encode as a third of the analysis) is made only when asked for.
    overlay: bool = Field(False, description="also render overlay.mp4: the source with every skeleton drawn")
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

    def for_video(self, fps: float) -> AnalysisSettings:
        """These settings for a video of ``fps`` frames per second: never more analysis frames
        than it has (a 5 fps camera or a time-lapse is analysed at its own rate, not each of its
        frames several times over)."""
        if fps >= self.sampling.target_fps:
            return self
        return self.model_copy(update={"sampling": self.sampling.model_copy(update={"target_fps": fps})})


class CutOptions(_Knobs):
    """How a reel is cut from an analysis: what its owner may choose for the first reel (the
    options of ``POST /uploads``) and for every re-cut (``POST /jobs/{id}/reels``); what is not
    set keeps the defaults. JSON numbers only ("2" is no number)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    min_still_s: float | None = Field(
        None, ge=0.1, le=30, description="a rest at least this long ends a segment (default 2 s)"
    )
    min_segment_s: float | None = Field(
        None, ge=0, le=60, description="movement shorter than this is no segment (default 0.6 s)"
    )
    buffer_before_s: float | None = Field(
        None, ge=0, le=30, description="the reel shows this much before each segment (default 2 s)"
    )
    buffer_after_s: float | None = Field(
        None, ge=0, le=30, description="the reel shows this much after each segment (default 3 s)"
    )
    max_duration_s: float | None = Field(
        None,
        ge=1,
        le=24 * 3600,
        description="the reel lasts at most this long: the strongest segments that fit",
    )
    order: ReelOrder | None = Field(
        None, description="time (default): as they happened; energy: strongest first"
    )
    aspect: Aspect | None = Field(
        None, description="source (default); 9:16 or 1:1: a crop that follows the chosen people"
    )
    blur_faces: bool | None = Field(None, description="blur every face in the reel (default false)")
    clips: bool | None = Field(
        None, description="also one MP4 per cut of the reel, zipped, for an editor or a post (default false)"
    )

    def applied_to(self, analysis: AnalysisSettings) -> AnalysisSettings:
        """``analysis`` with these choices. A shorter rest also caps the gap over which segments
        are joined again, or the rests it now sees would be merged away."""
        segments, reel = analysis.segments, analysis.reel
        if self.min_still_s is not None:
            merge_gap = min(segments.merge_gap_s, self.min_still_s)
            segments = segments.model_copy(update={"min_still_s": self.min_still_s, "merge_gap_s": merge_gap})
        if self.min_segment_s is not None:
            segments = segments.model_copy(update={"min_segment_s": self.min_segment_s})
        chosen = {
            name: value
            for name in (
                "buffer_before_s",
                "buffer_after_s",
                "max_duration_s",
                "order",
                "aspect",
                "blur_faces",
                "clips",
            )
            if (value := getattr(self, name)) is not None
        }
        reel = reel.model_copy(update=chosen)
        return analysis.model_copy(update={"segments": segments, "reel": reel})


class JobOptions(CutOptions):
    """What the owner of an upload chose for its analysis and first reel (each file of
    ``POST /uploads`` may carry them)."""

    model: PoseModelName | None = Field(
        None, description="the landmark model: lite (default, fastest), full or heavy (most precise)"
    )
    overlay: bool | None = Field(
        None,
        description="also render overlay.mp4, the source with every skeleton drawn (default false: "
        "the page draws them from tracks.json)",
    )

    def applied_to(self, analysis: AnalysisSettings) -> AnalysisSettings:
        analysis = super().applied_to(analysis)
        if self.model is not None:
            analysis = analysis.model_copy(
                update={"pose": analysis.pose.model_copy(update={"model": self.model})}
            )
        if self.overlay is not None:
            analysis = analysis.model_copy(
                update={"reel": analysis.reel.model_copy(update={"overlay": self.overlay})}
            )
        return analysis


MAX_TRACK_CHOICE = 50


class ReelRequest(CutOptions):
    """A re-cut (``POST /jobs/{id}/reels``): the cut options, and whose movement makes it."""

    track_ids: list[int] | None = Field(
        None,
        min_length=1,
        max_length=MAX_TRACK_CHOICE,
        description="only these people (track ids of the results); default: everyone, as the first reel",
    )

    def applied_to(self, analysis: AnalysisSettings) -> AnalysisSettings:
        analysis = super().applied_to(analysis)
        if self.track_ids is None:
            return analysis
        chosen = tuple(sorted(set(self.track_ids)))
        return analysis.model_copy(
            update={"segments": analysis.segments.model_copy(update={"track_ids": chosen})}
        )


# --- prices (posereel.costs estimates each job's cost with them) ---------------------------


class PriceTable(BaseModel):
    """What an environment pays, in USD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lambda_usd_per_gb_s: float = Field(0.0000166667, ge=0, description="x86")
    lambda_usd_per_request: float = Field(0.0000002, ge=0)
    fargate_usd_per_vcpu_h: float = Field(0.04048, ge=0, description="the CPU workers (Fargate Spot: less)")
    fargate_usd_per_gb_h: float = Field(0.004445, ge=0)
    gpu_instance_usd_per_h: float = Field(
        0.526, ge=0, description="one GPU instance of the pool (g4dn.xlarge on demand; spot: less)"
    )
    step_functions_usd_per_transition: float = Field(0.000025, ge=0)
    s3_usd_per_get: float = Field(0.0000004, ge=0)
    s3_usd_per_put: float = Field(0.000005, ge=0)


class CostBasis(PriceTable):
    """The prices and the shape of the workers they apply to (from the environment's config)."""

    worker_vcpus: float = Field(2, gt=0)
    worker_memory_mib: int = Field(8192, gt=0)
    gpu_instance_vcpus: int = Field(4, gt=0, description="a chunk job pays its vCPUs' share of the instance")


def default_model_dir() -> Path:
    return Path.home() / ".cache" / "posereel" / "models"


class RuntimeSettings(BaseSettings):
    """Where things live on this machine and what it may use: POSEREEL_MODEL_DIR, POSEREEL_FFMPEG,
    POSEREEL_FFPROBE, POSEREEL_THREADS, POSEREEL_PROCESSES.

    Read from the environment when constructed, never at import; the same variables for the
    command line, the functions and the workers."""

    model_config = SettingsConfigDict(env_prefix="POSEREEL_", extra="ignore", frozen=True)

    model_dir: Path = Field(default_factory=default_model_dir)
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    # Threads each model runtime of a chunk uses; 0: one per core of this machine. Measured here
    # (2 cores, 1-minute 720p, two chunks side by side): 2 threads each 24.2-24.4 s, 1 thread each
    # 28.0-31.1 s; a chunk's runtimes take turns with its decoder, so the cores stay busy.
    threads: int = Field(0, ge=0)
    # Tool processes one stage runs side by side (the pieces of a reel or an overlay encode,
    # clamscan on the pieces of an upload); 0: one per core of this machine. The 16-vCPU stage job
    # encodes sixteen pieces at once; a Lambda with 2 vCPUs, two.
    processes: int = Field(0, ge=0)

    def model_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def tool_processes(self) -> int:
        return self.processes or os.cpu_count() or 1


class PipelineSettings(BaseSettings):
    """What every Lambda function and chunk worker reads from its environment (POSEREEL_*), once,
    on its first invocation (``posereel_functions.settings()``).

    Built once per environment by ``for_environment`` from the resource names; the CDK app and
    the local stack write it into each function's and job definition's environment with
    ``settings_environment``, the one writer of these variables. ``runtime`` keeps its own
    variables (RuntimeSettings); ``chunks`` is POSEREEL_CHUNKS__CHUNK_SECONDS and so on."""

    model_config = SettingsConfigDict(
        env_prefix="POSEREEL_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    env: str = "local"
    uploads_bucket: str
    results_bucket: str
    quarantine_bucket: str
    jobs_table: str
    state_machine_arn: str = ""
    # The function that cuts re-cuts (the api invokes it with an event per reel).
    recut_function: str = ""
    # Who tells owners a job ended (finalize and the watchdog invoke it), and the bus it puts
    # "PoseReel Job State Change" events on.
    notify_function: str = ""
    event_bus: str = ""
    # Webhooks to http://127.0.0.1 / localhost (the local stack only; in AWS only public https).
    webhook_loopback: bool = False
    # The chunk workers' Batch job queues (names), which the watchdog watches.
    gpu_job_queue: str = ""
    cpu_job_queue: str = ""
    # Upload limits (validate rejects what is outside them, each with its own code): a whole
    # afternoon of training by default. No stage grows into a limit of its own with them: the
    # scan reads in pieces, the workers their own chunks, and the stages below go to containers.
    max_upload_bytes: int = Field(50 * 1024**3, gt=0)
    max_duration_s: float = Field(4 * 3600, gt=0)
    # Where the stages whose work grows with the upload run (posereel.pipeline.placement): in a
    # Lambda up to these (the scan by the upload's size, merge and compile by the video's
    # length), as a container job (posereel.resources.STAGE_JOB) above them. 0: always a job.
    lambda_scan_max_bytes: int = Field(4 * 1024**3, ge=0)
    lambda_video_max_s: float = Field(20 * 60, ge=0)
    max_width_px: int = Field(4096, gt=0)
    max_height_px: int = Field(4096, gt=0)
    # Browser uploads (api): files above the threshold go up as S3 multipart uploads in parts of
    # this size (S3: parts of 5 MiB to 5 GiB, at most 10,000 of them).
    multipart_threshold_bytes: int = Field(64 * 1024**2, gt=0)
    multipart_part_bytes: int = Field(16 * 1024**2, ge=5 * 1024**2)
    # How long an announced upload's form (or, for small files, part URLs) works, and how much
    # longer its job waits for the file before the watchdog ends it REJECTED (UPLOAD_EXPIRED).
    upload_link_expiry_s: int = Field(15 * 60, ge=1, le=7 * 24 * 3600)
    upload_grace_s: int = Field(5 * 60, ge=0)
    # How long the presigned links of GET /jobs/{id}/results work.
    results_link_expiry_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    # The web client's origins, for the CORS headers of the api function's answers.
    allowed_origins: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    # ClamAV signature databases: a local directory, or s3://bucket/prefix/ to download from.
    clamav_db: str = "/var/lib/clamav"
    job_ttl_days: int = Field(30, ge=1)
    chunks: ChunkSettings = ChunkSettings()
    # The environment's prices and worker shape, for each job's cost estimate.
    costs: CostBasis = CostBasis()
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)

    @classmethod
    def for_environment(
        cls, names: ResourceNames, *, account: str, region: str, **knobs: Any
    ) -> PipelineSettings:
        """The settings of environment ``names.env``: every resource name from the resource
        description, the rest from ``knobs`` (field name -> value) or the defaults."""
        fixed = {
            "env": names.env,
            "uploads_bucket": names.bucket("uploads", account=account),
            "results_bucket": names.bucket("results", account=account),
            "quarantine_bucket": names.bucket("quarantine", account=account),
            "jobs_table": names.jobs_table,
            "state_machine_arn": names.state_machine_arn(region=region, account=account),
            "recut_function": names.function("recut"),
            "notify_function": names.function("notify"),
            "event_bus": names.event_bus,
            "gpu_job_queue": names.job_queue("gpu"),
            "cpu_job_queue": names.job_queue("cpu"),
        }
        clash = sorted(fixed.keys() & knobs.keys())
        if clash:
            raise ValueError(f"these settings come from the resource names and cannot be given: {clash}")
        return cls.model_validate({**fixed, **knobs})

    @property
    def worker_queues(self) -> dict[str, str]:
        """The watchdog's Queue dimension value -> the Batch job queue it names."""
        return {"gpu": self.gpu_job_queue, "cpu": self.cpu_job_queue}


def settings_environment(settings: BaseSettings) -> dict[str, str]:
    """The environment variables from which ``type(settings)()`` reads back ``settings``: each
    field as PREFIX + NAME, a nested model's fields as PREFIX + NAME__FIELD, a nested settings
    model with its own variables, lists as JSON. None values are left out."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseSettings):
            env.update(settings_environment(value))
        elif isinstance(value, BaseModel):
            for sub, sub_value in value.model_dump(mode="json").items():
                env[f"{prefix}{name}__{sub}".upper()] = str(sub_value)
        elif value is not None:
            dumped = settings.model_dump(mode="json", include={name})[name]
            text = json.dumps(dumped) if isinstance(dumped, list | dict) else str(dumped)
            env[f"{prefix}{name}".upper()] = text
    return env
