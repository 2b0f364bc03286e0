"""Builders shared by the test suites: the test environment's names and settings, Lambda
contexts and the events AWS sends (S3, EventBridge, API Gateway, Step Functions), job records,
synthetic people and frames, test videos and ClamAV databases, and synthetic analysis results
(so merge and compile run without pose models)."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import numpy as np
import pytest

from posereel.jobs import JobRecord, JobStatus
from posereel.motion import BODY_LENGTHS_PER_TORSO
from posereel.resources import ResourceNames
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
from posereel.settings import PipelineSettings
from posereel.video import grid_indices

# --- the test environment ----------------------------------------------------------------------

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
NAMES = ResourceNames("test")
JOB = "0123456789abcdef0123456789abcdef"
OWNER = "test-api-key-id"  # the API key id that owns the jobs of api_request's calls


def pipeline_settings(**knobs: Any) -> PipelineSettings:
    """The test environment's settings, built as the CDK app and the local stack build theirs;
    keyword arguments are knobs (posereel.settings.PipelineSettings.for_environment)."""
    return PipelineSettings.for_environment(NAMES, account=ACCOUNT, region=REGION, **knobs)


SETTINGS = pipeline_settings()
UPLOADS, RESULTS, QUARANTINE = SETTINGS.uploads_bucket, SETTINGS.results_bucket, SETTINGS.quarantine_bucket
TABLE = SETTINGS.jobs_table
STATE_MACHINE = NAMES.state_machine


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


def scheduled_event() -> dict[str, Any]:
    """EventBridge's event of a schedule rule."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-01-01T00:05:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/posereel-test-watchdog"],
        "detail": {},
    }


def boundary_error(caught: pytest.ExceptionInfo[BaseException]) -> tuple[str, dict[str, Any]]:
    """(class name, JSON message) of an error that left a handler, as Step Functions sees it."""
    return type(caught.value).__name__, json.loads(str(caught.value))


# --- job records -----------------------------------------------------------------------------


def job_record(n: int, *, owner: str = OWNER, status: JobStatus = JobStatus.QUEUED) -> JobRecord:
    """The n-th job of ``owner`` (1 <= n <= 28): created on 2026-01-n, so later n are newer."""
    return JobRecord(
        job_id=f"{n:032x}", owner=owner, status=status, created_at=f"2026-01-{n:02d}T00:00:00.000Z"
    )


# --- synthetic people ------------------------------------------------------------------------

# A standing person facing the camera, in body lengths from the hip centre (x right, y down). The
# torso (shoulder centre to hip centre) is exactly 1 / BODY_LENGTHS_PER_TORSO body lengths, as
# posereel.motion measures one. Arms (13-22) are placed by skeleton().
_TORSO = 1.0 / BODY_LENGTHS_PER_TORSO
_STAND = {
    0: (0.0, -0.5),
    1: (0.01, -0.52),
    2: (0.02, -0.52),
    3: (0.03, -0.52),
    4: (-0.01, -0.52),
    5: (-0.02, -0.52),
    6: (-0.03, -0.52),
    7: (0.05, -0.5),
    8: (-0.05, -0.5),
    9: (0.01, -0.46),
    10: (-0.01, -0.46),
    11: (0.1, -_TORSO),
    12: (-0.1, -_TORSO),
    23: (0.06, 0.0),
    24: (-0.06, 0.0),
    25: (0.06, 0.25),
    26: (-0.06, 0.25),
    27: (0.06, 0.5),
    28: (-0.06, 0.5),
    29: (0.06, 0.52),
    30: (-0.06, 0.52),
    31: (0.08, 0.54),
    32: (-0.08, 0.54),
}
# Distance from the shoulder along the arm: elbow, wrist, pinky, index, thumb.
_ARM_REACH = (0.15, 0.3, 0.35, 0.36, 0.34)
_LEFT_ARM = (13, 15, 17, 19, 21)
_RIGHT_ARM = (14, 16, 18, 20, 22)


