"""The summary printed at the end of ``posereel analyze``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from posereel.schemas import AnalysisResult

if TYPE_CHECKING:
    from posereel.stages.compile import Outputs


def print_summary(result: AnalysisResult, outputs: Outputs, *, console: Console) -> None:
    video = result.video
    start, end = result.range_s
    console.print(
        f"[bold]{video.name}[/]  {video.width}x{video.height} {video.fps:.2f} fps  "
        f"analysed {start:.1f}-{end:.1f} s at {result.analysis_fps:g} fps, model {result.model}, "
        f"device {'/'.join(sorted(set(result.devices)))}"
    )

    tracks = Table(title="Tracks", title_justify="left")
    for col in ("track", "seen (s)", "coverage %", "gaps", "longest gap (s)", "distance (body l.)", "jitter"):
        tracks.add_column(col, justify="right")
    by_id = {m.track_id: m for m in result.metrics}
    for t in result.tracks:
        m = by_id.get(t.track_id)
        label = f"#{t.track_id}" + (" (primary)" if t.is_primary else "")
        if m is None:
            tracks.add_row(label, f"{t.first_s:.1f}-{t.last_s:.1f}", *["-"] * 5)
            continue
        tracks.add_row(
            label,
            f"{t.first_s:.1f}-{t.last_s:.1f}",
            f"{m.coverage_pct:.0f}",
            str(m.gaps),
            f"{m.longest_gap_s:.1f}",
            f"{m.distance_body_lengths:.1f}",
            f"{m.jitter:.3f}",
        )
    console.print(tracks if result.tracks else "[yellow]No person found.[/]")

    if result.segments:
        segs = Table(title="Segments", title_justify="left")
        for col in ("#", "start (s)", "end (s)", "tracks", "peak", "mean", "parts", "score"):
            segs.add_column(col, justify="right" if col not in ("parts",) else "left")
        for s in result.segments:
            segs.add_row(
                str(s.index),
                f"{s.start_s:.2f}",
                f"{s.end_s:.2f}",
                ",".join(f"#{t}" for t in s.track_ids),
                f"{s.peak_energy:.2f}",
                f"{s.mean_energy:.2f}",
                ", ".join(s.top_parts),
                f"{s.score:.2f}",
            )
        console.print(segs)
        console.print(
            f"Reel: {outputs.reel} ({outputs.reel_duration_s:.2f} s from {len(result.reel_windows)} windows)"
        )
    else:
        console.print("[yellow]No segments: no real movement found, so no reel was cut.[/]")

    timings = result.timings_s
    shown = ", ".join(f"{k} {v:.2f}s" for k, v in timings.items() if not k.startswith("chunks."))
    console.print(f"Timings: {shown}")
    console.print(f"Results in {outputs.result.parent}")
