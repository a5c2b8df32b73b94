"""cpu NAME regs|stop|cont|step|break|watch|delete|dis, gdb NAME, snap NAME save|load|ls|rm.

The CPU commands go through the instance's gdb hub (emutui/core/gdbhub.py),
which holds the one stub connection: breakpoints set by one command are there
for the next, and the guest keeps running unless a command stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
from typing import Any

from emutui.commands import registry
from emutui.core.errors import EmutuiError, NotFoundError, UnsupportedError

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "cpu", help="CPU: registers, run control, breakpoints, disassembly", parents=[common]
    )
    p.add_argument("name", help="instance")
    ps = p.add_subparsers(
        dest="cpu_cmd",
        metavar="regs|stop|cont|step|break|watch|delete|points|dis|mem",
        required=True,
    )

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        q = ps.add_parser(name, help=help, parents=[common])
        q.add_argument("--cpu", type=int, default=None, help="CPU index (default: the first)")
        q.add_argument("--json", action="store_true")
        q.set_defaults(handler=cmd_cpu, cpu_cmd=name)
        return q

    verb("regs", "registers of a stopped CPU")
    verb("stop", "stop the guest")
    q = verb("cont", "continue; returns when the guest stops")
    q.add_argument("--no-wait", action="store_true", help="return at once")
    q.add_argument("--timeout", type=float, default=None, help="give up waiting after SECONDS")
    q = verb("step", "step one instruction (or N)")
    q.add_argument("-n", type=int, default=1)
    q = verb("break", "set a breakpoint at ADDR or SYMBOL")
    q.add_argument("where")
    q = verb("watch", "set a watchpoint (write, by default) at ADDR or SYMBOL")
    q.add_argument("where")
    q.add_argument("--len", type=int, default=4, help="bytes watched (default 4)")
    q.add_argument("--read", action="store_true", help="on reads")
    q.add_argument("--access", action="store_true", help="on reads and writes")
    q = verb("delete", "delete the breakpoints/watchpoints at ADDR or SYMBOL")
    q.add_argument("where", nargs="?")
    q.add_argument("--all", action="store_true")
    verb("points", "list breakpoints and watchpoints")
    q = verb("mem", "read LEN bytes at a virtual ADDR or SYMBOL (as the CPU sees it)")
    q.add_argument("where")
    q.add_argument("length", nargs="?", default="64")
    q = verb("dis", "disassemble at ADDR or SYMBOL (default: PC)")
    q.add_argument("where", nargs="?")
    q.add_argument("-n", type=int, default=10)

    p = sub.add_parser(
        "gdb",
        help="hand the CPU to gdb-multiarch (or gdb); extra args after --",
        parents=[common],
    )
    p.add_argument("name")
    p.add_argument("gdb_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=cmd_gdb)

    p = sub.add_parser("snap", help="snapshots: save, load, ls, rm", parents=[common])
    p.add_argument("name", help="instance")
    ps = p.add_subparsers(dest="snap_cmd", metavar="save|load|ls|rm", required=True)
    for name, help in (
        ("save", "save the machine as TAG"),
        ("load", "restore the machine from TAG"),
        ("rm", "delete snapshot TAG"),
    ):
        q = ps.add_parser(name, help=help, parents=[common])
        q.add_argument("tag")
        q.set_defaults(handler=cmd_snap, snap_cmd=name)
    q = ps.add_parser("ls", help="list snapshots", parents=[common])
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_snap, snap_cmd="ls")


def _hex(v: int, bits: int) -> str:
    return f"{v:0{max(1, bits // 4)}x}"


def _state_line(sess: Any, st: Any, pc: int | None = None) -> str:
    if st.running:
        return f"{sess.inst.name}: running"
    at = f" at {sess.where(pc)}" if pc is not None else ""
    why = sess.explain(st, pc)
    return f"{sess.inst.name}: stopped{at}" + (f" ({why})" if why else "")


async def cmd_cpu(args: argparse.Namespace) -> int:
    from emutui.backends.gdb.session import CpuSession
    from emutui.backends.gdb.stub import ensure_stub
    from emutui.cli import print_json
    from emutui.control import dead_message
    from emutui.core.errors import InstanceDeadError

    inst = registry(args).get(args.name)
    if not inst.alive():
        raise InstanceDeadError(dead_message(inst))
    inst = await ensure_stub(inst)
    cmd = args.cpu_cmd
    async with CpuSession(inst) as sess:
        if args.cpu is not None and not 0 <= args.cpu < sess.cpus:
            raise NotFoundError(f"{inst.name}: no cpu {args.cpu} (it has {sess.cpus})")
        if cmd == "regs":
            r = await sess.regs(args.cpu)
            if args.json:
                print_json(
                    {
                        "pc": r.pc,
                        "symbol": sess.describe(r.pc) or None,
                        "cpu": args.cpu or 0,
                        "arch": sess.info.get("arch"),
                        "registers": {k: r.values[k] for k in r.order},
                    }
                )
                return 0
            print(_state_line(sess, r.state, r.pc))
            for k in r.order:
                if r.bits.get(k, 0) > 64:
                    continue
                print(f"{k:<10} 0x{_hex(r.values[k], r.bits.get(k, 32))}")
            return 0
        if cmd == "stop":
            st = await sess.stop()
            pc = (await sess.regs(args.cpu)).pc
            _out(args, sess, st, pc)
            return 0
        if cmd == "cont":
            st, timed_out = await sess.cont(wait=not args.no_wait, timeout=args.timeout)
            if args.no_wait or st.running:
                if timed_out:
                    print(f"{inst.name}: still running after {args.timeout:g} s")
                    return 1
                _out(args, sess, st, None)
                return 0
            pc = (await sess.regs(args.cpu)).pc
            _out(args, sess, st, pc)
            return 0
        if cmd == "step":
            if args.n < 1:
                raise EmutuiError("step -n takes a count of 1 or more")
            st = await sess.step(args.n, args.cpu)
            pc = (await sess.regs(args.cpu)).pc
            _out(args, sess, st, pc)
            return 0
        if cmd in ("break", "watch"):
            addr = sess.address(args.where)
            if cmd == "break":
                pts = await sess.set_point("break", addr)
            else:
                kind = "awatch" if args.access else "rwatch" if args.read else "watch"
                if args.len < 1:
                    raise EmutuiError("--len must be 1 or more")
                pts = await sess.set_point(kind, addr, args.len)
            if args.json:
                print_json(pts)
            else:
                print(f"{inst.name}: {cmd} at {sess.where(addr)}")
            return 0
        if cmd == "delete":
            if args.all:
                await sess.clear_points()
                pts = []
            elif args.where:
                pts = await sess.remove_point(sess.address(args.where))
            else:
                raise EmutuiError("delete ADDR|SYMBOL, or --all")
            if args.json:
                print_json(pts)
            else:
                print(f"{inst.name}: {len(pts)} point(s) left")
            return 0
        if cmd == "mem":
            from emutui.commands.mem import parse_int, xxd

            addr = sess.address(args.where)
            n = parse_int(args.length, "length")
            data = await sess.read(addr, n, args.cpu)
            if args.json:
                print_json({"addr": addr, "hex": data.hex()})
            else:
                print(xxd(data, addr))
            return 0
        if cmd == "points":
            pts = await sess.points()
            if args.json:
                print_json(pts)
            else:
                for p in pts:
                    ln = f" len {p['len']}" if p["kind"] != "break" else ""
                    print(f"{p['kind']:<7} {sess.where(p['addr'])}{ln}")
            return 0
        if cmd == "dis":
            regs = await sess.regs(args.cpu)
            addr = sess.address(args.where) if args.where else regs.pc
            insns = await sess.disassemble(addr, max(1, args.n), regs=regs, cpu=args.cpu)
            if args.json:
                print_json(
                    [
                        {
                            "addr": i.addr,
                            "bytes": i.raw.hex(),
                            "text": i.text,
                            "symbol": sess.describe(i.addr) or None,
                        }
                        for i in insns
                    ]
                )
                return 0
            for i in insns:
                label = sess.symbols.at(i.addr)
                if label:
                    print(f"{i.addr:08x} <{label}>:")
                mark = "=>" if i.addr == regs.pc else "  "
                print(f"{mark} {i.addr:8x}:\t{i.raw.hex(' '):<20}\t{i.text}")
            return 0
    raise EmutuiError(f"unknown cpu command {cmd!r}")


def _out(args: argparse.Namespace, sess: Any, st: Any, pc: int | None) -> None:
    if args.json:
        from emutui.cli import print_json

        print_json(
            {
                "running": st.running,
                "pc": pc,
                "symbol": sess.describe(pc) if pc is not None else None,
                "why": sess.explain(st, pc) if not st.running else None,
                "reason": st.reason,
                "address": st.address,
            }
        )
    else:
        print(_state_line(sess, st, pc))


def find_gdb() -> str:
    for name in ("gdb-multiarch", "gdb"):
        found = shutil.which(name)
        if found:
            return found
    raise UnsupportedError(
        "no gdb-multiarch or gdb on PATH (Debian: apt-get install gdb-multiarch)"
    )


async def cmd_gdb(args: argparse.Namespace) -> int:
    from emutui.backends.gdb.session import CpuSession
    from emutui.backends.gdb.stub import ensure_stub
    from emutui.control import dead_message
    from emutui.core.errors import InstanceDeadError

    gdb = find_gdb()
    inst = registry(args).get(args.name)
    if not inst.alive():
        raise InstanceDeadError(dead_message(inst))
    inst = await ensure_stub(inst)
    extra = [a for a in args.gdb_args if a != "--"] if args.gdb_args else []
    async with CpuSession(inst) as sess:
        cmd = sess.gdb_command(gdb) + extra
        await sess.release()
        try:
            rc = await asyncio.to_thread(subprocess.call, cmd)
        finally:
            await sess.reclaim()
    return rc


async def cmd_snap(args: argparse.Namespace) -> int:
    from emutui.backends.snapshots import snapshots_for

    inst = registry(args).get(args.name)
    async with snapshots_for(inst) as snaps:
        if args.snap_cmd == "ls":
            items = await snaps.list()
            if args.json:
                from emutui.cli import print_json

                print_json(items)
            else:
                import time

                for s in items:
                    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["date"] or 0))
                    print(f"{s['tag']:<20} {when}  {s['vm_state_size']:>10}")
            return 0
        if args.snap_cmd == "save":
            await snaps.save(args.tag)
            print(f"{inst.name}: saved {args.tag}")
        elif args.snap_cmd == "load":
            await snaps.load(args.tag)
            print(f"{inst.name}: loaded {args.tag}")
        elif args.snap_cmd == "rm":
            await snaps.delete(args.tag)
            print(f"{inst.name}: deleted {args.tag}")
    return 0
