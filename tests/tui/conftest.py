"""Fixtures shared by the TUI tests."""

from __future__ import annotations

import pytest
import textual._parser

from emutui.tui import keyinput


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The key parser's clock, moved by hand (Esc timing without sleeping)."""
    now = [1000.0]
    monkeypatch.setattr(textual._parser, "get_time", lambda: now[0])
    monkeypatch.setattr(keyinput, "get_time", lambda: now[0])
    return now
