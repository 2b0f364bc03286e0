"""scan: the upload is copied out of the clients' reach and the copy scanned; a form posted again
changes nothing; empty, oversized and infected uploads never stay; re-runs give the same answer;
the ClamAV adapter explains a missing database or binary."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace

import pytest

from posereel.errors import (
    InputError,
    JobDeletedError,
    MalwareError,
    ToolError,
    TransientError,
    VideoNotFoundError,
)
from posereel.jobs import JobRecord, JobStatus
from posereel.pipeline import scan as scan_module
from posereel.pipeline.events import ScanEvent, SourceRef
from posereel.pipeline.files import source_key
from posereel.pipeline.ports import ObjectInfo
from posereel.pipeline.scan import (
    JOB_TAG,
    PIECE_BYTES,
    THREAT_TAG,
    ClamAV,
    ScanVerdict,
    pieces,
    resolve_clamav_db,
    scan_object,
    scan_processes,
    scan_upload,
    tag_value,
)
from tests.builders import QUARANTINE, RESULTS, UPLOADS, pipeline_settings
from tests.fakes import FakeJobStore, FakeMediaStore, FakeScanner

JOB = "0123456789abcdef0123456789abcdef"
KEY = f"uploads/{JOB}/clip.mp4"
EVENT = ScanEvent(job_id=JOB, source=SourceRef(bucket=UPLOADS, key=KEY))
BAD = b"pretend this is malware"


PINNED = source_key(JOB, "clip.mp4")


def live(**fields: object) -> FakeJobStore:
    return FakeJobStore(JobRecord.model_validate({"job_id": JOB, "status": JobStatus.RUNNING, **fields}))


def test_a_clean_upload_is_taken_out_of_uploads_and_the_copy_is_what_later_stages_read() -> None:
    media, scanner = FakeMediaStore(), FakeScanner({BAD: "Test.Bad"})
    media.put(UPLOADS, KEY, b"fine")
    result = scan_upload(EVENT, settings=pipeline_settings(), media=media, jobs=live(), scanner=scanner)
    assert (result.clean, result.engine) == (True, "FakeAV 1.0")
    assert result.source == SourceRef(bucket=RESULTS, key=PINNED)
    assert media.keys(UPLOADS) == []
    assert media.read_bytes(RESULTS, PINNED) == b"fine"
    assert media.downloads == [(RESULTS, PINNED)], "the copy is scanned, not the upload"


def test_a_form_posted_again_after_the_scan_changes_nothing_that_is_analysed() -> None:
    # Given a clean upload taken by the scan
    media, scanner = FakeMediaStore(), FakeScanner({BAD: "Test.Bad"})
    media.put(UPLOADS, KEY, b"fine")
    settings = pipeline_settings()
    first = scan_upload(EVENT, settings=settings, media=media, jobs=live(), scanner=scanner)
    # When the same key is posted again, with malware, and the stage runs again (a retry)
    media.put(UPLOADS, KEY, BAD)
    again = scan_upload(EVENT, settings=settings, media=media, jobs=live(), scanner=scanner)
    # Then the accepted copy stands, unchanged
    assert again.source == first.source
    assert media.read_bytes(RESULTS, PINNED) == b"fine"


def test_an_upload_replaced_between_its_check_and_its_copy_is_not_copied() -> None:
    # Given an upload that changes after its HEAD (the form posted again at that moment)
    media, scanner = FakeMediaStore(), FakeScanner()
    media.put(UPLOADS, KEY, b"fine")
    head = media.head

    def head_then_replace(bucket: str, key: str) -> ObjectInfo | None:
        info = head(bucket, key)
        if bucket == UPLOADS:
            media.put(UPLOADS, KEY, b"another file")
        return info

    media.head = head_then_replace  # type: ignore[method-assign]
    # When / Then: the copy is conditional on the ETag that was checked; the retry sees the new one
    with pytest.raises(TransientError):
        scan_upload(EVENT, settings=pipeline_settings(), media=media, jobs=live(), scanner=scanner)
    assert media.keys(RESULTS) == []


@pytest.mark.parametrize(
    ("data", "limits", "code"),
    [(b"", {}, "EMPTY_FILE"), (b"x" * 101, {"max_upload_bytes": 100}, "TOO_LARGE")],
    ids=["empty", "too-large"],
)
def test_an_empty_or_oversized_upload_is_deleted_unread(
    data: bytes, limits: dict[str, int], code: str
) -> None:
    media, scanner = FakeMediaStore(), FakeScanner()
    media.put(UPLOADS, KEY, data)
    with pytest.raises(InputError) as rejected:
        scan_upload(EVENT, settings=pipeline_settings(**limits), media=media, jobs=live(), scanner=scanner)
    assert rejected.value.code == code
    assert rejected.value.message.endswith("the file was deleted")
    assert (media.keys(UPLOADS), media.keys(RESULTS), media.downloads) == ([], [], [])


def test_an_infected_upload_is_quarantined_tagged_and_rejected_twice_the_same_way() -> None:
    # Given
    media, scanner = FakeMediaStore(), FakeScanner({BAD: "Test.Bad-1"})
    media.put(UPLOADS, KEY, BAD)
    settings = pipeline_settings()
    # When
    with pytest.raises(MalwareError) as first:
        scan_upload(EVENT, settings=settings, media=media, jobs=live(), scanner=scanner)
    # Then
    assert first.value.code == "MALWARE" and "Test.Bad-1" in first.value.message
    assert media.keys(UPLOADS) == [] and media.keys(RESULTS) == []
    quarantined = f"quarantine/{JOB}/clip.mp4"
    assert media.keys(QUARANTINE) == [quarantined]
    assert media.get_tags(QUARANTINE, quarantined) == {JOB_TAG: JOB, THREAT_TAG: "Test.Bad-1"}
    # When the stage runs again (a retry after the move)
    with pytest.raises(MalwareError) as second:
        scan_upload(EVENT, settings=settings, media=media, jobs=live(), scanner=scanner)
    # Then the answer is the same and nothing was scanned again
    assert second.value.message == first.value.message
    assert scanner.scanned == ["clip.mp4"]


def test_a_job_deleted_while_it_was_scanned_leaves_no_copy_behind() -> None:
    media, scanner = FakeMediaStore(), FakeScanner()
    media.put(UPLOADS, KEY, b"fine")
    with pytest.raises(JobDeletedError):
        scan_upload(
            EVENT, settings=pipeline_settings(), media=media, jobs=live(deleted_at="now"), scanner=scanner
        )
    assert (media.keys(UPLOADS), media.keys(RESULTS)) == ([], [])


def test_a_vanished_upload_is_not_found() -> None:
    with pytest.raises(VideoNotFoundError):
        scan_upload(
            EVENT, settings=pipeline_settings(), media=FakeMediaStore(), jobs=live(), scanner=FakeScanner()
        )


@pytest.mark.parametrize(
    ("threat", "tag"),
    [("Win.Test.EICAR_HDB-1", "Win.Test.EICAR_HDB-1"), ("a;b<c>", "a_b_c_"), ("x" * 300, "x" * 256)],
)
def test_threat_names_become_valid_tag_values(threat: str, tag: str) -> None:
    assert tag_value(threat) == tag


def test_an_s3_database_is_downloaded_once_per_container(tmp_path: Path) -> None:
    # Given
    media = FakeMediaStore()
    media.put("defs", "clamav/main.hdb", b"44d88612fea8a8f36de82e1278abb02f:68:Eicar\n")
    media.put("defs", "clamav/daily.hdb", b"")
    # When
    first = resolve_clamav_db("s3://defs/clamav/", media=media, cache_root=tmp_path)
    again = resolve_clamav_db("s3://defs/clamav/", media=media, cache_root=tmp_path)
    # Then
    assert first == again
    assert sorted(p.name for p in first.iterdir()) == ["daily.hdb", "main.hdb"]
    assert len(media.downloads) == 2


def test_an_empty_s3_database_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="no ClamAV signature database"):
        resolve_clamav_db("s3://defs/nothing/", media=FakeMediaStore(), cache_root=tmp_path)


@pytest.mark.parametrize("make_db", [lambda p: p / "missing", lambda p: p], ids=["missing-dir", "empty-dir"])
def test_clamav_without_a_database_is_a_clear_tool_error(tmp_path: Path, make_db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ToolError, match="POSEREEL_CLAMAV_DB"):
        ClamAV(make_db(tmp_path))


class _OrderedScanner:
    """Finds b"BAD<n>" in a piece; the scan of the piece holding ``slow`` waits until every
    other piece has been scanned, so a later piece's verdict is in first."""

    engine = "FakeAV 1.0"

    def __init__(self, *, slow: bytes, others: int) -> None:
        self.slow, self.others = slow, others
        self.done: list[bytes] = []
        self.lock = threading.Lock()
        self.rest_done = threading.Event()

    def scan(self, data: Iterable[bytes], *, name: str) -> ScanVerdict:
        body = b"".join(data)
        found = [sig for sig in (b"BAD1", b"BAD3") if sig in body]
        if self.slow in body:
            assert self.rest_done.wait(timeout=30), "the other pieces were not scanned side by side"
        with self.lock:
            self.done.append(body[:1])
            if len(self.done) == self.others:
                self.rest_done.set()
        return ScanVerdict(clean=not found, signature=found[0].decode() if found else None)


