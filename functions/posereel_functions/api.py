"""api: the public REST API (API Gateway REST, Lambda proxy integration; the local stack's HTTP
port sends it the same events). Routes, bodies and answers are declared here with their models,
so the OpenAPI document (``openapi_document()``, checked in as web/openapi.json) is generated from
this code.

Every route but GET /health is called with an API key (API Gateway checks it and passes its id)
or a JWT (the Cognito authorizer passes its claims); that identity owns the jobs it creates.
Every error is JSON {code, message} (422 adds ``fields``), mapped here and nowhere else.

The routes and error handlers live on a Router; the resolver that serves them is built once per
container (``api()``), with the CORS origins of the function's settings, so nothing is read from
the environment at import.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from posereel.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    InvalidFieldError,
    JobNotFoundError,
    PoseReelError,
    TooLargeError,
    TransientError,
)
from posereel.jobs import JobStatus
from posereel.observability import lambda_boundary, logger
from posereel.pipeline import api as ops
from posereel.pipeline import reels
from posereel.pipeline.api import (
    CompleteUploadRequest,
    CreateUploadsRequest,
    CreateUploadsResponse,
    ErrorBody,
    Health,
    JobPage,
    JobResults,
    JobView,
)
from posereel.pipeline.reels import ReelList, ReelView
from posereel.resources import API_KEY_HEADER
from posereel.settings import ReelRequest
from posereel_functions import functions, job_store, media_store, per_container, settings, workflow

router = APIGatewayRouter()

RETRY_AFTER_S = 5
JSON = "application/json"
API_KEY_SCHEME = "apiKey"
SECURED: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}]


def answer(status: HTTPStatus, model: type) -> dict[int, Any]:
    return {status.value: {"description": status.phrase, "content": {JSON: {"model": model}}}}


def errors(*statuses: HTTPStatus) -> dict[int, Any]:
    """OpenAPI answers of the given error statuses, all in the one error shape."""
    content = {JSON: {"model": ErrorBody}}
    return {s.value: {"description": s.phrase, "content": content} for s in statuses}


# Every secured route may answer these.
COMMON = (HTTPStatus.FORBIDDEN, HTTPStatus.UNPROCESSABLE_ENTITY, HTTPStatus.SERVICE_UNAVAILABLE)
JobId = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]+$")]


def api_version() -> str:
    try:
        return version("posereel")
    except PackageNotFoundError:  # the Lambda asset carries the code, not the distribution
        return "0+unknown"


def error_response(status: HTTPStatus, code: str, message: str, **extra: Any) -> Response[Any]:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == HTTPStatus.SERVICE_UNAVAILABLE else None
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"code": code, "message": message, **extra},
        headers=headers,
    )


def caller() -> str:
    """Who is calling: the JWT's ``sub`` (Cognito authorizer) or the API key's id. API Gateway
    lets no request without one through; a request that still lacks it is refused."""
    context = router.current_event.request_context
    claims = (context.authorizer.claims if context.authorizer is not None else None) or {}
    owner = claims.get("sub") or context.identity.api_key_id
    if not owner:
        raise ForbiddenError("a valid API key is required (the x-api-key header)")
    return str(owner)


def api_url() -> str:
    """Where this API was called: scheme, host and base path (the stage of an execute-api URL,
    or a custom domain's mapping), which the webhooks' links start with."""
    event = router.current_event
    context = event.request_context
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    scheme = headers.get("x-forwarded-proto", "https")
    full = context.path or event.path
    base = full[: len(full) - len(event.path)] if full.endswith(event.path) else ""
    return f"{scheme}://{context.domain_name}{base}"


def json_response(status: HTTPStatus, body: Any) -> Response[Any]:
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=body)


@router.get(
    "/health",
    summary="Is the API up (no API key needed)",
    tags=["health"],
    responses=answer(HTTPStatus.OK, Health),
)
def health() -> Health:
    return Health(status="ok", version=api_version())


@router.post(
    "/uploads",
    summary="Announce files to upload: a job and a presigned upload per file",
    tags=["uploads"],
    security=SECURED,
    responses={
        **answer(HTTPStatus.CREATED, CreateUploadsResponse),
        **errors(*COMMON, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    },
)
def post_uploads(body: CreateUploadsRequest) -> Response[CreateUploadsResponse]:
    created = ops.create_uploads(
        body, owner=caller(), api_url=api_url(), settings=settings(), jobs=job_store(), media=media_store()
    )
    logger.info("uploads announced", extra={"job_ids": [u.job_id for u in created.uploads]})
    return json_response(HTTPStatus.CREATED, created.model_dump(mode="json"))


@router.get(
    "/uploads/<job_id>/parts",
    summary="Where a multipart upload stands: the parts S3 holds, and links for the others",
    tags=["uploads"],
    security=SECURED,
    responses={
        **answer(HTTPStatus.OK, ops.UploadProgress),
        **errors(*COMMON, HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT),
    },
)
def upload_parts(job_id: JobId) -> Response[ops.UploadProgress]:
    progress = ops.upload_progress(
        job_id, caller=caller(), settings=settings(), jobs=job_store(), media=media_store()
    )
    if progress is None:
        raise JobNotFoundError(job_id)
    return json_response(HTTPStatus.OK, progress.model_dump(mode="json"))


@router.post(
    "/uploads/<job_id>/complete",
    summary="Finish a multipart upload with its parts' ETags",
    tags=["uploads"],
    security=SECURED,
    responses={
        **answer(HTTPStatus.OK, JobView),
        **errors(*COMMON, HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    },
)
def complete_upload(job_id: JobId, body: CompleteUploadRequest) -> Response[JobView]:
    record = ops.complete_upload(job_id, body, caller=caller(), jobs=job_store(), media=media_store())
    if record is None:
        raise JobNotFoundError(job_id)
    return json_response(HTTPStatus.OK, JobView.of(record, costs=settings().costs).model_dump(mode="json"))


@router.get(
    "/jobs",
    summary="The caller's jobs, newest first",
    tags=["jobs"],
    security=SECURED,
    responses={**answer(HTTPStatus.OK, JobPage), **errors(*COMMON)},
)
def list_jobs(
    status: Annotated[JobStatus | None, Query(description="only jobs with this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=1024, pattern=r"^[A-Za-z0-9_-]+$", description="next_cursor of the last page"),
    ] = None,
) -> JobPage:
    return ops.list_jobs(
        caller=caller(), status=status, limit=limit, cursor=cursor, jobs=job_store(), costs=settings().costs
    )


@router.get(
    "/jobs/<job_id>",
    summary="One job: status, stage, progress, error",
    tags=["jobs"],
    security=SECURED,
    responses={**answer(HTTPStatus.OK, JobView), **errors(*COMMON, HTTPStatus.NOT_FOUND)},
)
def read_job(job_id: JobId) -> Response[JobView]:
    record = ops.get_job(job_id, caller=caller(), jobs=job_store(), workflow=workflow())
    if record is None:
        raise JobNotFoundError(job_id)
    return json_response(HTTPStatus.OK, JobView.of(record, costs=settings().costs).model_dump(mode="json"))


@router.get(
    "/jobs/<job_id>/results",
    summary="A finished job's files (presigned links), segments and timeline",
    tags=["jobs"],
    security=SECURED,
    responses={
        **answer(HTTPStatus.OK, JobResults),
        **errors(*COMMON, HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT),
    },
)
def read_results(job_id: JobId) -> Response[JobResults]:
    results = ops.job_results(
        job_id, caller=caller(), settings=settings(), jobs=job_store(), media=media_store()
    )
    if results is None:
        raise JobNotFoundError(job_id)
    return json_response(HTTPStatus.OK, results.model_dump(mode="json"))


@router.delete(
    "/jobs/<job_id>",
    summary="Stop a job and delete its upload, files and record",
    tags=["jobs"],
    security=SECURED,
    responses={204: {"description": "deleted", "content": {}}, **errors(*COMMON, HTTPStatus.NOT_FOUND)},
)
def delete_job(job_id: JobId) -> Response[None]:
    deleted = ops.delete_job(
        job_id,
        caller=caller(),
        settings=settings(),
        jobs=job_store(),
        media=media_store(),
        workflow=workflow(),
    )
    if not deleted:
        raise JobNotFoundError(job_id)
    logger.info("job deleted", extra={"job_id": job_id})
    return Response(status_code=HTTPStatus.NO_CONTENT.value, body=None)


# --- reels ------------------------------------------------------------------------------------

ReelId = Annotated[int, Path(ge=0, le=1_000_000, description="0: the first reel; 1, 2, ...: re-cuts")]


@router.post(
    "/jobs/<job_id>/reels",
    summary="Cut another reel from a finished job's tracks (no pose estimation again)",
    tags=["reels"],
    security=SECURED,
    responses={
        **answer(HTTPStatus.ACCEPTED, ReelView),
        **errors(*COMMON, HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT),
    },
)
def post_reel(job_id: JobId, body: Annotated[ReelRequest | None, Body()] = None) -> Response[ReelView]:
    created = reels.create_reel(
        job_id,
        body or ReelRequest(),
        caller=caller(),
        settings=settings(),
        jobs=job_store(),
        media=media_store(),
        functions=functions(),
    )
    if created is None:
        raise JobNotFoundError(job_id)
    logger.info("re-cut queued", extra={"job_id": job_id, "reel_id": created.reel_id})
    return json_response(HTTPStatus.ACCEPTED, created.model_dump(mode="json"))


@router.get(
    "/jobs/<job_id>/reels",
    summary="A job's reels: the first, then its re-cuts",
    tags=["reels"],
    security=SECURED,
    responses={**answer(HTTPStatus.OK, ReelList), **errors(*COMMON, HTTPStatus.NOT_FOUND)},
)
def read_reels(job_id: JobId) -> Response[ReelList]:
    listed = reels.list_reels(job_id, caller=caller(), jobs=job_store())
    if listed is None:
        raise JobNotFoundError(job_id)
    return json_response(HTTPStatus.OK, listed.model_dump(mode="json"))


@router.get(
    "/jobs/<job_id>/reels/<reel_id>",
    summary="One reel: status, segments (where each starts in it), length and file links",
    tags=["reels"],
    security=SECURED,
    responses={**answer(HTTPStatus.OK, ReelView), **errors(*COMMON, HTTPStatus.NOT_FOUND)},
)
def read_reel(job_id: JobId, reel_id: ReelId) -> Response[ReelView]:
    view = reels.get_reel(
        job_id, reel_id, caller=caller(), settings=settings(), jobs=job_store(), media=media_store()
    )
    if view is None:
        raise JobNotFoundError(job_id)
    return json_response(HTTPStatus.OK, view.model_dump(mode="json"))


@router.delete(
    "/jobs/<job_id>/reels/<reel_id>",
    summary="Delete a re-cut and its files (the first reel goes with its job)",
    tags=["reels"],
    security=SECURED,
    responses={
        204: {"description": "deleted", "content": {}},
        **errors(*COMMON, HTTPStatus.NOT_FOUND, HTTPStatus.CONFLICT),
    },
)
def delete_reel(job_id: JobId, reel_id: ReelId) -> Response[None]:
    if not reels.delete_reel(
        job_id, reel_id, caller=caller(), settings=settings(), jobs=job_store(), media=media_store()
    ):
        raise JobNotFoundError(job_id)
    return Response(status_code=HTTPStatus.NO_CONTENT.value, body=None)


# --- errors -----------------------------------------------------------------------------------


def body_media_type() -> str:
    headers = {k.lower(): v for k, v in (router.current_event.headers or {}).items()}
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


@router.exception_handler(RequestValidationError)
def invalid_request(exc: RequestValidationError) -> Response[Any]:
    if router.current_event.body and body_media_type() not in (JSON, ""):
        # The body was read as what it claims to be (curl -d, for one, says form-urlencoded).
        return not_json()
    fields = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
        fields.append({"field": ".".join(loc) or "body", "problem": str(error.get("type", "invalid"))})
    named = ", ".join(f["field"] for f in fields) or "the body"
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "INVALID_REQUEST", f"invalid request: {named}", fields=fields
    )


@router.exception_handler(RecursionError)
def too_deep(exc: RecursionError) -> Response[Any]:
    # json.loads gives up on bodies nested some thousand levels deep; no request of ours nests 5.
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY, "INVALID_REQUEST", "the JSON body is nested too deeply"
    )


@router.exception_handler(ValueError)
def unreadable_body(exc: ValueError) -> Response[Any]:
    """A body the request validation could not even read: form data without its boundary (a
    JSON API takes none), or bytes that are not UTF-8. Anything else is ours."""
    if router.current_event.body and body_media_type() not in (JSON, ""):
        return not_json()
    if isinstance(exc, UnicodeDecodeError):
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY, "INVALID_REQUEST", "the body is not UTF-8 JSON"
        )
    return internal(exc)


@router.exception_handler(InvalidFieldError)
def invalid_field(exc: InvalidFieldError) -> Response[Any]:
    return error_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        exc.code,
        exc.message,
        fields=[{"field": exc.field, "problem": exc.problem}],
    )


@router.exception_handler(RequestUnsupportedContentType)
def not_json(exc: RequestUnsupportedContentType | None = None) -> Response[Any]:
    return error_response(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
        f"send the body as JSON with Content-Type: {JSON} (got {body_media_type()})",
    )


# What each refusal answers; the most specific class of an error decides.
STATUS_OF: dict[type[PoseReelError], HTTPStatus] = {
    ForbiddenError: HTTPStatus.FORBIDDEN,
    JobNotFoundError: HTTPStatus.NOT_FOUND,
    ConflictError: HTTPStatus.CONFLICT,
    TooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    InputError: HTTPStatus.BAD_REQUEST,
}


@router.exception_handler(PoseReelError)
def refused(exc: PoseReelError) -> Response[Any]:
    status = next((STATUS_OF[cls] for cls in type(exc).__mro__ if cls in STATUS_OF), None)
    if status is None:  # ModelError, ToolError...: ours to fix, not the caller's
        return internal(exc)
    return error_response(status, exc.code, exc.message)


@router.exception_handler(TransientError)
def busy(exc: TransientError) -> Response[Any]:
    logger.warning("transient failure", extra={"reason": exc.message})
    return error_response(HTTPStatus.SERVICE_UNAVAILABLE, exc.code, "temporarily unavailable, try again")


@router.exception_handler(NotFoundError)
def no_route(exc: NotFoundError) -> Response[Any]:
    return error_response(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such resource")


@router.exception_handler(ResponseValidationError)
@router.exception_handler(Exception)
def internal(exc: Exception) -> Response[Any]:
    logger.exception("request failed")
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")


def cors_config(origins: Sequence[str]) -> CORSConfig:
    """CORS headers on every answer: in AWS the web client comes from another origin (CloudFront).
    Callers are authorised by a key or token in a header, never by cookies."""
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=["Content-Type", "Authorization", API_KEY_HEADER],
        expose_headers=["Retry-After"],
        max_age=600,
    )


def build_app(origins: Sequence[str]) -> APIGatewayRestResolver:
    """The resolver serving the router's routes, with CORS for ``origins``."""
    # A response that fails its own model is our fault: 500, never a 422 naming response fields.
    app = APIGatewayRestResolver(
        cors=cors_config(origins),
        enable_validation=True,
        response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
    )
    app.include_router(router)
    return app


@per_container
def api() -> APIGatewayRestResolver:
    return build_app(settings().allowed_origins)


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, generated from the routes and models above."""
    document = build_app(["*"]).get_openapi_json_schema(
        title="PoseReel API",
        version="1",
        summary="Upload videos of people moving; get pose tracks, motion segments and a highlight reel.",
        servers=[Server(url="/", description="the API's base URL (the API Gateway stage URL)")],
        security_schemes={API_KEY_SCHEME: APIKey(name="x-api-key", in_=APIKeyIn.header)},
    )
    return dict(json.loads(document))


@lambda_boundary
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return api().resolve(event, context)
