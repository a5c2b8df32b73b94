"""emutui's vrtd client against the real daemon and against ``emutui sim vrtd``, alike.

The real one is SLASH's dev vrtd built from ``shared/peers/vrtd`` with its test
patch (``VRTD_TEST_MOCK_DEVICES=2``: two libslash ``@mock`` cards); the
simulator runs ``--mock --cards 2``. Both are separate processes on real
sockets with the peer's permission files. The first half drives emutui's
connector and CLI through both; the second sends the exact same raw requests
to both and compares the reply bytes (issue 14: one test per difference found).
What only hardware can answer (clock rates achieved, sensor values, QDMA and
buffer success paths) is not reachable on a mock card; docs/vrtd.md lists it.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emutui.backends.vrtd import make_handles
from emutui.backends.vrtd.connector import VrtdConnector
from emutui.core.errors import DisconnectedError, PermissionDeniedError
from emutui.core.instance import Instance
from emutui.core.model import InstanceState
from tests.conftest import run_cli
from tests.vrtd.peer import Daemon, configs, real_vrtd

KINDS = ["real", "sim"]
MIB = 1 << 20
OK, BAD_REQUEST, INVALID_ARGUMENT, NOEXIST, INTERNAL_ERROR, AUTH_ERROR, BUSY = 0, 3, 4, 5, 6, 7, 8

DaemonFactory = Callable[..., Daemon]


@pytest.fixture
def daemons(sock_dir: Path) -> Iterator[DaemonFactory]:
    started: list[Daemon] = []

    def make(kind: str, config: str = "full-access.conf", extra: tuple[str, ...] = ()) -> Daemon:
        if kind == "real":
            real_vrtd()  # builds once, or skips/fails with one reason
        n = len(started)
        d = Daemon(kind, str(sock_dir / f"{kind}{n}.sock"), configs() / config, sock_dir)
        d.extra = list(extra)
        started.append(d)
        return d.start()

    yield make
    for d in started:
        d.kill(signal.SIGTERM)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    k: str = request.param
    return k


def connector(d: Daemon, tmp: Path, name: str = "card") -> VrtdConnector:
    wd = tmp / name
    wd.mkdir(exist_ok=True)
    handles = make_handles(name, d.path)
    handles.options["config"] = str(d.config)
    return VrtdConnector(Instance(name=name, wd=wd, handles=handles))


# ----------------------------------------------------------------------------- the client


async def test_devices_bars_props(kind: str, daemons: DaemonFactory, tmp_path: Path) -> None:
    conn = connector(daemons(kind), tmp_path)
    await conn.connect()
    try:
        top = [n for n in await conn.list_props("/") if n.has_children]
        # both cards are named "@mock": the tree and the regions tell them apart by index
        assert [n.name for n in top] == ["@mock#0", "@mock#1"]
        dev = {n.name: n.value for n in await conn.list_props("/@mock#1") if not n.has_children}
        assert dev["name"] == "@mock" and dev["index"] == 1
        assert dev["bdf"] == "none" and dev["vendor_id"] == "0x0000"
        assert dev["shell"] == "unknown" and dev["jtag"] is False
        bar0 = {n.name: n.value for n in await conn.list_props("/@mock#0/bar0")}
        assert bar0 == {"usable": True, "in_use": False, "start": "0x0", "length": 64 * MIB}
        assert await conn.get_prop("/@mock#0/bar3", "usable") is False
        sensors = await conn.list_props("/@mock#0/sensors")
        assert [(s.name, s.value) for s in sensors] == [("status", "not available")]
        assert "INTERNAL_ERROR" in sensors[0].description
        regions = await conn.regions()
        assert [(r.name, r.size) for r in regions] == [
            ("@mock#0.bar0", 64 * MIB),
            ("@mock#1.bar0", 64 * MIB),
        ]
        st = await conn.status()
        assert st.state is InstanceState.RUNNING and "2 device(s), protocol v2" in st.detail
    finally:
        await conn.close()


async def test_two_clients_share_a_bar(kind: str, daemons: DaemonFactory, tmp_path: Path) -> None:
    d = daemons(kind)
    a, b = connector(d, tmp_path, "a"), connector(d, tmp_path, "b")
    try:
        assert await b.read("@mock#1.bar0", 0x1000, 8) == bytes(8)  # a mock BAR starts zeroed
        await a.write("@mock#1.bar0", 0x1000, b"\x78\x56\x34\x12")
        await a.write("@mock#1.bar0", 64 * MIB - 4, b"tail")
        assert await b.read("@mock#1.bar0", 0x1000, 4) == b"\x78\x56\x34\x12"
        assert await b.read("@mock#1.bar0", 64 * MIB - 4, 4) == b"tail"
        assert await b.read("@mock#0.bar0", 0x1000, 4) == bytes(4)  # the other card
        await b.write("@mock#1.bar0", 0x1000, b"back")
        assert await a.read("@mock#1.bar0", 0x1000, 4) == b"back"
    finally:
        await a.close()
        await b.close()


async def test_restrictive_config(kind: str, daemons: DaemonFactory, tmp_path: Path) -> None:
    d = daemons(kind, "info-only.conf")
    conn = connector(d, tmp_path)
    try:
        assert len(await conn.regions()) == 2  # querying is allowed
        with pytest.raises(PermissionDeniedError, match="AUTH_ERROR") as ei:
            await conn.read("@mock#0.bar0", 0, 4)
        # the message names the permission file this daemon was started with
        assert str(d.config) in str(ei.value) and "/etc/vrt" not in str(ei.value)
    finally:
        await conn.close()


async def test_killed_and_restarted(kind: str, daemons: DaemonFactory, tmp_path: Path) -> None:
    d = daemons(kind)
    conn = connector(d, tmp_path)
    try:
        await conn.write("@mock#0.bar0", 0x40, b"live")
        d.kill(signal.SIGKILL)
        st = await conn.status()
        assert st.state is InstanceState.DISCONNECTED and d.path in st.detail
        with pytest.raises(DisconnectedError):
            await conn.read("@mock#0.bar0", 0x40, 4)
        d.start()
        # a new daemon: new (zeroed) mock BARs, found again without a new attach
        assert await conn.read("@mock#0.bar0", 0x40, 4) == bytes(4)
        assert (await conn.status()).state is InstanceState.RUNNING
    finally:
        await conn.close()


def test_attach_and_detach(kind: str, daemons: DaemonFactory, state_dir: Path) -> None:
    d = daemons(kind)
    r = run_cli("attach", "vrtd", "v80", "--socket", d.path)
    assert r.rc == 0, r.err
    r = run_cli("mem", "regions", "v80", "--json")
    assert r.rc == 0, r.err
    assert [x["name"] for x in json.loads(r.out)] == ["@mock#0.bar0", "@mock#1.bar0"]
    r = run_cli("mem", "write", "v80", "@mock#1.bar0", "0x10", "01020304", "--yes")
    assert r.rc == 0, r.err
    r = run_cli("mem", "read", "v80", "@mock#1.bar0", "0x10", "4")
    assert r.rc == 0 and "0102 0304" in r.out, r.out
    r = run_cli("detach", "v80")
    assert r.rc == 0, r.err
    assert d.proc is not None and d.proc.poll() is None  # a daemon is never stopped
    assert run_cli("ls", "--json").out.strip() in ("[]", "")


# ----------------------------------------------------------------------------- byte for byte

Req = tuple[int, bytes] | tuple[int, bytes, bool]  # opcode, body[, attach a descriptor]


def frame(opcode: int, body: bytes, seq: int) -> bytes:
    return struct.pack("<HHI", len(body), opcode, seq) + body


def exchange(path: str, reqs: list[Req], gap: float = 0.0) -> list[tuple[bytes, str]]:
    """Send each request on ONE connection (``gap`` seconds between them); the reply
    bytes and what fd came with it."""
    out = []
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(20)
    s.connect(path)
    pdi = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)  # any readable file
    try:
        for seq, r in enumerate(reqs, 1):
            if gap and seq > 1:
                time.sleep(gap)
            anc = []
            if len(r) == 3 and r[2]:
                anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pdi]))]
            s.sendmsg([frame(r[0], r[1], seq)], anc)
            data, ancdata, _flags, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
            out.append((data, _describe_fds(ancdata)))
    finally:
        os.close(pdi)
        s.close()
    return out


def _describe_fds(anc: list[tuple[int, int, bytes]]) -> str:
    kinds = []
    for _lvl, _typ, data in anc:
        fds = array.array("i")
        fds.frombytes(data[: len(data) - len(data) % 4])
        for fd in fds:
            st = os.fstat(fd)
            link = os.readlink(f"/proc/self/fd/{fd}")
            kind = "file" if stat.S_ISREG(st.st_mode) else "?"
            kind = "memfd" if link.startswith("/memfd:") else kind
            kinds.append(f"{kind}:{st.st_size}:{os.path.basename(link)[:11]}")
            os.close(fd)
    return ",".join(kinds)


def both(daemons: DaemonFactory, reqs: list[Req], config: str = "full-access.conf") -> list:
    """The same requests to a fresh real daemon and a fresh simulator: equal replies."""
    real = exchange(daemons("real", config).path, reqs)
    sim = exchange(daemons("sim", config).path, reqs)
    for i, (r, s) in enumerate(zip(real, sim, strict=True)):
        assert r == s, f"request {i} {reqs[i][0]}:{reqs[i][1].hex()}: real {r} != sim {s}"
    return [ret_of(r[0]) for r in real]


def ret_of(data: bytes) -> int:
    ret: int = struct.unpack_from("<H", data, 2)[0]
    return ret


def u32(*v: int) -> bytes:
    return struct.pack(f"<{len(v)}I", *v)


def test_core_opcodes_and_mock_cards(daemons: DaemonFactory) -> None:
    """16 (@mock): named @mock, zero PCI info, BAR0 only, a regular sparse file as fd."""
    rets = both(
        daemons,
        [
            (0, b"\0"),
            (0, b""),
            (1, u32(0)),
            (1, u32(1)),
            (1, u32(2)),
            *[(2, u32(1) + bytes([b])) for b in range(7)],
            (3, u32(0) + b"\0"),
            (3, u32(1) + b"\1"),
            (3, u32(1) + b"\6"),
            (20, b""),
            (0xFFFF, b"\0" * 64),
        ],
    )
    assert rets[:3] == [OK, BAD_REQUEST, OK] and rets[-2:] == [BAD_REQUEST, BAD_REQUEST]


def test_unknown_device_is_auth_error(daemons: DaemonFactory) -> None:
    """1: a bad index on device-access opcodes fails authorization (auth.c:302)."""
    rets = both(
        daemons,
        [
            (3, u32(9) + b"\0"),
            (9, u32(9, 0) + b"\0\1"),
            (5, u32(9) + bytes(36)),
            (10, u32(9) + bytes(28)),
            (13, u32(9) + b"\1\0\0"),
            (1, u32(9)),  # a query opcode: NOEXIST
        ],
    )
    assert rets == [AUTH_ERROR] * 5 + [NOEXIST]


def test_shell_state(daemons: DaemonFactory) -> None:
    """2 and 3: shell starts UNKNOWN; SET_SHELL_STATE's checks (serve.c:1907-1927)."""
    info = (1, u32(0))
    rets = both(
        daemons,
        [
            info,
            (19, u32(0) + b"\0\0"),  # UNKNOWN: INVALID_ARGUMENT
            (19, u32(0) + b"\3\0"),  # no such shell
            (19, u32(0) + b"\2\5"),  # compute, jtag=5 (any nonzero)
            info,
            (19, u32(0) + b"\1\1"),  # change a known shell: BUSY
            (19, u32(0) + b"\2\0"),  # clear jtag: BUSY
            (19, u32(0) + b"\2\1"),  # the same again: OK
            info,
        ],
    )
    assert rets == [OK, INVALID_ARGUMENT, INVALID_ARGUMENT, OK, OK, BUSY, BUSY, OK, OK]


