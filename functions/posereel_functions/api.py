"""api: the web client's REST API (API Gateway REST, Lambda proxy integration).

POST /uploads        {filename, size_bytes, content_type} -> 201 {job_id, upload: {url, fields}, expires_in_s}
GET  /jobs/<job_id>  -> 200 the job record (with percent and stage_seconds) | 404

Every error is JSON {code, message} (422 adds ``fields``), mapped here and nowhere else.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from posereel.errors import InputError, TooLargeError, TransientError
from posereel.observability import lambda_boundary, logger
from posereel.pipeline.api import CreateUploadRequest, create_upload, get_job
from posereel_functions import job_store, media_store, settings, workflow

app = APIGatewayRestResolver(enable_validation=True)

RETRY_AFTER_S = 5
JSON = "application/json"


def error_response(status: HTTPStatus, code: str, message: str, **extra: Any) -> Response[Any]:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == HTTPStatus.SERVICE_UNAVAILABLE else None
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"code": code, "message": message, **extra},
        headers=headers,
    )


def caller() -> str | None:
    """The authenticated caller (a Cognito user pool authorizer's ``sub``), or None."""
    authorizer = app.current_event.request_context.authorizer
    claims = (authorizer.claims if authorizer is not None else None) or {}
    sub = claims.get("sub")
    return str(sub) if sub else None


@app.post("/uploads")
def post_upload(body: CreateUploadRequest) -> Response[Any]:
    created = create_upload(
        body, owner=caller() or "anonymous", settings=settings(), jobs=job_store(), media=media_store()
    )
    logger.info("upload announced", extra={"job_id": created.job_id})
    return Response(
        status_code=HTTPStatus.CREATED.value,
        content_type=content_types.APPLICATION_JSON,
        body=created.model_dump(mode="json"),
    )


@app.get("/jobs/<job_id>")
def read_job(job_id: str) -> Response[Any]:
    record = get_job(job_id, caller=caller(), jobs=job_store(), workflow=workflow())
    if record is None:
        return error_response(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no job {job_id}")
    return Response(
        status_code=HTTPStatus.OK.value,
        content_type=content_types.APPLICATION_JSON,
        body=record.model_dump(mode="json"),
    )


def body_media_type() -> str:
    headers = {k.lower(): v for k, v in (app.current_event.headers or {}).items()}
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


@app.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[Any]:
    if app.current_event.body and body_media_type() not in (JSON, ""):
        # The body was read as what it claims to be (curl -d, for one, says form-urlencoded).
        return not_json()
    fields = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        fields.append({"field": ".".join(loc) or "body", "problem": str(error.get("type", "invalid"))})
    named = ", ".join(f["field"] for f in fields) or "the body"
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "INVALID_REQUEST", f"invalid request: {named}", fields=fields
    )


@app.exception_handler(RequestUnsupportedContentType)
def not_json(exc: RequestUnsupportedContentType | None = None) -> Response[Any]:
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
        f"send the body as JSON with Content-Type: {JSON} (got {body_media_type()})",
    )


@app.exception_handler(InputError)
def rejected(exc: InputError) -> Response[Any]:
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if isinstance(exc, TooLargeError) else HTTPStatus.BAD_REQUEST
    return error_response(status, exc.code, exc.message)


@app.exception_handler(TransientError)
def busy(exc: TransientError) -> Response[Any]:
    logger.warning("transient failure", extra={"reason": exc.message})
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, exc.code, "temporarily unavailable, try again")


@app.not_found
def no_route(exc: NotFoundError) -> Response[Any]:
    return error_response(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such resource")


@app.exception_handler(Exception)
def internal(exc: Exception) -> Response[Any]:
    logger.exception("request failed")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
