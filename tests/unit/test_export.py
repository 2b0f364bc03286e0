"""Data files: JSON round-trips every model, the reel's cuts as a CSV read back with the csv
module, the EDL's timecodes are right at the usual frame rates, and zips appear whole."""

from __future__ import annotations

import csv
import math
import os
import re
import zipfile

import pytest
from pydantic import ValidationError

from posereel.export import (
    CUTS_CSV_HEADER,
    Cut,
    atomic_writer,
    cuts_csv,
    cuts_edl,
    frame_number,
    frames_to_timecode,
    read_json,
    reel_cuts,
    timecode_base,
    write_json,
    write_zip,
)
from posereel.schemas import (
    AnalysisResult,
    EnergySeries,
    FramePoses,
    PersonPose,
    ReelWindow,
    Segment,
    TrackMetrics,
    TracksFile,
    TrackSummary,
    VideoInfo,
)
from tests.builders import segment

VIDEO = VideoInfo(
    name="tänzerin 舞.mp4", duration_s=12.0, fps=24.0, width=1080, height=1920, codec="h264", has_audio=False
)


def seg(index: int, start_s: float, end_s: float, *, track_ids=(0,), parts=("left_arm",)) -> Segment:
    """Energies and scores with many digits, to see how they are rounded."""
    return segment(
        index, start_s, end_s, track_ids=track_ids, top_parts=parts, peak_energy=1.23456,
        mean_energy=0.654321, score=0.5 * index + 0.123456,
    )  # fmt: skip


def analysis_result() -> AnalysisResult:
    return AnalysisResult(
        video=VIDEO,
        analysis_fps=10.0,
        model="lite",
        devices=["cpu"],
        range_s=(0.0, 12.0),
        primary_track_id=0,
        tracks=[
            TrackSummary(track_id=0, first_s=0.0, last_s=11.9, frames=120, mean_energy=0.4, is_primary=True)
        ],
        segments=[seg(0, 1.0, 2.5, track_ids=(0, 2), parts=("left_arm", "right_leg")), seg(1, 7.0, 9.25)],
        metrics=[
            TrackMetrics(
                track_id=0,
                coverage_pct=99.2,
                gaps=1,
                longest_gap_s=0.3,
                distance_body_lengths=4.2,
                jitter=0.01,
            )
        ],
        energy=[EnergySeries(track_id=0, t_s=[0.0, 0.1, 0.2], energy=[None, 0.25, 0.5])],
        reel_windows=[ReelWindow(start_s=0.0, end_s=5.5, segment_indices=[0])],
        timings_s={"pose": 3.5},
    )


# --- JSON ----------------------------------------------------------------------------------------


def test_json_round_trips_an_analysis_result(tmp_path):
    result = analysis_result()
    path = write_json(result, tmp_path / "out" / "result.json")
    assert read_json(path, AnalysisResult) == result
    # UTF-8 text with the name as written, not \\u escapes
    assert "tänzerin 舞.mp4" in path.read_text(encoding="utf-8")


def test_json_round_trips_tracks_and_writes_nan_as_null(tmp_path):
    landmarks = [(0.5, 0.5, 0.0, 0.9)] * 33
    tracks = TracksFile(
        video=VIDEO,
        analysis_fps=10.0,
        frames=[
            FramePoses(index=0, t_s=0.0, persons=[]),
            FramePoses(
                index=1,
                t_s=0.1,
                persons=[PersonPose(track_id=3, score=0.8, box=(0.1, 0.2, 0.6, 0.9), landmarks=landmarks)],
            ),
        ],
    )
    assert read_json(write_json(tracks, tmp_path / "tracks.json"), TracksFile) == tracks

    series = EnergySeries(track_id=1, t_s=[0.0, 0.1], energy=[math.nan, 0.5])
    path = write_json(series, tmp_path / "energy.json")
    assert '"energy":[null,0.5]' in path.read_text()
    assert read_json(path, EnergySeries).energy == [None, 0.5]


def test_read_json_rejects_another_model(tmp_path):
    path = write_json(analysis_result(), tmp_path / "result.json")
    with pytest.raises(ValidationError):
        read_json(path, TracksFile)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    # Given a file already written
    path = write_json(analysis_result(), tmp_path / "result.json")
    before = path.read_bytes()

    # When a later write fails half way
    with pytest.raises(RuntimeError), atomic_writer(path) as f:
        f.write('{"half": ')
        raise RuntimeError("disk full")

    # Then the old file is intact and nothing else is left in the folder
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_written_files_follow_the_umask(tmp_path):
    # (a temporary file from mkstemp would keep mode 0600 and hide results from other readers)
    umask = os.umask(0o022)
    try:
        path = write_json(analysis_result(), tmp_path / "result.json")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


# --- CSV -----------------------------------------------------------------------------------------


