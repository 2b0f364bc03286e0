"""Builders for the functional tests of the Lambda handlers: events as AWS sends them, a Lambda
context, the pipeline's AWS resources in moto, test media and ClamAV databases, and synthetic
analysis data (so merge and compile run without pose models)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import posereel_functions
from posereel.jobs import JobRecord
from posereel.schemas import (
    AnalysisResult,
    ChunkResult,
    ChunkSpec,
    FramePoses,
    PersonPose,
    ReelWindow,
    Segment,
    TracksFile,
    VideoInfo,
)
from posereel.video import grid_indices

REGION = "us-east-1"
ACCOUNT = "123456789012"
UPLOADS, RESULTS, QUARANTINE = "posereel-test-uploads", "posereel-test-results", "posereel-test-quarantine"
TABLE = "posereel-test-jobs"
STATE_MACHINE = "posereel-test-pipeline"
JOB = "0123456789abcdef0123456789abcdef"
OWNER = "test-api-key-id"  # the API key id that owns the jobs of api_request's calls

# --- Lambda context and events -------------------------------------------------------------


@dataclass
class LambdaContext:
    function_name: str = "posereel-test-fn"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:posereel-test-fn"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def upload_key(job_id: str = JOB, name: str = "clip.mp4") -> str:
    return f"uploads/{job_id}/{name}"


def stage_event(job_id: str = JOB, key: str | None = None) -> dict[str, Any]:
    """Input of validate, scan and plan, as the workflow passes it."""
    return {"job_id": job_id, "source": {"bucket": UPLOADS, "key": key or upload_key(job_id)}}


def job_event(job_id: str = JOB) -> dict[str, Any]:
    """Input of merge and compile."""
    return {"job_id": job_id}


def object_created(key: str, size: int, bucket: str = UPLOADS) -> dict[str, Any]:
    """EventBridge "Object Created" from S3."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-01-01T00:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": "b1946ac92492d2347c6235b4d2611184"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "reason": "PostObject",
        },
    }


def s3_notification(key: str, size: int, bucket: str = UPLOADS) -> dict[str, Any]:
    """S3 event notification to Lambda (keys URL-encoded)."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventName": "ObjectCreated:Post",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key), "size": size},
                },
            }
        ]
    }


def api_request(
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    claims: dict[str, str] | None = None,
    api_key_id: str | None = OWNER,
) -> dict[str, Any]:
    """API Gateway REST proxy event, called with an API key (its id owns jobs) unless
    ``api_key_id`` is None; ``claims``: a Cognito authorizer's."""
    identity: dict[str, Any] = {"sourceIp": "203.0.113.1"}
    if api_key_id is not None:
        identity.update(apiKeyId=api_key_id, apiKey=f"key-of-{api_key_id}")
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "api",
            "httpMethod": method,
            "path": f"/prod{path}",
            "requestId": "req",
            "resourcePath": path,
            "stage": "prod",
            "identity": identity,
            "authorizer": {"claims": claims} if claims else None,
        },
        "body": body if body is None or isinstance(body, str) else json.dumps(body),
        "isBase64Encoded": False,
    }


def execution_status_change(name: str, status: str, *, state_machine_arn: str) -> dict[str, Any]:
    return {
        "version": "0",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "region": REGION,
        "detail": {
            "executionArn": state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}",
            "stateMachineArn": state_machine_arn,
            "name": name,
            "status": status,
            "startDate": 1767225600000,
            "stopDate": 1767225660000,
            "input": "{}",
            "output": None,
        },
    }


# --- the pipeline's resources in moto ------------------------------------------------------


