"""The files of a job in the results bucket, and where they live.

``work/{job_id}/source/{name}``          the accepted upload: scan copies it here (no client can
                                         write it), and every later stage reads this copy only
``work/{job_id}/plan.json``              PlanFile, written by plan, read by the workers, merge, compile
``work/{job_id}/chunks/{index:04d}.json`` ChunkResult, written by the worker of that chunk
``work/{job_id}/merged.json``            MergedFile, written by merge, read by compile
``results/{job_id}/...``                 what compile renders (posereel.outputs), for users

Light on purpose (pydantic models only): the worker container imports it too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from posereel.jobs import work_prefix
from posereel.pipeline.events import SourceRef
from posereel.schemas import SCHEMA_VERSION, AnalysisResult, ChunkSpec, TracksFile, VideoInfo
from posereel.settings import AnalysisSettings


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


def source_key(job_id: str, name: str) -> str:
    return f"{work_prefix(job_id)}source/{name}"


def plan_key(job_id: str) -> str:
    return f"{work_prefix(job_id)}plan.json"


def chunk_key(job_id: str, index: int) -> str:
    return f"{work_prefix(job_id)}chunks/{index:04d}.json"


def stage_outcome_key(job_id: str, stage: str) -> str:
    """What a stage's container job ended with (posereel.pipeline.placement)."""
    return f"{work_prefix(job_id)}stages/{stage}.json"


def merged_key(job_id: str) -> str:
    return f"{work_prefix(job_id)}merged.json"
