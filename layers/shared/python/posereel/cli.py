"""``posereel``: the command line.

posereel analyze VIDEO --out DIR [--start S --end S --chunk-seconds 30 --overlap-seconds 2 ...]
posereel models fetch [--model-dir DIR] [--from DIR] [--model lite ...]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from posereel.errors import InputError, PoseReelError
from posereel.settings import (
    AnalysisSettings,
    ChunkSettings,
    PoseSettings,
    ReelSettings,
    RuntimeSettings,
    SamplingSettings,
)


def _analysis_settings(args: argparse.Namespace) -> AnalysisSettings:
    base = AnalysisSettings()
    return base.model_copy(
        update={
            "sampling": SamplingSettings(target_fps=args.fps, max_height_px=args.max_height),
            "pose": PoseSettings(model=args.model, num_poses=args.num_poses, delegate=args.delegate),
            "chunks": ChunkSettings(chunk_seconds=args.chunk_seconds, overlap_seconds=args.overlap_seconds),
            "reel": ReelSettings(buffer_before_s=args.buffer_before, buffer_after_s=args.buffer_after),
        }
    )


def _runtime(args: argparse.Namespace) -> RuntimeSettings:
    runtime = RuntimeSettings()
    if getattr(args, "model_dir", None):
        runtime = runtime.model_copy(update={"model_dir": Path(args.model_dir)})
    return runtime


def cmd_analyze(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from posereel import engine, report

    console = Console(stderr=True)
    source = Path(args.video)
    settings = _analysis_settings(args)
    runtime = _runtime(args)
    workers = args.workers if args.workers > 0 else (os.cpu_count() or 1)

    with Progress(
        TextColumn("{task.description:<8}"),
        BarColumn(),
        TextColumn("{task.completed:>5.0f}/{task.total:<5.0f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=args.quiet,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(stage: str, done: float, total: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result, outputs = engine.analyze_video(
            source,
            Path(args.out),
            settings=settings,
            runtime=runtime,
            start_s=args.start,
            end_s=args.end,
            workers=workers,
            overlay=not args.no_overlay,
            progress=progress,
        )
    report.print_summary(result, outputs, console=Console())
    return 0


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from posereel.modelstore import fetch_models

    runtime = _runtime(args)
    paths = fetch_models(
        args.model or ["lite", "full", "heavy"],
        runtime.model_dir,
        source_dir=Path(args.source) if args.source else None,
        force=args.force,
    )
    for path in paths:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posereel", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    defaults = AnalysisSettings()
    a = sub.add_parser("analyze", help="analyse a video file on this machine")
    a.add_argument("video", help="the video file")
    a.add_argument("--out", required=True, help="directory for the results")
    a.add_argument("--start", type=float, default=0.0, metavar="S", help="analyse from this time (s)")
    a.add_argument("--end", type=float, default=None, metavar="S", help="analyse up to this time (s)")
    a.add_argument("--chunk-seconds", type=float, default=defaults.chunks.chunk_seconds)
    a.add_argument("--overlap-seconds", type=float, default=defaults.chunks.overlap_seconds)
    a.add_argument("--workers", type=int, default=0, help="chunk worker processes (0: one per core)")
    a.add_argument(
        "--fps", type=float, default=defaults.sampling.target_fps, help="analysis frames per second"
    )
    a.add_argument(
        "--max-height", type=int, default=defaults.sampling.max_height_px, help="analysis height (px)"
    )
    a.add_argument("--model", choices=["lite", "full", "heavy"], default=defaults.pose.model)
    a.add_argument("--num-poses", type=int, default=defaults.pose.num_poses, help="people per frame at most")
    a.add_argument("--delegate", choices=["cpu", "gpu", "auto"], default=defaults.pose.delegate)
    a.add_argument("--model-dir", default=None, help="pose model directory (default: $POSEREEL_MODEL_DIR)")
    a.add_argument("--buffer-before", type=float, default=defaults.reel.buffer_before_s, metavar="S")
    a.add_argument("--buffer-after", type=float, default=defaults.reel.buffer_after_s, metavar="S")
    a.add_argument("--no-overlay", action="store_true", help="skip the skeleton overlay video")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_analyze)

    m = sub.add_parser("models", help="pose model bundles").add_subparsers(
        dest="models_command", required=True
    )
    f = m.add_parser("fetch", help="download the official bundles (sha256-checked) into the model directory")
    f.add_argument(
        "--model", action="append", choices=["lite", "full", "heavy"], help="repeatable; default all"
    )
    f.add_argument("--model-dir", default=None, help="target directory (default: $POSEREEL_MODEL_DIR)")
    f.add_argument(
        "--from", dest="source", default=None, help="copy from a local directory instead of the web"
    )
    f.add_argument("--force", action="store_true", help="download again even when a valid copy exists")
    f.set_defaults(func=cmd_models_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"posereel: error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except PoseReelError as exc:
        print(f"posereel: failed [{exc.code}]: {exc.message}", file=sys.stderr)
        return 1
    except ValueError as exc:  # pydantic validation of command-line values
        print(f"posereel: invalid option: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
