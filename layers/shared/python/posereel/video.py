"""Reading source videos with ffprobe and ffmpeg.

``probe`` says what a file is (and rejects what is not a usable video with a clear error);
``sample_frames`` decodes a time range on the global analysis grid as RGB arrays.

A video is a local file or a ``RemoteVideo``: a link to it (the pipeline's presigned GET of the
checked copy in S3) that ffprobe and ffmpeg read by HTTP range requests, fetching the container's
index and then only the packets of the times asked for. So no stage downloads a source it reads a
part of: a chunk worker reads about its own share of an hour-long upload, the compile function
the windows it cuts (``input_args`` gives every ffmpeg run its input either way).

Times are seconds from the start of the video. Sizes are pixels of the *displayed* picture:
ffmpeg applies the stream's rotation while decoding, and ``probe`` reports width/height after it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import re
import subprocess
import tempfile
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from posereel import grid
from posereel.errors import (
    NotAVideoError,
    ToolError,
    TransientError,
    UnreadableVideoError,
    VideoNotFoundError,
)
from posereel.schemas import VideoInfo
from posereel.usage import user_agent

log = logging.getLogger(__name__)

# ffprobe's name for demuxers of single pictures ("png_pipe", "jpeg_pipe", ...) and image sequences.
_IMAGE_FORMATS = ("image2",)
_IMAGE_FORMAT_SUFFIX = "_pipe"
# The content types an upload may declare: the containers sniff_container knows, under the names
# browsers and operating systems give them. The upload form requires exactly the declared one.
VIDEO_CONTENT_TYPES = frozenset(
    {
        "video/mp4", "video/x-m4v", "video/quicktime", "video/3gpp", "video/3gpp2",
        "video/webm", "video/x-matroska",
        "video/x-msvideo", "video/avi", "video/msvideo",
        "video/mp2t", "video/mpeg",
        "video/x-flv", "video/ogg", "video/x-ms-wmv", "video/x-ms-asf",
    }
)  # fmt: skip
# Enough leading bytes for every container signature of sniff_container (MPEG-TS: five packets).
SNIFF_BYTES = 1024
_TS_PACKET = 188
_M2TS_PACKET = 192
_TS_SYNCS_CHECKED = 5  # sync bytes compared where the file is that long ...
_TS_SYNCS_NEEDED = 3  # ... and at least this many (a shorter "stream" is no video anyway)
# Leading boxes of QuickTime files written before ftyp existed.
_QUICKTIME_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_MAGIC = {
    b"\x1a\x45\xdf\xa3": "matroska",  # Matroska / WebM (EBML)
    b"FLV\x01": "flv",
    b"OggS": "ogg",
    b"\x00\x00\x01\xba": "mpeg-ps",  # MPEG program stream (.mpg, .vob)
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11": "asf",  # ASF / WMV
}
# Seek at least this far before the first grid time so that the frame on screen at that time is
# decoded (see seek_preroll_s).
_MIN_PREROLL_S = 0.5
# Grid times this close after a frame's timestamp still take that frame (absorbs rounding of the
# seek offset to the stream's time base, which is microseconds in ffmpeg).
_GRID_EPS_S = 0.0001
_STDERR_TAIL_CHARS = 1500
# A link in a tool's message (a presigned URL carries a credential) is never repeated.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
# Reading a link: retry a dropped connection or a failed request (S3 answers 500/503 now and
# then) for up to this long, and give up on a read that stalls for 60 s (in microseconds).
_RECONNECT_MAX_S = 30
# What ffmpeg says when a link, not the video, is at fault: never a reason to reject an upload.
_GONE = re.compile(r"Server returned 404")
_TRANSPORT = re.compile(
    r"Failed to resolve|Connection (?:refused|timed out|reset)|Server returned|HTTP error"
    r"|Input/output error|Operation timed out"
)
_READ_TIMEOUT_US = 60_000_000


@dataclass(frozen=True, slots=True)
class RemoteVideo:
    """A video read over HTTP(S) by range requests: ``url`` (a presigned GET; never logged or
    shown), ``name`` (what messages call it) and its size. Its first bytes are the caller's to
    check (sniff_container) before a parser reads it."""

    url: str
    name: str
    size_bytes: int

    def __str__(self) -> str:
        return self.name


VideoSource = Path | RemoteVideo


def input_args(source: VideoSource | str) -> list[str]:
    """ffmpeg's ``-i`` for ``source``, with what reading a link needs (reconnecting, a read
    timeout, whom it reads for: posereel.usage.user_agent) before it."""
    if isinstance(source, RemoteVideo):
        return [
            "-user_agent", user_agent(),
            "-reconnect", "1", "-reconnect_on_network_error", "1",
            "-reconnect_on_http_error", "5xx", "-reconnect_delay_max", str(_RECONNECT_MAX_S),
            "-rw_timeout", str(_READ_TIMEOUT_US), "-i", source.url,
        ]  # fmt: skip
    return ["-i", str(source)]


def redact_links(text: str) -> str:
    """``text`` (a tool's message) with every link replaced: a presigned URL is a credential."""
    return _URL.sub("<link>", text)


def raise_if_unreachable(source: VideoSource | str, stderr: str) -> None:
    """A remote video that ffmpeg could not fetch: VideoNotFoundError when it is gone,
    TransientError (retried) when the link or the network failed; nothing for a local file."""
    if not isinstance(source, RemoteVideo):
        return
    if _GONE.search(stderr):
        raise VideoNotFoundError(f"{source.name} is no longer in storage")
    if _TRANSPORT.search(stderr):
        raise TransientError(f"{source.name}: could not read the video from storage ({_tail(stderr)})")


def source_name(source: VideoSource | str) -> str:
    return source.name if isinstance(source, RemoteVideo) else Path(source).name


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """One decoded frame on the analysis grid.

    ``index`` is the grid position (``t_s == index / target_fps``), ``t_s`` seconds from the start
    of the video, ``rgb`` an HxWx3 uint8 array in RGB order (not OpenCV's BGR), displayed orientation.
    """

    index: int
    t_s: float
    rgb: np.ndarray


def probe(path: VideoSource | str, *, ffprobe: str = "ffprobe", timeout_s: float = 60.0) -> VideoInfo:
    """Describe a video file with ffprobe.

    Raises VideoNotFoundError (no such file), NotAVideoError (empty, text, still image, audio only),
    UnreadableVideoError (a video container that is damaged or truncated) and ToolError (ffprobe
    missing or hanging).
    """
    if isinstance(path, RemoteVideo):
        size = path.size_bytes
    else:
        path = Path(path)
        if not path.exists():
            raise VideoNotFoundError(f"{path}: no such file")
        if not path.is_file():
            raise NotAVideoError(f"{path}: not a regular file")
        size = path.stat().st_size
    name = source_name(path)
    if size == 0:
        raise NotAVideoError(f"{name}: the file is empty (0 bytes)")

    cmd = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    proc = _run_tool([*cmd, *input_args(path)], timeout_s=timeout_s)
    if proc.returncode != 0:
        raise_if_unreachable(path, proc.stderr)
        reason = _tail(proc.stderr)
        if _looks_like_video_container(path):
            raise UnreadableVideoError(f"{name}: the video is damaged or truncated ({reason})")
        raise NotAVideoError(f"{name}: not a video file ({reason})")
    try:
        data = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise ToolError(f"ffprobe printed something that is not JSON for {name}: {exc}") from exc

    info, stream = _video_info_from_probe(data, name=name, size_bytes=size)
    _check_tail(path, stream_index=int(stream["index"]), info=info, ffprobe=ffprobe, timeout_s=timeout_s)
    return info


def _video_info_from_probe(data: dict[str, Any], *, name: str, size_bytes: int) -> tuple[VideoInfo, dict]:
    """Turn ffprobe's JSON into VideoInfo; returns the chosen video stream too."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    format_name = fmt.get("format_name")
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
    ]
    has_audio = any(s.get("codec_type") == "audio" for s in streams)
    if not videos:
        what = "audio only" if has_audio else "no video stream"
        raise NotAVideoError(f"{name}: not a video ({what})")
    stream = videos[0]

    if format_name in _IMAGE_FORMATS or str(format_name).endswith(_IMAGE_FORMAT_SUFFIX):
        raise NotAVideoError(f"{name}: a still image ({stream.get('codec_name')}), not a video")
    frame_count = _positive_int(stream.get("nb_frames"))
    duration = _stream_duration(stream) or _positive_float(fmt.get("duration"))
    if frame_count == 1 or (duration is None and frame_count is None):
        raise NotAVideoError(f"{name}: a single picture ({stream.get('codec_name')}), not a video")
    if duration is None:
        raise UnreadableVideoError(f"{name}: the video has no known duration")
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    if fps is None:
        raise UnreadableVideoError(f"{name}: the video has no known frame rate")
    width, height = _positive_int(stream.get("width")), _positive_int(stream.get("height"))
    if width is None or height is None:
        raise UnreadableVideoError(f"{name}: the video stream has no picture size")

    rotation = _rotation_deg(stream)
    if rotation in (90, 270):
        width, height = height, width
    info = VideoInfo(
        name=name,
        duration_s=duration,
        fps=fps,
        width=width,
        height=height,
        rotation_deg=rotation,
        codec=str(stream.get("codec_name") or "unknown"),
        has_audio=has_audio,
        frame_count=frame_count,
        size_bytes=_positive_int(fmt.get("size")) or size_bytes,
        format_name=format_name,
    )
    return info, stream


def _check_tail(
    path: VideoSource, *, stream_index: int, info: VideoInfo, ffprobe: str, timeout_s: float
) -> None:
    """Read the video packets of the last second (without decoding) and check they reach the
    stated duration: a truncated MP4 with its index at the front probes fine but lacks them."""
    start = max(0.0, info.duration_s - 1.0)
    cmd = [
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        str(stream_index),
        "-read_intervals",
        f"{start:.6f}%",
        "-show_entries",
        "packet=pts_time,duration_time",
        "-of",
        "json",
        *input_args(path),
    ]
    proc = _run_tool(cmd, timeout_s=timeout_s)
    if proc.returncode != 0:
        raise_if_unreachable(path, proc.stderr)
        raise UnreadableVideoError(f"{info.name}: cannot read the end of the video ({_tail(proc.stderr)})")
    try:
        packets = json.loads(proc.stdout or "{}").get("packets") or []
    except json.JSONDecodeError as exc:
        raise ToolError(f"ffprobe printed something that is not JSON for {info.name}: {exc}") from exc
    if not packets:
        raise UnreadableVideoError(f"{info.name}: the video is truncated (no video data near the end)")
    ends = [
        pts + (_positive_float(p.get("duration_time")) or 0.0)
        for p in packets
        if (pts := _float_or_none(p.get("pts_time"))) is not None
    ]
    if not ends:
        return  # no timestamps to compare (raw streams); sample_frames still checks frame counts
    reached = max(ends)
    if reached < info.duration_s - max(0.25, 3.0 / info.fps):
        raise UnreadableVideoError(
            f"{info.name}: the video is truncated (data ends at {reached:.2f} s of {info.duration_s:.2f} s)"
        )


def seek_preroll_s(fps: float) -> float:
    """How far before a range's first grid time ``sample_frames`` seeks: max(0.5 s, 2 frames of a
    ``fps`` video). ffmpeg then decodes from the keyframe at or before that point."""
    return max(_MIN_PREROLL_S, 2.0 / fps)


def grid_indices(start_s: float, end_s: float, *, target_fps: float, duration_s: float) -> range:
    """Grid indices i with start_s <= i / target_fps < min(end_s, duration_s)."""
    return grid.indices(start_s, min(end_s, duration_s), target_fps)


def frame_size(info: VideoInfo, *, max_height_px: int) -> tuple[int, int]:
    """(width, height) in pixels of sampled frames: the displayed aspect kept, the height at most
    ``max_height_px``, never upscaled, both even (what the scaler and the encoders want)."""
    height = min(info.height, max_height_px)
    height -= height % 2
    width = round(info.width * height / info.height / 2) * 2
    return max(width, 2), max(height, 2)


def sample_frames(
    path: VideoSource | str,
    *,
    info: VideoInfo,
    start_s: float,
    end_s: float,
    target_fps: float,
    max_height_px: int,
    ffmpeg: str = "ffmpeg",
    queue_frames: int = 8,
) -> Generator[SampledFrame, None, None]:
    """Decode [start_s, end_s) at ``target_fps`` frames per second as RGB uint8 arrays.

    Frames lie on the global grid t = index / target_fps: exactly the indices with
    start_s <= t < end_s and t < info.duration_s are yielded, each showing the source frame on
    screen at t (the last frame whose timestamp is <= t). Frames are scaled (area filter) to
    ``frame_size(info, max_height_px=...)``. One ffmpeg process decodes; a reader thread fills a
    queue of at most ``queue_frames`` frames so decoding overlaps the caller's work. Closing the
    generator early kills ffmpeg and joins the thread. Raises UnreadableVideoError with ffmpeg's
    message when frames cannot be decoded, ToolError when ffmpeg is missing.
    """
    path = path if isinstance(path, RemoteVideo) else Path(path)
    indices = grid_indices(start_s, end_s, target_fps=target_fps, duration_s=info.duration_s)
    if not indices:
        return
    width, height = frame_size(info, max_height_px=max_height_px)
    cmd = _sample_command(
        path,
        info=info,
        first_t_s=indices[0] / target_fps,
        count=len(indices),
        target_fps=target_fps,
        size=(width, height),
        ffmpeg=ffmpeg,
    )
    frame_bytes = width * height * 3
    with tempfile.TemporaryFile() as stderr_file:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr_file)
        except FileNotFoundError as exc:
            raise ToolError(f"ffmpeg not found ({ffmpeg!r}): install ffmpeg or set POSEREEL_FFMPEG") from exc
        assert proc.stdout is not None
        reader = _FrameReader(
            proc.stdout, frame_bytes=frame_bytes, count=len(indices), max_queued=queue_frames
        )
        reader.start()
        delivered = 0
        try:
            for buf in reader:
                index = indices[delivered]
                rgb = np.frombuffer(buf, dtype=np.uint8).reshape(height, width, 3)
                delivered += 1
                yield SampledFrame(index=index, t_s=index / target_fps, rgb=rgb)
            returncode = proc.wait()
            if delivered < len(indices):
                _raise_or_warn_short(
                    path,
                    info=info,
                    missing=indices[delivered:],
                    target_fps=target_fps,
                    returncode=returncode,
                    stderr=_read_tail(stderr_file),
                )
            elif returncode != 0 or os.fstat(stderr_file.fileno()).st_size > 0:
                log.warning("ffmpeg reported problems decoding %s: %s", info.name, _read_tail(stderr_file))
        finally:
            reader.stop()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join()
            proc.stdout.close()


def _sample_command(
    path: VideoSource,
    *,
    info: VideoInfo,
    first_t_s: float,
    count: int,
    target_fps: float,
    size: tuple[int, int],
    ffmpeg: str,
) -> list[str]:
    # Input seeking decodes from the keyframe before the seek point and drops frames before it.
    # Seeking a little early keeps the frame that is on screen at first_t_s; the fps filter's
    # start_time then anchors the output grid at first_t_s, and round=up makes each output frame
    # the last input frame at or before its grid time. tpad repeats the last frame so grid times
    # inside the final frame's display time are filled; -frames:v cuts the output at the grid count.
    preroll = min(first_t_s, seek_preroll_s(info.fps))
    seek = first_t_s - preroll
    pad_s = max(0.1, 2.0 / info.fps)
    rate = Fraction(target_fps).limit_denominator(1001)
    width, height = size
    filters = ",".join(
        [
            f"tpad=stop_mode=clone:stop_duration={pad_s:.6f}",
            f"fps=fps={rate.numerator}/{rate.denominator}:start_time={preroll + _GRID_EPS_S:.6f}:round=up",
            f"scale={width}:{height}:flags=area",
        ]
    )
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"]
    if seek > 0:
        cmd += ["-ss", f"{seek:.6f}"]
    cmd += [*input_args(path), "-map", "0:V:0", "-vf", filters, "-frames:v", str(count)]
    cmd += ["-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"]
    return cmd


def _raise_or_warn_short(
    path: VideoSource, *, info: VideoInfo, missing: range, target_fps: float, returncode: int, stderr: str
) -> None:
    """ffmpeg gave fewer frames than the grid asks for. Missing frames in the last two source
    frame intervals (a container that states a slightly long duration) are only worth a warning."""
    first_missing_t = missing[0] / target_fps
    raise_if_unreachable(path, stderr)
    message = (
        f"{info.name}: ffmpeg decoded no frame for {len(missing)} grid times from {first_missing_t:.3f} s"
        f" (exit status {returncode}): {stderr or 'no message'}"
    )
    if returncode == 0 and first_missing_t >= info.duration_s - 2.0 / info.fps:
        log.warning(message)
        return
    raise UnreadableVideoError(message)


class _FrameReader:
    """Reads fixed-size raw frames from a pipe on a thread into a bounded queue."""

    _END = object()

    def __init__(self, stream: IO[bytes], *, frame_bytes: int, count: int, max_queued: int) -> None:
        self._stream = stream
        self._frame_bytes = frame_bytes
        self._count = count
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, max_queued))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="posereel-frame-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        # Unblock a put() waiting on a full queue.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def join(self) -> None:
        self._thread.join()

    def __iter__(self) -> Iterator[bytearray]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytearray)
            yield item

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for _ in range(self._count):
                buf = bytearray(self._frame_bytes)
                view = memoryview(buf)
                filled = 0
                while filled < self._frame_bytes:
                    n = self._stream.readinto(view[filled:])  # type: ignore[attr-defined]
                    if not n:
                        break
                    filled += n
                if filled < self._frame_bytes or not self._put(buf):
                    break
        except Exception as exc:  # surfaced to the consumer; the pipe closing on stop is expected
            if not self._stop.is_set():
                self._put(exc)
                return
        self._put(self._END)


def _run_tool(cmd: list[str], *, timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as exc:
        raise ToolError(
            f"{cmd[0]!r} not found: install ffmpeg (it provides ffprobe) or set POSEREEL_FFPROBE"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{cmd[0]} did not finish within {timeout_s:.0f} s on {_tail(cmd[-1])}") from exc


def join_parts(
    parts: Sequence[Path],
    out: Path,
    *,
    what: str,
    audio: Sequence[Path] = (),
    audio_codec: Sequence[str] = (),
    ffmpeg: str = "ffmpeg",
) -> None:
    """Join the MP4 ``parts`` (one folder, one encoder's settings) into ``out`` with the concat
    demuxer, the video copied, not encoded again; with ``audio`` (a file per part), those joined
    the same way and encoded once by ``audio_codec``, else no sound. ``what`` names the result
    in the ToolError a failure raises."""
    folder = parts[0].parent
    if any(p.parent != folder for p in [*parts, *audio]):
        raise ValueError("the parts to join must be in one folder")
    missing = [p.name for p in [*parts, *audio] if not p.is_file() or p.stat().st_size == 0]
    if missing:
        raise ToolError(f"could not join {what}: {', '.join(missing)} missing or empty")

    def listing(name: str, paths: Sequence[Path]) -> list[str]:
        path = folder / name
        path.write_text("ffconcat version 1.0\n" + "".join(f"file '{p.name}'\n" for p in paths))
        return ["-f", "concat", "-safe", "0", "-i", str(path)]

    # -xerror: a part the demuxer cannot open or read fails the join (else ffmpeg ends with the
    # parts before it, and exit status 0).
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-xerror", "-y"]
    cmd += listing(".video.txt", parts)
    maps = ["-map", "0:v:0", "-c:v", "copy"]
    if audio:
        cmd += listing(".audio.txt", audio)
        maps += ["-map", "1:a:0", *audio_codec]
    else:
        maps += ["-an"]
    cmd += [*maps, "-movflags", "+faststart", "-f", "mp4", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise ToolError(f"ffmpeg not found ({ffmpeg!r}): install ffmpeg or set POSEREEL_FFMPEG") from exc
    if proc.returncode != 0:
        raise ToolError(f"ffmpeg could not join {what} (exit status {proc.returncode}): {_tail(proc.stderr)}")


def sniff_container(head: bytes) -> str | None:
    """The video container family that ``head`` (a file's first SNIFF_BYTES bytes) starts, or None:
    ISO-BMFF (mp4/mov/m4v/3gp: an ftyp box), QuickTime before ftyp, Matroska/WebM, AVI, MPEG-TS
    (0x47 sync every 188 bytes, or every 192 as in M2TS), FLV, Ogg, MPEG-PS, ASF/WMV. The content
    decides, never the name."""
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "iso-bmff"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_BOXES and int.from_bytes(head[:4], "big") >= 8:
        return "quicktime"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    for offset, step in ((0, _TS_PACKET), (4, _M2TS_PACKET)):
        syncs = [offset + k * step for k in range(_TS_SYNCS_CHECKED) if offset + k * step < len(head)]
        if len(syncs) >= _TS_SYNCS_NEEDED and all(head[i] == 0x47 for i in syncs):
            return "mpeg-ts"
    return next((family for magic, family in _MAGIC.items() if head.startswith(magic)), None)


def _looks_like_video_container(path: VideoSource) -> bool:
    if isinstance(path, RemoteVideo):
        return True  # its first bytes were sniffed before it was probed (see RemoteVideo)
    with path.open("rb") as f:
        return sniff_container(f.read(SNIFF_BYTES)) is not None


def _rotation_deg(stream: dict[str, Any]) -> int:
    """Counter-clockwise display rotation in {0, 90, 180, 270}, as ffprobe reports the display
    matrix (older ffprobe versions give a clockwise ``rotate`` tag instead)."""
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return round(float(side["rotation"]) / 90) * 90 % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag is not None:
        return round(-float(tag) / 90) * 90 % 360
    return 0


def _stream_duration(stream: dict[str, Any]) -> float | None:
    duration = _positive_float(stream.get("duration"))
    if duration is not None:
        return duration
    # Matroska keeps per-stream durations in a tag, e.g. "00:00:10.010000000".
    tag = (stream.get("tags") or {}).get("DURATION")
    if tag:
        try:
            h, m, s = tag.split(":")
            return _positive_float(int(h) * 3600 + int(m) * 60 + float(s))
        except ValueError:
            return None
    return None


def _rate(value: Any) -> float | None:
    try:
        rate = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def _float_or_none(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _positive_float(value: Any) -> float | None:
    result = _float_or_none(value)
    return result if result is not None and result > 0 else None


def _positive_int(value: Any) -> int | None:
    try:
        result = int(value)
    except (TypeError, ValueError):
        return None
    return result if result > 0 else None


def _tail(text: str | None) -> str:
    text = redact_links((text or "").strip())
    return text[-_STDERR_TAIL_CHARS:] if text else "no message"


def _read_tail(file: IO[bytes]) -> str:
    file.seek(0)
    return _tail(file.read().decode(errors="replace"))
