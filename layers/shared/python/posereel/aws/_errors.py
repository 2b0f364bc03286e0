"""Turn the SDK's failures that may pass on a retry into posereel.errors.TransientError.

botocore already retries these a few times; what still fails is handed to the workflow, whose
Retry on "TransientError" backs off for longer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, ReadTimeoutError

from posereel.errors import TransientError

TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionConflictException",
    }
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(exc) in TRANSIENT_CODES or status in (500, 502, 503, 504)


@contextmanager
def transient_errors(what: str) -> Iterator[None]:
    """Re-raise throttling, 5xx and connection failures of ``what`` as TransientError."""
    try:
        yield
    except ClientError as exc:
        if is_transient(exc):
            raise TransientError(f"{what}: {exc}") from exc
        raise
    except (ConnectionError, HTTPClientError, ReadTimeoutError) as exc:
        raise TransientError(f"{what}: {exc}") from exc
