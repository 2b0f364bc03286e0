"""The files an analysis writes, by kind: in ``posereel analyze``'s output folder and under
results/{job_id}/ in the results bucket alike (posereel.stages.compile writes them, the API links
to them). Their names and the content types they are stored and served with, in one place."""

from __future__ import annotations

import re
from pathlib import PurePath
from urllib.parse import quote

# kind -> file name. Every analysis writes these (reel only when there is something to show,
# overlay and clips only when asked for); thumbnails go into THUMBNAILS_DIR as segment_NNN.jpg.
# The bundle (every other file in one zip, for "download all") is made by the compile function
# for the results bucket only: an analyze folder already holds them side by side.
RESULT_FILES: dict[str, str] = {
    "reel": "reel.mp4",
    "overlay": "overlay.mp4",
    "timeline": "timeline.png",
    "tracks": "tracks.json",
    "segments": "segments.json",
    "metrics": "metrics.json",
    "result": "result.json",
    "segments_csv": "segments.csv",
    "segments_edl": "segments.edl",
    "cut": "reel.json",
    "clips": "clips.zip",
    "bundle": "results.zip",
}
REEL_NAME = RESULT_FILES["reel"]
RESULT_NAME = RESULT_FILES["result"]
THUMBNAILS_DIR = "thumbnails"

# Every reel (re-cuts included) in a folder of its own: its video, its cut and its exports.
REELS_DIR = "reels"
REEL_FILES: dict[str, str] = {
    kind: RESULT_FILES[kind] for kind in ("reel", "cut", "segments_csv", "segments_edl", "clips")
}


def reel_dir(reel_id: int) -> str:
    """The folder of reel ``reel_id`` (a re-cut) among the results: reels/N/."""
    return f"{REELS_DIR}/{reel_id}/"


def thumbnail_file(segment_index: int) -> str:
    """The thumbnail's file name inside THUMBNAILS_DIR."""
    return f"segment_{segment_index:03d}.jpg"


# The content type each result file is stored (and served) with, by extension.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".json": "application/json",
    ".csv": "text/csv",
    ".edl": "text/plain",
    ".zip": "application/zip",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


def content_type(path: PurePath | str) -> str:
    return CONTENT_TYPES.get(PurePath(path).suffix.lower(), DEFAULT_CONTENT_TYPE)


def download_name(source_name: str, file_name: str) -> str:
    """What a result file is saved as: the video's name before the file's, so that the reels
    of several videos do not all land as reel.mp4 ("dance class.mov", "reel.mp4" ->
    "dance class-reel.mp4"); a thumbnail keeps its own name, without its folder."""
    name = PurePath(source_name).name
    stem = (name.rsplit(".", 1)[0] if "." in name else name).strip() or "video"
    return f"{stem[:80]}-{PurePath(file_name).name}"


def attachment(filename: str) -> str:
    """A Content-Disposition that makes a browser save the file as ``filename`` (RFC 6266: an
    ASCII fallback, and the UTF-8 name for browsers that read it)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]+", "_", filename).strip() or "download"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
