"""Print the API's OpenAPI document, generated from the api function's routes and models.

    python -m posereel_functions.openapi > web/openapi.json     (make openapi)

The checked-in copy is served with the web client; a test fails when it differs from the code.
"""

from __future__ import annotations

import json
import sys

from posereel_functions.api import openapi_document


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