def test_pieces_scanned_side_by_side_give_the_first_infected_piece_in_the_files_order() -> None:
    # Given an upload of four pieces, the 2nd and 4th infected, the 2nd's scan the slowest
    mib = 1024**2
    piece = 4 * mib  # pieces at 0, 3, 6 and 9 MiB
    spans = pieces(11 * mib, piece_bytes=piece)
    assert [start for start, _ in spans] == [0, 3 * mib, 6 * mib, 9 * mib]
    data = bytearray(11 * mib)
    data[4 * mib : 4 * mib + 4] = b"BAD1"  # in the 2nd piece only
    data[10 * mib : 10 * mib + 4] = b"BAD3"  # in the 4th only
    media = FakeMediaStore()
    media.put(RESULTS, PINNED, bytes(data))
    scanner = _OrderedScanner(slow=b"BAD1", others=3)

    # When its pieces are scanned four at once
    verdict = scan_object(
        media, RESULTS, PINNED, size_bytes=len(data), name="clip.mp4", scanner=scanner, processes=4,
        piece_bytes=piece,
    )  # fmt: skip

    # Then the 4th piece's verdict came first, and the 2nd's decides, as one after the other would
    assert (verdict.clean, verdict.signature) == (False, "BAD1")
    one_by_one = scan_object(
        media, RESULTS, PINNED, size_bytes=len(data), name="clip.mp4", processes=1, piece_bytes=piece,
        scanner=_OrderedScanner(slow=b"none", others=3),
    )  # fmt: skip
    assert one_by_one == verdict


@pytest.mark.parametrize(
    ("free_pieces", "processes", "expected"), [(1, 4, 1), (2, 4, 1), (3, 4, 2), (100, 4, 4), (100, 1, 1)]
)
def test_as_many_pieces_are_scanned_at_once_as_the_cores_and_the_scratch_disk_allow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, free_pieces: int, processes: int, expected: int
) -> None:
    usage = SimpleNamespace(free=free_pieces * PIECE_BYTES + 1)
    monkeypatch.setattr(scan_module.shutil, "disk_usage", lambda _: usage)
    assert scan_processes(processes, scratch=tmp_path) == expected