def test_the_cuts_are_the_reel_windows_with_the_segments_they_show() -> None:
    segments = [seg(0, 1.0, 2.5, track_ids=(0, 2)), seg(1, 4.0, 5.0), seg(2, 20.0, 21.0)]
    windows = [
        ReelWindow(start_s=0.0, end_s=8.0, segment_indices=[0, 1]),
        ReelWindow(start_s=18.0, end_s=24.0, segment_indices=[2]),
    ]
    cuts = reel_cuts(windows, segments)
    assert [(c.start_s, c.end_s, [s.index for s in c.segments]) for c in cuts] == [
        (0.0, 8.0, [0, 1]),
        (18.0, 24.0, [2]),
    ]
    assert cuts[0].track_ids == [0, 2]


def test_the_cuts_csv_gives_source_and_reel_times_and_reads_back(tmp_path):
    strong = seg(1, 7.0, 9.25)
    cuts = [
        Cut(0.0, 4.5, (seg(0, 1.0, 2.5, track_ids=(0, 2), parts=("left_arm", "right_leg")),)),
        Cut(5.0, 12.25, (strong,)),
    ]

    path = cuts_csv(cuts, tmp_path / "segments.csv")

    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == CUTS_CSV_HEADER
        rows = list(reader)
    assert [int(r["cut"]) for r in rows] == [1, 2]
    assert [(float(r["source_in_s"]), float(r["source_out_s"])) for r in rows] == [(0.0, 4.5), (5.0, 12.25)]
    # The cuts play back to back in the reel
    assert [(float(r["reel_in_s"]), float(r["reel_out_s"]), float(r["duration_s"])) for r in rows] == [
        (0.0, 4.5, 4.5),
        (4.5, 11.75, 7.25),
    ]
    assert [r["segments"] for r in rows] == ["0", "1"]
    assert [r["track_ids"].split(";") for r in rows] == [["0", "2"], ["0"]]
    assert [r["top_parts"].split(";") for r in rows] == [["left_arm", "right_leg"], ["left_arm"]]
    assert float(rows[1]["peak_energy"]) == pytest.approx(strong.peak_energy, abs=1e-4)


def test_the_cuts_csv_of_a_reel_without_cuts_is_just_the_header(tmp_path):
    path = cuts_csv([], tmp_path / "segments.csv")
    assert path.read_text().splitlines() == [",".join(CUTS_CSV_HEADER)]


# --- EDL -----------------------------------------------------------------------------------------

_EVENT = re.compile(
    r"^(\d{3})  (\S+)\s+(V|B)\s+C\s+"
    r"(\d\d:\d\d:\d\d:\d\d) (\d\d:\d\d:\d\d:\d\d) (\d\d:\d\d:\d\d:\d\d) (\d\d:\d\d:\d\d:\d\d)$"
)

# fps, segments (start_s, end_s), expected (src in, src out, rec in, rec out) per event
EDL_CASES = [
    pytest.param(
        24.0,
        [(1.5, 3.25), (61.0, 62.0)],
        [
            ("00:00:01:12", "00:00:03:06", "00:00:00:00", "00:00:01:18"),
            ("00:01:01:00", "00:01:02:00", "00:00:01:18", "00:00:02:18"),
        ],
        id="24",
    ),
    pytest.param(
        25.0,
        [(0.0, 0.04), (3599.0, 3600.48)],
        [
            ("00:00:00:00", "00:00:00:01", "00:00:00:00", "00:00:00:01"),
            ("00:59:59:00", "01:00:00:12", "00:00:00:01", "00:00:01:13"),
        ],
        id="25",
    ),
    pytest.param(
        # 29.97 is counted as 30 NDF: 10 s is frame 300 (00:00:10:00); 65.5 s is frame 1963 -> 00:01:05:13
        29.97,
        [(10.0, 65.5), (100.1, 100.2)],
        [
            ("00:00:10:00", "00:01:05:13", "00:00:00:00", "00:00:55:13"),
            ("00:01:40:00", "00:01:40:03", "00:00:55:13", "00:00:55:16"),
        ],
        id="29.97",
    ),
    pytest.param(
        30000 / 1001,  # what ffprobe reports for NTSC
        [(10.0, 65.5)],
        [("00:00:10:00", "00:01:05:13", "00:00:00:00", "00:00:55:13")],
        id="30000/1001",
    ),
    pytest.param(
        30.0,
        [(0.5, 1.0), (2.0, 2.5), (3600.0, 3601.0)],
        [
            ("00:00:00:15", "00:00:01:00", "00:00:00:00", "00:00:00:15"),
            ("00:00:02:00", "00:00:02:15", "00:00:00:15", "00:00:01:00"),
            ("01:00:00:00", "01:00:01:00", "00:00:01:00", "00:00:02:00"),
        ],
        id="30",
    ),
]


