"""The CLI over real SSH: ls across hosts, NAME@HOST commands, and what goes wrong."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import needs_qemu, run_cli
from tests.remote.conftest import Lab, Sshd, host_cli


def test_ls_lists_every_host_with_a_host_column(lab: Lab) -> None:
    r = run_cli("ls")
    assert r.rc == 0, r.err
    assert "nor on lab1, lab2" in r.out
    r = run_cli("ls", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out) == []  # two reachable hosts with nothing running


@needs_qemu
def test_start_control_and_console_on_a_host(lab: Lab) -> None:
    r = run_cli("start", "guest@lab1")
    assert r.rc == 0, r.err
    assert "started guest" in r.out
    r = run_cli("ls", "--json")
    rows = json.loads(r.out)
    assert [(x["name"], x["host"], x["state"]) for x in rows] == [("guest@lab1", "lab1", "running")]
    text = run_cli("ls").out
    assert "lab1" in text and "guest@lab1" in text
    # The host's own emutui sees it too: it runs there.
    assert "guest" in host_cli(lab, "lab1", "ls").stdout
    r = run_cli("pause", "guest@lab1")
    assert r.rc == 0 and "paused" in r.out, r.err
    r = run_cli("resume", "guest@lab1")
    assert r.rc == 0 and "running" in r.out, r.err
    r = run_cli("prop", "get", "guest@lab1", "/machine/peripheral/edu0", "type")
    assert r.rc == 0 and "edu" in r.out, r.err
    r = run_cli("mem", "read", "guest@lab1", "edu0.bar0", "0", "4")
    assert r.rc == 0 and "ed000001" in r.out.replace(" ", ""), r.out + r.err
    # The console: what is typed is echoed by the guest and comes back.
    p = subprocess.Popen(
        [sys.executable, "-m", "emutui", "term", "guest@lab1", "com1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(2.0)
    assert p.stdin is not None
    p.stdin.write(b"hello-over-ssh\r")
    p.stdin.flush()
    time.sleep(2.0)
    out, err = p.communicate(timeout=30)
    assert b"hello-over-ssh" in out, (out[-300:], err[-300:])
    r = run_cli("logs", "guest@lab1")
    assert "hello-over-ssh" in r.out
    r = run_cli("shell", "guest@lab1", "-c", "query-status")
    assert r.rc == 0 and "running" in r.out, r.out + r.err
    r = run_cli("events", "guest@lab1")
    assert r.rc == 0 and "STOP" in r.out and "RESUME" in r.out, r.out + r.err
    r = run_cli("prop", "get", "guest@lab1", "/machine/peripheral/nosuch", "type")
    assert r.rc == 1 and r.err.count("\n") == 1 and "Traceback" not in r.err, r.err
    r = run_cli("stop", "guest@lab1")
    assert r.rc == 0, r.err
    assert json.loads(run_cli("ls", "--json").out) == []


def test_unreachable_host_is_one_row(lab: Lab, sshd: Sshd) -> None:
    with lab.config.open("a") as f:
        f.write(sshd.host_toml("closed", lab.hosts["lab1"], None))
    t0 = time.monotonic()
    r = run_cli("ls")
    assert r.rc == 0, r.err
    assert time.monotonic() - t0 < 40
    lines = [ln for ln in r.out.splitlines() if "closed" in ln]
    assert lines and "unreachable" in lines[0], r.out
    assert "Connection refused" in r.out or "connect" in r.out.lower(), r.out


def test_wrong_host_key_is_refused(lab: Lab, sshd: Sshd) -> None:
    with lab.config.open("a") as f:
        f.write(sshd.host_toml("wrongkey", lab.hosts["lab1"], None))
    r = run_cli("ls", "--json")
    rows = {x["name"]: x for x in json.loads(r.out)}
    assert "Host key verification failed" in rows["@wrongkey"]["detail"], rows
    r = run_cli("pause", "guest@wrongkey")
    assert r.rc != 0
    assert "Host key verification failed" in r.err
    assert "Traceback" not in r.err


def test_host_without_emutui(lab: Lab, sshd: Sshd) -> None:
    with lab.config.open("a") as f:
        f.write(sshd.host_toml("nolab", lab.hosts["lab1"], None, emutui="/nonexistent/emutui"))
    rows = {x["name"]: x for x in json.loads(run_cli("ls", "--json").out)}
    assert "not installed" in rows["@nolab"]["detail"], rows
