"""An ssh ProxyCommand that holds every byte DELAY_MS in each direction: a network's latency.

    ProxyCommand python3 delay_proxy.py HOST PORT DELAY_MS

Order is kept; throughput is not limited. Loopback only (the test sshd).
"""

from __future__ import annotations

import asyncio
import os
import sys


async def pump(read: asyncio.StreamReader, write: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    q: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def sender() -> None:
        while True:
            due, data = await q.get()
            if not data:
                write.close()
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            write.write(data)
            await write.drain()

    task = asyncio.create_task(sender())
    while True:
        data = await read.read(65536)
        await q.put((loop.time() + delay, data))
        if not data:
            break
    await task


async def main() -> None:
    host, port, delay_ms = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("delay_proxy: loopback only")
    loop = asyncio.get_running_loop()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    t, p = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(sys.stdout.fileno(), "wb", 0)
    )
    stdout = asyncio.StreamWriter(t, p, None, loop)
    d = delay_ms / 1000
    await asyncio.gather(pump(stdin, w, d), pump(r, stdout, d), return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
