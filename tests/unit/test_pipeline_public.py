"""What owners read of a job: the project's codes, plain words, and never a path, an address, a
bucket, an object key or an account."""

from __future__ import annotations

import re

import pytest

from posereel.jobs import JobError, JobRecord, JobResult, JobStatus, SourceObject
from posereel.pipeline.api import JobView
from posereel.pipeline.public import plain, public_error
from tests.builders import SETTINGS

INTERNAL = re.compile(r"/tmp|/var/|0x[0-9a-f]{4,}|s3://|arn:aws|\d{12}|posereel-dev-uploads")


@pytest.mark.parametrize(
    "message",
    [
        "clip.mp4: the video is damaged or truncated ([mov,mp4,m4a,3gp,3g2,mj2 @ 0x5581c2a8a5c0] moov atom "
        "not found /tmp/validate-k2j3/clip.mp4: Invalid data found when processing input)",
        "the upload clip.mp4 is gone (s3://posereel-dev-uploads-123456789012/uploads/abc/clip.mp4)",
        "no access to posereel-dev-uploads-123456789012 for arn:aws:iam::123456789012:role/x",
        "Task timed out at /var/task/posereel_functions/plan.py line 3, 0x7f00aa11 freed",
    ],
)
def test_messages_lose_their_internals_and_keep_their_words(message: str) -> None:
    cleaned = plain(message)
    assert not INTERNAL.search(cleaned), cleaned
    assert cleaned.split()[0] == message.split()[0]  # the sentence is still there


def test_a_code_that_is_not_ours_becomes_one_with_words_that_say_what_to_do() -> None:
    crash = public_error(
        JobError(code="RuntimeError", message="merge blew up at /var/task/x.py", stage="MERGE")
    )
    assert (crash.code, crash.stage) == ("INTERNAL", "MERGE")
    assert "try again later" in crash.message and "/var" not in crash.message
    chunk = public_error(
        JobError(code="States.TaskFailed", message="Batch job ... exit 137", stage="ANALYZE")
    )
    assert chunk.code == "ANALYSIS_FAILED"


@pytest.mark.parametrize(
    "code", ["MALWARE", "TOO_LONG", "UPLOAD_EXPIRED", "EXECUTION_TIMED_OUT", "NOT_A_VIDEO"]
)
def test_our_codes_stay(code: str) -> None:
    assert public_error(JobError(code=code, message="words", stage="SCAN")).code == code


def test_a_job_view_names_no_bucket_key_or_prefix() -> None:
    record = JobRecord(
        job_id="0123456789abcdef",
        owner="user-1",
        status=JobStatus.SUCCEEDED,
        source=SourceObject(
            bucket="posereel-dev-uploads-123456789012",
            key="uploads/0123456789abcdef/clip.mp4",
            name="clip.mp4",
        ),
        result=JobResult(prefix="results/0123456789abcdef/", segments=1, reel_duration_s=2.0),
    )
    text = JobView.of(record, costs=SETTINGS.costs).model_dump_json()
    assert "uploads/" not in text and "results/" not in text and "123456789012" not in text
    assert '"name":"clip.mp4"' in text
