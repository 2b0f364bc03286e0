"""scan handler on moto S3 with the real clamscan and a database built here (the official one
cannot be downloaded): uploads are copied out of uploads/ (conditionally, on moto's S3) before the
scan; infected ones are quarantined, tagged and removed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import posereel_functions
from posereel.jobs import JobRecord, JobStatus
from posereel.pipeline.files import source_key
from posereel_functions import scan
from tests.builders import (
    JOB,
    QUARANTINE,
    RESULTS,
    UPLOADS,
    LambdaContext,
    boundary_error,
    clamav_db,
    eicar,
    stage_event,
    upload_key,
)
from tests.functional.moto_pipeline import PipelineAws, pipeline_aws

TEST_MALWARE = os.urandom(64) + b"posereel test sample"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clamav_db(
        tmp_path_factory.mktemp("clamav") / "db",
        {"Eicar-Test-Signature": eicar(), "PoseReel-Test-Sample": TEST_MALWARE},
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database: Path) -> Iterator[PipelineAws]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the container's /tmp
    with pipeline_aws(monkeypatch, clamav_db=str(database)) as stack:
        yield stack


@pytest.mark.parametrize(
    ("content", "signature"),
    [(eicar(), "Eicar-Test-Signature"), (TEST_MALWARE, "PoseReel-Test-Sample")],
    ids=["eicar", "test-signature"],
)
def test_an_infected_upload_is_quarantined_tagged_removed_and_rejected(
    aws: PipelineAws, content: bytes, signature: str
) -> None:
    # Given
    key = upload_key(name="holiday.mp4")
    aws.put_upload(content, key)
    # When
    with pytest.raises(Exception) as caught:
        scan.handler(stage_event(key=key), LambdaContext())
    # Then the job is rejected naming the signature
    kind, payload = boundary_error(caught)
    assert (kind, payload["code"]) == ("InputError", "MALWARE")
    assert signature in payload["message"]
    # and the file sits in quarantine, tagged, and nowhere else
    assert aws.keys(UPLOADS) == []
    quarantined = f"quarantine/{JOB}/holiday.mp4"
    assert aws.keys(QUARANTINE) == [quarantined]
    s3 = aws.client("s3")
    assert s3.get_object(Bucket=QUARANTINE, Key=quarantined)["Body"].read() == content
    tags = {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=QUARANTINE, Key=quarantined)["TagSet"]}
    assert tags["posereel:job_id"] == JOB and signature in tags["posereel:threat"]
    # When the stage is retried, the answer is the same
    with pytest.raises(Exception) as again:
        scan.handler(stage_event(key=key), LambdaContext())
    assert boundary_error(again) == (kind, payload)


def test_a_clean_clip_is_copied_out_of_uploads_and_passes(
    aws: PipelineAws, clip: Callable[[str], Path]
) -> None:
    posereel_functions.job_store().create_if_absent(JobRecord(job_id=JOB, status=JobStatus.RUNNING))
    aws.put_upload(clip("mmaction2_basketball"), upload_key())
    result = scan.handler(stage_event(), LambdaContext())
    assert result["clean"] is True and result["engine"].startswith("ClamAV ")
    pinned = source_key(JOB, "clip.mp4")
    assert result["source"] == {"bucket": RESULTS, "key": pinned}
    assert aws.keys(UPLOADS) == [] and aws.keys(QUARANTINE) == []
    copied = aws.client("s3").get_object(Bucket=RESULTS, Key=pinned)["Body"].read()
    assert copied == clip("mmaction2_basketball").read_bytes()


def test_a_database_in_s3_is_fetched_and_used(aws: PipelineAws, database: Path) -> None:
    # Given the database in S3 instead of on disk
    s3 = aws.client("s3")
    for path in database.iterdir():
        s3.upload_file(str(path), RESULTS, f"clamav/{path.name}")
    aws.configure(clamav_db=f"s3://{RESULTS}/clamav/")
    aws.put_upload(eicar(), upload_key())
    # When / Then
    with pytest.raises(Exception) as caught:
        scan.handler(stage_event(), LambdaContext())
    assert boundary_error(caught)[1]["code"] == "MALWARE"


def test_no_database_is_a_clear_tool_error(aws: PipelineAws, tmp_path: Path) -> None:
    # Given a database location with nothing in it (clamscan's own default place, empty here)
    aws.configure(clamav_db=str(tmp_path / "no-database"))
    aws.put_upload(b"anything", upload_key())
    # When / Then: not an InputError (the upload is not at fault) and says what to do
    with pytest.raises(Exception) as caught:
        scan.handler(stage_event(), LambdaContext())
    assert type(caught.value).__name__ == "ToolError"
    assert "POSEREEL_CLAMAV_DB" in str(caught.value)
