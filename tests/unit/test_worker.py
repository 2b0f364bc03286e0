"""The chunk worker: its command line, its exit codes, and that it never redoes a stored chunk or
runs a GPU job on the CPU. S3 is an in-memory fake here; the pipeline tests run it on moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from posereel.pipeline.events import SourceRef
from posereel.pipeline.files import PlanFile, chunk_key, plan_key
from posereel.schemas import ChunkResult, ChunkSpec, VideoInfo
from posereel.settings import AnalysisSettings
from posereel_worker import worker
from tests.builders import RESULTS, UPLOADS
from tests.fakes import FakeMediaStore

JOB = "0123456789abcdef0123456789abcdef"
BUCKET = RESULTS
SPECS = [
    ChunkSpec(index=0, start_s=0.0, end_s=8.0, own_start_s=0.0, own_end_s=7.0),
    ChunkSpec(index=1, start_s=6.0, end_s=13.4, own_start_s=7.0, own_end_s=13.4),
]
VIDEO = VideoInfo(
    name="clip.mp4", duration_s=13.4, fps=30, width=1280, height=720, codec="h264", has_audio=False
)


def chunk_result(spec: ChunkSpec) -> ChunkResult:
    return ChunkResult(chunk=spec, video=VIDEO, analysis_fps=10, model="lite", device="cpu", frames=[])


@pytest.fixture
def store() -> FakeMediaStore:
    fake = FakeMediaStore()
    plan = PlanFile(
        job_id=JOB,
        source=SourceRef(bucket=UPLOADS, key=f"uploads/{JOB}/clip.mp4"),
        video=VIDEO,
        settings=AnalysisSettings(),
        chunks=SPECS,
    )
    fake.write_model(plan, BUCKET, plan_key(JOB))
    fake.put(UPLOADS, f"uploads/{JOB}/clip.mp4", b"video bytes")
    fake.writes.clear()
    return fake


def args(chunk: int = 1, device: str = "cpu") -> list[str]:
    return ["--job-id", JOB, "--chunk", str(chunk), "--bucket", BUCKET, "--device", device]


@pytest.mark.parametrize(
    "argv",
    [
        ["--job-id", "NOT A JOB", "--chunk", "0", "--bucket", "b", "--device", "cpu"],
        ["--job-id", JOB, "--chunk", "-1", "--bucket", "b", "--device", "cpu"],
        ["--job-id", JOB, "--chunk", "0", "--bucket", "b", "--device", "tpu"],
        ["--job-id", JOB, "--chunk", "0", "--device", "cpu"],
    ],
    ids=["bad-job-id", "negative-chunk", "unknown-device", "no-bucket"],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        worker.parse_args(argv)
    assert exited.value.code == worker.EXIT_INPUT


def test_arguments_are_parsed() -> None:
    assert worker.parse_args(args(chunk=3, device="gpu")) == worker.ChunkTask(JOB, 3, BUCKET, "gpu")


@pytest.mark.parametrize("device", ["gpu", "cpu"])
def test_the_queue_picks_the_pose_delegate(device: str) -> None:
    assert worker.settings_for_device(AnalysisSettings(), device).pose.delegate == device  # type: ignore[arg-type]


def test_a_stored_result_of_the_same_chunk_is_kept(store: FakeMediaStore) -> None:
    store.write_model(chunk_result(SPECS[1]), BUCKET, chunk_key(JOB, 1))
    store.writes.clear()
    assert worker.main(args(chunk=1), store=store) == worker.EXIT_OK
    assert store.downloads == [] and store.writes == []


def test_a_stored_result_of_another_plan_is_redone(
    store: FakeMediaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = SPECS[1].model_copy(update={"start_s": 5.0})
    store.write_model(chunk_result(other), BUCKET, chunk_key(JOB, 1))
    analysed: list[tuple[Path, ChunkSpec, str]] = []

    def fake_analyze(source: Path, chunk: ChunkSpec, **kwargs: Any) -> ChunkResult:
        analysed.append((source, chunk, kwargs["settings"].pose.delegate))
        return chunk_result(chunk)

    monkeypatch.setattr("posereel.stages.analyze.analyze_chunk", fake_analyze)
    assert worker.main(args(chunk=1), store=store) == worker.EXIT_OK
    [(source, chunk, delegate)] = analysed
    assert (source.name, chunk, delegate) == ("clip.mp4", SPECS[1], "cpu")
    assert store.read_model(BUCKET, chunk_key(JOB, 1), ChunkResult).chunk == SPECS[1]


def test_a_chunk_the_plan_does_not_have_is_an_input_error(store: FakeMediaStore) -> None:
    assert worker.main(args(chunk=7), store=store) == worker.EXIT_INPUT
    assert store.downloads == []


def test_a_missing_plan_is_a_failure_not_an_input_error(store: FakeMediaStore) -> None:
    del store.objects[BUCKET, plan_key(JOB)]
    assert worker.main(args(chunk=0), store=store) == worker.EXIT_FAILED


@pytest.mark.media
def test_a_gpu_job_without_a_usable_gpu_fails_before_downloading(
    store: FakeMediaStore, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posereel_local.hooks.batch_runtime import nvidia_gpu_usable

    if nvidia_gpu_usable():
        pytest.skip("this machine has a GPU")
    monkeypatch.setenv("POSEREEL_MODEL_DIR", str(models_dir))
    # Its own status, which Batch does not retry: the workflow moves the chunk to the CPU queue.
    assert worker.main(args(chunk=0, device="gpu"), store=store) == worker.EXIT_NO_GPU
    assert store.downloads == [] and store.writes == []
