"""The simulator's pure device model, driven without sockets; and its permission file."""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from emutui.sim.vrtd import model as m
from emutui.sim.vrtd.model import ClientState, Malformed, Reply, SimOptions, VrtdModel
from emutui.sim.vrtd.perms import Permissions, PermsError, load_permissions

OK, BAD_REQUEST, INVALID_ARGUMENT, NOEXIST, AUTH_ERROR = 0, 3, 4, 5, 7


def req(opcode: int, body: bytes = b"", seqno: int = 1) -> bytes:
    # hand-packed on purpose: not wire.encode_request
    return struct.pack("<HHI", len(body), opcode, seqno) + body


def ret_of(out: object) -> tuple[int, bytes]:
    assert isinstance(out, Reply), out
    size, ret, _seq = struct.unpack_from("<HHI", out.data)
    assert size == len(out.data) - 8
    return ret, out.data[8:]


@pytest.fixture
def sim() -> Iterator[VrtdModel]:
    mod = VrtdModel(SimOptions(cards=2, bar_size=1 << 20))
    yield mod
    mod.close()


@pytest.fixture
def me(sim: VrtdModel) -> ClientState:
    return sim.new_client(os.getuid(), os.getgid(), os.getpid(), [os.getgid()])


def test_core_opcodes(sim: VrtdModel, me: ClientState) -> None:
    assert ret_of(sim.handle(req(0, b"\0"), me)) == (OK, b"\2\0\0\0")
    ret, body = ret_of(sim.handle(req(1, b"\1\0\0\0"), me))
    assert ret == OK and len(body) == 170 and body[:11] == b"slash_ctl1\0"
    assert body[11:128] == b"\0" * 117  # zero padding
    ret, body = ret_of(sim.handle(req(2, b"\0\0\0\0\4"), me))
    assert ret == OK and len(body) == 24
    size, bar, usable, in_use, pad, start, length = struct.unpack("<IBBBBQQ", body)
    assert (size, bar, usable, in_use, pad, length) == (24, 4, 1, 0, 0, 1 << 20)
    assert start % (1 << 32) == 0 and start
    ret, body = ret_of(sim.handle(req(2, b"\0\0\0\0\1"), me))
    assert ret == OK and body == struct.pack("<IBBBBQQ", 24, 1, 0, 0, 0, 0, 0)
    out = sim.handle(req(3, b"\0\0\0\0\0", seqno=77), me)
    assert isinstance(out, Reply) and out.fd is not None
    assert out.data == struct.pack("<HHIQ", 8, OK, 77, 1 << 20)


def test_seqno_echoed_whatever_it_is(sim: VrtdModel, me: ClientState) -> None:
    for seq in (0, 1, 1, 0xFFFFFFFF):
        out = sim.handle(req(0, b"\0", seqno=seq), me)
        assert isinstance(out, Reply) and struct.unpack_from("<I", out.data, 4)[0] == seq


@pytest.mark.parametrize(
    ("opcode", "body", "ret"),
    [
        (0, b"", BAD_REQUEST),  # the compatibility trap: empty GET_NUM_DEVICES body
        (1, b"\0\0\0", BAD_REQUEST),
        (1, b"\2\0\0\0", NOEXIST),
        (2, b"\0\0\0\0", BAD_REQUEST),
        (2, b"\5\0\0\0\0", NOEXIST),
        (2, b"\0\0\0\0\6", BAD_REQUEST),  # bar >= 6: BAD_REQUEST, not INVALID_ARGUMENT
        (3, b"\0\0\0\0", BAD_REQUEST),
        (3, b"\7\0\0\0\0", AUTH_ERROR),  # vrtd always has a config: auth.c:302
        (3, b"\0\0\0\0\6", BAD_REQUEST),
        (3, b"\0\0\0\0\1", NOEXIST),  # unusable BAR has no fd
        (20, b"", BAD_REQUEST),  # unknown opcode
        (0xFFFF, b"\0" * 100, BAD_REQUEST),
    ],
)
def test_error_replies(sim: VrtdModel, me: ClientState, opcode: int, body: bytes, ret: int) -> None:
    out = sim.handle(req(opcode, body), me)
    assert isinstance(out, Reply) and out.fd is None
    assert ret_of(out) == (ret, b"")  # error replies are empty (size 0)


