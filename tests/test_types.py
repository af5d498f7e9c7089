"""The core type-checks under mypy --strict (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_bot_passes_a_strict_type_check() -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "bot"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
