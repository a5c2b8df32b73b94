"""A small hostile QMP server: garbage, truncation and wrong types in every place the
connector reads. The connector must answer with an EmutuiError (a one-line message) or
a value, never hang past its timeouts and never raise anything else."""

from __future__ import annotations

import asyncio
import json
import os
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
