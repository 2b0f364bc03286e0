"""Reading a video over HTTP by range requests, as the stages read the checked copy in S3 through a
presigned link: probing reads the container's index, not the file; decoding a stretch of a long
video reads about that stretch, and the frames are those of the local file; planning reads the
keyframes around chunk starts only; a link that stops working is a clear error to retry, never a rejection."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from posereel.chunks import plan_chunks
from posereel.errors import TransientError
from posereel.pipeline.plan import aligned_chunks, list_keyframes
from posereel.schemas import ChunkSpec
from posereel.settings import AnalysisSettings, ChunkSettings
from posereel.video import RemoteVideo, probe, sample_frames, seek_preroll_s

DURATION_S = 60
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class _RangeServer(ThreadingHTTPServer):
    """Serves one file with HTTP range requests (as S3 does) and counts the bytes it sends."""

    daemon_threads = True

    def __init__(self, path: Path) -> None:
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        self.data = path.read_bytes()
        self.sent = 0
        self.refuse = False
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/video.mp4?X-Amz-Signature=abc"


class _RangeHandler(BaseHTTPRequestHandler):
    server: _RangeServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        # A small send buffer, so that what is counted is what the client read before it closed
        # the connection, not what the kernel buffered on the way.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        data = self.server.data
        if self.server.refuse:
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        first, last = 0, len(data) - 1
        matched = _RANGE.fullmatch(self.headers.get("Range", ""))
        if matched:
            first = int(matched[1])
            last = min(int(matched[2]), last) if matched[2] else last
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {first}-{last}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Content-Type", "video/mp4")
        self.end_headers()
        pos = first
        try:
            while pos <= last:
                piece = data[pos : min(pos + 65536, last + 1)]
                self.wfile.write(piece)
                with self.server.lock:
                    self.server.sent += len(piece)
                pos += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # ffmpeg closes a connection once it has read what it wanted


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minute of testsrc2, 640x360 at 25 fps with sound, its index at the end (as cameras write)."""
    path = tmp_path_factory.mktemp("remote") / "minute.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={DURATION_S}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={DURATION_S}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-pix_fmt", "yuv420p",
         "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture
def served(long_video: Path) -> Iterator[_RangeServer]:
    server = _RangeServer(long_video)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def remote(server: _RangeServer, path: Path) -> RemoteVideo:
    return RemoteVideo(url=server.url, name=path.name, size_bytes=path.stat().st_size)


def test_probing_reads_the_index_not_the_file(served: _RangeServer, long_video: Path) -> None:
    info = probe(remote(served, long_video))

    assert info == probe(long_video)
    # the index at the end, the first packets and the last second's: a small part of the file
    assert served.sent < 0.1 * long_video.stat().st_size, served.sent


def test_a_stretch_of_a_long_video_reads_about_that_stretch(served: _RangeServer, long_video: Path) -> None:
    # Given a 10 s stretch in the middle of a minute (a chunk's share: a sixth of the file)
    info = probe(long_video)
    share = long_video.stat().st_size * 10 / DURATION_S
    served.sent = 0

    frames = list(
        sample_frames(
            remote(served, long_video), info=info, start_s=25, end_s=35, target_fps=5, max_height_px=180
        )
    )

    # Then it reads at most about twice its share, and decodes the frames the local file gives
    assert served.sent <= 2 * share, (served.sent, share)
    local = list(sample_frames(long_video, info=info, start_s=25, end_s=35, target_fps=5, max_height_px=180))
    assert [f.index for f in frames] == [f.index for f in local] == list(range(125, 175))
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, local, strict=True))


def test_a_link_that_stops_working_is_a_clear_error(served: _RangeServer, long_video: Path) -> None:
    info = probe(long_video)
    served.refuse = True
    video = remote(served, long_video)
    with pytest.raises(TransientError, match=r"minute\.mp4: could not read the video from storage"):
        list(sample_frames(video, info=info, start_s=0, end_s=2, target_fps=5, max_height_px=180))
    # (never a reason to reject the upload), and the error never shows the link (a credential)
    with pytest.raises(TransientError) as probed:
        probe(remote(served, long_video))
    assert "X-Amz-Signature" not in str(probed.value) and "127.0.0.1" not in str(probed.value)


def test_planning_reads_only_around_the_chunk_starts(served: _RangeServer, long_video: Path) -> None:
    # Given chunks of 10 s overlapping by 2 s over the minute (keyframes every 2 s)
    analysis = AnalysisSettings(chunks=ChunkSettings(chunk_seconds=10.0, overlap_seconds=2.0))
    info = probe(long_video)
    served.sent = 0

    chunks = aligned_chunks(remote(served, long_video), info, analysis, ffprobe="ffprobe")

    # Then the plan is the one every keyframe gives, for a fraction of the file
    def plan(keyframes: list[float]) -> list[ChunkSpec]:
        return plan_chunks(
            info.duration_s, chunk_seconds=10.0, overlap_seconds=2.0, grid_fps=analysis.sampling.target_fps,
            keyframes=keyframes, seek_preroll_s=seek_preroll_s(info.fps),
        )  # fmt: skip

    assert chunks == plan(list_keyframes(long_video, ffprobe="ffprobe")) and len(chunks) == 7
    assert chunks != plan([]), "the starts moved to keyframes"
    assert served.sent < 0.4 * long_video.stat().st_size, served.sent