@pytest.mark.parametrize(("fps", "spans", "expected"), EDL_CASES)
def test_edl_timecodes(tmp_path, fps, spans, expected):
    cuts = [Cut(a, b, (seg(i, a, b),)) for i, (a, b) in enumerate(spans)]

    path = cuts_edl(cuts, tmp_path / "segments.edl", fps=fps, title="taiji demo", reel_name="source")

    lines = path.read_text().splitlines()
    assert lines[:2] == ["TITLE: taiji demo", "FCM: NON-DROP FRAME"]
    events = [m.groups() for line in lines if (m := _EVENT.match(line))]
    assert [e[0] for e in events] == [f"{i:03d}" for i in range(1, len(spans) + 1)]
    assert all(e[1] == "SOURCE" and e[2] == "V" for e in events)
    assert [e[3:] for e in events] == expected
    assert lines.count("* FROM CLIP NAME: taiji demo") == len(spans)


def test_edl_layout_matches_cmx3600_columns(tmp_path):
    cut = Cut(1.0, 2.0, (seg(0, 1.0, 2.0, track_ids=(0, 3)), seg(1, 1.2, 1.8)))
    path = cuts_edl(
        [cut], tmp_path / "a.edl", fps=25, title="t", reel_name="clip-01.mp4",
        clip_name="clip-01.mp4", record_start_s=3600.0, with_audio=True,
    )  # fmt: skip
    assert path.read_text().splitlines() == [
        "TITLE: t",
        "FCM: NON-DROP FRAME",
        "",
        "001  CLIP01MP B     C        00:00:01:00 00:00:02:00 01:00:00:00 01:00:01:00",
        "* FROM CLIP NAME: clip-01.mp4",
        "* POSEREEL SEGMENTS: 0, 1; TRACKS: 0, 3",
    ]


def test_edl_without_segments_has_only_the_header(tmp_path):
    path = cuts_edl([], tmp_path / "a.edl", fps=25, title="nothing", reel_name="")
    assert path.read_text() == "TITLE: nothing\nFCM: NON-DROP FRAME\n"


@pytest.mark.parametrize(
    ("fps", "base"),
    [(23.976, 24), (24000 / 1001, 24), (24, 24), (25, 25), (29.97, 30), (30, 30), (59.94, 60)],
)
def test_timecode_base_rounds_to_ndf(fps, base):
    assert timecode_base(fps) == base


@pytest.mark.parametrize(
    ("frames", "base", "tc"),
    [(0, 25, "00:00:00:00"), (24, 25, "00:00:00:24"), (25, 25, "00:00:01:00"), (90_000, 25, "01:00:00:00"),
     (107_892, 30, "00:59:56:12"), (30 * 86_400 - 1, 30, "23:59:59:29")],
)  # fmt: skip
def test_frames_to_timecode(frames, base, tc):
    assert frames_to_timecode(frames, base=base) == tc


def test_timecode_out_of_range():
    with pytest.raises(ValueError):
        frames_to_timecode(-1, base=25)
    with pytest.raises(ValueError):
        frames_to_timecode(25 * 86_400, base=25)


def test_frame_number_treats_29_97_as_ntsc():
    # one hour of NTSC video is 107892 frames, whether the rate is written 29.97 or 30000/1001
    assert frame_number(3600.0, fps=29.97) == frame_number(3600.0, fps=30000 / 1001) == 107_892
    assert frame_number(3600.0, fps=30.0) == 108_000


def test_a_zip_stores_media_deflates_text_and_keeps_the_order(tmp_path):
    (tmp_path / "reel.mp4").write_bytes(os.urandom(2048))
    (tmp_path / "tracks.json").write_text('{"frames": []}' * 200)
    entries = [("v/tracks.json", tmp_path / "tracks.json"), ("v/reel.mp4", tmp_path / "reel.mp4")]

    path = write_zip(entries, tmp_path / "out" / "all.zip")

    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["v/tracks.json", "v/reel.mp4"]
        kinds = {i.filename: i.compress_type for i in archive.infolist()}
        assert kinds == {"v/tracks.json": zipfile.ZIP_DEFLATED, "v/reel.mp4": zipfile.ZIP_STORED}
        assert archive.read("v/reel.mp4") == (tmp_path / "reel.mp4").read_bytes()
        assert archive.testzip() is None


def test_a_zip_that_fails_leaves_nothing(tmp_path):
    # Given a list naming a file that is not there
    (tmp_path / "a.csv").write_text("x\n")
    entries = [("a.csv", tmp_path / "a.csv"), ("gone.mp4", tmp_path / "gone.mp4")]
    # Then writing fails and leaves neither the zip nor a partial one
    with pytest.raises(FileNotFoundError):
        write_zip(entries, tmp_path / "all.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]
