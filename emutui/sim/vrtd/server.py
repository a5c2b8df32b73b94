"""The network layer of ``emutui sim vrtd``: AF_UNIX SOCK_SEQPACKET, SO_PEERCRED, SCM_RIGHTS.

Thin on purpose: it receives datagrams, hands them to the pure model
(``model.VrtdModel.handle``) and sends what the model answers. It copies the
real daemon's connection handling:

- one request in flight per connection: while a reply cannot be sent, the
  connection is not read (vrtd disarms EPOLLIN), so pipelined requests wait in
  the kernel and are answered in order;
- peers are identified once, at accept time, with SO_PEERCRED + getpwuid +
  getgrouplist; a uid without a passwd entry is dropped (unless no permission
  file is in use, where it does not matter);
- malformed framing gets no reply: the connection is closed (hardened vrtd),
  or with ``hang_on_malformed`` left open and never read again (seed/v1/dev).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import errno
import logging
import os
import select
import socket
import stat
import struct

from emutui.backends.vrtd import wire
from emutui.sim.vrtd.model import ClientState, Malformed, VrtdModel
from emutui.sim.vrtd.perms import peer_groups

log = logging.getLogger("emutui.sim.vrtd")

TICK_SECONDS = 0.01
_FD_SIZE = array.array("i").itemsize


ACCEPT_BACKOFF_MIN = 0.05
ACCEPT_BACKOFF_MAX = 1.0


class VrtdServer:
    def __init__(self, model: VrtdModel, path: str, mode: int = 0o600) -> None:
        self.model = model
        self.path = path
        self.mode = mode
        self.lsock: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._hung: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._ino: int | None = None

    def bind(self) -> None:
        """Like dev vrtd with VRTD_SOCKET: unlink a stale file, bind, chmod, listen.
        The mode is 0600 unless a permission file decides who may do what (0666).

        Unlike vrtd, a socket somebody still listens on is not taken over: two
        simulators on one path would silently split their clients."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                try:
                    probe.connect(self.path)
                    raise OSError(errno.EADDRINUSE, "a daemon is already listening there")
                except (ConnectionRefusedError, FileNotFoundError):
                    os.unlink(self.path)  # stale: nobody listens
                finally:
                    probe.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            old = os.umask(0o177)  # never a moment where others could connect
            try:
                s.bind(self.path)
            finally:
                os.umask(old)
            os.chmod(self.path, self.mode)
            s.listen(socket.SOMAXCONN)
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        self._ino = os.stat(self.path).st_ino
        self.lsock = s

    async def serve(self) -> None:
        assert self.lsock is not None
        loop = asyncio.get_running_loop()
        ticker = asyncio.create_task(self._ticker())
        backoff = ACCEPT_BACKOFF_MIN
        refused = 0
        try:
            while True:
                try:
                    conn, _ = await loop.sock_accept(self.lsock)
                except (ConnectionAbortedError, InterruptedError):
                    continue
                except OSError as e:
                    # EMFILE/ENFILE/ENOBUFS/ENOMEM: out of descriptors or memory. The
                    # pending connections wait in the backlog; back off and try again,
                    # never give up the socket (a flood of clients must not kill us).
                    if refused == 0:
                        log.error(
                            "accept failed: %s; backing off (clients wait in the backlog)",
                            e.strerror or e,
                        )
                    refused += 1
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, ACCEPT_BACKOFF_MAX)
                    continue
                if refused:
                    log.warning("accepting again after %d failed attempt(s)", refused)
                    refused, backoff = 0, ACCEPT_BACKOFF_MIN
                task = asyncio.create_task(self._serve_conn(conn))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            ticker.cancel()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(ticker, *self._tasks, return_exceptions=True)
            self.close()

    def close(self) -> None:
        for c in list(self._conns) + self._hung:
            c.close()
        self._conns.clear()
        self._hung.clear()
        if self.lsock is not None:
            self.lsock.close()
            self.lsock = None
            # remove the socket file only if it is still ours (a successor may have rebound it)
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._ino:
                    os.unlink(self.path)

    async def _ticker(self) -> None:
        while True:
            self.model.tick()
            await asyncio.sleep(TICK_SECONDS)

    async def _wait(self, sock: socket.socket, write: bool) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        fd = sock.fileno()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        if write:
            loop.add_writer(fd, ready)
        else:
            loop.add_reader(fd, ready)
        try:
            await fut
        finally:
            if write:
                loop.remove_writer(fd)
            else:
                loop.remove_reader(fd)

    def _identify(self, conn: socket.socket) -> ClientState | None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", creds)
        gids = peer_groups(uid, gid)
        if gids is None:
            if not self.model.perms.allow_all:
                log.warning("pid %d uid %d: no passwd entry; connection dropped", pid, uid)
                return None
            gids = [gid]
        client = self.model.new_client(uid, gid, pid, gids)
        log.info("client %d connected: pid %d uid %d", client.conn_id, pid, uid)
        return client

    async def _serve_conn(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        self._conns.add(conn)
        client = self._identify(conn)
        if client is None:
            self._conns.discard(conn)
            conn.close()
            return
        # seed vrtd receives with no control buffer at all; v1+ take at most one fd
        ancbuf = 0 if self.model.options.generation == 0 else socket.CMSG_SPACE(_FD_SIZE)
        keep_open = False
        try:
            while True:
                try:
                    data, anc, flags, _ = conn.recvmsg(
                        wire.MSG_MAX_SIZE, ancbuf, socket.MSG_CMSG_CLOEXEC
                    )
                except BlockingIOError:
                    await self._wait(conn, write=False)
                    continue
                except InterruptedError:
                    continue
                except OSError:
                    break
                fds = _close_fds(anc)  # no core opcode uses an inbound fd: close, as v1+ do
                empty = not data and not anc
                if empty and not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) and _hung_up(conn):
                    break  # EOF; an empty datagram from a peer still connected goes on to
                    # the model as malformed (vrtd reads 0 bytes, fails the 8-byte check)
                outcome = self.model.handle(
                    data,
                    client,
                    truncated=bool(flags & socket.MSG_TRUNC),
                    ctruncated=bool(flags & socket.MSG_CTRUNC),
                    fds_in=fds,
                )
                if isinstance(outcome, Malformed):
                    mode = "left hanging" if self.model.options.hang_on_malformed else "closed"
                    log.warning(
                        "client %d (pid %d): malformed message: %s; connection %s",
                        client.conn_id,
                        client.pid,
                        outcome.reason,
                        mode,
                    )
                    keep_open = self.model.options.hang_on_malformed
                    break
                if outcome.delay > 0:
                    # an asynchronous operation (reset, cfgmem program): vrtd holds the
                    # reply, and reads nothing more from this client, until it ends
                    await asyncio.sleep(outcome.delay)
                anc_out = []
                if outcome.fd is not None:
                    anc_out = [
                        (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [outcome.fd]))
                    ]
                while True:
                    try:
                        conn.sendmsg([outcome.data], anc_out)
                        break
                    except BlockingIOError:
                        # the client is not reading; stop reading it too, like vrtd
                        await self._wait(conn, write=True)
                    except InterruptedError:
                        continue
        except OSError as e:
            log.info("client %d: %s", client.conn_id, e)
        finally:
            self._conns.discard(conn)
            if keep_open:
                self._hung.append(conn)  # source disabled: never read, never closed
            else:
                conn.close()
                log.info("client %d disconnected", client.conn_id)


def _hung_up(conn: socket.socket) -> bool:
    """After a 0-byte read: did the peer close (EOF), or send an empty datagram?"""
    p = select.poll()
    p.register(conn.fileno(), select.POLLRDHUP | select.POLLHUP)
    return bool(p.poll(0))


def _close_fds(anc: list[tuple[int, int, bytes]]) -> int:
    n = 0
    for level, typ, data in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % _FD_SIZE])
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
                n += 1
    return n