def test_extra_trailing_bytes_ignored(sim: VrtdModel, me: ClientState) -> None:
    assert ret_of(sim.handle(req(0, b"\0" * 50), me))[0] == OK


@pytest.mark.parametrize(
    ("frame", "kw"),
    [
        (b"", {}),
        (b"\1\0\0\0\0\0\0", {}),
        (struct.pack("<HHI", 5, 0, 1) + b"\0", {}),  # size says 5, body 1
        (struct.pack("<HHI", 0, 0, 1) + b"\0", {}),  # size says 0, body 1
        (req(0, b"\0"), {"truncated": True}),
        (req(0, b"\0"), {"ctruncated": True}),
        (req(0, b"\0"), {"fds_in": 2}),
    ],
)
def test_malformed(sim: VrtdModel, me: ClientState, frame: bytes, kw: dict) -> None:
    assert isinstance(sim.handle(frame, me, **kw), Malformed)


def test_generations() -> None:
    for gen, size, top in ((0, 128, 3), (1, 168, 15), (2, 170, 19)):
        mod = VrtdModel(SimOptions(generation=gen, bar_size=1 << 20))
        c = mod.new_client(0, 0, 1, [0])
        ret, body = ret_of(mod.handle(req(1, b"\0\0\0\0"), c))
        assert ret == OK and len(body) == size
        assert ret_of(mod.handle(req(top + 1, b"\0" * 64), c))[0] == BAD_REQUEST
        mod.close()


def test_glob_order_names() -> None:
    mod = VrtdModel(SimOptions(cards=11, bar_size=1 << 20))
    names = [c.name for c in mod.cards]
    assert names[:3] == ["slash_ctl0", "slash_ctl1", "slash_ctl10"]
    mod.close()


def test_mock_profile() -> None:
    mod = VrtdModel(SimOptions(mock=True))
    bars = mod.cards[0].bars
    assert [b.usable for b in bars] == [True] + [False] * 5
    assert bars[0].length == 64 << 20 and bars[0].start == 0
    mod.close()


