"""cfn-lint and cdk-nag (AwsSolutions) on the templates of the session's one synthesis."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra


def test_cfn_lint_reports_no_errors(synth):
    templates = sorted(str(synth.outdir / f"{name}.template.json") for name in synth.templates)
    run = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "json", *templates],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(run.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, json.dumps(errors[:10], indent=1)
    assert run.returncode in (0, 4, 8, 12), run.stderr  # 2 = errors; warnings/info are allowed


def test_cdk_nag_leaves_no_finding_without_a_written_reason(synth):
    reports = sorted(synth.outdir.glob("AwsSolutions-*-NagReport.csv"))
    assert {r.name.removeprefix("AwsSolutions--").removesuffix("-NagReport.csv") for r in reports} == set(
        synth.templates
    )
    open_findings = []
    for report in reports:
        with report.open() as handle:
            for row in csv.DictReader(handle):
                if row["Compliance"] == "Non-Compliant":
                    open_findings.append(f"{row['Rule ID']} {row['Resource ID']}: {row['Rule Info']}")
                if row["Compliance"] == "Suppressed":
                    assert len(row["Exception Reason"]) >= 20, row
    assert not open_findings, "\n".join(open_findings)
