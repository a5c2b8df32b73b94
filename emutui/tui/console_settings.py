"""The console's settings from the ``[ui]`` table of emutui.toml (issue 15, wish C).

```toml
[ui]
console_escape = "ctrl+]"   # leaves a console (as in virsh, telnet); or "ctrl+a", "f12"...
scrollback = 10000          # lines kept per console
escape_time_ms = 5          # bytes within this long after an ESC belong to it (tmux escape-time)
console_cache = 6           # consoles kept alive (parsed while hidden) for quick switching
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emutui.core.errors import ConfigError

DEFAULT_ESCAPE = "ctrl+]"

# Textual's names for the punctuation keys a control key can be combined with.
_PUNCT = {
    "]": "right_square_bracket",
    "[": "left_square_bracket",
    "\\": "backslash",
    "^": "circumflex_accent",
    "_": "underscore",
    "@": "at",
}


@dataclass(frozen=True)
class ConsoleSettings:
    escape_key: str = "ctrl+right_square_bracket"  # Textual's key name
    escape_display: str = "Ctrl+]"  # what the help and footer show
    scrollback: int = 10000
    escape_time: float = 0.005
    cache_size: int = 6


def parse_escape_key(text: str) -> tuple[str, str]:
    """``"ctrl+]"`` -> (Textual key name, display form). Only Ctrl combinations or
    F-keys: a printable key would be taken from the guest."""
    raw = text.strip().lower().replace("-", "+")
    if raw.startswith("^") and len(raw) == 2:
        raw = "ctrl+" + raw[1]
    if raw.startswith("c+"):
        raw = "ctrl+" + raw[2:]
    if raw.startswith("ctrl+"):
        base = raw[5:]
        if len(base) == 1 and base.isalpha():
            return raw, f"Ctrl+{base.upper()}"
        if base in _PUNCT:
            return f"ctrl+{_PUNCT[base]}", f"Ctrl+{base}"
        for k, v in _PUNCT.items():
            if base == v:
                return raw, f"Ctrl+{k}"
    if raw.startswith("f") and raw[1:].isdigit() and 1 <= int(raw[1:]) <= 12:
        return raw, raw.upper()
    raise ConfigError(
        f"ui.console_escape: {text!r} is not a control key or F-key "
        '(examples: "ctrl+]", "ctrl+a", "ctrl+\\\\", "f12")'
    )


def _int(ui: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    v = ui.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"ui.{key}: expected a whole number from {lo} to {hi}, got {v!r}")
    return v


def console_settings(ui: dict[str, Any] | None) -> ConsoleSettings:
    ui = ui or {}
    esc = ui.get("console_escape", DEFAULT_ESCAPE)
    if not isinstance(esc, str):
        raise ConfigError(f'ui.console_escape: expected a string such as "ctrl+]", got {esc!r}')
    key, display = parse_escape_key(esc)
    return ConsoleSettings(
        escape_key=key,
        escape_display=display,
        scrollback=_int(ui, "scrollback", 10000, 0, 1_000_000),
        escape_time=_int(ui, "escape_time_ms", 5, 1, 1000) / 1000,
        cache_size=_int(ui, "console_cache", 6, 1, 64),
    )