def test_later_opcodes(sim: VrtdModel, me: ClientState) -> None:
    # GET_DEVICE_BY_BDF: strcmp after stripping .F and adding a missing domain
    assert ret_of(sim.handle(req(12, b"c5:00.2".ljust(32, b"\0")), me)) == (OK, b"\1\0\0\0")
    assert ret_of(sim.handle(req(12, b"0000:C5:00".ljust(32, b"\0")), me))[0] == NOEXIST
    assert ret_of(sim.handle(req(12, b"nonsense".ljust(32, b"\0")), me))[0] == NOEXIST
    assert ret_of(sim.handle(req(12, b"\0" * 32), me))[0] == INVALID_ARGUMENT
    # CLOCK_OP: GET, SET (the rate achieved), 0 Hz, SET_ROUND_DOWN on SERVICE
    ret, body = ret_of(sim.handle(req(9, struct.pack("<IIBB", 0, 0, 0, 1)), me))
    assert ret == OK and struct.unpack("<I", body)[0] == 200_000_000
    ret, body = ret_of(sim.handle(req(9, struct.pack("<IIBB", 0, 300_000_123, 1, 1)), me))
    assert ret == OK and struct.unpack("<I", body)[0] == 300_000_000
    ret, body = ret_of(sim.handle(req(9, struct.pack("<IIBB", 0, 300_100_000, 2, 1)), me))
    assert ret == OK and struct.unpack("<I", body)[0] == 300_000_000
    assert ret_of(sim.handle(req(9, struct.pack("<IIBB", 0, 0, 1, 1)), me))[0] == INVALID_ARGUMENT
    assert ret_of(sim.handle(req(9, struct.pack("<IIBB", 0, 10**8, 2, 0)), me))[0] == 4
    assert ret_of(sim.handle(req(9, struct.pack("<IIBB", 0, 0, 7, 0)), me))[0] == INVALID_ARGUMENT
    # sensors: wire.h/AMI types 1 temp, 2 current, 4 voltage, 8 power
    ret, body = ret_of(sim.handle(req(14, b"\0\0\0\0"), me))
    n = struct.unpack_from("<I", body)[0]
    assert ret == OK and len(body) == 4 + n * 72
    kinds = {
        body[4 + i * 72 : 4 + i * 72 + 64].rstrip(b"\0").decode() + f"/{body[4 + i * 72 + 64]}"
        for i in range(n)
    }
    assert {"fpga/1", "vccint/4", "vccint/2", "12v_pex/8"} <= kinds
    # SET_SHELL_STATE from UNKNOWN: once, then BUSY to change; jtag any nonzero, never cleared
    _, info = ret_of(sim.handle(req(1, b"\1\0\0\0"), me))
    assert info[168:170] == b"\0\0"  # shell UNKNOWN at start (device.c:219)
    assert ret_of(sim.handle(req(19, struct.pack("<IBB", 1, 0, 0)), me))[0] == INVALID_ARGUMENT
    assert ret_of(sim.handle(req(19, struct.pack("<IBB", 1, 1, 5)), me)) == (OK, b"\0")
    _, info = ret_of(sim.handle(req(1, b"\1\0\0\0"), me))
    assert info[168:170] == b"\1\1"
    assert ret_of(sim.handle(req(19, struct.pack("<IBB", 1, 2, 1)), me))[0] == 8  # BUSY
    assert ret_of(sim.handle(req(19, struct.pack("<IBB", 1, 1, 0)), me))[0] == 8
    assert ret_of(sim.handle(req(4, b"\0\0\0\0"), me))[0] == NOEXIST  # no QDMA simulated
    assert ret_of(sim.handle(req(10, b"\0" * 31), me))[0] == BAD_REQUEST
    assert ret_of(sim.handle(req(18, b"\0" * 8), me))[0] == NOEXIST


def test_short_body_reads_the_previous_request(sim: VrtdModel, me: ClientState) -> None:
    """Issue 14.14: vrtd reads a short request's missing bytes from its per-connection
    buffer, so they are what the previous request left there, not zeros."""
    # GET_BAR_FD reads dev_number for authorization before the length check
    assert ret_of(sim.handle(req(1, b"\x09\0\0\0"), me))[0] == NOEXIST
    assert ret_of(sim.handle(req(3, b""), me))[0] == AUTH_ERROR  # dev 9 from the buffer
    assert ret_of(sim.handle(req(1, b"\0\0\0\0"), me))[0] == OK
    assert ret_of(sim.handle(req(3, b""), me))[0] == BAD_REQUEST  # dev 0 now: length next


def test_hotplug(sim: VrtdModel, me: ClientState) -> None:
    def hp(dev: int, op: int, fn: int = 0, shell: int = 0) -> int:
        return ret_of(sim.handle(req(13, struct.pack("<IBBB", dev, op, fn, shell)), me))[0]

    assert hp(0, 42) == INVALID_ARGUMENT
    assert hp(0, 2, 255) == INVALID_ARGUMENT  # TOGGLE_SBR needs one function
    assert hp(0, 1, 9) == INVALID_ARGUMENT
    assert hp(0, 4, 0, 0) == INVALID_ARGUMENT  # RESET_SEQUENCE to UNKNOWN
    assert hp(9, 1, 2) == AUTH_ERROR
    assert hp(1, 1, 2) == OK  # REMOVE takes the card away
    assert ret_of(sim.handle(req(0, b"\0"), me))[1] == b"\1\0\0\0"
    assert hp(7, 0) == OK  # RESCAN: no auth, no device index; the card is back
    assert ret_of(sim.handle(req(0, b"\0"), me))[1] == b"\2\0\0\0"
    out = sim.handle(req(13, struct.pack("<IBBB", 0, 4, 0, 2)), me)
    assert isinstance(out, Reply) and out.delay > 0 and ret_of(out) == (OK, b"\0")
    assert hp(0, 4, 0, 2) == 8  # BUSY while the reset runs