def test_hotplug_arguments(daemons: DaemonFactory) -> None:
    """4: op 42, TOGGLE_SBR on all functions, function 9, RESET_SEQUENCE(UNKNOWN)."""
    rets = both(
        daemons,
        [
            (13, u32(0) + b"\x2a\0\0"),
            (13, u32(0) + b"\2\xff\0"),
            (13, u32(0) + b"\1\x09\0"),
            (13, u32(0) + b"\4\0\0"),
            (13, u32(0) + b"\1\2\0"),  # REMOVE PF2 of a card without a BDF
            (0, b"\0"),
        ],
    )
    assert rets == [INVALID_ARGUMENT] * 4 + [INTERNAL_ERROR, OK]


def test_rescan_before_auth_and_length_before_auth(daemons: DaemonFactory) -> None:
    """5 and 6 with a query-only config: RESCAN is not authorized at all; the body
    length of SET_SHELL_STATE, HOTPLUG and CFGMEM_PROGRAM(_START) is checked first."""
    rets = both(
        daemons,
        [
            (13, u32(7) + b"\0\0\0"),  # RESCAN: no auth, any index (no hotplug device: EINVAL)
            (13, u32(0) + b"\1\2\0"),  # REMOVE: AUTH_ERROR
            (19, u32(0) + b"\2"),  # 5 bytes: BAD_REQUEST before auth
            (13, u32(0) + b"\1\2"),
            (16, bytes(11)),
            (17, bytes(11)),
            (19, u32(0) + b"\2\0"),  # full length: AUTH_ERROR
            (3, u32(0)),  # GET_BAR_FD: auth first, then length
        ],
        "info-only.conf",
    )
    assert rets == [INVALID_ARGUMENT, AUTH_ERROR] + [BAD_REQUEST] * 4 + [AUTH_ERROR] * 2


