"""The CLI against real QEMU: the README's sample session and every bad input, one line each."""

from __future__ import annotations

import json

from tests.conftest import needs_qemu, run_cli

pytestmark = needs_qemu


def one_line_error(r) -> str:
    assert r.rc == 1, (r.rc, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert "Traceback" not in r.err
    assert lines[0].startswith("emutui: ")
    return lines[0]


def test_readme_session(config_file, state_dir):
    r = run_cli("start", "guest")
    assert r.rc == 0, r.err
    rows = json.loads(run_cli("ls", "--json").out)
    assert len(rows) == 1
    row = rows[0]
    assert {"name", "backend", "target", "state", "pid", "dir"} <= set(row)
    assert (row["name"], row["backend"], row["state"]) == ("guest", "qemu", "running")

    r = run_cli("mem", "read", "guest", "edu0.bar0", "0", "4", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out) == {"region": "edu0.bar0", "offset": 0, "hex": "ed000001"}
    r = run_cli("mem", "read", "guest", "edu0.bar0", "0", "4")
    assert r.out.strip() == "00000000: ed00 0001                                ...."

    r = run_cli("mem", "write", "guest", "edu0.bar0", "4", "78563412", "--yes")
    assert r.rc == 0, r.err
    r = run_cli("mem", "read", "guest", "edu0.bar0", "4", "4", "--json")
    # edu's liveness register reads back the bitwise inverse: ~0x12345678 = 0xedcba987
    assert bytes.fromhex(json.loads(r.out)["hex"]) == (0xEDCBA987).to_bytes(4, "little")
    # a 0x value is a number: the same word, not the bytes 12 34 56 78 in memory order
    r = run_cli("mem", "write", "guest", "edu0.bar0", "4", "0x12345678", "--yes")
    assert r.rc == 0, r.err
    r = run_cli("mem", "read", "guest", "edu0.bar0", "4", "4", "--json")
    assert bytes.fromhex(json.loads(r.out)["hex"]) == (0xEDCBA987).to_bytes(4, "little")

    r = run_cli("prop", "get", "guest", "/machine/peripheral/edu0", "type")
    assert r.rc == 0 and r.out.strip() == "edu"
    r = run_cli("prop", "ls", "guest", "/machine/peripheral", "--json")
    assert any(n["name"] == "edu0" and n["children"] for n in json.loads(r.out))
    r = run_cli("mem", "regions", "guest", "--json")
    bar = next(x for x in json.loads(r.out) if x["name"] == "edu0.bar0")
    assert bar["size"] == 1 << 20 and bar["writable"]

    r = run_cli("logs", "guest", "com1")
    assert "emutui-guest: ready (COM1)" in r.out
    r = run_cli("events", "guest", "--json")
    assert any(json.loads(line)["name"] == "RESUME" for line in r.out.splitlines())

    r = run_cli("stop", "guest")
    assert r.rc == 0, r.err
    assert json.loads(run_cli("ls", "--json").out) == []


def test_term_echo_from_piped_stdin(config_file, state_dir):
    assert run_cli("start", "guest").rc == 0
    r = run_cli("term", "guest", "com1", input="ping from term\r")
    assert r.rc == 0, r.err
    assert "ping from term" in r.out


def test_prop_set_needs_confirmation(config_file, state_dir):
    assert run_cli("start", "guest").rc == 0
    path = "/machine/unattached/device[0]"
    line = one_line_error(run_cli("prop", "set", "guest", path, "family", "7"))
    assert "not confirmed" in line
    assert run_cli("prop", "set", "guest", path, "family", "7", "--yes").rc == 0
    assert run_cli("prop", "get", "guest", path, "family").out.strip() == "7"


def test_writes_without_qtest_are_refused_clearly(config_file, state_dir):
    assert run_cli("start", "plain").rc == 0
    line = one_line_error(run_cli("mem", "write", "plain", "edu0.bar0", "4", "00000000", "--yes"))
    assert "qtest = true" in line


def test_bad_inputs_each_one_line(config_file, state_dir):
    assert "unknown target 'nope'" in one_line_error(run_cli("start", "nope"))
    assert "no instance named 'ghost'" in one_line_error(run_cli("pause", "ghost"))
    assert run_cli("start", "guest").rc == 0
    assert "not a number" in one_line_error(run_cli("mem", "read", "guest", "edu0.bar0", "x1", "4"))
    assert "outside the region" in one_line_error(
        run_cli("mem", "read", "guest", "edu0.bar0", "0x100000", "4")
    )
    assert "no memory region 'bar9'" in one_line_error(
        run_cli("mem", "read", "guest", "bar9", "0", "4")
    )
    assert "negative" in one_line_error(run_cli("mem", "read", "guest", "edu0.bar0", "-4", "4"))
    assert "aligned" in one_line_error(
        run_cli("mem", "write", "guest", "edu0.bar0", "2", "ff", "--yes")
    )
    assert "not hex" in one_line_error(
        run_cli("mem", "write", "guest", "edu0.bar0", "0", "zz", "--yes")
    )
    line = one_line_error(run_cli("prop", "get", "guest", "/machine/nothing", "type"))
    assert "/machine/nothing" in line
    assert "already running" in one_line_error(run_cli("start", "guest"))
    assert "no serial channel 'com9'" in one_line_error(run_cli("logs", "guest", "com9"))


def test_malformed_config_one_line(tmp_path, state_dir, monkeypatch):
    cases = {
        "[targets.a]\nbackend = 'qemu'\nserial = 'com1'\n": "targets.a.serial: expected a list",
        "[targets.a]\nbackend = 'qemu'\nqtest = 'yes'\n": "targets.a.qtest: expected true or false",
        "[targets.a]\nbackend = 'bochs'\n": "targets.a.backend: unknown backend 'bochs'",
        "[targets.a]\nbackend = 'qemu'\nkernal = 'x'\n": "targets.a.kernal: unknown key",
        "[targets.a]\nbackend = 'qemu'\nkernel = 'missing.elf'\n": "file not found",
        "[targets.a\n": "not valid TOML",
        "[targets]\na = 1\n": "targets.a: expected a table",
    }
    for text, expected in cases.items():
        p = tmp_path / "bad.toml"
        p.write_text(text)
        line = one_line_error(run_cli("--config", str(p), "start", "a"))
        assert expected in line, (text, line)
        assert str(p) in line