def _word(mem: mmap.mmap, off: int) -> int:
    v: int = struct.unpack_from("<I", mem, off)[0]
    return v


def test_bar0_registers(sim: VrtdModel) -> None:
    card = sim.cards[0]
    mem = card.bars[0].mem
    assert mem is not None
    t = sim.t0
    sim.tick(t)
    assert mem[0:4] == b"SV80" and _word(mem, m.REG_VERSION) == m.VERSION_VALUE
    assert mem[m.REG_BANNER : m.REG_BANNER + 21] == b"emutui vrtd simulator"
    sim.tick(t + 2_500_000)  # 2.5 ms
    assert _word(mem, m.REG_COUNTER_LO) == 2500
    # RO: a write lands (shared memory) and is undone at the next tick, noted in STATUS
    struct.pack_into("<I", mem, m.REG_ID, 0)
    sim.tick(t + 3_000_000)
    assert mem[0:4] == b"SV80" and _word(mem, m.REG_STATUS) & m.STATUS_RO_WRITE
    # scratch is plain memory; a change sets STATUS.SCRATCH
    struct.pack_into("<I", mem, m.REG_SCRATCH[1], 0xCAFEF00D)
    sim.tick(t + 4_000_000)
    assert _word(mem, m.REG_SCRATCH[1]) == 0xCAFEF00D
    assert _word(mem, m.REG_STATUS) == m.STATUS_RO_WRITE | m.STATUS_SCRATCH
    # W1C: writing 1s clears those bits only
    struct.pack_into("<I", mem, m.REG_STATUS, m.STATUS_SCRATCH)
    sim.tick(t + 5_000_000)
    assert _word(mem, m.REG_STATUS) == m.STATUS_RO_WRITE
    sim.tick(t + 1_000_000_000)  # a second: TICK
    assert _word(mem, m.REG_STATUS) == m.STATUS_RO_WRITE | m.STATUS_TICK
    assert _word(mem, m.REG_UPTIME_S) == 1
    struct.pack_into("<I", mem, m.REG_STATUS, 0xFFFFFFFF)
    sim.tick(t + 1_001_000_000)
    assert _word(mem, m.REG_STATUS) == 0


def test_bar_shared_between_fds(sim: VrtdModel, me: ClientState) -> None:
    a = sim.handle(req(3, b"\0\0\0\0\2"), me)
    b = sim.handle(req(3, b"\0\0\0\0\2"), sim.new_client(0, 0, 2, [0]))
    assert isinstance(a, Reply) and isinstance(b, Reply) and a.fd == b.fd  # one long-lived fd


# ----------------------------------------------------------------------------- permissions

ROOT = "root"


def write(tmp_path: Path, text: str, name: str = "vrtd.conf") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_seed_config_shipped_default(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
; the seed's shipped file
[role:fullaccess]
device = any
bar-access = full
pcie-hotplug = yes

[role:info]
query-devices = yes

[user:root]
role = fullaccess

[user:*]
role = info
""",
    )
    with pytest.raises(PermsError, match="unknown role key"):
        load_permissions(p)  # the dev daemon refuses seed keys (config.c:773)
    perms = load_permissions(p, generation=0)
    assert not perms.per_device
    root = perms.resolve(0, [0])
    assert root.query and root.device_may("bar-access", "0000:c4:00")
    other = perms.resolve(4242, [4242])
    assert other.query and not other.device_may("bar-access", "0000:c4:00")


def test_per_device_exact_bdf_wins_over_any(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
[role:ops]
query-devices = yes
[role:ops:any]
bar-access = full
[role:ops:c5:00.2]
clock = yes
[user:root]
role = ops
""",
    )
    perms = load_permissions(p)
    assert perms.per_device
    eff = perms.resolve(0, [0])
    assert eff.device_may("bar-access", "0000:c4:00")
    assert not eff.device_may("bar-access", "0000:c5:00")  # exact policy grants less
    assert eff.device_may("clock", "0000:c5:00")
    assert not eff.device_may("bar-access", None)  # unknown device index