def test_status_and_qdma_info_need_no_device_permission(daemons: DaemonFactory) -> None:
    """7 and 8: CFGMEM_PROGRAM_STATUS has no auth; QDMA_GET_INFO needs only query."""
    rets = both(
        daemons,
        [
            (18, struct.pack("<Q", 1)),
            (4, u32(0)),
            (5, u32(0) + bytes(36)),  # QDMA_QPAIR_ADD needs qdma on the device
        ],
        "info-only.conf",
    )
    assert rets == [NOEXIST, NOEXIST, AUTH_ERROR]


def test_buffer_arguments(daemons: DaemonFactory) -> None:
    """9: size 0 or mm_channel > 2 are INVALID_ARGUMENT (serve.c:2820/2825/2972/3091)."""
    rets = both(
        daemons,
        [
            (10, u32(0, 0, 0, 0) + struct.pack("<QQ", 0, 0)),
            (10, u32(0, 0, 0, 3) + struct.pack("<QQ", 0, 4096)),
            (10, u32(0, 0, 0, 2) + struct.pack("<QQ", 0, 4096)),  # valid: no QDMA, NOEXIST
            (15, u32(0, 0, 0) + struct.pack("<QQ", 0x1000, 0)),
            (15, u32(0, 0, 3) + struct.pack("<QQ", 0x1000, 4096)),
            (11, u32(0) + struct.pack("<QQ", 0x1000, 0)),
            (11, u32(0) + struct.pack("<QQ", 0x1000, 4096)),  # no such buffer
        ],
    )
    assert rets == [INVALID_ARGUMENT, INVALID_ARGUMENT, NOEXIST] + [INVALID_ARGUMENT] * 3 + [
        NOEXIST
    ]


