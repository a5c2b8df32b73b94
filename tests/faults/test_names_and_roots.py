"""Issue 10, findings 3 and 9: names are names, only emutui's directories are touched,
the state root keeps its mode, and logs/events read every kept generation."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from emutui.core.handles import Channel, Handles
from emutui.core.model import Event
from emutui.core.registry import Registry
from tests.conftest import run_cli

PATH_NAMES = ["../victim", "/tmp", "a/b", ".", "..", ".hidden", "x\n", "../victim~1"]


def fake_instance(root: Path, name: str, **channels: str) -> Path:
    """A dead instance directory as emutui makes one (marker, handles)."""
    wd = Registry(root).create(name)
    Handles(
        name=name,
        backend="qemu",
        target="t",
        pid=None,
        channels={
            ch: Channel(role="serial", kind="unix", path=str(wd / f"{ch}.sock"), log=log)
            for ch, log in channels.items()
        },
    ).save(wd)
    return wd


@pytest.mark.parametrize("name", PATH_NAMES)
@pytest.mark.parametrize(
    "verb",
    [
        ["stop"],
        ["logs"],
        ["events"],
        ["term"],
        ["pause"],
        ["prop", "get"],
        ["timeline"],
        ["export", "-o", "/tmp/never.tar.gz"],
        ["rm"],
        ["runs"],
    ],
)
def test_path_like_names_are_refused_everywhere(tmp_path, state_dir, verb, name):
    victim = state_dir.parent / f"victim-{state_dir.name}"
    victim.mkdir(exist_ok=True)
    (victim / "handles.json").write_text('{"name": "victim", "backend": "qemu"}')
    (victim / ".lock").write_text("")
    args = [*verb, name] if verb[0] != "prop" else [*verb, name, "/", "x"]
    if verb[0] == "export":
        args = ["export", name, "-o", str(tmp_path / "x.tar.gz")]
    try:
        r = run_cli(*args)
        assert r.rc != 0 and "Traceback" not in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1, r.err
        assert victim.is_dir() and (victim / "handles.json").exists()
        assert not (tmp_path / "x.tar.gz").exists()
    finally:
        for p in victim.iterdir():
            p.unlink()
        victim.rmdir()


def test_stop_of_an_absolute_path_with_handles_removes_nothing(tmp_path, state_dir):
    other = tmp_path / "dir"
    other.mkdir()
    Handles(name="dir", backend="qemu", target="t").save(other)
    r = run_cli("stop", str(other))
    assert r.rc == 1 and "invalid instance name" in r.err
    assert (other / "handles.json").exists()


def test_stop_all_touches_only_emutui_directories(state_dir):
    # another program's directory in the state root, with a lock file and its data
    foreign = state_dir / "otherapp"
    foreign.mkdir()
    (foreign / ".lock").write_text("")
    (foreign / "data.db").write_text("precious")
    # a symlink to a directory elsewhere that looks like an instance
    elsewhere = state_dir.parent / f"elsewhere-{state_dir.name}"
    elsewhere.mkdir(exist_ok=True)
    Handles(name="link", backend="qemu", target="t").save(elsewhere)
    (state_dir / "link").symlink_to(elsewhere)
    ours = fake_instance(state_dir, "mine")
    try:
        r = run_cli("stop", "--all")
        assert r.rc == 0, r.err
        assert "stopped mine" in r.out and "otherapp" not in r.out and "link" not in r.out
        assert (foreign / "data.db").read_text() == "precious"
        assert (elsewhere / "handles.json").exists()
        assert not ours.exists()  # ours ended: kept as a run
        assert run_cli("stop", "otherapp").rc == 1
        assert run_cli("stop", "link").rc == 1
        assert (foreign / "data.db").exists() and (elsewhere / "handles.json").exists()
    finally:
        for p in elsewhere.iterdir():
            p.unlink()
        elsewhere.rmdir()


def test_a_directory_of_another_user_is_not_ours(state_dir, other_user):
    wd = fake_instance(state_dir, "theirs")
    os.chown(wd, other_user.uid, other_user.gid)
    for p in wd.iterdir():
        os.chown(p, other_user.uid, other_user.gid)
    r = run_cli("stop", "--all")
    assert "theirs" not in r.out
    assert run_cli("stop", "theirs").rc == 1
    assert (wd / "handles.json").exists()


@pytest.mark.parametrize("mode", [0o1777, 0o755, 0o770])
def test_an_existing_state_root_keeps_its_mode_and_a_public_one_is_refused(
    tmp_path, config_file, mode
):
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, mode)
    for args in (["ls"], ["start", "guest"], ["logs", "guest"], ["stop", "--all"]):
        r = run_cli(args[0], "--state-dir", str(root), *args[1:])
        assert r.rc == 1 and "not private" in r.err and "Traceback" not in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1
        assert stat.S_IMODE(root.stat().st_mode) == mode  # never chmodded
    assert list(root.iterdir()) == []


def test_a_private_root_is_used_as_is_and_a_new_one_is_made_private(tmp_path):
    root = tmp_path / "a" / "b" / "state"
    old = os.umask(0)
    try:
        r = run_cli("ls", "--state-dir", str(root))
        assert r.rc == 0
        Registry(root).create("x")
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", root):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p


def test_a_root_of_another_user_is_refused(tmp_path, other_user):
    root = tmp_path / "theirs"
    root.mkdir(mode=0o700)
    os.chown(root, other_user.uid, other_user.gid)
    r = run_cli("ls", "--state-dir", str(root))
    assert r.rc == 1 and "not to you" in r.err


# -- finding 9: every kept generation, in order -------------------------------------------


def test_logs_read_every_generation_in_order(state_dir):
    wd = fake_instance(state_dir, "rot", com1="")
    h = Handles.load(wd)
    h.channels["com1"].log = str(wd / "serial-com1.log")
    h.save(wd)
    lines = [f"line {i:05d}\n".encode() for i in range(3000)]
    data = b"".join(lines)
    # as RotatingLog leaves them: .2 oldest, .1, then the live file
    third = len(data) // 3
    (wd / "serial-com1.log.2").write_bytes(data[:third])
    (wd / "serial-com1.log.1").write_bytes(data[third : 2 * third])
    (wd / "serial-com1.log").write_bytes(data[2 * third :])
    r = run_cli("logs", "rot")
    assert r.rc == 0 and r.out.encode() == data


def test_events_read_every_generation_in_order(state_dir):
    wd = fake_instance(state_dir, "ev")
    evs = [json.dumps(Event(name=f"E{i}", timestamp=1e9 + i).to_json()) + "\n" for i in range(200)]
    (wd / "events.jsonl.2").write_text("".join(evs[:70]))
    (wd / "events.jsonl.1").write_text("".join(evs[70:140]))
    (wd / "events.jsonl").write_text("".join(evs[140:]))
    r = run_cli("events", "ev", "--json")
    names = [json.loads(x)["name"] for x in r.out.splitlines()]
    assert names == [f"E{i}" for i in range(200)]
