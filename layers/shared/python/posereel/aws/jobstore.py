"""The jobs table (DynamoDB): JobRecord <-> item, and the few conditional writes handlers make.

Items are flat where the workflow's ``dynamodb:updateItem`` states write them (status, stage,
stage_started.#s, chunks_done, devices.#i, finished_at, error_code/error_message/error_stage).
The record's error is rebuilt from the error_* attributes; error_message may hold a Step
Functions Cause (the JSON of a Lambda error or of a Batch job), made readable here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from posereel.aws._errors import error_code, transient_errors
from posereel.errors import ObjectNotFoundError, TransientError
from posereel.jobs import (
    AWAITING,
    Delivery,
    JobError,
    JobRecord,
    JobResult,
    JobStatus,
    ReelRecord,
    ReelStatus,
    SourceObject,
    utc_now,
)
from posereel.pipeline.causes import job_error
from posereel.resources import AWAITING_UPLOAD_INDEX, BY_OWNER_INDEX, JOBS_TABLE
from posereel.usage import StageUse

# Attributes derived from others (never stored) and the nested error (stored flat).
_NOT_STORED = {"percent", "stage_seconds", "error"}
_TERMINAL = [s.value for s in JobStatus if s.terminal]
_REEL_TERMINAL = [s for s in ReelStatus if s.terminal]

# The sparse index's attributes, present only while a job awaits its upload.
_AWAITING_ATTRIBUTES = ("awaiting", "upload_deadline")
_MAX_PAGE_READS = 5  # index pages read for one filtered page of jobs
_USAGE_ATTEMPTS = 8  # read-add-write rounds of add_usage before it gives up (writers racing)

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

    def list_page(
        self, owner: str, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[JobRecord], str | None]:
        """The owner's jobs newest first (the by_owner index), optionally of one status only.

        A status filter applies after DynamoDB reads a page, so pages are read until ``limit``
        records are found or _MAX_PAGE_READS pages were read; each read asks for no more than
        the records still missing, so the last evaluated key is exactly where the next page
        starts."""
        start_key = _decode_cursor(cursor, owner) if cursor else None
        records: list[JobRecord] = []
        names, values = {"#o": "owner"}, {":o": {"S": owner}}
        query: dict[str, Any] = {}
        if status is not None:
            names["#s"], values[":s"] = "status", {"S": status}
            query["FilterExpression"] = "#s = :s"
        for _ in range(_MAX_PAGE_READS):
            if start_key:
                query["ExclusiveStartKey"] = start_key
            with transient_errors(f"listing the jobs of {owner}"):
                response = self._client.query(
                    TableName=self.table_name,
                    IndexName=BY_OWNER_INDEX,
                    KeyConditionExpression="#o = :o",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ScanIndexForward=False,
                    Limit=limit - len(records),
                    **query,
                )
            records.extend(record_from_item(item) for item in response.get("Items", []))
            start_key = response.get("LastEvaluatedKey")
            if start_key is None or len(records) >= limit:
                break
        return records, _encode_cursor(start_key) if start_key else None

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
            remove=_AWAITING_ATTRIBUTES,
        )

    def awaiting_past(self, deadline: str, *, limit: int = 100) -> list[JobRecord]:
        index = next(i for i in JOBS_TABLE.indexes if i.name == AWAITING_UPLOAD_INDEX)
        with transient_errors("listing the jobs awaiting an upload"):
            response = self._client.query(
                TableName=self.table_name,
                IndexName=AWAITING_UPLOAD_INDEX,
                KeyConditionExpression="#p = :p AND #d <= :d",
                ExpressionAttributeNames={"#p": index.partition_key, "#d": index.sort_key},
                ExpressionAttributeValues={":p": {"S": AWAITING}, ":d": {"S": deadline}},
                Limit=limit,
            )
        return [record_from_item(item) for item in response.get("Items", [])]

    def mark_expired(self, job_id: str, error: JobError, *, finished_at: str) -> bool:
        return self._update(
            job_id,
            _ended_fields(JobStatus.REJECTED, error, finished_at),
            condition="#status = :expected",
            values={":expected": JobStatus.AWAITING_UPLOAD.value},
            remove=_AWAITING_ATTRIBUTES,
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

    def add_usage(self, job_id: str, key: str, use: StageUse, *, replace: bool = False) -> bool:
        """Add ``use`` to the job's ``usage[key]`` (``replace``: store it as it is, for totals a
        stage computes whole); False when the job has no record. Concurrent adders to one key
        (re-cuts side by side) each read, add and write on the condition that nobody wrote between."""
        for _ in range(_USAGE_ATTEMPTS):
            record = self.get(job_id)
            if record is None:
                return False
            old = record.usage.get(key)
            new = use if replace or old is None else old.plus(use)
            names = {"#u": "usage", "#k": key}
            values: dict[str, Any] = {":use": _to_attribute(new.model_dump(mode="json"))}
            if not record.usage:  # a record from before usage was kept, or none recorded yet
                with transient_errors(f"updating job {job_id}"):
                    self._client.update_item(
                        TableName=self.table_name,
                        Key={"job_id": {"S": job_id}},
                        UpdateExpression="SET #u = if_not_exists(#u, :empty)",
                        ConditionExpression="attribute_exists(job_id)",
                        ExpressionAttributeNames={"#u": "usage"},
                        ExpressionAttributeValues={":empty": {"M": {}}},
                    )
            if replace:
                condition = "attribute_exists(job_id)"
            elif old is None:
                condition = "attribute_not_exists(#u.#k)"
            else:
                names["#runs"] = "runs"
                values[":runs"] = {"N": str(old.runs)}
                condition = "#u.#k.#runs = :runs"
            try:
                with transient_errors(f"updating job {job_id}"):
                    self._client.update_item(
                        TableName=self.table_name,
                        Key={"job_id": {"S": job_id}},
                        UpdateExpression="SET #u.#k = :use",
                        ConditionExpression=condition,
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues=values,
                    )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue  # another writer came first: read again
                raise
            return True
        raise TransientError(f"the usage of job {job_id} kept changing under {_USAGE_ATTEMPTS} writes")

    def mark_failed(self, job_id: str, error: JobError, *, finished_at: str) -> bool:
        fields = _ended_fields(JobStatus.FAILED, error, finished_at)
        values = {f":t{i}": status for i, status in enumerate(_TERMINAL)}
        return self._update(job_id, fields, condition=f"NOT #status IN ({', '.join(values)})", values=values)

    def mark_deleted(self, job_id: str, *, at: str) -> bool:
        return self._update(job_id, {"deleted_at": at})

    # --- re-cuts: entries of the record's ``reels`` map ---------------------------------------

    def next_reel_id(self, job_id: str, *, limit: int) -> int | None:
        try:
            with transient_errors(f"giving job {job_id} a reel id"):
                response = self._client.update_item(
                    TableName=self.table_name,
                    Key={"job_id": {"S": job_id}},
                    UpdateExpression=(
                        "SET #made = if_not_exists(#made, :zero) + :one,"
                        " #reels = if_not_exists(#reels, :empty), #updated = :now"
                    ),
                    ConditionExpression=(
                        "attribute_exists(job_id) AND #status = :succeeded"
                        " AND attribute_not_exists(deleted_at)"
                        " AND (attribute_not_exists(#made) OR #made < :limit)"
                    ),
                    ExpressionAttributeNames={
                        "#made": "reels_made", "#reels": "reels",
                        "#status": "status", "#updated": "updated_at",
                    },
                    ExpressionAttributeValues={
                        ":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"M": {}},
                        ":now": {"S": utc_now()}, ":succeeded": {"S": JobStatus.SUCCEEDED.value},
                        ":limit": {"N": str(limit)},
                    },
                    ReturnValues="UPDATED_NEW",
                )  # fmt: skip
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return int(response["Attributes"]["reels_made"]["N"])

    def put_reel(self, job_id: str, reel: ReelRecord) -> bool:
        return self._reel_write(
            job_id,
            "SET #reels.#n = :reel",
            names={},
            values={":reel": _to_attribute(reel.model_dump(mode="json", exclude_none=True))},
            reel_id=reel.reel_id,
        )

    def update_reel(self, job_id: str, reel_id: int, fields: Mapping[str, Any]) -> bool:
        fields = {**fields, "updated_at": utc_now()}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": _to_attribute(value) for i, value in enumerate(fields.values())}
        values.update({f":t{i}": {"S": s.value} for i, s in enumerate(_REEL_TERMINAL)})
        names["#rs"] = "status"
        ended = ", ".join(f":t{i}" for i in range(len(_REEL_TERMINAL)))
        return self._reel_write(
            job_id,
            "SET " + ", ".join(f"#reels.#n.#f{i} = :v{i}" for i in range(len(fields))),
            names=names,
            values=values,
            reel_id=reel_id,
            condition=f"attribute_exists(#reels.#n) AND NOT #reels.#n.#rs IN ({ended})",
        )

    def remove_reel(self, job_id: str, reel_id: int) -> bool:
        return self._reel_write(
            job_id,
            "REMOVE #reels.#n",
            names={},
            values={},
            reel_id=reel_id,
            condition="attribute_exists(#reels.#n)",
        )

    def _reel_write(
        self,
        job_id: str,
        expression: str,
        *,
        names: dict[str, str],
        values: dict[str, Any],
        reel_id: int,
        condition: str | None = None,
    ) -> bool:
        conditions = ["attribute_exists(job_id)", "attribute_exists(#reels)"] + (
            [condition] if condition else []
        )
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"job_id": {"S": job_id}},
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(f"({c})" for c in conditions),
            "ExpressionAttributeNames": {**names, "#reels": "reels", "#n": str(reel_id)},
        }
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            with transient_errors(f"writing reel {reel_id} of job {job_id}"):
                self._client.update_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_notification(
        self,
        job_id: str,
        *,
        announced: Sequence[JobStatus] | None = None,
        deliveries: Sequence[Delivery] | None = None,
    ) -> bool:
        fields: dict[str, Any] = {}
        if announced is not None:
            fields["announced"] = [status.value for status in announced]
        if deliveries is not None:
            fields["deliveries"] = [delivery.model_dump(mode="json") for delivery in deliveries]
        return self._update(job_id, fields) if fields else self.get(job_id) is not None

    def delete(self, job_id: str) -> None:
        with transient_errors(f"deleting job {job_id}"):
            self._client.delete_item(TableName=self.table_name, Key={"job_id": {"S": job_id}})

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
        remove: tuple[str, ...] = (),
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
                    UpdateExpression=_update_expression(len(fields), names, remove),
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


def _ended_fields(status: JobStatus, error: JobError, finished_at: str) -> dict[str, Any]:
    """A terminal status with its error, stored flat as the workflow stores it."""
    fields: dict[str, Any] = {
        "status": status.value,
        "finished_at": finished_at,
        "error_code": error.code,
        "error_message": error.message,
    }
    if error.stage is not None:
        fields["error_stage"] = error.stage
    return fields


def _update_expression(count: int, names: dict[str, str], remove: tuple[str, ...]) -> str:
    """SET #f0 = :v0, ... for ``count`` fields, and REMOVE the ``remove`` attributes (their
    placeholders are added to ``names``)."""
    expression = "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(count))
    if remove:
        placeholders = []
        for i, name in enumerate(remove):
            names[f"#r{i}"] = name
            placeholders.append(f"#r{i}")
        expression += " REMOVE " + ", ".join(placeholders)
    return expression


# --- cursors: the index's LastEvaluatedKey, opaque to clients ------------------------------


def _encode_cursor(key: Mapping[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, owner: str) -> dict[str, Any]:
    """The start key a cursor stands for; ValueError unless it is one of ``owner``'s pages."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not a cursor this API gave out") from exc
    expected = {"job_id", "owner", "created_at"}
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(v, str) for v in plain.values())
        or plain["owner"] != owner
    ):
        raise ValueError("not a cursor this API gave out")
    return {name: {"S": value} for name, value in plain.items()}


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
