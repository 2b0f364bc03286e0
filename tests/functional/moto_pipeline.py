"""The pipeline's AWS resources in moto, for the functional tests of the Lambda handlers: its
buckets, jobs table, a state machine and the functions the handlers invoke (moto answers their
invocations without running them), with the functions' environment pointing at them.

S3 answers over HTTP too (moto's server in this process, sharing mock_aws's state): the stages
hand ffmpeg presigned links to the videos they read, as in AWS."""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import posereel_functions
from posereel.jobs import JobRecord
from posereel.resources import JOBS_TABLE
from posereel.settings import PipelineSettings, settings_environment
from tests.builders import (
    ACCOUNT,
    JOB,
    NAMES,
    QUARANTINE,
    REGION,
    RESULTS,
    SETTINGS,
    STATE_MACHINE,
    TABLE,
    UPLOADS,
)


@dataclass
class PipelineAws:
    """moto holding the pipeline's buckets, jobs table and state machine; handlers see them
    through their POSEREEL_* environment, like in AWS."""

    monkeypatch: pytest.MonkeyPatch
    state_machine_arn: str

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    knobs: dict[str, Any] = field(default_factory=dict)

    def configure(self, **knobs: Any) -> None:
        """Give the functions the test environment's settings with these fields changed (on top of
        earlier changes), as the CDK app and the local stack write them, and make them read again."""
        self.knobs.update(knobs)
        use_settings(self.monkeypatch, **self.knobs)

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


_s3_endpoint: str | None = None


def s3_endpoint() -> str:
    """The address of moto's server, started once per test session (its state is mock_aws's)."""
    global _s3_endpoint
    if _s3_endpoint is None:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        _s3_endpoint = f"http://{host}:{port}"
    return _s3_endpoint


def use_settings(monkeypatch: pytest.MonkeyPatch, **knobs: Any) -> PipelineSettings:
    """Set the POSEREEL_* variables of the test environment's settings (these fields changed), and
    make the functions read their settings again."""
    settings = PipelineSettings.for_environment(NAMES, account=ACCOUNT, region=REGION, **knobs)
    for name in [n for n in os.environ if n.startswith("POSEREEL_")]:
        monkeypatch.delenv(name)
    for name, value in settings_environment(settings).items():
        monkeypatch.setenv(name, value)
    posereel_functions.reset()
    return settings


@contextmanager
def pipeline_aws(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Iterator[PipelineAws]:
    """mock_aws with the pipeline's resources and the functions' environment pointing at them."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint())
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")  # no EMF blobs in test output
    with mock_aws(config={"lambda": {"use_docker": False}}):
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (UPLOADS, RESULTS, QUARANTINE):
            s3.create_bucket(Bucket=bucket)
        boto3.client("dynamodb", region_name=REGION).create_table(**JOBS_TABLE.create_table_request(TABLE))
        machine = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=STATE_MACHINE,
            definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/posereel-test-workflow",
        )
        invoked_functions()
        aws = PipelineAws(monkeypatch=monkeypatch, state_machine_arn=machine["stateMachineArn"])
        assert aws.state_machine_arn == SETTINGS.state_machine_arn
        aws.configure(**settings)
        try:
            yield aws
        finally:
            posereel_functions.reset()


def invoked_functions() -> None:
    """The functions the handlers under test invoke asynchronously (notify, recut), registered so
    an invocation is accepted; moto without docker answers it without running the code."""
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="posereel-test-functions",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lam = boto3.client("lambda", region_name=REGION)
    for name in (SETTINGS.notify_function, SETTINGS.recut_function):
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=role,
            Handler="handler.handler",
            Code={"ZipFile": package.getvalue()},
        )