@dataclass
class PipelineAws:
    """moto holding the pipeline's buckets, jobs table and state machine; handlers see them
    through their POSEREEL_* environment, like in AWS."""

    monkeypatch: pytest.MonkeyPatch
    state_machine_arn: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def configure(self, **settings: Any) -> None:
        """Set POSEREEL_<NAME> variables and make the functions read their settings again."""
        for name, value in settings.items():
            self.monkeypatch.setenv(f"POSEREEL_{name.upper()}", str(value))
        posereel_functions.reset()

    def put_upload(self, path: Path | bytes, key: str, *, content_type: str = "video/mp4") -> int:
        data = path if isinstance(path, bytes) else Path(path).read_bytes()
        self.client("s3").put_object(Bucket=UPLOADS, Key=key, Body=data, ContentType=content_type)
        return len(data)

    def keys(self, bucket: str) -> list[str]:
        contents = self.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])
        return sorted(obj["Key"] for obj in contents)

    def job(self, job_id: str = JOB) -> JobRecord | None:
        return posereel_functions.job_store().get(job_id)

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        return list(sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"])


def _create_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "job_id", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_owner",
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


@contextmanager
def pipeline_aws(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[PipelineAws]:
    """mock_aws with the pipeline's resources and the functions' environment pointing at them."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF blobs in test output
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (UPLOADS, RESULTS, QUARANTINE):
            s3.create_bucket(Bucket=bucket)
        _create_table(boto3.client("dynamodb", region_name=REGION))
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=STATE_MACHINE,
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/posereel-test-workflow",
        )
        aws = PipelineAws(monkeypatch=monkeypatch, state_machine_arn=machine["stateMachineArn"])
        aws.configure(
            env="test",
            uploads_bucket=UPLOADS,
            results_bucket=RESULTS,
            quarantine_bucket=QUARANTINE,
            jobs_table=TABLE,
            state_machine_arn=aws.state_machine_arn,
            **settings,
        )
        try:
            yield aws
        finally:
            posereel_functions.reset()


def boundary_error(caught: pytest.ExceptionInfo[BaseException]) -> tuple[str, dict[str, Any]]:
    """(class name, JSON message) of an error that left a handler, as Step Functions sees it."""
    return type(caught.value).__name__, json.loads(str(caught.value))


# --- media ---------------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def audio_only(path: Path, seconds: float = 1.0) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", str(path))
    return path


def pattern_video(path: Path, seconds: float, *, size: str = "160x120", fps: int = 10, gop: int = 20) -> Path:
    """An H.264 test pattern with a keyframe exactly every ``gop`` frames."""
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", str(path),
    )  # fmt: skip
    return path


def truncated(source: Path, path: Path, fraction: float) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def eicar() -> bytes:
    """The EICAR anti-virus test string, put together here so that no file of the repository
    holds it (a scanner would flag the test itself)."""
    parts = ["X5O!P%@AP[4\\PZX54(P^)7CC)7}$", "EICAR-STANDARD-", "ANTIVIRUS-TEST-FILE!$H+H*"]
    return "".join(parts).encode("ascii")


def clamav_db(directory: Path, signatures: dict[str, bytes]) -> Path:
    """A ClamAV database of MD5 signatures (``sigtool --md5``), one per name -> content."""
    directory.mkdir(parents=True, exist_ok=True)
    samples = directory.parent / f".{directory.name}-samples"
    samples.mkdir(exist_ok=True)
    lines = []
    for name, content in signatures.items():
        sample = samples / name
        sample.write_bytes(content)
        out = subprocess.run(["sigtool", "--md5", str(sample)], check=True, capture_output=True, text=True)
        lines.append(out.stdout.strip())
    (directory / "posereel-test.hdb").write_text("\n".join(lines) + "\n")
    return directory


# --- synthetic analysis data -----------------------------------------------------------------


def person(track_id: int, x: float) -> PersonPose:
    landmarks = [(x + 0.001 * i, 0.2 + 0.02 * i, 0.0, 0.95) for i in range(33)]
    return PersonPose(track_id=track_id, score=0.9, box=(x - 0.1, 0.2, x + 0.1, 0.9), landmarks=landmarks)


def chunk_result(
    chunk: ChunkSpec, video: VideoInfo, *, fps: float = 10.0, with_person: bool = True
) -> ChunkResult:
    """A chunk's result with one person standing still (local track id 0) in every grid frame."""
    frames = [
        FramePoses(index=i, t_s=i / fps, persons=[person(0, 0.5)] if with_person else [])
        for i in grid_indices(chunk.start_s, chunk.end_s, target_fps=fps, duration_s=video.duration_s)
    ]
    return ChunkResult(chunk=chunk, video=video, analysis_fps=fps, model="lite", device="cpu", frames=frames)


def analysis_with_segments(
    video: VideoInfo, spans: list[tuple[float, float]]
) -> tuple[AnalysisResult, TracksFile]:
    """An analysis result with a segment per span (and a reel window around each), no poses."""
    segments = [
        Segment(
            index=i,
            start_s=a,
            end_s=b,
            track_ids=[0],
            peak_energy=1.0,
            mean_energy=0.6,
            top_parts=["arms"],
            score=0.8,
        )
        for i, (a, b) in enumerate(spans)
    ]
    windows = [
        ReelWindow(start_s=max(0.0, a - 0.5), end_s=min(video.duration_s, b + 0.5), segment_indices=[i])
        for i, (a, b) in enumerate(spans)
    ]
    result = AnalysisResult(
        video=video,
        analysis_fps=10.0,
        model="lite",
        devices=["cpu"],
        range_s=(0.0, video.duration_s),
        primary_track_id=0 if spans else None,
        tracks=[],
        segments=segments,
        metrics=[],
        energy=[],
        reel_windows=windows,
    )
    return result, TracksFile(video=video, analysis_fps=10.0, frames=[])
