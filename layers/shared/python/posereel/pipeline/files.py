"""The files of a job in the results bucket, and where they live.

``work/{job_id}/plan.json``              PlanFile, written by plan, read by the workers, merge, compile
``work/{job_id}/chunks/{index:04d}.json`` ChunkResult, written by the worker of that chunk
``work/{job_id}/merged.json``            MergedFile, written by merge, read by compile
``results/{job_id}/...``                 what compile renders (RESULT_FILES, thumbnails/), for users

Light on purpose (pydantic models only): the worker container imports it too.
"""

from __future__ import annotations

from pathlib import PurePath

from pydantic import BaseModel, ConfigDict

from posereel.jobs import work_prefix
from posereel.pipeline.events import SourceRef
from posereel.schemas import SCHEMA_VERSION, AnalysisResult, ChunkSpec, TracksFile, VideoInfo
from posereel.settings import AnalysisSettings

REEL_NAME = "reel.mp4"
RESULT_NAME = "result.json"
THUMBNAILS_DIR = "thumbnails/"
# The result files users get links to (GET /jobs/{id}/results): kind -> name.
RESULT_FILES: dict[str, str] = {
    "reel": REEL_NAME,
    "overlay": "overlay.mp4",
    "timeline": "timeline.png",
    "tracks": "tracks.json",
    "segments": "segments.json",
    "metrics": "metrics.json",
    "result": RESULT_NAME,
    "segments_csv": "segments.csv",
    "segments_edl": "segments.edl",
}
# The content type each result file is stored (and served) with, by extension.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
    ".csv": "text/csv",
    ".edl": "text/plain",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def content_type(path: PurePath | str) -> str:
    return CONTENT_TYPES.get(PurePath(path).suffix.lower(), DEFAULT_CONTENT_TYPE)


class PlanFile(BaseModel):
    """How a job's video is analysed: the probe, every analysis knob and the chunks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: str = SCHEMA_VERSION
    job_id: str
    source: SourceRef
    video: VideoInfo
    settings: AnalysisSettings
    chunks: list[ChunkSpec]


class MergedFile(BaseModel):
    """The merge stage's output: the analysis summary and the stitched per-frame poses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: str = SCHEMA_VERSION
    job_id: str
    result: AnalysisResult
    tracks: TracksFile


def plan_key(job_id: str) -> str:
    return f"{work_prefix(job_id)}plan.json"


def chunk_key(job_id: str, index: int) -> str:
    return f"{work_prefix(job_id)}chunks/{index:04d}.json"


def merged_key(job_id: str) -> str:
    return f"{work_prefix(job_id)}merged.json"
