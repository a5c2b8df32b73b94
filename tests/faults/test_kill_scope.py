"""Finding 1 of issue 10: `emutui stop` signals only processes that are provably its own.

A hostile or corrupted handles.json (``"pid": 1``, ``"pid": true``, a null or wrong start
time) once made ``stop`` send kill(-1). The replay runs inside a private PID namespace
(``unshare --pid --fork --mount-proc``) so a regression kills only the namespace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

INNER = textwrap.dedent(
    """
    import json, subprocess, sys, time
    from pathlib import Path
    from emutui.core import proc
    from emutui.core.registry import Registry

    state = Path(sys.argv[1])
    def sleeper(own_session):
        return subprocess.Popen(["sleep", "300"], start_new_session=own_session)
    a = sleeper(True)    # a session of its own: what kill(-1) or killpg(a) would hit
    b = sleeper(False)   # in our group, recorded correctly: signalled alone, not its group
    c = sleeper(False)   # in our group too: must survive b's stop
    sa, sb = proc.start_time(a.pid), proc.start_time(b.pid)
    cases = {
        "pid1": (1, None),
        "pidtrue": (True, None),
        "pidone-start": (1, proc.start_time(1)),
        "nullstart": (a.pid, None),
        "wrongstart": (a.pid, sa + 1),
        "strstart": (a.pid, str(sa)),
        "floatpid": (float(a.pid), sa),
        "strpid": (str(a.pid), sa),
    }
    reg = Registry(state)
    for name, (pid, start) in cases.items():
        wd = reg.create(name)
        h = {"name": name, "backend": "qemu", "target": "t", "command": [],
             "channels": {r: {"role": r, "kind": "unix", "path": str(wd / f"{r}.sock")}
                          for r in ("qmp", "qmp-aux")},
             "created": time.time(), "pid": pid, "pid_start": start,
             "options": {"helpers": {"serialhub": [pid, start]}}}
        (wd / "handles.json").write_text(json.dumps(h))
    r = subprocess.run([sys.executable, "-m", "emutui", "--state-dir", str(state),
                        "stop", "--all"], capture_output=True, text=True, timeout=120)
    # b is ours by pid and start time but leads no session: only b gets the signal
    proc.terminate(b.pid, sb, grace=5.0)
    time.sleep(0.2)
    res = {"a": a.poll(), "b": b.poll(), "c": c.poll(), "rc": r.returncode,
           "out": r.stdout + r.stderr}
    for p in (a, b, c):
        p.kill()
    print(json.dumps(res))
    """
)


def _unshare_ok() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, timeout=30
    )
    return r.returncode == 0


def test_stop_never_signals_what_it_cannot_prove_is_its_own(tmp_path: Path) -> None:
    if not _unshare_ok():
        pytest.skip("unshare --pid --fork --mount-proc is not permitted here (needs root)")
    script = tmp_path / "inner.py"
    script.write_text(INNER)
    state = tmp_path / "state"
    r = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script), str(state)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["a"] is None, f"a process in its own session was signalled: {res}"
    assert res["c"] is None, f"a bystander in the stopped pid's group was signalled: {res}"
    assert res["b"] is not None, f"the recorded, matching pid was not stopped: {res}"
    assert "Traceback" not in res["out"], res["out"]


def test_signal_owned_refuses_pids_that_are_not_provably_ours() -> None:
    from emutui.core import proc

    p = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        st = proc.start_time(p.pid)
        assert st is not None
        for pid, start in (
            (1, proc.start_time(1)),
            (True, None),
            (0, 0),
            (-1, 0),
            (p.pid, None),
            (p.pid, st + 1),
            (p.pid, float(st)),
            (p.pid, True),
            (str(p.pid), st),
        ):
            assert not proc.signal_owned(pid, start, 0), (pid, start)
        assert proc.signal_owned(p.pid, st, 0)
    finally:
        p.kill()
        p.wait()


def test_handles_json_types_are_strict(tmp_path: Path) -> None:
    from emutui.core.errors import ProtocolError
    from emutui.core.handles import Handles

    base = {"name": "x", "backend": "qemu", "target": "t"}
    for bad in (
        {"pid": True},
        {"pid": 1},
        {"pid": "123"},
        {"pid": 12.0},
        {"pid_start": "5"},
        {"pid_start": False},
        {"created": "now"},
        {"channels": {"a": {"role": 1}}},
        {"options": []},
        {"channels": {"a": {"role": "qmp", "kind": "unix", "port": "1"}}},
    ):
        with pytest.raises(ProtocolError):
            Handles.from_json(base | bad)
    assert Handles.from_json(base | {"pid": 4242, "pid_start": 7}).pid == 4242
