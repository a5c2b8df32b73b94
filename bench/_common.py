"""Helpers shared by the benchmarks: a scratch lab, medians, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def summary(samples: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    return (
        f"median {statistics.median(s) * scale:.1f} {unit}, min {s[0] * scale:.1f}, "
        f"p99 {p99 * scale:.1f}, max {s[-1] * scale:.1f} (n={len(s)})"
    )


def lab() -> tuple[Path, dict[str, str]]:
    """A temporary state dir and config with the test guest; env for emutui processes."""
    from emutui.guest import build

    d = Path(tempfile.mkdtemp(prefix="eb-", dir="/tmp"))
    elf = build()
    cfg = d / "emutui.toml"
    cfg.write_text(
        f"""
[targets.guest]
backend = "qemu"
machine = "pc"
kernel = "{elf}"
serial = ["com1", "com2"]
args = ["-device", "edu,id=edu0"]
qtest = true
"""
    )
    env = dict(os.environ, EMUTUI_STATE_DIR=str(d / "state"), EMUTUI_CONFIG=str(cfg))
    return d, env


def close_lab(d: Path, env: dict[str, str]) -> None:
    """Stop every instance of a lab made by ``lab()`` and remove it."""
    import shutil

    subprocess.run([sys.executable, "-m", "emutui", "stop", "--all"], env=env, capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


def emutui(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "emutui", *args], env=env, check=True, capture_output=True
    )
    return time.perf_counter() - t0
