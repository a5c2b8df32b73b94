"""Issue 10 finding 10: what a corrupted state dir, a hostile monitor, an unwritable
directory or a full disk does to a command is one line, never a traceback, and one
broken instance never stops a command from going on to the others."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emutui.backends.qemu.connector import QemuConnector
from emutui.core.errors import EmutuiError
from emutui.core.registry import MARKER
from tests.conftest import needs_qemu, run_cli
from tests.faults.test_hostile_qmp import GREETING, instance_for, json_objects


def one_line(r) -> str:
    assert r.rc == 1, (r.rc, r.out, r.err)
    assert "Traceback" not in r.err, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    return lines[0]


def broken(state_dir: Path, name: str, content: str | bytes) -> Path:
    wd = state_dir / name
    wd.mkdir(mode=0o700)
    (wd / MARKER).touch(mode=0o600)  # made by emutui, later corrupted
    f = wd / "handles.json"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    f.chmod(0o600)
    return wd


def handles(name: str, **extra) -> str:
    return json.dumps({"name": name, "backend": "qemu", "target": "t", "pid": None, **extra})


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    "content",
    [
        DEEP,
        '{"name": "x", "backend": "qemu", "options": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001,
        b'{"name": "\xff\xfe"}',
        handles("b", channels={"com1": {"role": "serial", "kind": "unix", "path": 5, "log": 7}}),
        handles("b", options={"log_max_bytes": "abc", "log_generations": [1]}),
        handles("b", options={"helpers": {"serialhub": "garbage", "x": [1, 2, 3]}}),
    ],
    ids=["deep-list", "deep-object", "not-utf8", "integer-paths", "log-max-bytes-abc", "helpers"],
)
def test_a_corrupted_handles_file_is_one_line_in_every_command(state_dir, config_file, content):
    broken(state_dir, "b", content)
    r = run_cli("ls")
    assert r.rc == 0 and "Traceback" not in r.err, r.err
    assert "b " in r.out
    r = run_cli("ls", "--json")
    assert r.rc == 0 and json.loads(r.out)[0]["state"] == "dead"
    for argv in (
        ("logs", "b"),
        ("events", "b"),
        ("pause", "b"),
        ("prop", "get", "b", "/machine", "type"),
        ("mem", "read", "b", "ram", "0", "4"),
        ("shell", "b", "-c", "query-status"),
    ):
        r = run_cli(*argv)
        assert "Traceback" not in r.err, (argv, r.err)
        assert len(r.err.strip().splitlines()) <= 1, (argv, r.err)
    r = run_cli("stop", "b")
    assert r.rc == 0, r.err
    assert not (state_dir / "b").exists()


@needs_qemu
def test_stop_all_goes_on_past_a_malformed_helpers_entry(state_dir, config_file):
    assert run_cli("start", "plain", "--name", "p1").rc == 0
    assert run_cli("start", "plain", "--name", "p2").rc == 0
    f = state_dir / "p1" / "handles.json"
    obj = json.loads(f.read_text())
    obj["options"]["helpers"] = {"serialhub": "nonsense", "qmpbroker": [1, None, 3]}
    f.write_text(json.dumps(obj))
    broken(state_dir, "a-deep", DEEP)
    r = run_cli("stop", "--all", timeout=120)
    assert "Traceback" not in r.err, r.err
    assert not any((state_dir / n).exists() for n in ("p1", "p2", "a-deep")), r.out + r.err


def test_a_config_that_is_not_utf8_or_too_deep_is_one_line(tmp_path, state_dir, monkeypatch):
    for content in (b'[targets.x]\nbackend = "qemu"\nmachine = "\xff"\n', b"a = " + b"[" * 100_000):
        cfg = tmp_path / "bad.toml"
        cfg.write_bytes(content)
        monkeypatch.setenv("EMUTUI_CONFIG", str(cfg))
        line = one_line(run_cli("start", "x"))
        assert "bad.toml" in line


@needs_qemu
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nonfinite_numbers_are_refused_before_qemu_sees_them(guest, value):
    line = one_line(
        run_cli("prop", "set", "-y", guest.name, "/machine", "dt-compatible", "--", value)
    )
    assert "finite" in line
    r = run_cli("shell", guest.name, "-c", f"qom-set path=/machine property=x value={value}")
    assert "Traceback" not in r.err and "_GatheringFuture" not in r.err, r.err
    # the monitor was never confused: the next command works
    r = run_cli("prop", "get", guest.name, "/machine", "type")
    assert r.rc == 0, r.err


async def test_a_100mb_reply_is_one_line(tmp_path):
    """Straight to the connector (no broker): qemu.qmp refuses lines over 10 MB."""
    sock = tmp_path / "big.sock"

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(GREETING)
        async for msg in json_objects(r):
            if msg.get("execute") == "qmp_capabilities":
                w.write(json.dumps({"return": {}, "id": msg.get("id")}).encode() + b"\r\n")
            else:
                chunk = b"y" * (1 << 20)
                w.write(b'{"return": "')
                for _ in range(100):
                    w.write(chunk)
                    await w.drain()
                w.write(b'", "id": ' + json.dumps(msg.get("id")).encode() + b"}\r\n")
            await w.drain()

    server = await asyncio.start_unix_server(handle, path=str(sock))
    conn = QemuConnector(instance_for(sock), aux=True)
    try:
        await conn.connect()
        with pytest.raises(EmutuiError) as e:
            await conn.status()
        assert "\n" not in str(e.value)
    finally:
        await conn.close()
        server.close()


def _without_dac(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """argv as root without CAP_DAC_OVERRIDE: file modes apply to it as to anyone."""
    return subprocess.run(
        ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to drop CAP_DAC_OVERRIDE (CI runs as root)",
)
@pytest.mark.parametrize("mode", [0o500, 0o000])
def test_an_unwritable_state_dir_is_one_line(tmp_path, config_file, monkeypatch, mode):
    root = tmp_path / "ro"
    root.mkdir()
    (root / "x").mkdir(mode=0o700)
    (root / "x" / MARKER).touch()
    (root / "x" / "handles.json").write_text(handles("x"))
    root.chmod(mode)
    monkeypatch.setenv("EMUTUI_STATE_DIR", str(root))
    try:
        for argv in (
            ["ls"],
            ["start", "guest"],
            ["logs", "x"],
            ["attach", "qemu", "h", "--qmp", str(tmp_path / "none.sock")],
        ):
            r = _without_dac([sys.executable, "-m", "emutui", *argv])
            assert "Traceback" not in r.stderr, (argv, r.stderr)
            if r.returncode != 0:
                assert len(r.stderr.strip().splitlines()) == 1, (argv, r.stderr)
    finally:
        root.chmod(0o700)


@needs_qemu
def test_a_full_disk_during_start_is_one_line(tmp_path, config_file, monkeypatch):
    from tests.faults.test_disk_full import small_fs  # noqa: F401  (the fixture, reused)

    mnt = Path("/tmp") / f"enospc-{os.getpid()}"
    mnt.mkdir(exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
    )
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        st = mnt / "st"
        st.mkdir(mode=0o700)
        (st / "guest").mkdir(mode=0o700)
        with open(mnt / "filler", "wb") as f:  # nothing left, not even for handles.json
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        monkeypatch.setenv("EMUTUI_STATE_DIR", str(st))
        line = one_line(run_cli("start", "guest", timeout=120))
        assert "space" in line.lower() or "guest" in line
        assert "Traceback" not in line
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(mnt, ignore_errors=True)
