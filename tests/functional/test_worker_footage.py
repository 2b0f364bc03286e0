"""The chunk worker on real footage: it analyses its chunk of the plan and stores the result (S3
is an in-memory fake; the pipeline tests run it on moto)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from posereel.pipeline.events import SourceRef
from posereel.pipeline.files import PlanFile, chunk_key, plan_key
from posereel.schemas import ChunkResult, ChunkSpec
from posereel.settings import AnalysisSettings
from posereel.video import probe
from posereel_worker import worker
from tests.builders import JOB, RESULTS, UPLOADS
from tests.fakes import FakeMediaStore


@pytest.mark.media
@pytest.mark.slow
def test_a_chunk_of_real_footage_is_analysed_and_stored(
    models_dir: Path, clip: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a plan of two chunks of a real clip, and the clip as the job's upload
    source = tmp_path / "clip.mp4"
    shutil.copy(clip("sports2d_walk_in_out"), source)
    info = probe(source)
    chunks = [
        ChunkSpec(index=0, start_s=0.0, end_s=8.0, own_start_s=0.0, own_end_s=7.0),
        ChunkSpec(index=1, start_s=6.0, end_s=info.duration_s, own_start_s=7.0, own_end_s=info.duration_s),
    ]
    key = f"uploads/{JOB}/clip.mp4"
    plan = PlanFile(
        job_id=JOB,
        source=SourceRef(bucket=UPLOADS, key=key),
        video=info,
        settings=AnalysisSettings(),
        chunks=chunks,
    )
    store = FakeMediaStore()
    store.write_model(plan, RESULTS, plan_key(JOB))
    store.put(UPLOADS, key, source.read_bytes())
    monkeypatch.setenv("POSEREEL_MODEL_DIR", str(models_dir))
    # When the worker runs chunk 1 on the CPU
    argv = ["--job-id", JOB, "--chunk", "1", "--bucket", RESULTS, "--device", "cpu"]
    assert worker.main(argv, store=store) == worker.EXIT_OK
    # Then its result is stored, for its own grid frames, with people in them
    result = store.read_model(RESULTS, chunk_key(JOB, 1), ChunkResult)
    assert result.chunk == chunks[1] and result.device == "cpu"
    assert result.frames and {f.index for f in result.frames} <= set(range(60, 135))
    assert any(f.persons for f in result.frames)
    # And each track's look is noted over the frames the chunk owns (from 7.0 s) only, so that the
    # overlap the chunk before also saw is not counted twice in the merge
    owned = sum(1 for f in result.frames if f.index >= 70 for _ in f.persons)
    assert result.tracks and 0 < sum(t.seen for t in result.tracks) <= owned
