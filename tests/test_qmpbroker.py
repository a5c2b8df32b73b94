"""The QMP broker against a scripted QEMU stand-in: plain QMP for every client.

The stand-in answers like QEMU (greeting, negotiation, ids echoed as sent) and
can emit events, a huge reply or no reply on request; the broker runs in the
test's own loop. Real-QEMU tests are in tests/test_broker_qemu.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import QMPClient

from emutui.core.qmpbroker import DROPPED_EVENT, NO_EVENTS_CAP, Broker, BrokerSpec, JsonStream

GREETING = {
    "QMP": {
        "version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "test"},
        "capabilities": ["oob"],
    }
}


class FakeQemu:
    """One QMP client at a time, like QEMU. Commands:
    ``echo`` returns its arguments; ``emit`` {n, size} sends n events then replies;
    ``big`` {size} replies with a string of that size; ``silent`` never replies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server: asyncio.AbstractServer | None = None
        self.negotiated_with: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def close(self) -> None:
        if self.server:
            self.server.close()
        for w in self.writers:
            w.close()

    async def event(self, name: str, data: Any = None) -> None:
        for w in self.writers:
            ev = {"event": name, "timestamp": {"seconds": 1, "microseconds": 2}}
            if data is not None:
                ev["data"] = data
            w.write(json.dumps(ev).encode() + b"\r\n")
            await w.drain()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.writers.append(w)
        w.write(json.dumps(GREETING).encode() + b"\r\n")
        stream = JsonStream()
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    return
                for text in stream.feed(data):
                    await self._answer(json.loads(text), w)
        finally:
            self.writers.remove(w)
            w.close()

    async def _answer(self, msg: dict[str, Any], w: asyncio.StreamWriter) -> None:
        self.requests.append(msg)
        cmd = msg.get("execute") or msg.get("exec-oob")
        args = msg.get("arguments", {})
        reply: dict[str, Any]
        if cmd == "qmp_capabilities":
            self.negotiated_with.append(args)
            reply = {"return": {}}
        elif cmd == "silent":
            return
        elif cmd == "emit":
            for i in range(args["n"]):
                ev = {
                    "event": "FLOOD",
                    "data": {"i": i, "pad": "x" * args.get("size", 0)},
                    "timestamp": {"seconds": 1, "microseconds": 0},
                }
                w.write(json.dumps(ev).encode() + b"\r\n")
                if i % 256 == 0:
                    await w.drain()
            reply = {"return": {"emitted": args["n"]}}
        elif cmd == "big":
            reply = {"return": "y" * args["size"]}
        else:
            reply = {"return": {"cmd": cmd, "args": args, "oob": "exec-oob" in msg}}
        if "id" in msg:
            reply["id"] = msg["id"]
        w.write(json.dumps(reply).encode() + b"\r\n")
        await w.drain()


@contextlib.asynccontextmanager
async def broker_on_fake(tmp_path: Path, **spec_kw: Any) -> AsyncIterator[tuple[FakeQemu, str]]:
    fake = FakeQemu(tmp_path / "q.sock")
    await fake.start()
    listen = str(tmp_path / "b.sock")
    spec = BrokerSpec(
        name="t", upstream=str(fake.path), listen=listen, journal_dir=str(tmp_path), **spec_kw
    )
    broker = Broker(spec)
    task = asyncio.create_task(broker.serve(signals=False))
    for _ in range(500):
        if Path(listen).exists():
            break
        await asyncio.sleep(0.01)
    try:
        yield fake, listen
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        await fake.close()


class Raw:
    """A raw QMP client: bytes in, JSON lines out."""

    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w = r, w

    @classmethod
    async def open(cls, path: str) -> Raw:
        r, w = await asyncio.open_unix_connection(path, limit=1 << 24)
        return cls(r, w)

    async def send(self, obj: Any) -> None:
        self.w.write(obj if isinstance(obj, bytes) else json.dumps(obj).encode())
        await self.w.drain()

    async def recv(self, timeout: float = 10) -> Any:
        line = await asyncio.wait_for(self.r.readline(), timeout)
        if not line:
            raise EOFError
        return json.loads(line)

    async def reply(self, timeout: float = 10) -> Any:
        """The next non-event message."""
        while True:
            msg = await self.recv(timeout)
            if "event" not in msg:
                return msg

    async def negotiate(self, enable: list[str] | None = None) -> None:
        await self.recv()  # greeting
        args = {"enable": enable} if enable else {}
        await self.send({"execute": "qmp_capabilities", "arguments": args})
        assert await self.reply() == {"return": {}}

    def close(self) -> None:
        self.w.close()


