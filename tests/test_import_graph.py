"""docs/import-graph.svg shows the imports as they are: its .dot source is regenerated and compared."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO_ROOT


def test_committed_import_graph_matches_the_code() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "import_graph.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
