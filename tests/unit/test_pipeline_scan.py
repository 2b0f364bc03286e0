"""scan: infected uploads are quarantined with their threat named; re-runs give the same answer;
the ClamAV adapter explains a missing database or binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from posereel.errors import MalwareError, ToolError, VideoNotFoundError
from posereel.pipeline.events import ScanEvent, SourceRef
from posereel.pipeline.scan import JOB_TAG, THREAT_TAG, ClamAV, resolve_clamav_db, scan_upload, tag_value
from tests.builders import QUARANTINE, UPLOADS, pipeline_settings
from tests.fakes import FakeMediaStore, FakeScanner

JOB = "0123456789abcdef0123456789abcdef"
KEY = f"uploads/{JOB}/clip.mp4"
EVENT = ScanEvent(job_id=JOB, source=SourceRef(bucket=UPLOADS, key=KEY))
BAD = b"pretend this is malware"


def test_a_clean_upload_passes_and_stays() -> None:
    media, scanner = FakeMediaStore(), FakeScanner({BAD: "Test.Bad"})
    media.put(UPLOADS, KEY, b"fine")
    result = scan_upload(EVENT, settings=pipeline_settings(), media=media, scanner=scanner)
    assert (result.clean, result.engine) == (True, "FakeAV 1.0")
    assert media.keys(UPLOADS) == [KEY]


def test_an_infected_upload_is_quarantined_tagged_and_rejected_twice_the_same_way() -> None:
    # Given
    media, scanner = FakeMediaStore(), FakeScanner({BAD: "Test.Bad-1"})
    media.put(UPLOADS, KEY, BAD)
    settings = pipeline_settings()
    # When
    with pytest.raises(MalwareError) as first:
        scan_upload(EVENT, settings=settings, media=media, scanner=scanner)
    # Then
    assert first.value.code == "MALWARE" and "Test.Bad-1" in first.value.message
    assert media.keys(UPLOADS) == []
    quarantined = f"quarantine/{JOB}/clip.mp4"
    assert media.keys(QUARANTINE) == [quarantined]
    assert media.get_tags(QUARANTINE, quarantined) == {JOB_TAG: JOB, THREAT_TAG: "Test.Bad-1"}
    # When the stage runs again (a retry after the move)
    with pytest.raises(MalwareError) as second:
        scan_upload(EVENT, settings=settings, media=media, scanner=scanner)
    # Then the answer is the same and nothing was scanned again
    assert second.value.message == first.value.message
    assert scanner.scanned == ["clip.mp4"]


def test_a_vanished_upload_is_not_found() -> None:
    with pytest.raises(VideoNotFoundError):
        scan_upload(EVENT, settings=pipeline_settings(), media=FakeMediaStore(), scanner=FakeScanner())


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
