"""What the local S3 sent to each stage (posereel_local.s3_reads): the bytes of GET responses
to requests marked with a job and stage (posereel.usage.read_for), counted as they are written,
so a reader that hangs up early is counted for what it was sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from posereel import usage
from posereel_local.s3_reads import PIECE_BYTES, S3Reads

BODY = b"x" * (3 * PIECE_BYTES + 10)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", str(len(BODY)))])
    return [BODY]


def request(reads: S3Reads, agent: str, method: str = "GET") -> Iterable[bytes]:
    return reads({"REQUEST_METHOD": method, "HTTP_USER_AGENT": agent}, lambda *_: None)


@pytest.fixture
def marked(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(usage, "_reader", usage.user_agent())  # this process's mark, put back after
    usage.read_for("job1", "ANALYZE/3")
    return f"Lavf/61.7.100 {usage.user_agent()}"


def test_a_whole_response_is_counted_for_its_job_and_stage(marked: str) -> None:
    reads = S3Reads(app)
    assert b"".join(request(reads, marked)) == BODY
    assert reads.of_job("job1") == {"ANALYZE/3": len(BODY)}
    assert reads.of_job("job2") == {}


def test_a_reader_that_hangs_up_is_counted_for_what_was_written(marked: str) -> None:
    reads = S3Reads(app)
    body = iter(request(reads, marked))
    next(body), next(body)  # two pieces handed to the server, the first written
    body.close()  # type: ignore[attr-defined]  # the client went away while the second was written
    assert reads.of_job("job1") == {"ANALYZE/3": PIECE_BYTES}


def test_unmarked_requests_and_other_methods_are_not_counted(marked: str) -> None:
    reads = S3Reads(app)
    assert b"".join(request(reads, "Boto3/1.44 Botocore/1.44")) == BODY
    assert b"".join(request(reads, marked, method="PUT")) == BODY
    assert reads.of_job("job1") == {}


def test_a_marked_user_agent_names_its_job_and_stage(marked: str) -> None:
    assert usage.reader_of(f"Boto3/1.44 md/x {usage.user_agent()} PT/no-op/3.37.0") == ("job1", "ANALYZE/3")
    assert usage.reader_of("Lavf/61.7.100") is None
