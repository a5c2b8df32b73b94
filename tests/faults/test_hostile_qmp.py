"""A small hostile QMP server: garbage, truncation and wrong types in every place the
connector reads. The connector must answer with an EmutuiError (a one-line message) or
a value, never hang past its timeouts and never raise anything else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emutui.backends.qemu.connector import QemuConnector
from emutui.core import proc
from emutui.core.errors import BusyError, EmutuiError
from emutui.core.handles import Channel, Handles
from emutui.core.instance import Instance

GREETING = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}\r\n'  # noqa: E501

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=10,
)


def instance_for(sock: Path) -> Instance:
    wd = sock.parent
    me = os.getpid()
    h = Handles(
        name="hostile",
        backend="qemu",
        target="t",
        pid=me,
        pid_start=proc.start_time(me),
        channels={"qmp-aux": Channel(role="qmp-aux", kind="unix", path=str(sock))},
    )
    return Instance(name="hostile", wd=wd, handles=h)


async def serve(sock: Path, script: list[bytes | None]) -> asyncio.AbstractServer:
    """Send each scripted chunk after reading one request line (None: close)."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        requests = json_objects(r)
        try:
            for i, chunk in enumerate(script):
                if chunk is None:
                    break
                if i > 0:
                    request = await anext(requests, None)
                    if request is None:
                        return
                    chunk = fill_id(chunk, request)
                w.write(chunk)
                await w.drain()
            await asyncio.sleep(0.05)
        finally:
            w.close()

    if sock.exists():
        sock.unlink()
    return await asyncio.start_unix_server(handle, path=str(sock))


async def json_objects(r: asyncio.StreamReader):
    """Requests as QEMU reads them: a stream of JSON objects, no newlines needed."""
    buf = ""
    dec = json.JSONDecoder()
    while True:
        data = await r.read(4096)
        if not data:
            return
        buf += data.decode(errors="replace")
        while True:
            buf = buf.lstrip()
            try:
                obj, end = dec.raw_decode(buf)
            except ValueError:
                break
            buf = buf[end:]
            yield obj


def fill_id(chunk: bytes | None, request: object) -> bytes | None:
    """Echo the request id into a reply template, as a real server would."""
    if chunk is None or b"@ID@" not in chunk:
        return chunk
    rid = request.get("id") if isinstance(request, dict) else None
    if rid is None:
        return chunk.replace(b', "id": @ID@', b"")
    return chunk.replace(b"@ID@", json.dumps(rid).encode())


async def exercise(tmp: Path, script: list[bytes | None]) -> None:
    sock = tmp / "q.sock"
    server = await serve(sock, script)
    conn = QemuConnector(instance_for(sock), aux=True)
    try:
        async with asyncio.timeout(8):
            try:
                await conn.connect()
                await conn.status()
                await conn.list_props("/")
                await conn.regions()
            except EmutuiError as e:
                assert str(e) and "\n" not in str(e)
    finally:
        await conn.close()
        server.close()


settings_fast = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@settings_fast
@given(garbage=st.binary(min_size=1, max_size=200))
async def test_garbage_greeting(tmp_path, garbage):
    await exercise(tmp_path, [garbage + b"\n", None])


@settings_fast
@given(cut=st.integers(min_value=1, max_value=len(GREETING) - 3))
async def test_truncated_greeting_then_hangup(tmp_path, cut):
    await exercise(tmp_path, [GREETING[:cut], None])


@settings_fast
@given(value=json_values)
async def test_wrong_types_in_replies(tmp_path, value):
    reply = b'{"return": ' + json.dumps(value).encode() + b', "id": @ID@}\r\n'
    caps = b'{"return": {}, "id": @ID@}\r\n'
    await exercise(tmp_path, [GREETING, caps, reply, reply, reply, reply])


@settings_fast
@given(garbage=st.binary(min_size=1, max_size=100))
async def test_garbage_reply_after_handshake(tmp_path, garbage):
    await exercise(tmp_path, [GREETING, b'{"return": {}, "id": @ID@}\r\n', garbage + b"\r\n", None])


