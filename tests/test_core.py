"""Core pieces without an emulator: paths, handles, liveness, journal, sanitizer, hexdump."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emutui.commands.mem import xxd
from emutui.core import proc
from emutui.core.handles import Channel, Handles
from emutui.core.instance import Instance
from emutui.core.journal import Journal, JournalWriter
from emutui.core.model import Event
from emutui.core.paths import UNIX_PATH_MAX, socket_path
from emutui.core.registry import Registry
from emutui.core.sanitize import TerminalSanitizer, sanitize


def test_long_socket_paths_get_a_short_home_and_a_symlink(tmp_path):
    wd = tmp_path / ("x" * 120)
    wd.mkdir()
    p = socket_path(wd, "qmp.sock")
    assert len(os.fsencode(p)) <= UNIX_PATH_MAX
    assert (wd / "qmp.sock").is_symlink() and (wd / "qmp.sock").readlink() == p
    assert socket_path(tmp_path, "s.sock") == tmp_path / "s.sock"


def test_handles_roundtrip_and_corruption(tmp_path):
    h = Handles(
        name="a",
        backend="qemu",
        target="t",
        pid=4242,
        pid_start=2,
        channels={"com1": Channel(role="serial", kind="unix", path="/x", log="/y")},
    )
    h.save(tmp_path)
    assert Handles.load(tmp_path).to_json() == h.to_json()
    (tmp_path / "handles.json").write_text("{not json")
    inst = Instance.load(tmp_path)
    assert inst.handles is None and "corrupted" in (inst.error or "")
    (tmp_path / "handles.json").write_text(json.dumps({"name": "a"}))
    assert "malformed" in (Instance.load(tmp_path).error or "")


def test_liveness_checks_start_time_not_just_pid():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        started = proc.start_time(p.pid)
        assert proc.is_alive(p.pid, started)
        # same pid, other start time: a reused pid is not our process
        assert not proc.is_alive(p.pid, (started or 0) + 1)
    finally:
        p.kill()
        p.wait()
    assert not proc.is_alive(p.pid, started)


def test_registry_lists_corrupted_instances_as_dead(tmp_path):
    reg = Registry(tmp_path)
    wd = reg.create("broken")
    (wd / "handles.json").write_text("garbage")
    [inst] = reg.instances()
    assert inst.name == "broken" and not inst.alive()
    assert oct(wd.stat().st_mode & 0o777) == "0o700"


def test_journal_rotates_and_writer_is_elected(tmp_path):
    j = Journal(tmp_path, max_bytes=4096, generations=2)
    a, b = JournalWriter(j), JournalWriter(Journal(tmp_path, max_bytes=4096, generations=2))
    for i in range(200):
        ev = Event(name=f"E{i}", data={"i": i})
        wrote = [a.offer(ev), b.offer(ev)]
        assert wrote == [True, False]  # one writer: no duplicates
    a.close()
    assert b.offer(Event(name="after"))  # the lock passes on
    assert (tmp_path / "events.jsonl.1").exists()
    assert not (tmp_path / "events.jsonl.3").exists()
    assert j.read()[-1].name == "after"


def test_xxd_layout():
    assert xxd(bytes.fromhex("ed000001")) == "00000000: ed00 0001" + " " * 32 + "...."
    line = xxd(b"0123456789abcdef", 16)
    assert line == "00000010: 3031 3233 3435 3637 3839 6162 6364 6566  0123456789abcdef"


@pytest.mark.skipif(shutil.which("xxd") is None, reason="xxd not installed")
def test_xxd_matches_the_real_xxd():
    data = bytes(range(256))[::3] + b"tail"
    real = subprocess.run(["xxd", "-o", "4096"], input=data, capture_output=True, check=True)
    assert xxd(data, 4096) + "\n" == real.stdout.decode()


@pytest.mark.parametrize(
    "evil",
    [
        b"\x1b]0;pwned title\x07",
        b"\x1b]52;c;ZXZpbA==\x07",
        b"\x1b]52;c;ZXZpbA==\x1b\\",
        b"\x1bP+q544e\x1b\\",
        b"\x1b]4;1;rgb:ff/00/00\x07",
        b"\x1b[?1049h",
        b"\x1b[?1000h",
        b"\x1b[21t",
        b"\x1bc",
        b"\x1b_apc\x1b\\",
    ],
)
def test_sanitizer_drops_host_terminal_attacks(evil):
    assert sanitize(b"a" + evil + b"b") == b"ab"


def test_sanitizer_keeps_colours_and_layout_across_chunks():
    s = TerminalSanitizer()
    out = (
        s.feed(b"\x1b[1;3") + s.feed(b"1mred\x1b[0m\r\n") + s.feed(b"\x1b]0;t") + s.feed(b"\x07ok")
    )
    assert out == b"\x1b[1;31mred\x1b[0m\r\nok"


# What the filter may emit, and nothing else: text without C0/C1 controls (but BS, TAB,
# LF, CR), ESC 7/8/D/E/M, and CSI with numeric parameters and an allowed final (J: 0-2).
_SAFE_OUTPUT = re.compile(
    r"(?:[^\x00-\x1f\x7f-\x9f]|[\x08\x09\x0a\x0d]|\x1b[78DEM]"
    r"|\x1b\[[0-9;:]*[mABCDEFGHfd`aeK@PXLMSTrsu]|\x1b\[[012]?J)*",
    re.DOTALL,
)
_ESCAPEY = st.sampled_from(
    [
        b"\x1b",
        b"[",
        b"]",
        b"P",
        b"?",
        b"2",
        b"3",
        b"6",
        b";",
        b"J",
        b"h",
        b"l",
        b"n",
        b"m",
        b"\x07",
        b"\\",
        b"\x9b",
        b"\x9d",
        b"\x9c",
        b"\x90",
        b"\x85",  # raw 8-bit C1
        b"\xc2\x9b",
        b"\xc2\x9d",
        b"\xc2\x9c",
        b"\xc2\x90",
        b"\xc2\x85",  # C1 in UTF-8
        b"\xc2",
        b"\xe2\x94",
        b"\x80",
        "é✓".encode(),
    ]
)


@given(st.lists(_ESCAPEY | st.binary(max_size=6), max_size=80).map(b"".join))
def test_sanitizer_output_never_contains_string_introducers(data):
    out = sanitize(data)
    for intro in (b"\x1b]", b"\x1bP", b"\x1b_", b"\x1b^", b"\x1bX", b"\x07"):
        assert intro not in out
    text = out.decode("utf-8")  # valid UTF-8, always
    assert _SAFE_OUTPUT.fullmatch(text), repr(out)
    # split anywhere, fed in two chunks: the same bytes come out
    cut = len(data) // 2
    s = TerminalSanitizer()
    assert s.feed(data[:cut]) + s.feed(data[cut:]) == out


def test_cli_ls_path_never_imports_textual(tmp_path):
    code = (
        "import sys\n"
        "from emutui.cli import main\n"
        f"main(['--state-dir', {str(tmp_path)!r}, 'ls'])\n"
        "bad = [m for m in ('textual', 'rich', 'prompt_toolkit') if m in sys.modules]\n"
        "print(bad, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip() == "[]"


def test_core_and_backends_never_import_textual():
    code = (
        "import sys, emutui.core.instance, emutui.core.registry, emutui.control, "
        "emutui.backends.qemu.connector, emutui.cli, emutui.commands.lifecycle; "
        "bad = [m for m in ('textual', 'rich') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_guest_matches_tests_guest():
    pkg = Path(__file__).parents[1] / "emutui" / "guest"
    here = Path(__file__).parent / "guest"
    for name in ("guest.S", "guest.ld"):
        assert (pkg / name).read_bytes() == (here / name).read_bytes()


def test_config_lookup_order(tmp_path, monkeypatch):
    from emutui.config import find_config

    xdg = tmp_path / "xdg"
    (xdg / "emutui").mkdir(parents=True)
    (xdg / "emutui" / "emutui.toml").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    monkeypatch.delenv("EMUTUI_CONFIG", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert find_config() == xdg / "emutui" / "emutui.toml"
    (work / "emutui.toml").write_text("")
    assert find_config() == work / "emutui.toml"
    env = tmp_path / "env.toml"
    env.write_text("")
    monkeypatch.setenv("EMUTUI_CONFIG", str(env))
    assert find_config() == env
    explicit = tmp_path / "x.toml"
    explicit.write_text("")
    assert find_config(explicit) == explicit


def test_logs_section_applies_to_every_target(tmp_path):
    from emutui.config import parse_config

    p = tmp_path / "c.toml"
    p.write_text(
        "[logs]\nmax_bytes = 8192\ngenerations = 5\n"
        "[targets.a]\nbackend = 'qemu'\n"
        "[targets.b]\nbackend = 'qemu'\nlog_max_bytes = 65536\n"
    )
    cfg = parse_config(p)
    assert cfg.targets["a"].log_limits() == (8192, 5)
    assert cfg.targets["b"].log_limits() == (65536, 5)


def test_uptime_format_shared_by_cli_and_tui():
    from emutui.core.instance import format_uptime

    assert [format_uptime(s) for s in (None, 5, 247, 3 * 3600 + 720, 2 * 86400 + 5 * 3600)] == [
        "-",
        "0m05s",
        "4m07s",
        "3h12m",
        "2d05h",
    ]
