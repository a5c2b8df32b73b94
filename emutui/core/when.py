"""Times on the command line: --since 10:42, --until 2026-11-30T10:45, --last 5m."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from emutui.core.errors import EmutuiError

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$")


def parse_span(text: str) -> float:
    """``5m``, ``30s``, ``2h``, ``1d``, ``250ms`` -> seconds."""
    m = _SPAN.match(text.strip())
    if not m:
        raise EmutuiError(f"{text!r}: expected a duration like 30s, 5m, 2h or 1d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_when(text: str, now: float | None = None) -> float:
    """A point in time, as unix seconds.

    ``HH:MM[:SS[.fff]]`` is the latest such time at or before now (so last
    night's 23:10 read this morning is yesterday's); ``YYYY-MM-DD[THH:MM[:SS]]``
    is local time; ``5m`` (or ``5m ago``) is that long before now; a plain
    number is unix seconds.
    """
    s = text.strip()
    now = time.time() if now is None else now
    if s.endswith(" ago"):
        s = s[:-4].strip()
    if _SPAN.match(s):
        return now - parse_span(s)
    m = _CLOCK.match(s)
    if m:
        h, mi, sec = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        frac = float("0." + m.group(4)) if m.group(4) else 0.0
        if h > 23 or mi > 59 or sec > 59:
            raise EmutuiError(f"{text!r}: not a time of day")
        base = datetime.fromtimestamp(now)
        cand = base.replace(hour=h, minute=mi, second=sec, microsecond=0)
        if cand.timestamp() + frac > now:
            cand -= timedelta(days=1)
        return cand.timestamp() + frac
    try:
        return datetime.fromisoformat(s).timestamp()
    except ValueError:
        pass
    try:
        v = float(s)
    except ValueError:
        v = -1.0
    if v > 1e8:
        return v
    raise EmutuiError(
        f"{text!r}: expected a time (10:42, 10:42:05, 2026-11-30T10:42), "
        "a duration ago (5m) or unix seconds"
    )
