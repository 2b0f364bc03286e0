"""The jobs table (DynamoDB): JobRecord <-> item, and the few conditional writes handlers make.

Items are flat where the workflow's ``dynamodb:updateItem`` states write them (status, stage,
stage_started.#s, chunks_done, devices.#i, finished_at, error_code/error_message/error_stage).
The record's error is rebuilt from the error_* attributes; error_message may hold a Step
Functions Cause (the JSON of a Lambda error or of a Batch job), made readable here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from posereel.aws._errors import error_code, transient_errors
from posereel.errors import ObjectNotFoundError
from posereel.jobs import JobError, JobRecord, JobResult, JobStatus, SourceObject, utc_now
from posereel.pipeline.causes import job_error

BY_OWNER_INDEX = "by_owner"
# Attributes derived from others (never stored) and the nested error (stored flat).
_NOT_STORED = {"percent", "stage_seconds", "error"}
_TERMINAL = [s.value for s in JobStatus if s.terminal]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class JobStore:
    """Jobs in DynamoDB; implements posereel.pipeline.ports.JobStorePort."""

    def __init__(self, table_name: str, *, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client if client is not None else boto3.client("dynamodb")

    # --- reads ---------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        with transient_errors(f"reading job {job_id}"):
            response = self._client.get_item(
                TableName=self.table_name, Key={"job_id": {"S": job_id}}, ConsistentRead=True
            )
        item = response.get("Item")
        return record_from_item(item) if item else None

    def list_by_owner(self, owner: str, *, limit: int = 50) -> list[JobRecord]:
        """The owner's jobs, newest first."""
        with transient_errors(f"listing the jobs of {owner}"):
            response = self._client.query(
                TableName=self.table_name,
                IndexName=BY_OWNER_INDEX,
                KeyConditionExpression="#o = :o",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": owner}},
                ScanIndexForward=False,
                Limit=limit,
            )
        return [record_from_item(item) for item in response.get("Items", [])]

    # --- writes --------------------------------------------------------------------------

    def create_if_absent(self, record: JobRecord) -> bool:
        """Put the record unless the job exists; True when this call created it."""
        try:
            with transient_errors(f"creating job {record.job_id}"):
                self._client.put_item(
                    TableName=self.table_name,
                    Item=item_from_record(record),
                    ConditionExpression="attribute_not_exists(job_id)",
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_queued(self, job_id: str, *, source: SourceObject) -> bool:
        return self._update(
            job_id,
            {"status": JobStatus.QUEUED.value, "source": source.model_dump(exclude_none=True)},
            condition="#status = :expected",
            values={":expected": JobStatus.AWAITING_UPLOAD.value},
        )

    def set_execution_arn(self, job_id: str, execution_arn: str) -> bool:
        # The workflow's first state records its own ARN too: the same ARN is no conflict.
        return self._update(
            job_id,
            {"execution_arn": execution_arn},
            condition="attribute_not_exists(execution_arn) OR execution_arn = :arn",
            values={":arn": execution_arn},
        )

    def set_chunks_total(self, job_id: str, chunks_total: int) -> None:
        self._require(job_id, self._update(job_id, {"chunks_total": chunks_total}))

    def set_result(self, job_id: str, result: JobResult) -> None:
        self._require(job_id, self._update(job_id, {"result": result.model_dump()}))

    def mark_failed(self, job_id: str, error: JobError, *, finished_at: str) -> bool:
        fields: dict[str, Any] = {
            "status": JobStatus.FAILED.value,
            "finished_at": finished_at,
            "error_code": error.code,
            "error_message": error.message,
        }
        if error.stage is not None:
            fields["error_stage"] = error.stage
        values = {f":t{i}": status for i, status in enumerate(_TERMINAL)}
        return self._update(job_id, fields, condition=f"NOT #status IN ({', '.join(values)})", values=values)

    def update(self, job_id: str, fields: Mapping[str, Any]) -> bool:
        """SET top-level attributes of an existing job (and updated_at); False when there is none."""
        return self._update(job_id, fields)

    def _update(
        self,
        job_id: str,
        fields: Mapping[str, Any],
        *,
        condition: str | None = None,
        values: Mapping[str, str] | None = None,
    ) -> bool:
        fields = {**fields, "updated_at": utc_now()}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        attr_values = {f":v{i}": _to_attribute(value) for i, value in enumerate(fields.values())}
        attr_values.update({k: {"S": v} for k, v in (values or {}).items()})
        conditions = ["attribute_exists(job_id)"] + ([condition] if condition else [])
        if "#status" in (condition or ""):
            names["#status"] = "status"
        try:
            with transient_errors(f"updating job {job_id}"):
                self._client.update_item(
                    TableName=self.table_name,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                    ConditionExpression=" AND ".join(f"({c})" for c in conditions),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attr_values,
                )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @staticmethod
    def _require(job_id: str, updated: bool) -> None:
        if not updated:
            raise ObjectNotFoundError(f"job {job_id} has no record in the jobs table")


# --- item <-> record ------------------------------------------------------------------------


def item_from_record(record: JobRecord) -> dict[str, Any]:
    """The DynamoDB item (attribute-value form) of a record. Empty maps are kept: the workflow
    SETs devices.#i and stage_started.#s inside them."""
    data = record.model_dump(mode="json", exclude=_NOT_STORED, exclude_none=True)
    if record.error is not None:
        data["error_code"] = record.error.code
        data["error_message"] = record.error.message
        if record.error.stage is not None:
            data["error_stage"] = record.error.stage
    return {name: _to_attribute(value) for name, value in data.items()}


def record_from_item(item: Mapping[str, Any]) -> JobRecord:
    data = {name: _plain(_deserializer.deserialize(value)) for name, value in item.items()}
    data["error"] = job_error(
        data.pop("error_code", None), data.pop("error_message", None), data.pop("error_stage", None)
    )
    return JobRecord.model_validate(data)


def _to_attribute(value: Any) -> dict[str, Any]:
    # DynamoDB numbers must be Decimals; a JSON round trip turns every float into one.
    converted = json.loads(json.dumps(value), parse_float=Decimal)
    return dict(_serializer.serialize(converted))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_plain(v) for v in value]
    return value
