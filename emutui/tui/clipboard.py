"""Copying out of the TUI, and saying honestly where the copy went (issue 15 item 14).

emutui writes OSC 52 (through ``App.copy_to_clipboard``). Whether that reaches the
system clipboard is up to the terminal, and under tmux it is dropped unless tmux
has ``set -g set-clipboard on`` (its default, ``external``, only lets tmux itself
set the clipboard). So under tmux emutui also loads the text into tmux's paste
buffer (``tmux load-buffer -``, pasted with prefix ``]``), which always works,
and reads ``set-clipboard`` to say whether the system clipboard got it too.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any


def _tmux(*args: str, text: str | None = None) -> str | None:
    try:
        r = subprocess.run(
            ["tmux", *args],
            input=text,
            capture_output=True,
            text=True,
            timeout=2,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def copy_out(app: Any, text: str) -> str:
    """Send ``text`` to the clipboard(s); return where it went, as a phrase."""
    app.copy_to_clipboard(text)
    under_tmux = bool(os.environ.get("TMUX")) and not getattr(app, "is_headless", False)
    if not under_tmux:
        return "to the terminal's clipboard (OSC 52; some terminals ask first or refuse)"
    loaded = _tmux("load-buffer", "-", text=text) is not None
    setting = _tmux("show-options", "-gv", "set-clipboard") or "unknown"
    where = "tmux's paste buffer (prefix ])" if loaded else "nowhere in tmux (load-buffer failed)"
    if setting == "on":
        return f"to {where} and the system clipboard (tmux set-clipboard on)"
    return (
        f"to {where}; not to the system clipboard: tmux drops OSC 52 unless "
        f"'set -g set-clipboard on' (it is {setting!r})"
    )


def describe(text: str) -> str:
    lines = text.count("\n") + 1 if text else 0
    return f"{lines} line{'s' if lines != 1 else ''} ({len(text)} characters)"
