"""``posereel run``: one video through the whole pipeline on the local stack, as a user would.

The file goes in through the HTTP API and the presigned form POST (as from the web client), the
upload notification starts the workflow, the job is polled through the API, and the results are
downloaded from the results bucket. ``run_video`` does this on a started stack (tests share one);
``print_outcome`` prints what a user wants to know.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from rich.console import Console
from rich.table import Table

from posereel.jobs import JobStatus
from posereel.outputs import RESULT_NAME
from posereel.pipeline.api import JobView
from posereel.schemas import AnalysisResult
from posereel_local.client import ApiClient
from posereel_local.stack import LocalStack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """How one run ended: the final job record, and the downloaded results (when it succeeded)."""

    record: JobView
    wall_s: float
    out_dir: Path | None = None
    files: tuple[Path, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 succeeded, 2 rejected (the input), 1 failed."""
        return {JobStatus.SUCCEEDED: 0, JobStatus.REJECTED: 2}.get(self.record.status, 1)


def download_results(stack: LocalStack, record: JobView, out_dir: Path) -> tuple[Path, ...]:
    """Copy every object under the job's results prefix into ``out_dir``, keeping sub-folders."""
    from posereel.aws.mediastore import MediaStore
    from posereel.jobs import results_prefix

    if record.result is None:
        raise ValueError(f"job {record.job_id} has no result")
    media = MediaStore(client=stack.client("s3"))
    bucket, prefix = stack.settings.results_bucket, results_prefix(record.job_id)
    files = []
    for key in sorted(media.list_keys(bucket, prefix)):
        relative = PurePosixPath(key).relative_to(prefix)
        files.append(media.download(bucket, key, out_dir.joinpath(*relative.parts)))
    return tuple(files)


def run_video(
    stack: LocalStack,
    video: Path,
    out_dir: Path,
    *,
    timeout_s: float = 3600.0,
    poll_s: float = 0.5,
    options: dict[str, Any] | None = None,
    on_update: Callable[[JobView], None] | None = None,
) -> RunOutcome:
    """Upload ``video`` through the stack's API (``options``: the upload's options, as the web
    client sends them), wait for its job, download its results."""
    started = time.perf_counter()
    api = ApiClient(stack.api_url, api_key=stack.api_key)
    job_id = api.submit(video, options=options)
    log.info("job %s: %s uploaded", job_id, video.name)
    record = api.wait(job_id, timeout_s=timeout_s, poll_s=poll_s, on_update=on_update)
    if record.status != JobStatus.SUCCEEDED:
        return RunOutcome(record=record, wall_s=time.perf_counter() - started)
    files = download_results(stack, record, out_dir)
    return RunOutcome(record=record, wall_s=time.perf_counter() - started, out_dir=out_dir, files=files)


def print_outcome(outcome: RunOutcome, *, console: Console) -> None:
    record = outcome.record
    status_style = {"SUCCEEDED": "green", "REJECTED": "yellow"}.get(record.status.value, "red")
    console.print(
        f"[bold]job {record.job_id}[/]  [{status_style}]{record.status.value}[/]  "
        f"in {outcome.wall_s:.1f} s end to end"
    )
    if record.error is not None:
        where = f" at {record.error.stage}" if record.error.stage else ""
        console.print(f"[{status_style}]{record.error.code}{where}:[/] {record.error.message}")
    if record.result is not None:
        console.print(
            f"segments {record.result.segments}, reel {record.result.reel_duration_s:.2f} s, "
            f"primary track {record.result.primary_track_id}"
        )
    if record.devices:
        by_index = sorted(record.devices.items(), key=lambda kv: int(kv[0]))
        per_chunk = ", ".join(f"{i}: {d}" for i, d in by_index)
        console.print(f"chunks {record.chunks_done}/{record.chunks_total} on {per_chunk}")
    if record.stage_seconds:
        stages = ", ".join(f"{s.lower()} {v:.2f}" for s, v in record.stage_seconds.items())
        console.print(f"seconds per stage: {stages}")
    if record.usage:
        _print_usage(record, console)
    if outcome.out_dir is not None:
        result_path = outcome.out_dir / RESULT_NAME
        if result_path.is_file():
            _print_segments(AnalysisResult.model_validate_json(result_path.read_bytes()), console)
        console.print(f"{len(outcome.files)} files in {outcome.out_dir}")


def _print_usage(record: JobView, console: Console) -> None:
    table = Table(title="What each stage used", title_justify="left")
    for col in ("stage", "runs", "wall (s)", "CPU (s)", "GPU (s)", "peak MB", "S3 requests", "USD"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    prices = record.cost.by_stage_usd if record.cost else {}
    for key, use in record.usage.items():
        table.add_row(
            key,
            str(use.runs),
            f"{use.wall_s:.1f}",
            f"{use.cpu_s:.1f}",
            f"{use.gpu_s:.1f}",
            f"{use.peak_memory_mb:.0f}",
            str(use.s3_gets + use.s3_puts),
            f"{prices.get(key, 0):.5f}",
        )
    console.print(table)
    if record.cost is not None:
        per_minute = record.cost.per_video_minute_usd
        console.print(
            f"estimated cost {record.cost.total_usd:.4f} USD"
            + (f", {per_minute:.4f} USD per video minute" if per_minute is not None else "")
            + f" (workflow: {record.cost.transitions} transitions; the local stack prices as "
            "AWS's on-demand list prices)"
        )


def _print_segments(result: AnalysisResult, console: Console) -> None:
    if not result.segments:
        console.print("[yellow]No segments: no real movement found.[/]")
        return
    table = Table(title="Segments", title_justify="left")
    for column in ("#", "start (s)", "end (s)", "tracks", "peak", "parts"):
        table.add_column(column, justify="left" if column == "parts" else "right")
    for s in result.segments:
        table.add_row(
            str(s.index),
            f"{s.start_s:.2f}",
            f"{s.end_s:.2f}",
            ",".join(f"#{t}" for t in s.track_ids),
            f"{s.peak_energy:.2f}",
            ", ".join(s.top_parts),
        )
    console.print(table)