async def test_greeting_is_qemus_and_negotiation_is_per_client(tmp_path):
    async with broker_on_fake(tmp_path) as (fake, path):
        a = await Raw.open(path)
        assert await a.recv() == GREETING
        await a.send({"execute": "query-status", "id": 1})
        err = await a.reply()
        assert err["id"] == 1 and err["error"]["class"] == "CommandNotFound"
        await a.send({"execute": "qmp_capabilities", "id": "x"})
        assert await a.reply() == {"return": {}, "id": "x"}
        await a.send({"execute": "qmp_capabilities", "id": "y"})
        assert (await a.reply())["error"]["class"] == "CommandNotFound"
        b = await Raw.open(path)
        await b.negotiate(["oob"])
        await b.send({"execute": "qmp_capabilities", "arguments": {"enable": ["nope"]}, "id": 3})
        assert "error" in await b.reply()
        # QEMU itself negotiated once, with the broker, with oob enabled
        assert fake.negotiated_with == [{"enable": ["oob"]}]
        a.close()
        b.close()


@pytest.mark.parametrize(
    "client_id", [1, "1", {"a": [1, 2, None]}, [True, "x"], None, 4.5, "__qmp#00001", -7]
)
async def test_ids_are_restored_exactly_and_replies_reach_the_asker(tmp_path, client_id):
    async with broker_on_fake(tmp_path) as (_fake, path):
        clients = [await Raw.open(path) for _ in range(3)]
        for c in clients:
            await c.negotiate()
        # every client uses the same id at once: each gets its own answer back
        for n, c in enumerate(clients):
            await c.send({"execute": "echo", "arguments": {"who": n}, "id": client_id})
        for n, c in enumerate(clients):
            reply = await c.reply()
            assert reply == {
                "return": {"cmd": "echo", "args": {"who": n}, "oob": False},
                "id": client_id,
            }
        # no id in, no id out
        await clients[0].send({"execute": "echo"})
        assert "id" not in await clients[0].reply()
        for c in clients:
            c.close()


async def test_events_reach_every_negotiated_client_in_order(tmp_path):
    async with broker_on_fake(tmp_path) as (fake, path):
        a, b, early = await Raw.open(path), await Raw.open(path), await Raw.open(path)
        await a.negotiate()
        await b.negotiate()
        await early.recv()  # greeted, not negotiated: QEMU sends it no events
        for name in ("STOP", "RESUME", "STOP", "RESUME"):
            await fake.event(name)
        for c in (a, b):
            got = [(await c.recv())["event"] for _ in range(4)]
            assert got == ["STOP", "RESUME", "STOP", "RESUME"]
        await early.send({"execute": "qmp_capabilities", "id": 1})
        assert await early.recv() == {"return": {}, "id": 1}  # no event came before it
        journal = [json.loads(x)["name"] for x in (tmp_path / "events.jsonl").read_text().split()]
        assert journal == ["STOP", "RESUME", "STOP", "RESUME"]  # journaled once, by the broker
        for c in (a, b, early):
            c.close()


async def test_exec_oob_only_for_clients_that_enabled_it(tmp_path):
    async with broker_on_fake(tmp_path) as (_fake, path):
        plain, oob = await Raw.open(path), await Raw.open(path)
        await plain.negotiate()
        await oob.negotiate(["oob"])
        await plain.send({"exec-oob": "migrate-pause", "id": 1})
        assert "exec-oob" in (await plain.reply())["error"]["desc"]
        await oob.send({"exec-oob": "migrate-pause", "id": 2})
        assert (await oob.reply())["return"]["oob"] is True
        plain.close()
        oob.close()


async def test_qemu_qmp_client_works_unchanged(tmp_path):
    async with broker_on_fake(tmp_path) as (_fake, path):
        clients = [QMPClient(f"c{i}") for i in range(4)]
        for c in clients:
            await c.connect(path)
        assert clients[0].greeting._raw == GREETING
        results = await asyncio.gather(
            *(c.execute("echo", {"n": i}) for i, c in enumerate(clients) for _ in range(20))
        )
        assert sorted(r["args"]["n"] for r in results) == sorted([0, 1, 2, 3] * 20)
        for c in clients:
            await c.disconnect()


async def test_garbage_client_is_dropped_and_others_go_on(tmp_path):
    async with broker_on_fake(tmp_path) as (_fake, path):
        good = await Raw.open(path)
        await good.negotiate()
        for junk in (b"garbage\n", b"[1, 2]", b"\xff\xfe{", b'{"execute": NaN}'):
            bad = await Raw.open(path)
            await bad.negotiate()
            await bad.send(junk)
            msgs = []
            with contextlib.suppress(EOFError, ValueError):
                while True:
                    msgs.append(await bad.recv())
            assert msgs and "error" in msgs[-1]  # told why, then dropped
            await good.send({"execute": "echo", "id": 1})
            assert (await good.reply())["id"] == 1
        good.close()


