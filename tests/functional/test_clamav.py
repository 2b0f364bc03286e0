"""scan: infected uploads are quarantined with their threat named; re-runs give the same answer;
the ClamAV adapter explains a missing database or binary; an upload of any size is scanned to its
last byte, in pieces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posereel.errors import ToolError
from posereel.pipeline.scan import PIECE_BYTES, ClamAV, pieces, scan_object


def test_clamav_without_the_binary_is_a_clear_tool_error(tmp_path: Path) -> None:
    (tmp_path / "test.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Eicar\n")
    with pytest.raises(ToolError, match="install ClamAV"):
        ClamAV(tmp_path, clamscan="/nonexistent/clamscan")


EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class _LocalFile:
    """The store's read_range over one local file (a sparse one: gigabytes of zeros cost no disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.read = 0

    def read_range(self, bucket: str, key: str, *, start: int, length: int) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            f.seek(start)
            left = length
            while left:
                piece = f.read(min(left, 8 * 1024**2))
                if not piece:
                    return
                self.read += len(piece)
                left -= len(piece)
                yield piece


def test_the_eicar_string_at_the_very_end_of_a_file_over_2_gib_is_found(tmp_path: Path) -> None:
    # Given a body signature for the EICAR string, and a sparse file of 2.1 GiB that ends with it
    db = tmp_path / "db"
    db.mkdir()
    (db / "posereel-test.ndb").write_text(f"PoseReel.Test.Eicar:0:*:{EICAR.hex()}\n")
    video = tmp_path / "long.mp4"
    size = int(2.1 * 1024**3)
    with video.open("wb") as f:
        f.truncate(size - len(EICAR))
        f.seek(size - len(EICAR))
        f.write(EICAR)
    store = _LocalFile(video)

    # When it is scanned as the scan stage scans an upload
    verdict = scan_object(store, "b", "k", size_bytes=size, name=video.name, scanner=ClamAV(db))  # type: ignore[arg-type]

    # Then every byte was read, in two pieces, and the last one holds the signature
    assert pieces(size) == [(0, PIECE_BYTES), (PIECE_BYTES - 1024**2, size - PIECE_BYTES + 1024**2)]
    assert store.read == size + 1024**2
    assert (verdict.clean, verdict.signature) == (False, "PoseReel.Test.Eicar.UNOFFICIAL")


def test_a_signature_across_a_piece_border_lies_whole_in_the_next_piece() -> None:
    spans = pieces(10_000, piece_bytes=3_000, overlap_bytes=100)
    assert spans == [(0, 3000), (2900, 3000), (5800, 3000), (8700, 1300)]
    # every 100-byte stretch lies whole in some piece
    assert all(any(a <= s and s + 100 <= a + n for a, n in spans) for s in range(0, 10_000 - 100))
    assert pieces(3_000, piece_bytes=3_000, overlap_bytes=100) == [(0, 3000)]