@settings_fast
@given(event=json_values)
async def test_malformed_events_do_not_break_the_stream(tmp_path, event):
    ev = json.dumps({"event": "X", "data": event, "timestamp": event}).encode() + b"\r\n"
    await exercise(
        tmp_path,
        [
            GREETING + ev,
            b'{"return": {}, "id": @ID@}\r\n' + ev,
            b'{"return": {"status": "running", "running": true}, "id": @ID@}\r\n' + ev,
            None,
        ],
    )


async def test_silent_server_is_busy_not_a_hang(tmp_path):
    sock = tmp_path / "q.sock"

    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await asyncio.start_unix_server(silent, path=str(sock))
    conn = QemuConnector(instance_for(sock), aux=True)
    try:
        with pytest.raises(BusyError, match="did not answer within"):
            await conn.connect()
    finally:
        await conn.close()
        server.close()


# -- issue 10 finding 6: a monitor that stops answering; finding 11: an event flood ------------


def hostile_instance_dir(state_dir: Path, sock: Path, name: str = "hostile") -> Path:
    """An instance directory whose monitor is ``sock`` (no broker: the peer is the monitor)."""
    wd = state_dir / name
    wd.mkdir(mode=0o700)
    # the "emulator" is a sleeper of its own: the state_dir fixture stops what it finds
    stand_in = subprocess.Popen(["sleep", "120"], start_new_session=True)
    Handles(
        name=name,
        backend="qemu",
        target="t",
        pid=stand_in.pid,
        pid_start=proc.start_time(stand_in.pid),
        channels={"qmp-aux": Channel(role="qmp-aux", kind="unix", path=str(sock))},
    ).save(wd)
    return wd