async def test_nonfinite_numbers_are_refused_not_forwarded(tmp_path):
    async with broker_on_fake(tmp_path) as (fake, path):
        c = await Raw.open(path)
        await c.negotiate()
        await c.send(b'{"execute": "qom-set", "arguments": {"value": 1e999}, "id": 5}')
        reply = await c.reply()
        assert reply["id"] == 5 and "finite" in reply["error"]["desc"]
        assert not any(r.get("execute") == "qom-set" for r in fake.requests)
        c.close()


READER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b'{"execute": "qmp_capabilities"}')
s.settimeout(5.0)  # the floods are over once nothing came for 5 s
data = []
try:
    while chunk := s.recv(1 << 20):
        data.append(chunk)
except TimeoutError:
    pass
print(b"".join(data).count(b'"FLOOD"'))
"""


async def test_stalled_client_is_cut_off_and_others_see_every_event(tmp_path):
    async with broker_on_fake(tmp_path, events_max=3000, stall=1.0) as (_fake, path):
        stalled = socket.socket(socket.AF_UNIX)  # a plain socket nobody reads
        stalled.connect(path)
        stalled.sendall(b'{"execute": "qmp_capabilities"}')
        # a reader that keeps up: a process of its own (the test's loop runs the broker)
        reader = await asyncio.create_subprocess_exec(
            sys.executable, "-c", READER, path, stdout=asyncio.subprocess.PIPE
        )
        await asyncio.sleep(1.0)  # connected and negotiated before the first flood
        # the one asking for the floods wants no events itself (emutui's one-shot commands)
        ctl = await Raw.open(path)
        await ctl.recv()
        await ctl.send({"execute": "qmp_capabilities", "arguments": {"enable": [NO_EVENTS_CAP]}})
        assert await ctl.recv() == {"return": {}}
        total = 0
        for _ in range(8):
            await ctl.send({"execute": "emit", "arguments": {"n": 1000, "size": 512}})
            reply = await ctl.recv(timeout=60)  # nothing but its reply: no events
            total += reply["return"]["emitted"]
            await asyncio.sleep(0.3)
        out, _ = await asyncio.wait_for(reader.communicate(), 120)
        assert int(out) == total  # a reader keeping up loses nothing

        # the staller was disconnected: its socket reaches EOF (or a reset) once drained
        def drain() -> None:
            stalled.settimeout(10)
            with contextlib.suppress(ConnectionResetError):
                while stalled.recv(1 << 20):
                    pass

        await asyncio.to_thread(drain)
        stalled.close()
        ctl.close()


async def test_slow_reader_gets_a_counted_drop_notice(tmp_path):
    async with broker_on_fake(tmp_path, events_max=20, stall=3600) as (_fake, path):
        slow = socket.socket(socket.AF_UNIX)  # reads nothing until the flood is over
        slow.connect(path)
        slow.sendall(b'{"execute": "qmp_capabilities"}')
        fast = await Raw.open(path)
        await fast.negotiate()
        await fast.send({"execute": "emit", "arguments": {"n": 5000, "size": 1024}, "id": 1})
        assert (await fast.reply(timeout=30))["return"] == {"emitted": 5000}
        slow.sendall(b'{"execute": "echo", "id": "end"}')

        def read_all() -> list[dict]:
            slow.settimeout(30)
            buf = b""
            while b'"id": "end"' not in buf:
                buf += slow.recv(1 << 20)
            return [json.loads(x) for x in buf.splitlines() if x.strip()]

        msgs = await asyncio.to_thread(read_all)
        flood = sum(1 for m in msgs if m.get("event") == "FLOOD")
        dropped = sum(m["data"]["count"] for m in msgs if m.get("event") == DROPPED_EVENT)
        assert dropped > 0 and flood + dropped == 5000  # every event delivered or counted
        slow.close()
        fast.close()


async def test_oversized_reply_is_an_error_for_the_asker_only(tmp_path, monkeypatch):
    monkeypatch.setattr("emutui.core.qmpbroker.UPSTREAM_LINE_MAX", 1 << 20)
    async with broker_on_fake(tmp_path) as (_fake, path):
        c = await Raw.open(path)
        await c.negotiate()
        await c.send({"execute": "big", "arguments": {"size": 5 << 20}, "id": "b"})
        reply = await c.reply(timeout=30)
        assert reply["id"] == "b" and "discarded" in reply["error"]["desc"]
        await c.send({"execute": "echo", "id": 2})
        assert (await c.reply())["id"] == 2  # and the stream goes on
        c.close()


def test_json_stream_splits_like_qemu():
    s = JsonStream()
    assert s.feed(b'{"a": "}\\"{"}  {"b"') == [b'{"a": "}\\"{"}']
    assert s.feed(b": [1, {}]}\n[2]") == [b'{"b": [1, {}]}', b"[2]"]
    with pytest.raises(ValueError):
        s.feed(b"  nope")