def test_cfgmem_arguments(daemons: DaemonFactory) -> None:
    """10: no fd, boot_device 9, partition 16, reserved bytes; a valid START gets job 1,
    which fails on a mock card (no AMI); its owner may ask, others may not."""

    def prog(op: int, boot: int = 0, res: bytes = b"\0\0\0", part: int = 1, fd: bool = True) -> Req:
        return (op, u32(0) + bytes([boot]) + res + u32(part), fd)

    rets = both(
        daemons,
        [
            prog(16, fd=False),
            prog(17, fd=False),
            prog(16, boot=9),
            prog(17, part=16),
            prog(17, res=b"\0\1\0"),
            prog(17),  # OK, job id 1
            (0, b"\0"),
        ],
    )
    assert rets == [BAD_REQUEST, BAD_REQUEST] + [INVALID_ARGUMENT] * 3 + [OK, OK]


def test_cfgmem_status_of_a_failed_job(daemons: DaemonFactory) -> None:
    """10: the job's status, but for the elapsed milliseconds (the time it is asked)."""
    start: Req = (17, u32(0) + bytes(4) + u32(1), True)
    status: Req = (18, struct.pack("<Q", 1))
    for d in (daemons("real"), daemons("sim")):
        # The job fails in the daemon's own time: ask until it has (a busy machine once
        # caught the real daemon before), at most ~3 s.
        replies = exchange(d.path, [start] + [status] * 30, gap=0.1)
        reply = next(
            (r for r, _ in replies[1:] if struct.unpack("<QI", r[8:20])[1] != 0), replies[-1][0]
        )
        assert ret_of(reply) == OK
        job, state, phase, written, total, _elapsed, result = struct.unpack("<QIIQQQH", reply[8:])
        assert (job, state, phase, written, total, result) == (1, 3, 10, 0, 0, INTERNAL_ERROR)
        # another connection is not the job's owner
        assert ret_of(exchange(d.path, [status])[0][0]) == AUTH_ERROR


def test_clock_and_sensors_on_a_mock_card(daemons: DaemonFactory) -> None:
    """11 and 13 as far as a card without clocks or AMI shows them: NOEXIST for any
    CLOCK_OP (the rate checks come after: tested on the simulated V80 in
    test_model), INTERNAL_ERROR for GET_SENSOR_INFO."""
    rets = both(
        daemons,
        [
            (9, u32(0, 0) + b"\1\1"),  # SET 0 Hz
            (9, u32(0, 10**8) + b"\2\0"),  # SET_ROUND_DOWN on SERVICE
            (9, u32(0, 0) + b"\0\7"),
            (9, u32(0) + b"\0"),  # short
            (14, u32(0)),
            (14, u32(5)),
        ],
    )
    assert rets == [NOEXIST] * 3 + [BAD_REQUEST, INTERNAL_ERROR, NOEXIST]


