"""Random replies on the qtest channel (hypothesis): a value or a one-line EmutuiError."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emutui.backends.qemu.qtest import QtestClient
from emutui.core.errors import EmutuiError


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reply=st.binary(max_size=80), hang_up=st.booleans())
async def test_garbage_qtest_replies(tmp_path, reply, hang_up):
    sock = tmp_path / "qt.sock"
    sock.unlink(missing_ok=True)

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.readline()
        w.write(reply if hang_up else reply.replace(b"\n", b"") + b"\n")
        await w.drain()
        if hang_up:
            w.close()
        else:
            await asyncio.sleep(3)

    server = await asyncio.start_unix_server(handle, path=str(sock))
    try:
        async with asyncio.timeout(8):
            async with QtestClient(str(sock)) as q:
                try:
                    await q.readl(0x1000)
                except EmutuiError as e:
                    assert "\n" not in str(e)
    finally:
        server.close()
