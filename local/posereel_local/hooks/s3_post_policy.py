"""S3 browser form uploads: moto's ``S3Response._bucket_response_post`` ignores the POST policy; it
is checked here as S3 does (expiry, field conditions, content-length-range), so a presigned POST
refuses a file larger than the one announced locally too (signatures stay unchecked)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from posereel_local.hooks.moto_check import Signature

if TYPE_CHECKING:
    from posereel_local.hooks import Patcher

SIGNATURES: Final = (
    Signature("moto.s3.responses", "S3Response._bucket_response_post", ("self", "request", "bucket_name")),
    Signature("moto.s3.responses", "S3Response._get_cors_headers_other", ("self",)),
)
ATTRIBUTES: Final = ()


def post_policy_refusal(
    fields: Mapping[str, str], *, size: int, bucket: str, now: datetime | None = None
) -> tuple[int, str, str] | None:
    """How S3 refuses a browser form POST whose policy it breaks: (status, code, message), or
    None when the form keeps to its policy. ``fields``: the form's fields, names lower-cased."""

    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
        expires = datetime.fromisoformat(str(policy["expiration"]).replace("Z", "+00:00"))
        conditions = list(policy.get("conditions", []))
    except (KeyError, ValueError, TypeError):
        return 400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON."
    if expires <= (now or datetime.now(expires.tzinfo)):
        return 403, "AccessDenied", "Invalid according to Policy: Policy expired."
    values = {**fields, "bucket": bucket}
    for condition in conditions:
        if isinstance(condition, dict):
            checks = [("eq", f"${name}", value) for name, value in condition.items()]
        elif isinstance(condition, list) and len(condition) == 3:
            checks = [tuple(condition)]
        else:
            return 400, "InvalidPolicyDocument", f"Invalid Policy: Invalid condition {condition!r}."
        for operator, name, expected in checks:
            if operator == "content-length-range":
                if size > int(expected):
                    return 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
                if size < int(name):
                    return (
                        400,
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size",
                    )
                continue
            field = str(name).lstrip("$").lower()
            value = values.get(field, "")
            held = value == expected if operator == "eq" else value.startswith(str(expected))
            if operator not in ("eq", "starts-with") or not held:
                failed = json.dumps([operator, name, expected])
                return 403, "AccessDenied", f"Invalid according to Policy: Policy Condition failed: {failed}"
    return None


def install(patcher: Patcher) -> None:
    from moto.s3.responses import S3Response

    original_post = S3Response.__dict__["_bucket_response_post"]

    def bucket_post(self: Any, request: Any, bucket_name: str) -> Any:
        fields = {name.lower(): values[0] for name, values in self.querystring.items() if values}
        if "policy" in fields:
            refusal = post_policy_refusal(fields, size=len(self.body or b""), bucket=bucket_name)
            if refusal is not None:
                status, code, message = refusal
                body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                # S3 answers a refused form with the bucket's CORS headers, so a browser can read why.
                return status, {"Content-Type": "application/xml", **self._get_cors_headers_other()}, body
        return original_post(self, request, bucket_name)

    patcher.patch(S3Response, "_bucket_response_post", bucket_post)
