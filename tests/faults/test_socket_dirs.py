"""Finding 2 of issue 10: another local user cannot take over an instance's sockets.

Sockets whose natural path is too long live in a short directory under
``$XDG_RUNTIME_DIR/emutui`` or ``$TMPDIR/emutui-<uid>``. A directory there that
another user made (or one that is group/other-writable, or a symlink) is refused
with one line, never used; new ones come out 0700 even under umask 000.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from emutui.core.errors import EmutuiError
from emutui.core.paths import (
    ensure_private_dir,
    release_socket_dir,
    runtime_base,
    short_socket_dir,
    socket_path,
)
from tests.conftest import OtherUser, needs_qemu


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A /tmp-like directory (1777) the other user can reach: pytest's tmp dirs are 0700."""
    d = Path(f"/tmp/et-safety-{os.getpid()}-{id(object()) % 100000}")
    d.mkdir()
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    env["TMPDIR"] = str(tmp)
    env.update(extra)
    return env


def _long_state(tmp_path: Path) -> Path:
    d = tmp_path / ("s" * 90)
    d.mkdir(mode=0o700)
    return d


def _umask0_start(state: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import os, sys\nos.umask(0)\nfrom emutui.cli import main\n"
        f"sys.exit(main(['--state-dir', {str(state)!r}, 'start', 'guest', '--paused']))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )


def _stop_all(state: Path, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "emutui", "--state-dir", str(state), "stop", "--all"],
        env=env,
        capture_output=True,
        timeout=120,
    )


def test_new_dirs_are_private_under_umask_000(tmp_path: Path) -> None:
    code = (
        "import os, sys\nos.umask(0)\nfrom pathlib import Path\n"
        "from emutui.core.paths import ensure_private_dir\n"
        f"ensure_private_dir(Path({str(tmp_path)!r}) / 'a' / 'b' / 'c')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    for p in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE((tmp_path / p).stat().st_mode) == 0o700, p


def test_existing_dirs_keep_their_mode_and_bad_ones_are_refused(tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    ok.mkdir(mode=0o755)
    ensure_private_dir(ok)
    assert stat.S_IMODE(ok.stat().st_mode) == 0o755  # never chmodded
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    with pytest.raises(EmutuiError, match="writable by other users"):
        ensure_private_dir(loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o777
    link = tmp_path / "link"
    link.symlink_to(ok)
    with pytest.raises(EmutuiError, match="symlink"):
        ensure_private_dir(link)


def test_xdg_runtime_dir_is_preferred_when_private(tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    assert runtime_base() == run / "emutui"
    os.chmod(run, 0o755)  # not a private runtime dir: not used
    assert runtime_base() != run / "emutui"


def test_short_socket_dir_is_released_when_empty(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    wd = tmp_path / ("w" * 110)
    wd.mkdir()
    p = socket_path(wd, "qmp.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(p))
    s.close()
    release_socket_dir(wd)
    assert not short_socket_dir(wd).exists()
    # a directory holding anything but our sockets is left alone
    p = socket_path(wd, "qmp.sock")
    (p.parent / "notes.txt").write_text("someone's")
    release_socket_dir(wd)
    assert (p.parent / "notes.txt").exists()


@pytest.mark.parametrize("variant", ["theirs-0777", "theirs-0700", "symlink", "ours-0777"])
@needs_qemu
def test_a_socket_dir_another_user_prepared_is_refused(
    variant: str, other_user: OtherUser, shared_tmp: Path, tmp_path: Path, config_file: Path
) -> None:
    base = shared_tmp / f"emutui-{os.getuid()}"
    if variant == "ours-0777":
        base.mkdir()
        os.chmod(base, 0o777)
    else:
        mine = shared_tmp / "attacker"
        other_user.run(["mkdir", "-m", "0777", str(mine)]).check_returncode()
        if variant == "symlink":
            other_user.run(["ln", "-s", str(mine), str(base)]).check_returncode()
        else:
            mode = "0777" if variant == "theirs-0777" else "0700"
            other_user.run(["mkdir", "-m", mode, str(base)]).check_returncode()
    state = _long_state(tmp_path)
    env = _env(shared_tmp)
    try:
        r = _umask0_start(state, env)
        assert r.returncode != 0, r.stdout
        err = r.stderr.strip()
        assert "refusing directory" in err and "Traceback" not in err, err
        assert len(err.splitlines()) == 1, err
        # nothing of ours went into the attacker's directory, and nothing was left running
        for d in (base, shared_tmp / "attacker"):
            if d.is_dir() and not d.is_symlink():
                assert not any(p.is_socket() for p in d.rglob("*")), list(d.rglob("*"))
        ls = subprocess.run(
            [sys.executable, "-m", "emutui", "--state-dir", str(state), "ls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "running" not in ls.stdout and "paused" not in ls.stdout, ls.stdout
    finally:
        _stop_all(state, env)


PROBE = r"""
import os, socket, sys
hits = []
for p in sys.argv[1:]:
    try:
        if os.path.exists(p) and __import__("stat").S_ISSOCK(os.stat(p).st_mode):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(2)
            s.connect(p)
            hits.append("connected " + p)
        else:
            with open(p, "rb") as f:
                f.read(1)
            hits.append("read " + p)
    except OSError:
        pass
for d in sys.argv[1:]:
    try:
        os.rename(d, d + ".stolen")
        hits.append("renamed " + d)
    except OSError:
        pass
print("\n".join(hits))
"""


@needs_qemu
def test_other_user_can_neither_connect_to_nor_read_a_running_instance(
    other_user: OtherUser, shared_tmp: Path, config_file: Path
) -> None:
    state = _long_state(shared_tmp)
    env = _env(shared_tmp)
    try:
        r = _umask0_start(state, env)  # umask 000: the worst case for what we create
        assert r.returncode == 0, r.stderr
        wd = state / "guest"
        short = Path(env["TMPDIR"]) / f"emutui-{os.getuid()}"
        targets = sorted({str(p) for p in [*wd.rglob("*"), wd, *short.rglob("*"), short]})
        assert any(t.endswith(".sock") and t.startswith(str(short)) for t in targets), targets
        # the attacker gets every path spelled out, and the path components are opened up
        # for this test (a 0711 chain), so only emutui's own modes protect the files
        os.chmod(state, 0o711)
        probe = other_user.run(["python3", "-c", PROBE, *targets], timeout=120)
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.decode().strip() == "", probe.stdout.decode()
        assert stat.S_IMODE(short.stat().st_mode) == 0o700
    finally:
        os.chmod(state, 0o700)
        _stop_all(state, env)
    assert not short_socket_dir(wd).exists()  # removed with the instance


def test_state_root_parents_are_private_under_umask_000(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "state"
    code = (
        "import os\nos.umask(0)\nfrom emutui.core.registry import Registry\n"
        f"Registry({str(root)!r}).create('x')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    for p in (tmp_path / "a", tmp_path / "a" / "b", root, root / "x"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
