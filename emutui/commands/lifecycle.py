"""ls, start, stop, reset, pause, resume."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from emutui.commands import config, registry
from emutui.core.errors import EmutuiError
from emutui.core.instance import format_uptime
from emutui.core.sanitize import display_line
from emutui.core.serialhub import count_gaps

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ls", help="list instances", parents=[common])
    p.add_argument("--json", action="store_true")
    p.add_argument("-a", "--all", action="store_true", help="kept runs too, with how they ended")
    p.set_defaults(handler=cmd_ls)

    p = sub.add_parser("start", help="start a target from the config", parents=[common])
    p.add_argument("target")
    p.add_argument("--name", help="instance name (default: the target's name)")
    p.add_argument("--paused", action="store_true", help="leave the guest paused")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_start)

    p = sub.add_parser(
        "stop", help="stop an instance (or end a dead one); its run is kept", parents=[common]
    )
    p.add_argument("name", nargs="?")
    p.add_argument("--all", action="store_true", help="stop every instance")
    p.set_defaults(handler=cmd_stop)

    for verb, what in (("reset", "reset"), ("pause", "pause"), ("resume", "resume")):
        p = sub.add_parser(verb, help=f"{what} an instance", parents=[common])
        p.add_argument("name")
        p.set_defaults(handler=cmd_control, verb=verb)


async def cmd_ls(args: argparse.Namespace) -> int:
    from emutui.commands.remote import remote_rows
    from emutui.control import probe_status

    reg = registry(args)
    # A broken config is an error here as it is for start (a listing that quietly
    # drops the configured daemons would look like "they are gone").
    cfg = config(args)
    insts = [] if args.host else reg.instances()
    if not args.host:
        insts += _configured_daemons(cfg, {i.name for i in insts}, reg)
    statuses, remote = await asyncio.gather(
        asyncio.gather(*(probe_status(i) for i in insts)), remote_rows(args)
    )
    rows: list[dict[str, Any]] = []
    for inst, st in zip(insts, statuses, strict=True):
        row = inst.summary()
        row["state"] = st.state.value
        row["detail"] = st.detail
        row["uptime"] = inst.uptime()
        if not inst.wd.exists():
            row["dir"] = None  # configured, not attached yet: nothing on disk
        row["capture_gaps"] = count_gaps(inst.wd)
        row["tcp"] = tcp_listeners(inst)
        if st.state.value == "dead":
            row["log_tail"] = dead_tail(inst)
        rows.append(row)
    rows += remote
    kept: list[dict[str, Any]] = []
    if getattr(args, "all", False):
        from emutui.commands.runs import run_rows

        kept = run_rows(reg)
    if args.json:
        from emutui.cli import print_json

        print_json(rows + [r | {"state": "kept"} for r in kept])
        return 0
    if not rows and not kept:
        hosts = await _host_names(args)
        print(f"no instances in {reg.root}" + (f" nor on {', '.join(hosts)}" if hosts else ""))
        return 0
    if not rows:
        print(f"no live instances in {reg.root}")
    host_col = bool(remote)
    header = (
        f"{'NAME':<16} {'BACKEND':<8} {'TARGET':<14} {'STATE':<13} {'UPTIME':>8} {'PID':>7}  DIR"
    )
    if rows:
        print(f"{'HOST':<10} {header}" if host_col else header)
    for r in rows:
        sim = "*" if r["simulated"] else "+" if r.get("attached") else ""
        # Everything but the numbers may come from a file or a peer: one display filter.
        name, backend, target = (display_line(str(r[k])) for k in ("name", "backend", "target"))
        line = (
            f"{name + sim:<16} {backend:<8} {target:<14} {display_line(str(r['state'])):<13} "
            f"{format_uptime(r['uptime']):>8} {r['pid'] or '-':>7}  "
            f"{display_line(str(r['dir'])) if r.get('dir') else '-'}"
        )
        print(f"{r.get('host') or '-':<10} {line}" if host_col else line)
        if r["state"] == "unreachable":
            print(f"    | {display_line(str(r['detail']))}")
        if r.get("capture_gaps"):
            print(f"    ! {r['capture_gaps']} serial capture gap(s): see 'emutui logs {name}'")
        if r.get("tcp"):
            where = display_line(", ".join(r["tcp"]))
            print(f"    ! tcp: {where}: any local user can connect (no private socket)")
        if r["state"] == "dead":
            for line in r.get("log_tail") or []:
                print(f"    | {display_line(line)}")
    if any(r["simulated"] for r in rows):
        print("* simulated")
    if any(r.get("attached") and not r["simulated"] for r in rows):
        print("+ attached: emutui did not start it; stop detaches and leaves it running")
    if kept:
        from emutui.commands.runs import print_run_rows

        print(f"\nkept runs ({len(kept)}; 'emutui runs NAME', 'emutui logs NAME~1'):")
        print_run_rows(kept)
    return 0


async def _host_names(args: argparse.Namespace) -> list[str]:
    from emutui.commands.remote import configured_hosts

    return [args.host] if args.host else sorted(configured_hosts(args))


def _configured_daemons(cfg: Any, known: set[str], reg: Any) -> list[Any]:
    """Configured daemons ([daemons.NAME]) not attached yet, listed as they would be
    once attached, but only in memory: a listing writes nothing to the state dir."""
    out: list[Any] = []
    if not cfg.daemons:
        return out
    try:
        from emutui.backends.vrtd import handles_for
    except ImportError:
        return out
    from emutui.core.instance import Instance

    for name, target in sorted(cfg.daemons.items()):
        if target.backend != "vrtd" or name in known:
            continue
        out.append(Instance(name=name, wd=reg.root / name, handles=handles_for(target, name)))
    return out


def tcp_listeners(inst: Any) -> list[str]:
    """The instance's TCP endpoints (a real Renode's robot port and socket terminals):
    unlike a 0600 unix socket, every local user can connect to them."""
    h = inst.handles
    if h is None:
        return []
    out = []
    for name, ch in sorted(h.channels.items()):
        if ch.kind == "tcp" and ch.port:
            out.append(f"{name} {ch.host or '127.0.0.1'}:{ch.port}")
        elif (ch.upstream or "").startswith("tcp:"):
            out.append(f"{name} {ch.upstream[4:]}")
    return out


def dead_tail(inst: Any, lines: int = 5) -> list[str]:
    """The last words of a dead instance: the emulator's own output, else its first console."""
    tail = inst.tail(lines=lines)
    chans = inst.handles.serial_channels() if inst.handles else []
    if chans:
        tail += [f"{chans[0]}: {t}" for t in inst.tail(inst.serial_log(chans[0]), lines=lines)]
    return tail[-lines:]


