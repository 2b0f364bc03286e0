"""The pipeline's state machine (Step Functions): start an execution named by the job id, and
ask how one is doing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from posereel.aws._errors import error_code, transient_errors
from posereel.jobs import iso_utc
from posereel.pipeline.ports import ExecutionInfo


class Workflow:
    """Executions of one state machine; implements posereel.pipeline.ports.WorkflowPort."""

    def __init__(self, state_machine_arn: str, *, client: Any = None) -> None:
        if ":stateMachine:" not in state_machine_arn:
            raise ValueError(f"not a state machine ARN: {state_machine_arn!r}")
        self.state_machine_arn = state_machine_arn
        self._client = client if client is not None else boto3.client("stepfunctions")

    def execution_arn(self, name: str) -> str:
        """The ARN an execution of this state machine named ``name`` has (or would have)."""
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        """Start execution ``name``. Idempotent: when it exists already (same name, whatever its
        input or state) nothing is started and its ARN is returned."""
        try:
            with transient_errors(f"starting execution {name}"):
                response = self._client.start_execution(
                    stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(dict(payload))
                )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return self.execution_arn(name)
            raise
        return str(response["executionArn"])

    def stop(self, execution_arn: str, *, cause: str) -> None:
        try:
            with transient_errors(f"stopping execution {execution_arn}"):
                self._client.stop_execution(executionArn=execution_arn, cause=cause[:32768])
        except ClientError as exc:
            # An execution that never started (the upload never came) or was purged.
            if error_code(exc) != "ExecutionDoesNotExist":
                raise

    def describe(self, execution_arn: str) -> ExecutionInfo | None:
        try:
            with transient_errors(f"describing execution {execution_arn}"):
                response = self._client.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if error_code(exc) == "ExecutionDoesNotExist":
                return None
            raise
        stopped = response.get("stopDate")
        return ExecutionInfo(
            arn=execution_arn,
            status=str(response["status"]),
            error=response.get("error"),
            cause=response.get("cause"),
            stopped_at=iso_utc(stopped) if isinstance(stopped, datetime) else None,
        )
