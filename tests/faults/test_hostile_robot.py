"""Random and truncated bytes from a Renode robot port (hypothesis): the client answers
with a value or a one-line EmutuiError, never hangs past its timeout, never raises
anything else. And a Renode that dies and is started again."""

from __future__ import annotations

import asyncio
import os
import signal
import xmlrpc.client

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emutui.backends.renode.robot import RobotClient
from emutui.control import probe_status, start_target
from emutui.core import proc
from emutui.core.errors import EmutuiError
from emutui.core.model import InstanceState
from tests.renode.conftest import (  # noqa: F401 - fixtures
    board,
    renode_config,
    renode_config_file,
    standin,
    wait_for_file_text,
)

xml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=8,
)


async def ask(reply: bytes) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 2)
            await asyncio.sleep(0)  # the body may still be arriving; we do not care
            w.write(reply)
            await w.drain()
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = RobotClient("127.0.0.1", port, timeout=2.0, label="hostile")
    try:
        async with asyncio.timeout(10):
            try:
                await client.execute("peripherals")
            except EmutuiError as e:
                assert str(e) and "\n" not in str(e)
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            res = close()
            if asyncio.iscoroutine(res):
                await res
        server.close()


def http(body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % n + body


fast = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fast
@given(garbage=st.binary(max_size=300))
async def test_random_bytes_instead_of_http(garbage):
    await ask(garbage)


@fast
@given(body=st.binary(max_size=300))
async def test_random_body(body):
    await ask(http(body))


@fast
@given(value=xml_values)
async def test_wrong_shapes_of_result(value):
    await ask(http(xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()))


@fast
@given(
    status=st.sampled_from(["PASS", "FAIL", "", "weird"]), ret=xml_values, err=st.text(max_size=30)
)
async def test_result_struct_with_odd_members(status, ret, err):
    result = {"status": status, "return": ret, "error": err, "traceback": err, "output": ""}
    await ask(http(xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True).encode()))


@fast
@given(cut=st.integers(min_value=0, max_value=200))
async def test_truncated_reply(cut):
    full = http(
        xmlrpc.client.dumps(
            ({"status": "PASS", "return": "x" * 50},), methodresponse=True, allow_none=True
        ).encode()
    )
    await ask(full[:cut])


async def test_renode_dies_and_is_started_again(renode_config, registry, board):  # noqa: F811
    os.kill(board.pid, signal.SIGKILL)
    assert proc.wait_gone(board.pid, None, 5)
    assert (await probe_status(board)).state is InstanceState.DEAD
    again = await start_target(renode_config, registry, "board", None, False)
    await wait_for_file_text(again.serial_log("uart0"), b"stand-in firmware")
    assert (await probe_status(again)).state is InstanceState.RUNNING
