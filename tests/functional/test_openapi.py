"""The OpenAPI document is generated from the api function's code; the checked-in copy (served
with the web client) must be exactly what the code generates, so the two cannot drift."""

from __future__ import annotations

import json
from pathlib import Path

from posereel.resources import API_PUBLIC_ROUTES
from posereel_functions.openapi import render

CHECKED_IN = Path(__file__).resolve().parents[2] / "web" / "openapi.json"
ROUTES = {
    ("POST", "/uploads"),
    ("GET", "/uploads/{job_id}/parts"),
    ("POST", "/uploads/{job_id}/complete"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{job_id}"),
    ("GET", "/jobs/{job_id}/results"),
    ("DELETE", "/jobs/{job_id}"),
    ("POST", "/jobs/{job_id}/reels"),
    ("GET", "/jobs/{job_id}/reels"),
    ("GET", "/jobs/{job_id}/reels/{reel_id}"),
    ("DELETE", "/jobs/{job_id}/reels/{reel_id}"),
    ("GET", "/health"),
}


def test_the_checked_in_document_is_what_the_code_generates() -> None:
    assert CHECKED_IN.read_text() == render(), "web/openapi.json is stale: run `make openapi`"


def test_every_route_is_documented_and_only_public_ones_need_no_key() -> None:
    document = json.loads(render())
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == ROUTES
    for route, operation in operations.items():
        public = (route[0], route[1]) in API_PUBLIC_ROUTES
        assert bool(operation.get("security")) is not public, route
        if not public:
            for status in ("403", "422"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (route, status)
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