async def cmd_start(args: argparse.Namespace) -> int:
    from emutui.control import start_target

    t0 = time.monotonic()
    inst = await start_target(config(args), registry(args), args.target, args.name, args.paused)
    if args.json:
        from emutui.cli import print_json

        print_json(inst.summary() | {"state": "paused" if args.paused else "running"})
    else:
        state = "paused" if args.paused else "running"
        print(
            f"started {inst.name} ({inst.backend}, pid {inst.pid}) {state} "
            f"in {time.monotonic() - t0:.2f} s; dir {inst.wd}"
        )
    return 0


async def cmd_stop(args: argparse.Namespace) -> int:
    from emutui.control import stop_instance

    reg = registry(args)
    if args.all:
        targets = reg.instances()
    elif args.name:
        targets = [reg.get(args.name)]
    else:
        raise EmutuiError("stop: give an instance NAME or --all")
    failures = 0
    for inst in targets:
        try:
            await stop_instance(reg, inst, by=_by("emutui stop"))
            if inst.is_daemon and inst.backend == "qemu":
                from emutui.commands.attach import detached_message

                print(detached_message(inst))
            else:
                print(f"stopped {inst.name}")
        except EmutuiError as e:
            failures += 1
            print(f"emutui: {inst.name}: {e}")
    from emutui.demo import remove_if_empty_lab

    remove_if_empty_lab(reg.root)  # a kept demo's /tmp lab goes with its last instance
    return 1 if failures else 0


def _by(what: str) -> str:
    from emutui.core.runs import who

    return f"{what}: {who()}"


async def cmd_control(args: argparse.Namespace) -> int:
    from emutui.control import connected

    inst = registry(args).get(args.name)
    async with connected(inst, events=False) as conn:
        await getattr(conn, args.verb)()
        st = await conn.status()
    print(f"{inst.name}: {st.state.value}")
    return 0