def test_device_by_bdf_is_strcmp(daemons: DaemonFactory) -> None:
    """12: no case folding and no syntax check; ``.F`` and a missing domain handled."""

    def bdf(text: bytes) -> Req:
        return (12, text.ljust(32, b"\0"))

    rets = both(
        daemons,
        [bdf(b"0000:C4:00"), bdf(b"garbage"), bdf(b""), bdf(b"c4:00.2"), bdf(b"."), (12, b"x")],
    )
    # a mock card's BDF is "": "." strips to it and matches device 0
    assert rets == [NOEXIST, NOEXIST, INVALID_ARGUMENT, NOEXIST, OK, BAD_REQUEST]


def test_short_bodies_read_the_previous_request(daemons: DaemonFactory) -> None:
    """14: missing bytes are what the previous request left in the connection's buffer."""
    rets = both(
        daemons,
        [
            (3, b""),  # fresh buffer: device 0, allowed; then too short
            (1, u32(9)),
            (3, b""),  # device 9 left behind: AUTH_ERROR
            (1, u32(1)),
            (3, b"\1"),  # device 1 again: allowed, BAD_REQUEST
            (2, u32(1) + b"\0"),
            (19, u32(1) + b"\2"),  # 5 of 6 bytes
            (16, u32(0) + bytes(7)),  # 11 of 12
        ],
    )
    assert rets == [BAD_REQUEST, NOEXIST, AUTH_ERROR, OK, BAD_REQUEST, OK, BAD_REQUEST, BAD_REQUEST]


def test_seed_style_config_refused(daemons: DaemonFactory, tmp_path: Path) -> None:
    """15: the dev daemon refuses to start with seed keys in [role:X] (config.c:773)."""
    conf = tmp_path / "seed.conf"
    conf.write_text(
        "[role:full]\nquery-devices = yes\ndevice = any\nbar-access = full\n[user:*]\nrole = full\n"
    )
    for kind in KINDS:
        with pytest.raises(AssertionError, match="exited"):
            daemons(kind, str(conf))


def test_empty_datagram_hangs(daemons: DaemonFactory) -> None:
    """16: the dev daemon disables a client that sends an empty datagram: no reply, no
    close. ``--hang-on-malformed`` does the same; other clients are still served."""
    for d in (daemons("real"), daemons("sim", extra=("--hang-on-malformed",))):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(d.path)
        s.send(b"")
        s.settimeout(1.0)
        with pytest.raises(TimeoutError):
            s.recv(4096)  # not b"": the connection is left open, unanswered
        s.close()
        assert ret_of(exchange(d.path, [(0, b"\0")])[0][0]) == OK


@pytest.mark.parametrize("config", ["full-access.conf", "info-only.conf"])
def test_random_requests_alike(daemons: DaemonFactory, config: str) -> None:
    """Beyond the differences that were found: seeded random requests (any opcode, a
    device index 0-2 or huge, short and long bodies, 15 per connection so the stale
    buffer matters) get the same bytes from both. A RESET_SEQUENCE that would start a
    real reset is left out (hardware only)."""
    import random

    rng = random.Random(14)

    def one() -> Req:
        op = rng.choice([*range(21), rng.randrange(65536)])
        n = rng.choice([0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 20, 24, 28, 31, 32, 36, 40, 64])
        dev = rng.choice([0, 1, 2, 0xFFFFFFFF])
        rest = bytes(
            rng.randrange(256) if rng.random() < 0.5 else rng.choice([0, 1, 2, 3, 4, 5, 255])
            for _ in range(max(0, n - 4))
        )
        body = bytearray((u32(dev) + rest)[:n])
        if op == 13 and n > 6 and body[4] == 4 and body[6] in (1, 2):
            body[6] = 0
        return (op, bytes(body))

    real, sim = daemons("real", config), daemons("sim", config)
    for _ in range(12):
        reqs = [one() for _ in range(15)]
        for i, (r, s) in enumerate(
            zip(exchange(real.path, reqs), exchange(sim.path, reqs), strict=True)
        ):
            assert r == s, f"{reqs[i][0]}:{reqs[i][1].hex()} after {reqs[:i][-2:]}: {r} != {s}"
