"""``posereel run`` as a user types it: a file that is no video goes through the local stack and
comes back REJECTED with its code, exit status 2; a missing file never starts the stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from posereel_local import cli


def test_a_missing_file_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", str(tmp_path / "missing.mp4")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_a_rejected_upload_prints_its_code_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("Shopping list: eggs, milk.\n")
    status = cli.main(["run", str(notes), "--out", str(tmp_path / "out"), "--quiet", "--timeout", "120"])
    printed = capsys.readouterr().out
    assert status == 2
    assert "REJECTED" in printed and "NOT_A_VIDEO at VALIDATE" in printed
    assert not (tmp_path / "out").exists(), "nothing is downloaded for a rejected job"
