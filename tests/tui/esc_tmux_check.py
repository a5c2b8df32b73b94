"""Esc then a key through a real tmux into emutui's driver (issue 15 item 8).

``test_keyinput.py::test_esc_then_a_key_through_tmux`` runs it; by hand:

    .venv/bin/python -m tests.tui.esc_tmux_check /tmp/keys.log    # prints: escape 1

It starts ``tests/tui/keylog_app.py`` (emutui's driver, every key written to a file)
in a pane of a private tmux server (``-S``, a socket in a temporary directory, and
no config file: a user's tmux and ``~/.tmux.conf`` are never involved), sends Escape
and, 10 ms later in a separate write, ``1``, as a person's keys arrive over SSH, and
returns the keys the app got.

The pane's environment carries stale ``COLUMNS``/``LINES`` on purpose. A Python that
imported GNU readline (pytest does, early) exports ``COLUMNS=80 LINES=24`` into its C
environment, so every tmux started from a test passed them to its panes; Textual took
its size from them, drew 24 rows into the 10-row pane and scrolled its own frame off
(the pane looked blank). emutui's driver asks the tty for its size instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PANE = ("80", "10")
STALE_SIZE = {"COLUMNS": "80", "LINES": "24"}  # what readline leaves in the environment


class TmuxCheckError(RuntimeError):
    """The check could not run (tmux failed, the app did not start)."""


def esc_then_key(log: Path, gap: float = 0.010, start_timeout: float = 60.0) -> list[str]:
    """Escape, then ``1`` ``gap`` seconds later, into keylog_app in a private tmux: the keys
    the app logged (waits generously for each; never judges by elapsed time)."""
    with tempfile.TemporaryDirectory(prefix="t-keys-") as d:
        return _run(Path(d) / "tmux", log, gap, start_timeout)


def _run(socket: Path, log: Path, gap: float, start_timeout: float) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(STALE_SIZE)

    def tmux(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-S", str(socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=30,
        )

    def keys_now() -> list[str]:
        return log.read_text().split() if log.exists() else []

    cmd = f"{sys.executable} -m tests.tui.keylog_app {log}"
    r = tmux("new", "-d", "-s", "keys", "-x", PANE[0], "-y", PANE[1], "-c", str(ROOT), cmd)
    if r.returncode:
        raise TmuxCheckError(f"tmux new failed: {r.stderr.strip()}")
    try:
        deadline = time.monotonic() + start_timeout
        while "keylog ready" not in (screen := tmux("capture-pane", "-p", "-t", "keys").stdout):
            if time.monotonic() > deadline:
                raise TmuxCheckError(f"the app did not start; the pane shows {screen!r}")
            time.sleep(0.1)
        # A person's Esc, then 1 a little later (separate writes), as over SSH.
        tmux("send-keys", "-t", "keys", "Escape")
        time.sleep(gap)
        tmux("send-keys", "-t", "keys", "1")
        deadline = time.monotonic() + 30
        while len(keys_now()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        return keys_now()
    finally:
        tmux("kill-server")


def main(log: Path) -> int:
    try:
        print(" ".join(esc_then_key(log)[:2]))
    except TmuxCheckError as e:
        print(e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
