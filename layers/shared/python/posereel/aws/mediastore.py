"""Objects in S3: uploads, intermediate and final files, quarantine; presigned browser uploads.

Missing objects raise posereel.errors.ObjectNotFoundError (``head`` returns None instead);
throttling and connection failures raise TransientError.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import BaseModel

from posereel.aws._errors import error_code, transient_errors
from posereel.errors import ObjectNotFoundError, TransientError
from posereel.outputs import attachment
from posereel.pipeline.ports import ObjectInfo, PresignedPost, UploadedPart
from posereel.usage import user_agent
from posereel.video import VIDEO_CONTENT_TYPES, RemoteVideo

ModelT = TypeVar("ModelT", bound=BaseModel)

_MISSING = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket", "NoSuchUpload"})
# CompleteMultipartUpload's answers to a wrong part list.
_REFUSED_PARTS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "MalformedXML"})
# A conditional request whose condition no longer holds (the object was replaced).
_CHANGED = frozenset({"PreconditionFailed", "412"})
# How long a stage's link to the video it reads stays valid: longer than any stage runs (a link
# signed with a role's temporary credentials ends with them anyway, whichever comes first).
VIDEO_LINK_EXPIRY_S = 6 * 3600
_STREAM_PIECE_BYTES = 1024**2  # what read_range yields at a time
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


# The SDK's S3 requests of this process so far, by price tier (GET-like, PUT-like; deletes and
# aborts are free), for each stage's usage (posereel.usage.StageUse).
_FREE_OPERATIONS = ("Delete", "Abort")
_PUT_TIER_OPERATIONS = ("Put", "Copy", "Create", "Complete", "Upload", "List", "Restore")
_requests = {"get": 0, "put": 0}
_requests_lock = threading.Lock()


def s3_requests() -> tuple[int, int]:
    """(GET-tier, PUT-tier) requests this process's media stores have made."""
    with _requests_lock:
        return _requests["get"], _requests["put"]


def _count_request(model: Any, **_: Any) -> None:
    name = str(model.name)
    if name.startswith(_FREE_OPERATIONS):
        return
    tier = "put" if name.startswith(_PUT_TIER_OPERATIONS) else "get"
    with _requests_lock:
        _requests[tier] += 1


def _mark_reader(request: Any, **_: Any) -> None:
    """Name whom the request is for (posereel.usage.read_for) in its User-Agent (not signed), as
    it is sent: Powertools rewrites the header after "request-created"."""
    agent = request.headers.get("User-Agent", "")
    agent = agent.decode() if isinstance(agent, bytes) else agent
    request.headers["User-Agent"] = f"{agent} {user_agent()}".strip()


