"""The project's own standards, checked with the suite: ruff clean, mypy --strict on the
headless layers (core and backends)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: ./dev installs the project's dev extra")
    return str(path)


def test_ruff_clean():
    r = subprocess.run(
        [tool("ruff"), "check", "emutui", "tests", "bench", "screenshots"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-3000:]


def test_mypy_strict_on_core_and_backends():
    r = subprocess.run([tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:]
