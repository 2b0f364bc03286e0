"""scan: infected uploads are quarantined with their threat named; re-runs give the same answer;
the ClamAV adapter explains a missing database or binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from posereel.errors import ToolError
from posereel.pipeline.scan import ClamAV


def test_clamav_without_the_binary_is_a_clear_tool_error(tmp_path: Path) -> None:
    (tmp_path / "test.hdb").write_text("44d88612fea8a8f36de82e1278abb02f:68:Eicar\n")
    with pytest.raises(ToolError, match="install ClamAV"):
        ClamAV(tmp_path, clamscan="/nonexistent/clamscan")