class MediaStore:
    """S3 objects; implements posereel.pipeline.ports.MediaStorePort."""

    def __init__(self, *, client: Any = None) -> None:
        # SigV4 for presigned POSTs too (boto3 may still sign those with the deprecated SigV2).
        self._client = (
            client if client is not None else boto3.client("s3", config=Config(signature_version="s3v4"))
        )
        self._client.meta.events.register("before-call.s3", _count_request)
        self._client.meta.events.register("before-send.s3", _mark_reader)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            with transient_errors(f"reading s3://{bucket}/{key}"):
                response = self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size_bytes=int(response["ContentLength"]),
            content_type=response.get("ContentType"),
            etag=response.get("ETag"),
        )

    def read_bytes(self, bucket: str, key: str, *, length: int | None = None) -> bytes:
        extra = {"Range": f"bytes=0-{length - 1}"} if length else {}
        try:
            with _missing_as_not_found(bucket, key):
                response = self._client.get_object(Bucket=bucket, Key=key, **extra)
                return bytes(response["Body"].read())
        except ClientError as exc:
            if error_code(exc) == "InvalidRange":  # a range of an empty object
                return b""
            raise

    def read_range(self, bucket: str, key: str, *, start: int, length: int) -> Iterator[bytes]:
        with _missing_as_not_found(bucket, key):
            response = self._client.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}"
            )
        body = response["Body"]
        try:
            yield from body.iter_chunks(_STREAM_PIECE_BYTES)
        finally:
            body.close()

    def download(self, bucket: str, key: str, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _missing_as_not_found(bucket, key):
            self._client.download_file(bucket, key, str(dest))
        return dest

    def upload_file(self, path: Path, bucket: str, key: str, *, content_type: str) -> None:
        with transient_errors(f"writing s3://{bucket}/{key}"):
            self._client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})

    def put_bytes(self, data: bytes, bucket: str, key: str, *, content_type: str) -> None:
        with transient_errors(f"writing s3://{bucket}/{key}"):
            self._client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def read_model(self, bucket: str, key: str, model_type: type[ModelT]) -> ModelT:
        return model_type.model_validate_json(self.read_bytes(bucket, key))

    def write_model(self, model: BaseModel, bucket: str, key: str) -> None:
        self.put_bytes(model.model_dump_json().encode(), bucket, key, content_type="application/json")

    def presigned_post(
        self, bucket: str, key: str, *, size_bytes: int, content_type: str, expires_in_s: int
    ) -> PresignedPost:
        """A form upload of exactly this key, at most ``size_bytes`` long (and not empty), with
        exactly this Content-Type (one of video.VIDEO_CONTENT_TYPES)."""
        _require_video_type(content_type)
        with transient_errors(f"signing an upload to s3://{bucket}/{key}"):
            post = self._client.generate_presigned_post(
                Bucket=bucket,
                Key=key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    ["content-length-range", 1, size_bytes],
                    ["eq", "$Content-Type", content_type],
                ],
                ExpiresIn=expires_in_s,
            )
        return PresignedPost(url=post["url"], fields={k: str(v) for k, v in post["fields"].items()})

    def open_video(self, bucket: str, key: str, *, name: str) -> RemoteVideo:
        head = self.head(bucket, key)
        if head is None:
            raise ObjectNotFoundError(f"s3://{bucket}/{key} does not exist")
        url = self.presigned_get(bucket, key, expires_in_s=VIDEO_LINK_EXPIRY_S)
        return RemoteVideo(url=url, name=name, size_bytes=head.size_bytes)

    def presigned_get(
        self, bucket: str, key: str, *, expires_in_s: int, download_as: str | None = None
    ) -> str:
        params = {"Bucket": bucket, "Key": key}
        if download_as is not None:
            params["ResponseContentDisposition"] = attachment(download_as)
        with transient_errors(f"signing a download of s3://{bucket}/{key}"):
            return str(
                self._client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in_s)
            )

    def copy(self, bucket: str, key: str, *, dest_bucket: str, dest_key: str, if_match: str | None) -> None:
        """Managed copy (multipart above 8 MB, so objects of any size); with ``if_match`` every
        request of it is conditional on the source's ETag."""
        extra = {"CopySourceIfMatch": if_match} if if_match else None
        try:
            with _missing_as_not_found(bucket, key):
                self._client.copy({"Bucket": bucket, "Key": key}, dest_bucket, dest_key, ExtraArgs=extra)
        except ClientError as exc:
            if error_code(exc) in _CHANGED:
                raise TransientError(f"s3://{bucket}/{key} changed while it was copied") from exc
            raise

    def delete(self, bucket: str, key: str) -> None:
        with transient_errors(f"deleting s3://{bucket}/{key}"):
            self._client.delete_object(Bucket=bucket, Key=key)

    def move(
        self, bucket: str, key: str, *, dest_bucket: str, dest_key: str, tags: Mapping[str, str]
    ) -> None:
        """Copy (multipart for big objects) to dest, tag the copy with exactly ``tags``, delete the
        original. Safe to repeat: a second call after the delete finds dest in place."""
        with _missing_as_not_found(bucket, key):
            self._client.copy({"Bucket": bucket, "Key": key}, dest_bucket, dest_key)
        with transient_errors(f"tagging s3://{dest_bucket}/{dest_key}"):
            self._client.put_object_tagging(
                Bucket=dest_bucket,
                Key=dest_key,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
            )
            self._client.delete_object(Bucket=bucket, Key=key)

    def get_tags(self, bucket: str, key: str) -> dict[str, str]:
        with _missing_as_not_found(bucket, key):
            response = self._client.get_object_tagging(Bucket=bucket, Key=key)
        return {tag["Key"]: tag["Value"] for tag in response.get("TagSet", [])}

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [obj.key for obj in self.list_objects(bucket, prefix)]

    def list_objects(self, bucket: str, prefix: str) -> list[ObjectInfo]:
        objects: list[ObjectInfo] = []
        with transient_errors(f"listing s3://{bucket}/{prefix}"):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                objects.extend(
                    ObjectInfo(
                        bucket=bucket, key=obj["Key"], size_bytes=int(obj["Size"]), etag=obj.get("ETag")
                    )
                    for obj in page.get("Contents", [])
                )
        return objects

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under ``prefix``; returns how many there were."""
        keys = self.list_keys(bucket, prefix)
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            with transient_errors(f"deleting under s3://{bucket}/{prefix}"):
                self._client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
        return len(keys)

    def create_multipart(self, bucket: str, key: str, *, content_type: str) -> str:
        _require_video_type(content_type)
        with transient_errors(f"starting an upload to s3://{bucket}/{key}"):
            response = self._client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        return str(response["UploadId"])

    def presigned_part_urls(
        self, bucket: str, key: str, *, upload_id: str, parts: int, expires_in_s: int
    ) -> list[str]:
        with transient_errors(f"signing the parts of an upload to s3://{bucket}/{key}"):
            return [
                str(
                    self._client.generate_presigned_url(
                        "upload_part",
                        Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number},
                        ExpiresIn=expires_in_s,
                    )
                )
                for number in range(1, parts + 1)
            ]

    def list_parts(self, bucket: str, key: str, *, upload_id: str) -> list[UploadedPart]:
        parts: list[UploadedPart] = []
        with _missing_as_not_found(bucket, key):
            paginator = self._client.get_paginator("list_parts")
            for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
                parts.extend(
                    UploadedPart(part_number=int(p["PartNumber"]), size_bytes=int(p["Size"]), etag=p["ETag"])
                    for p in page.get("Parts", [])
                )
        return parts

    def complete_multipart(
        self, bucket: str, key: str, *, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        try:
            with _missing_as_not_found(bucket, key):
                self._client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
                )
        except ClientError as exc:
            if error_code(exc) in _REFUSED_PARTS:
                raise ValueError(str(exc.response.get("Error", {}).get("Message") or exc)) from exc
            raise

    def abort_multipart(self, bucket: str, key: str, *, upload_id: str) -> None:
        try:
            with transient_errors(f"dropping an upload to s3://{bucket}/{key}"):
                self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if error_code(exc) not in _MISSING:
                raise


def _require_video_type(content_type: str) -> None:
    if content_type not in VIDEO_CONTENT_TYPES:
        raise ValueError(f"an upload's content type must be one of {sorted(VIDEO_CONTENT_TYPES)}")


@contextmanager
def _missing_as_not_found(bucket: str, key: str) -> Iterator[None]:
    """A missing object or bucket becomes ObjectNotFoundError; transient failures TransientError."""
    try:
        with transient_errors(f"reading s3://{bucket}/{key}"):
            yield
    except ClientError as exc:
        if error_code(exc) in _MISSING:
            raise ObjectNotFoundError(f"s3://{bucket}/{key} does not exist") from exc
        raise