def test_groups_and_includes(tmp_path: Path) -> None:
    (tmp_path / "vrtd.conf.d").mkdir()
    write(tmp_path, "[role:q]\nquery-devices = yes\n", "vrtd.conf.d/10-q.conf")
    p = write(tmp_path, "include-glob = vrtd.conf.d/*.conf\n[group:root]\nrole = q\n")
    perms = load_permissions(p)
    assert perms.resolve(4242, [0]).query
    assert not perms.resolve(4242, [4242]).query


@pytest.mark.parametrize(
    "text",
    [
        "[user:no-such-user-xyz]\nrole = a\n",
        "[group:no-such-group-xyz]\nrole = a\n",
        "[role:a]\nbogus = yes\n",
        "[role:a]\nquery-devices = maybe\n",
        "[role:a]\nbar-access = partial\n",
        "[role:a]\ndevice = 0000:c4:00\n",
        "[role:a]\nbar-access = full\n[role:b:any]\nbar-access = full\n",  # mixed flavours
        "[role:a:zz:zz]\nbar-access = full\n",
        "[role:a]\nnot a key value line\n",
    ],
)
def test_fatal_config_errors(tmp_path: Path, text: str) -> None:
    with pytest.raises(PermsError):
        load_permissions(write(tmp_path, text))


def test_unknown_sections_only_warn(tmp_path: Path) -> None:
    p = write(tmp_path, "frobnicate = 1\n[weird]\nx = y\n[user:*]\nrole = undefined\n")
    perms = load_permissions(p)
    assert not perms.resolve(0, [0]).query


def test_auth_errors_in_model(tmp_path: Path) -> None:
    perms = load_permissions(
        write(tmp_path, "[role:info]\nquery-devices = yes\n[user:*]\nrole = info\n")
    )
    mod = VrtdModel(SimOptions(bar_size=1 << 20), perms)
    c = mod.new_client(0, 0, 1, [0])
    assert ret_of(mod.handle(req(0, b"\0"), c))[0] == OK
    assert ret_of(mod.handle(req(3, b"\0\0\0\0\0"), c)) == (AUTH_ERROR, b"")
    # auth comes before the length check
    assert ret_of(mod.handle(req(3, b""), c))[0] == AUTH_ERROR
    # SIGHUP reload with nothing granted: every request is denied, even queries
    mod.reload(load_permissions(write(tmp_path, "[role:x]\nquery-devices = no\n", "b.conf")))
    assert ret_of(mod.handle(req(0, b"\0"), c))[0] == AUTH_ERROR
    mod.reload(Permissions.everyone())
    assert ret_of(mod.handle(req(3, b"\0\0\0\0\0"), c))[0] == OK
    mod.close()


def test_per_device_out_of_range_is_auth_error(tmp_path: Path) -> None:
    perms = load_permissions(
        write(
            tmp_path,
            "[role:a]\nquery-devices = yes\n[role:a:any]\nbar-access = full\n[user:*]\nrole = a\n",
        )
    )
    mod = VrtdModel(SimOptions(bar_size=1 << 20), perms)
    c = mod.new_client(0, 0, 1, [0])
    assert ret_of(mod.handle(req(3, b"\0\0\0\0\0"), c))[0] == OK
    # per-device model: an unknown index fails authorization, not NOEXIST
    assert ret_of(mod.handle(req(3, b"\x09\0\0\0\0"), c))[0] == AUTH_ERROR
    mod.close()


def test_seed_generation_bad_index_is_noexist() -> None:
    """The seed daemon had no per-device check: a bad index reached NOEXIST."""
    mod = VrtdModel(SimOptions(generation=0, bar_size=1 << 20))
    c = mod.new_client(0, 0, 1, [0])
    assert ret_of(mod.handle(req(3, b"\x09\0\0\0\0"), c))[0] == NOEXIST
    mod.close()
    mod = VrtdModel(SimOptions(generation=2, bar_size=1 << 20))
    c = mod.new_client(0, 0, 1, [0])
    assert ret_of(mod.handle(req(3, b"\x09\0\0\0\0"), c))[0] == AUTH_ERROR
    mod.close()
