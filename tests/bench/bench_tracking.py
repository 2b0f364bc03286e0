"""Tracking benchmark (`make bench-tracking`): how well the engine finds and follows people on
the labelled shared clips (tests/data/tracking), and what it costs.

Per clip: recall and precision of people per labelled frame, id switches, IDF1 and MOTA
(motmetrics), the track ids each labelled person got, and milliseconds per analysed frame (wall
time of decode + pose + tracking, one worker). The peer's numbers are the ones measured here
before (../shared/docs/FINDINGS.md: Ultralytics YOLO11n-pose + ByteTrack, 640 px, every 3rd
frame, these 2 cores); it is not installed (AGPL-3.0 weights, ~6 GB of torch).

    python tests/bench/bench_tracking.py --media ../shared/media [--out DIR] [--min-iou 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # the tests package (labels) when run as a script

from posereel import engine  # noqa: E402
from posereel.schemas import TracksFile  # noqa: E402
from posereel.settings import AnalysisSettings, RuntimeSettings  # noqa: E402
from tests import labels  # noqa: E402

# The peer on the same clips (FINDINGS.md): ids found and their lengths, ms per frame.
PEER = {
    "sports2d_park_walk": "2 ids (63, 55 of 76 frames)",
    "mmaction2_basketball": "6 ids (51, 37, 33, 25, 11, 5 of 100)",
    "pets2009_vtest_crowd_walking": "4 ids, most pedestrians missed",
    "sports2d_walk_in_out": "-",
}
PEER_MS_PER_FRAME = (76, 158)


def run(media: Path, out: Path, *, min_iou: float, settings: AnalysisSettings) -> list[dict[str, object]]:
    runtime = RuntimeSettings()
    rows = []
    for stem in labels.LABELLED_CLIPS:
        truth = labels.load(stem)
        result, outputs = engine.analyze_video(
            media / f"{stem}.mp4", out / stem, settings=settings, runtime=runtime, workers=1
        )
        tracks = TracksFile.model_validate_json(outputs.tracks.read_text())
        scores = labels.score(truth, tracks.frames, fps=result.analysis_fps, min_iou=min_iou)
        analysed = len(tracks.frames)
        rows.append(
            {
                "clip": stem,
                "recall": round(scores.recall, 3),
                "precision": round(scores.precision, 3),
                "id_switches": scores.id_switches,
                "idf1": round(scores.idf1, 3),
                "mota": round(scores.mota, 3),
                "ids_per_person": {pid: sorted(ids) for pid, ids in sorted(scores.ids_per_label.items())},
                "coverage": {pid: round(c, 2) for pid, c in sorted(scores.coverage.items())},
                "tracks": len(result.tracks),
                "ms_per_frame": round(1000 * result.timings_s["chunks_wall"] / max(1, analysed), 1),
                # analysis wall time (decode, detector, landmarks, tracking) over the clip's length
                "x_real_time": round(result.timings_s["chunks_wall"] / result.video.duration_s, 3),
                "frames": analysed,
                "peer": PEER[stem],
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench-tracking")
    parser.add_argument("--min-iou", type=float, default=0.5, help="box overlap that counts as a match")
    args = parser.parse_args()
    rows = run(args.media, args.out, min_iou=args.min_iou, settings=AnalysisSettings())
    header = (
        f"{'clip':30s} {'recall':>6s} {'prec':>6s} {'idsw':>5s} {'IDF1':>6s} {'MOTA':>6s} {'ms/fr':>6s}"
        f" {'xRT':>6s}  ids"
    )
    print(header)
    for r in rows:
        print(
            f"{r['clip']:30s} {r['recall']:6.2f} {r['precision']:6.2f} {r['id_switches']:6d} "
            f"{r['idf1']:6.2f} {r['mota']:6.2f} {r['ms_per_frame']:6.1f} {r['x_real_time']:6.3f}"
            f"  {r['ids_per_person']}"
        )
    print(
        f"peer (YOLO11n-pose + ByteTrack, measured here earlier): {PEER_MS_PER_FRAME[0]}-"
        f"{PEER_MS_PER_FRAME[1]} ms/frame; " + "; ".join(f"{k}: {v}" for k, v in PEER.items())
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tracking.json").write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