async def peer(sock: Path, on_request) -> asyncio.AbstractServer:
    """A QMP peer that greets, negotiates, then lets ``on_request(msg, writer)`` answer."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(GREETING)
        try:
            async for msg in json_objects(r):
                if msg.get("execute") == "qmp_capabilities":
                    w.write(json.dumps({"return": {}, "id": msg.get("id")}).encode() + b"\r\n")
                else:
                    await on_request(msg, w)
                await w.drain()
        except (ConnectionError, OSError):
            pass

    return await asyncio.start_unix_server(handle, path=str(sock))


async def run_cli_async(*args: str, timeout: float = 60) -> tuple[int, str]:
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emutui", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(p.communicate(), timeout)
    return p.returncode or 0, err.decode()


@pytest.mark.parametrize("behaviour", ["never", "wrong-id", "greets-only"])
async def test_a_monitor_that_stops_answering_is_one_line_not_a_hang(
    tmp_path, state_dir, monkeypatch, behaviour
):
    monkeypatch.setenv("EMUTUI_REQUEST_TIMEOUT", "1")
    sock = tmp_path / "m.sock"

    async def never(msg, w) -> None:
        return

    async def wrong_id(msg, w) -> None:
        w.write(b'{"return": {}, "id": "not-yours"}\r\n')

    if behaviour == "greets-only":

        async def silent(r, w) -> None:
            w.write(GREETING)
            await asyncio.sleep(30)

        server = await asyncio.start_unix_server(silent, path=str(sock))
    else:
        server = await peer(sock, never if behaviour == "never" else wrong_id)
    hostile_instance_dir(state_dir, sock)
    try:
        rc, err = await run_cli_async("pause", "hostile")
    finally:
        server.close()
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "hostile" in lines[0] and "within" in lines[0] and "Traceback" not in err
    if behaviour != "greets-only":
        assert "stop: no answer within 1 s" in lines[0]  # names the command


async def flood_peer(msg, w) -> None:
    """Answers "stop" after 200k events of 1 KB, everything else at once."""
    if msg.get("execute") == "stop":
        ev = {"timestamp": {"seconds": 1, "microseconds": 0}, "event": "FLOOD",
              "data": {"pad": "x" * 1000}}  # fmt: skip
        line = json.dumps(ev).encode() + b"\r\n"
        for i in range(200_000):
            w.write(line)
            if i % 512 == 0:
                await w.drain()
    w.write(json.dumps({"return": {}, "id": msg.get("id")}).encode() + b"\r\n")


async def test_an_event_flood_through_the_broker_is_bounded_and_pause_answers(
    tmp_path, monkeypatch
):
    """Issue 10 finding 11: a one-shot command (pause) gets no events from the broker at
    all, so the flood costs it nothing; the broker passes events on unparsed and
    journals each, or counts it as dropped when the journal falls behind."""
    from emutui.core import qmpbroker

    monkeypatch.setenv("EMUTUI_REQUEST_TIMEOUT", "120")  # no wall-clock claim here
    upstream = tmp_path / "q.sock"
    server = await peer(upstream, flood_peer)
    wd = tmp_path / "inst"
    wd.mkdir()
    listen = str(wd / "qmp.sock")
    broker = qmpbroker.Broker(
        qmpbroker.BrokerSpec(
            name="flood", upstream=str(upstream), listen=listen, journal_dir=str(wd)
        )
    )
    btask = asyncio.create_task(broker.serve(signals=False))
    for _ in range(500):
        if os.path.exists(listen):
            break
        await asyncio.sleep(0.01)
    stand_in = subprocess.Popen(["sleep", "120"], start_new_session=True)
    h = Handles(
        name="flood", backend="qemu", target="t", pid=stand_in.pid,
        pid_start=proc.start_time(stand_in.pid),
        channels={"qmp": Channel(role="qmp", kind="unix", path=listen, upstream=str(upstream))},
    )  # fmt: skip
    conn = QemuConnector(Instance(name="flood", wd=wd, handles=h))
    conn.want_events = False  # as control.connected(..., events=False) does for pause
    assert conn.via_broker
    try:
        await conn.connect()
        stream = conn.events()
        await conn.pause()
        assert stream._listener._queue.qsize() == 0  # not one event crossed over
    finally:
        await conn.close()
        btask.cancel()
        with contextlib.suppress(BaseException):
            await btask
        server.close()
        stand_in.kill()
        stand_in.wait()
    files = sorted(wd.glob("events.jsonl*"), key=lambda f: -int(f.suffix[1:] or 0)
                   if f.suffix != ".jsonl" else 0)  # fmt: skip
    data = b"".join(f.read_bytes() for f in files)  # oldest generation first
    journal = [json.loads(x) for x in data.splitlines() if x]
    flood = sum(1 for e in journal if e["name"] == "FLOOD")
    dropped = sum(e["data"]["count"] for e in journal if e["name"] == "EMUTUI_EVENTS_DROPPED")
    assert flood + dropped == 200_000  # each journaled, or counted


async def test_an_event_flood_straight_to_the_connector_is_bounded(tmp_path, monkeypatch):
    """Without a broker (a bare socket): the connector keeps at most its queue bound
    (the rest counted as dropped), keeps no history (qemu.qmp's listener kept every
    event), and answers."""
    from emutui.backends.qemu import connector as qc

    monkeypatch.setenv("EMUTUI_REQUEST_TIMEOUT", "120")
    sock = tmp_path / "f.sock"
    pad = "x" * 1000

    async def flood(msg, w) -> None:
        if msg.get("execute") == "stop":
            ev = {"event": "FLOOD", "data": {"pad": pad}, "timestamp": {"seconds": 1}}
            line = json.dumps(ev).encode() + b"\r\n"
            for i in range(50_000):
                w.write(line)
                if i % 512 == 0:
                    await w.drain()
        w.write(json.dumps({"return": {}, "id": msg.get("id")}).encode() + b"\r\n")

    server = await peer(sock, flood)
    conn = QemuConnector(instance_for(sock), aux=True)
    peak = 0
    try:
        await conn.connect()
        stream = conn.events()
        listeners = [stream._listener, conn._journal_listener]

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, *(lst._queue.qsize() for lst in listeners))
                await asyncio.sleep(0.01)

        w = asyncio.create_task(watch())
        async with asyncio.timeout(120):
            await conn.pause()
        w.cancel()
        assert peak <= qc.EVENT_QUEUE_MAX
        assert not conn.client.events.history  # qemu.qmp's own listener keeps nothing
        assert stream._listener.dropped > 0
        assert not stream._listener.history  # qemu.qmp's listener kept every event here
        first = await anext(stream)
        assert first.name == "EMUTUI_EVENTS_DROPPED" and first.data["count"] > 0
    finally:
        await conn.close()
        server.close()
