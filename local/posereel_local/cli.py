"""``posereel``: the command line.

posereel analyze VIDEO --out DIR [--start S --end S --chunk-seconds 30 --overlap-seconds 2 ...]
posereel models fetch [--model-dir DIR] [--from DIR] [--model lite ...]
posereel up [--port 8321]                        the whole pipeline on this machine, until Ctrl-C
posereel run VIDEO [--out DIR] [--port 0]        one video through that pipeline, as a user would
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from posereel.errors import InputError, PoseReelError
from posereel.modelstore import MODELS
from posereel.settings import (
    AnalysisSettings,
    ChunkSettings,
    ReelRequest,
    ReelSettings,
    RuntimeSettings,
    SamplingSettings,
)

if TYPE_CHECKING:
    from posereel_local.stack import LocalStack


def _analysis_settings(args: argparse.Namespace) -> AnalysisSettings:
    base = AnalysisSettings()
    return base.model_copy(
        update={
            "sampling": SamplingSettings(target_fps=args.fps, max_height_px=args.max_height),
            "pose": base.pose.model_copy(
                update={"model": args.model, "max_people": args.max_people, "delegate": args.delegate}
            ),
            "chunks": ChunkSettings(
                chunk_seconds=args.chunk_seconds or base.chunks.chunk_seconds,
                overlap_seconds=args.overlap_seconds,
            ),
            "reel": ReelSettings(
                buffer_before_s=args.buffer_before,
                buffer_after_s=args.buffer_after,
                overlay=getattr(args, "overlay", False),
                clips=getattr(args, "clips", False),
            ),
            "segments": base.segments.model_copy(update={"focus": args.focus}),
        }
    )


def _runtime(args: argparse.Namespace) -> RuntimeSettings:
    runtime = RuntimeSettings()
    if getattr(args, "model_dir", None):
        runtime = runtime.model_copy(update={"model_dir": Path(args.model_dir)})
    return runtime


def cmd_analyze(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from posereel import engine
    from posereel_local import report

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
        tasks: dict[str, TaskID] = {}

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
            split_for_workers=args.chunk_seconds is None,
            progress=progress,
        )
    report.print_summary(result, outputs, console=Console())
    return 0


def cmd_recut(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from posereel import engine

    chosen = {
        "track_ids": args.track,
        "min_still_s": args.min_still,
        "min_segment_s": args.min_segment,
        "buffer_before_s": args.buffer_before,
        "buffer_after_s": args.buffer_after,
        "max_duration_s": args.max_duration,
        "order": args.order,
        "aspect": args.aspect,
        "blur_faces": True if args.blur_faces else None,
        "clips": True if args.clips else None,
    }
    try:
        request = ReelRequest.model_validate({k: v for k, v in chosen.items() if v is not None})
    except ValidationError as exc:
        raise InputError(f"not a re-cut: {exc}") from exc
    folder, reel = engine.recut_folder(Path(args.folder), request, runtime=_runtime(args))
    if not reel.windows:
        print(f"{folder}: nothing moved as asked; no reel (see {folder / 'reel.json'})")
        return 0
    print(
        f"{folder / 'reel.mp4'}: {reel.duration_s:.2f} s, {len(reel.segments)} segments in "
        f"{len(reel.windows)} windows, {reel.size_px[0]}x{reel.size_px[1]}"
    )
    return 0


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from posereel.modelstore import fetch_models

    runtime = _runtime(args)
    paths = fetch_models(
        args.model or list(MODELS),
        runtime.model_dir,
        source_dir=Path(args.source) if args.source else None,
        force=args.force,
    )
    for path in paths:
        print(path)
    return 0


def _local_stack(args: argparse.Namespace, *, chunk_seconds: float | None) -> LocalStack:
    from posereel_local.stack import LocalStack

    return LocalStack(
        api_port=args.port,
        aws_port=args.aws_port,
        model_dir=Path(args.model_dir) if args.model_dir else None,
        clamav_db=Path(args.clamav_db) if args.clamav_db else None,
        settings={"chunks": ChunkSettings(chunk_seconds=chunk_seconds)} if chunk_seconds else None,
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_up(args: argparse.Namespace) -> int:
    import signal
    import threading

    # SIGTERM (a service manager, `kill`) stops it as cleanly as Ctrl-C: job processes and
    # Lambda workers are ended and the state is discarded.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with _local_stack(args, chunk_seconds=args.chunk_seconds) as stack:
            print(f"PoseReel API    {stack.api_url}  (x-api-key: {stack.api_key})")
            if stack.serves_web:
                print(f"web client      {stack.web_url}")
            print(f"local AWS       {stack.aws.endpoint_url}  (AWS_ENDPOINT_URL for the SDK and CLI)")
            print(f"uploads bucket  {stack.settings.uploads_bucket}")
            print(f"results bucket  {stack.settings.results_bucket}")
            print("Ctrl-C stops it and discards everything.", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _run_chunk_seconds(video: Path, workers: int) -> float | None:
    """Chunks as ``posereel analyze`` would cut them here (one per core for a short video); None
    (the pipeline's default) when the file does not probe: the pipeline will say why."""
    from posereel.engine import local_chunk_seconds
    from posereel.video import probe

    try:
        duration_s = probe(video, ffprobe=RuntimeSettings().ffprobe).duration_s
    except (PoseReelError, OSError):
        return None
    return local_chunk_seconds(duration_s, AnalysisSettings(), workers=workers)


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from posereel.jobs import Stage
    from posereel.pipeline.api import JobView
    from posereel_local.client import ApiError
    from posereel_local.run import print_outcome, run_video

    video = Path(args.video)
    if not video.is_file():
        raise InputError(f"{video} is not a file")
    out_dir = Path(args.out) if args.out else Path("posereel-results") / video.stem
    chunk_seconds = args.chunk_seconds or _run_chunk_seconds(video, os.cpu_count() or 1)
    console = Console(stderr=True)
    with (
        _local_stack(args, chunk_seconds=chunk_seconds) as stack,
        Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=args.quiet,
        ) as bar,
    ):
        task = bar.add_task("uploading", total=100)

        def show(record: JobView) -> None:
            running = record.status.value == "RUNNING"
            label = (record.stage if running else record.status).value.lower()
            if record.stage == Stage.ANALYZE and record.chunks_total:
                label = f"analyze {record.chunks_done}/{record.chunks_total} chunks"
            bar.update(task, description=label, completed=record.percent)

        try:
            outcome = run_video(
                stack,
                video,
                out_dir,
                timeout_s=args.timeout,
                options={"overlay": True} if args.overlay else None,
                on_update=show,
            )
        except ApiError as exc:
            print(f"posereel: the API refused the upload [{exc.code}]: {exc.message}", file=sys.stderr)
            return 2 if 400 <= exc.status < 500 else 1
        except TimeoutError as exc:
            print(f"posereel: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("posereel: interrupted; the local stack and its jobs are gone", file=sys.stderr)
            return 130
    print_outcome(outcome, console=Console())
    return outcome.exit_code


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
    a.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help=f"chunk length (default {defaults.chunks.chunk_seconds:g}, shorter for a short video so every "
        "worker has a chunk)",
    )
    a.add_argument("--overlap-seconds", type=float, default=defaults.chunks.overlap_seconds)
    a.add_argument("--workers", type=int, default=0, help="chunks analysed at once (0: one per core)")
    a.add_argument(
        "--fps", type=float, default=defaults.sampling.target_fps, help="analysis frames per second"
    )
    a.add_argument(
        "--max-height", type=int, default=defaults.sampling.max_height_px, help="analysis height (px)"
    )
    a.add_argument("--model", choices=["lite", "full", "heavy"], default=defaults.pose.model)
    a.add_argument(
        "--max-people", type=int, default=defaults.pose.max_people, help="people followed per frame at most"
    )
    a.add_argument("--delegate", choices=["cpu", "gpu", "auto"], default=defaults.pose.delegate)
    a.add_argument("--model-dir", default=None, help="pose model directory (default: $POSEREEL_MODEL_DIR)")
    a.add_argument("--buffer-before", type=float, default=defaults.reel.buffer_before_s, metavar="S")
    a.add_argument("--buffer-after", type=float, default=defaults.reel.buffer_after_s, metavar="S")
    a.add_argument(
        "--focus",
        choices=["all", "primary"],
        default=defaults.segments.focus,
        help="segments from anyone's movement, or from the primary subject's only",
    )
    a.add_argument(
        "--overlay",
        action="store_true",
        help="also render overlay.mp4, the source with every skeleton drawn (the web page draws them itself)",
    )
    a.add_argument("--clips", action="store_true", help="also clips.zip: one MP4 per cut of the reel")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    a.set_defaults(func=cmd_analyze)

    r = sub.add_parser(
        "recut", help="cut another reel from an analyze output folder (no pose estimation again)"
    )
    r.add_argument("folder", help="the folder posereel analyze wrote")
    r.add_argument(
        "--track", type=int, action="append", help="only this person (repeatable; default everyone)"
    )
    r.add_argument("--min-still", type=float, metavar="S", help="a rest this long ends a segment")
    r.add_argument("--min-segment", type=float, metavar="S", help="shorter movement is no segment")
    r.add_argument("--buffer-before", type=float, metavar="S", help="shown before each segment")
    r.add_argument("--buffer-after", type=float, metavar="S", help="shown after each segment")
    r.add_argument("--max-duration", type=float, metavar="S", help="the strongest segments that fit")
    r.add_argument("--order", choices=["time", "energy"], help="as they happened, or strongest first")
    r.add_argument("--aspect", choices=["source", "9:16", "1:1"], help="a crop that follows the people")
    r.add_argument("--blur-faces", action="store_true", help="blur every face")
    r.add_argument("--clips", action="store_true", help="also clips.zip: one MP4 per cut of the reel")
    r.add_argument("--model-dir", default=None, help="model directory (default: $POSEREEL_MODEL_DIR)")
    r.set_defaults(func=cmd_recut)

    m = sub.add_parser("models", help="the perception models").add_subparsers(
        dest="models_command", required=True
    )
    f = m.add_parser("fetch", help="download the official bundles (sha256-checked) into the model directory")
    f.add_argument(
        "--model",
        action="append",
        choices=sorted(MODELS),
        help="repeatable; default all (the landmark bundles, the person detector, the face detector)",
    )
    f.add_argument("--model-dir", default=None, help="target directory (default: $POSEREEL_MODEL_DIR)")
    f.add_argument(
        "--from", dest="source", default=None, help="copy from a local directory instead of the web"
    )
    f.add_argument("--force", action="store_true", help="download again even when a valid copy exists")
    f.set_defaults(func=cmd_models_fetch)

    def local_options(p: argparse.ArgumentParser, *, port: int) -> None:
        p.add_argument("--port", type=int, default=port, help=f"HTTP API port (default {port}; 0: any)")
        p.add_argument("--aws-port", type=int, default=0, help="port of the local AWS endpoint (0: any)")
        p.add_argument("--model-dir", default=None, help="pose models (default: $POSEREEL_MODEL_DIR)")
        p.add_argument(
            "--clamav-db",
            default=None,
            help="ClamAV signature directory (default: a test-only one that knows the EICAR file)",
        )
        p.add_argument("--chunk-seconds", type=float, default=None, help="chunk length of the plan stage")

    up = sub.add_parser("up", help="run the whole pipeline on this machine (local AWS + HTTP API)")
    local_options(up, port=8321)
    up.set_defaults(func=cmd_up)

    r = sub.add_parser("run", help="send one video through the local pipeline, as the web client would")
    r.add_argument("video", help="the video file")
    r.add_argument("--out", default=None, help="directory for the results (default posereel-results/NAME)")
    local_options(r, port=0)
    r.add_argument("--timeout", type=float, default=3600.0, metavar="S", help="give up after this long")
    r.add_argument("--overlay", action="store_true", help="also make overlay.mp4 (the upload option overlay)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)
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
