"""Finding 13 of issue 10, the small ones: names, channel names, offsets, leftover lock
files, ``log_max_bytes = 0`` and a record without a creation time."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from emutui.commands.mem import parse_int
from emutui.core import proc
from emutui.core.errors import ConfigError, EmutuiError, RangeError
from emutui.core.handles import Handles
from emutui.core.instance import Instance, format_uptime
from emutui.core.paths import check_name
from emutui.core.registry import Registry
from emutui.core.targets import TargetConfig


@pytest.mark.parametrize("name", ["nl\n", "a\nb", "ｎａｍｅ", "café", "x" * 65, "-x", ""])
def test_names_are_checked_whole_and_ascii(name: str) -> None:
    with pytest.raises(EmutuiError):
        check_name(name)


def test_good_names_pass() -> None:
    for name in ("guest", "v1", "a.b_c-d", "X" * 64):
        assert check_name(name) == name


@pytest.mark.parametrize("channel", ["ｃｏｍ１", "com١", "cöm", "com 1", "com\n"])
def test_channel_names_are_ascii(channel: str) -> None:
    from emutui.backends.qemu.launcher import validate

    t = TargetConfig("t", "qemu", {"serial": [channel]})
    with pytest.raises(ConfigError):
        validate(t)


@pytest.mark.parametrize("text", ["0b100", "0o17", "4_0", "٣", "０x10", "0x", "-1", "1e3", " "])
def test_offsets_are_decimal_or_0x_hex_only(text: str) -> None:
    with pytest.raises(RangeError):
        parse_int(text, "offset")


def test_offsets_that_the_help_promises() -> None:
    assert parse_int("16", "offset") == 16
    assert parse_int("0x10", "offset") == 16
    assert parse_int("0XfF", "offset") == 255


def test_tui_offsets_refuse_other_scripts_digits() -> None:
    from emutui.tui.widgets.hexview import parse_offset

    with pytest.raises(ValueError):
        parse_offset("٣", 0x100)


def test_name_lock_files_do_not_stay_behind(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "st")
    with reg.name_lock("a"):
        assert (reg.root / ".a.lock").exists()
    assert not (reg.root / ".a.lock").exists()
    # and it still excludes: two holders never overlap
    inside = []
    overlap = []

    def worker() -> None:
        for _ in range(20):
            with reg.name_lock("b"):
                inside.append(1)
                if len(inside) > 1:
                    overlap.append(1)
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == []
    assert not any(p.name.endswith(".lock") for p in reg.root.iterdir())


def test_log_max_bytes_zero_is_an_error() -> None:
    t = TargetConfig("t", "qemu", {"log_max_bytes": 0})
    with pytest.raises(ConfigError, match="log_max_bytes"):
        t.log_limits()
    t = TargetConfig("t", "qemu", {"log_generations": 0})
    with pytest.raises(ConfigError, match="log_generations"):
        t.log_limits()


def test_a_record_without_creation_time_shows_no_uptime(tmp_path: Path) -> None:
    obj = {
        "name": "x",
        "backend": "qemu",
        "target": "t",
        "pid": os.getpid(),
        "pid_start": proc.start_time(os.getpid()),
    }
    inst = Instance(name="x", wd=tmp_path, handles=Handles.from_json(obj))
    assert inst.alive()
    assert inst.uptime() is None
    assert format_uptime(inst.uptime()) == "-"
