#!/usr/bin/env python3
"""PoseReel's CDK app: `cdk synth -c env=dev` (or staging, prod). The environments' settings are the
`posereel:environments` context in cdk.json, validated by infra.config."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import App

from infra.app import build_environments
from infra.config import CONTEXT_KEY, load_environments


def main() -> None:
    # `python app.py` (without the cdk CLI) does not read cdk.json: give its context here; what the
    # CLI passes (cdk.json, -c key=value) takes precedence.
    defaults = json.loads(Path(__file__).with_name("cdk.json").read_text())["context"]
    app = App(context=defaults)
    configs = load_environments({CONTEXT_KEY: app.node.try_get_context(CONTEXT_KEY)})
    env = app.node.try_get_context("env")
    if env not in configs:
        raise SystemExit(f"choose an environment: cdk synth -c env=<{'|'.join(configs)}> (got {env!r})")
    build_environments(app, {env: configs[env]})
    app.synth()


if __name__ == "__main__":
    main()
