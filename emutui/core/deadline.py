"""How long any request to an emulator or daemon may take before the user hears about it.

Every QMP request has this deadline, in the CLI, the shell and the TUI: a
monitor that greets and then never answers, answers with the wrong id, or
belongs to a SIGSTOPped QEMU gives one line naming the command and the
instance, never a hang. Set it with ``EMUTUI_REQUEST_TIMEOUT`` (seconds) or
``request_timeout`` in the config's ``[ui]`` table; the environment wins.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from emutui.core.errors import ConfigError

DEFAULT_REQUEST_TIMEOUT = 5.0
ENV = "EMUTUI_REQUEST_TIMEOUT"

_value: float | None = None
_loader: Callable[[], Any] | None = None


def parse(value: Any, where: str) -> float:
    """A positive, finite number of seconds, or ConfigError naming ``where``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number of seconds, got {value!r:.40}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{where}: expected a positive number of seconds, got {value!r:.40}")
    return seconds


def set_request_timeout(seconds: float | None) -> None:
    global _value
    _value = seconds


def configure(loader: Callable[[], Any]) -> None:
    """``loader()`` returns the config value (or None); called once, on first use."""
    global _loader
    _loader = loader


def request_timeout() -> float:
    global _value, _loader
    env = os.environ.get(ENV)
    if env:
        return parse(env, f"${ENV}")
    if _value is not None:
        return _value
    if _loader is not None:
        loader, _loader = _loader, None
        try:
            raw = loader()
        except Exception:  # a broken config is reported by the commands that need it
            raw = None
        if raw is not None:
            _value = parse(raw, "config [ui] request_timeout")
            return _value
    return DEFAULT_REQUEST_TIMEOUT