def skeleton(*, left_arm: float = 0.0, right_arm: float = 0.0) -> np.ndarray:
    """(33, 2) landmark offsets in body lengths from the hip centre; arm angles in radians from
    hanging (0) outwards (pi: raised overhead)."""
    pts = np.zeros((33, 2))
    for i, xy in _STAND.items():
        pts[i] = xy
    for shoulder, arm, angle, side in ((11, _LEFT_ARM, left_arm, 1.0), (12, _RIGHT_ARM, right_arm, -1.0)):
        for i, reach in zip(arm, _ARM_REACH, strict=True):
            pts[i] = pts[shoulder] + reach * np.array([side * math.sin(angle), math.cos(angle)])
    return pts


def person(
    track_id: int | None = 0,
    *,
    cx: float = 0.5,
    cy: float = 0.6,
    body: float = 0.5,
    aspect: float = 16 / 9,
    offsets: np.ndarray | None = None,
    visibility: float | np.ndarray = 0.95,
    score: float = 0.9,
    jitter: float = 0.0,
    moved: Mapping[int, tuple[float, float, float]] | None = None,
) -> PersonPose:
    """A 33-landmark pose with its hips at (cx, cy) (normalised to the frame), one body length
    ``body`` frame heights tall, in a frame of width / height ``aspect``. ``offsets``: the pose in
    body lengths (default: standing, skeleton()); ``jitter`` shifts every landmark; ``moved``
    overrides landmarks as normalised (x, y, visibility). The box is the extent of the landmarks
    visible at 0.5 or more, as posereel.pose makes it."""
    pose = skeleton() if offsets is None else offsets
    vis = np.broadcast_to(np.asarray(visibility, dtype=float), (33,))
    landmarks = []
    for i in range(33):
        x = cx + pose[i, 0] * body / aspect + jitter
        y = cy + pose[i, 1] * body + jitter
        v = float(vis[i])
        if moved and i in moved:
            x, y, v = moved[i]
        landmarks.append((float(x), float(y), 0.0, v))
    shown = [lm for lm in landmarks if lm[3] >= 0.5] or landmarks
    xs, ys = [lm[0] for lm in shown], [lm[1] for lm in shown]
    return PersonPose(
        track_id=track_id, score=score, box=(min(xs), min(ys), max(xs), max(ys)), landmarks=landmarks
    )


def person_px(
    offsets: np.ndarray,
    *,
    hip_px: tuple[float, float],
    body_px: float,
    width: int,
    height: int,
    track_id: int | None = 0,
    visibility: float | np.ndarray = 0.99,
) -> PersonPose:
    """person() placed in pixels: hips at ``hip_px``, one body length ``body_px`` pixels."""
    return person(
        track_id,
        cx=hip_px[0] / width,
        cy=hip_px[1] / height,
        body=body_px / height,
        aspect=width / height,
        offsets=offsets,
        visibility=visibility,
    )


# --- test videos and anti-virus data -----------------------------------------------------------


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


def segment(
    index: int,
    start_s: float,
    end_s: float,
    *,
    track_ids: tuple[int, ...] = (0,),
    top_parts: tuple[str, ...] = ("left_arm",),
    peak_energy: float = 1.0,
    mean_energy: float = 0.6,
    score: float = 0.8,
) -> Segment:
    return Segment(
        index=index,
        start_s=start_s,
        end_s=end_s,
        track_ids=list(track_ids),
        peak_energy=peak_energy,
        mean_energy=mean_energy,
        top_parts=list(top_parts),
        score=score,
    )


def chunk_result(
    chunk: ChunkSpec, video: VideoInfo, *, fps: float = 10.0, with_person: bool = True
) -> ChunkResult:
    """A chunk's result with one person standing still (local track id 0) in every grid frame."""
    frames = [
        FramePoses(index=i, t_s=i / fps, persons=[person(0, cx=0.5)] if with_person else [])
        for i in grid_indices(chunk.start_s, chunk.end_s, target_fps=fps, duration_s=video.duration_s)
    ]
    return ChunkResult(chunk=chunk, video=video, analysis_fps=fps, model="lite", device="cpu", frames=frames)


def analysis_with_segments(
    video: VideoInfo, spans: list[tuple[float, float]]
) -> tuple[AnalysisResult, TracksFile]:
    """An analysis result with a segment per span (and a reel window around each), no poses."""
    segments = [segment(i, a, b) for i, (a, b) in enumerate(spans)]
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
