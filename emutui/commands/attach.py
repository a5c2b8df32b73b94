"""attach vrtd|qemu NAME ..., detach NAME: daemons and foreign QEMUs as instances.

emutui does not start or own a vrtd daemon; it records where the daemon's
socket is, in an instance directory (handles.json with ``attached: true``),
so ``ls``, ``prop``, ``mem`` and the TUI treat it like any other instance.
``detach`` forgets it and never touches the daemon.

``attach qemu NAME --qmp PATH|HOST:PORT [--serial CH=ADDR ...] [--qtest PATH]``
adopts a running QEMU the same way: a QMP broker and a serial hub of emutui's
own hold its monitor and serial ports; ``stop``/``detach`` end those helpers and
never signal QEMU.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from emutui.commands import registry
from emutui.config import Config
from emutui.core.errors import EmutuiError, NotFoundError
from emutui.core.instance import Instance
from emutui.core.registry import Registry


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "attach",
        help="attach to a running daemon (vrtd) or QEMU as an instance",
        description="Record a running vrtd daemon as the instance NAME. The socket is "
        "--socket, else $VRTD_SOCKET, else /run/vrtd.sock. The daemon must answer. "
        "Or adopt a running QEMU: 'attach qemu NAME --qmp PATH|HOST:PORT "
        "[--serial CH=PATH|HOST:PORT ...] [--qtest PATH]'. Its monitor must be free "
        "(QEMU serves one client per -qmp); emutui's QMP broker then serves it to every "
        "client, its serial output is logged from now on, and 'stop' only detaches.",
        parents=[common],
    )
    p.add_argument("backend", choices=["vrtd", "qemu"])
    p.add_argument("name")
    p.add_argument("--socket", help="the daemon's socket (default $VRTD_SOCKET, /run/vrtd.sock)")
    p.add_argument(
        "--vrtd-config",
        metavar="FILE",
        help="vrtd: the permission file the daemon was started with, named in "
        "permission errors (emutui cannot ask the daemon; default /etc/vrt/vrtd.conf)",
    )
    p.add_argument("--qmp", metavar="PATH|HOST:PORT", help="qemu: the QMP monitor socket")
    p.add_argument(
        "--serial",
        action="append",
        default=[],
        metavar="CH=PATH|HOST:PORT",
        help="qemu: a serial chardev socket (server=on) to log and share as channel CH",
    )
    p.add_argument("--qtest", metavar="PATH", help="qemu: its -qtest unix socket, if any")
    p.add_argument("--json", action="store_true")
    # set by `emutui demo`, which starts the simulator itself
    p.add_argument("--simulated", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--no-check",
        action="store_true",
        help="record the daemon even if it does not answer now (it shows as disconnected)",
    )
    p.set_defaults(handler=cmd_attach)

    p = sub.add_parser(
        "detach", help="forget an attached daemon (the daemon keeps running)", parents=[common]
    )
    p.add_argument("name")
    p.set_defaults(handler=cmd_detach)


async def attach_vrtd(
    reg: Registry,
    name: str,
    socket_path: str | None = None,
    *,
    simulated: bool = False,
    check: bool = True,
    target: str = "vrtd",
    config: str | None = None,
) -> Instance:
    """Attach the vrtd daemon at ``socket_path`` as instance ``name``.

    ``config`` is recorded as the daemon's permission file, for AUTH_ERROR messages.

    With ``check``, the daemon must answer GET_NUM_DEVICES first, so a typo in
    the path or a permission problem is reported now, not later; nothing is
    recorded then. The demo passes ``simulated=True`` for a simulator it started.
    """
    from emutui.backends.vrtd import make_handles, socket_for
    from emutui.backends.vrtd.client import VrtdClient

    path = socket_for(None, socket_path)
    if check:
        client = VrtdClient(path)
        try:
            await client.connect()
            await client.get_num_devices()
        finally:
            await client.close()
    existing = _existing(reg, name)
    if existing is not None:
        h = existing.handles
        if h is not None and h.backend == "vrtd" and h.options.get("socket") == path:
            return existing  # attaching twice to the same daemon is a no-op
        raise EmutuiError(
            f"an instance named {name!r} already exists ({existing.backend}); "
            f"detach or stop it first, or pick another name"
        )
    wd = reg.create(name)
    handles = make_handles(name, path, target=target, simulated=simulated)
    if config:
        handles.options["config"] = os.path.abspath(config)
    handles.save(wd)
    return Instance.load(wd)


async def start_simulated_card(
    reg: Registry,
    name: str = "v80-sim",
    *,
    cards: int = 1,
    timeout: float = 15.0,
    target: str = "sim vrtd",
) -> Instance:
    """For ``emutui demo``: run ``emutui sim vrtd`` in the background and attach it.

    The simulator runs in its own session, its socket and log live in the
    instance directory, and it is recorded as ``simulated`` with its pid in
    ``options["sim_pid"]`` (plus ``sim_pid_start``), so ``stop_simulated_card``
    (and ``emutui detach``) end it -- unlike a real daemon, which emutui never stops.
    """
    import sys

    from emutui.backends.vrtd import make_handles
    from emutui.backends.vrtd.client import VrtdClient
    from emutui.core import proc
    from emutui.core.errors import DisconnectedError
    from emutui.core.paths import socket_path

    existing = _existing(reg, name)
    if existing is not None and existing.is_daemon:
        reg.remove(existing)
    wd = reg.create(name)
    sock = str(socket_path(wd, "vrtd.sock"))
    argv = [sys.executable, "-m", "emutui", "sim", "vrtd", "--socket", sock, "--cards", str(cards)]
    p = proc.spawn_detached(argv, wd, wd / "output.log")
    handles = make_handles(name, sock, target=target, simulated=True)
    handles.options["sim_pid"] = p.pid
    handles.options["sim_pid_start"] = proc.start_time(p.pid)
    handles.command = list(p.args) if isinstance(p.args, list) else []
    handles.save(wd)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        client = VrtdClient(sock, timeout=2.0)
        try:
            await client.connect()
            await client.get_num_devices()
            break
        except DisconnectedError:
            if p.poll() is not None or loop.time() > deadline:
                tail = " | ".join(Instance.load(wd).tail(lines=3))
                raise DisconnectedError(f"the vrtd simulator did not start: {tail}") from None
            await asyncio.sleep(0.05)
        finally:
            await client.close()
    return Instance.load(wd)


def stop_simulated_card(reg: Registry, inst: Instance) -> None:
    """End a simulator started by ``start_simulated_card`` and forget the instance."""
    from emutui.control import stop_instance

    asyncio.run(stop_instance(reg, inst))


def _existing(reg: Registry, name: str) -> Instance | None:
    try:
        return reg.get(name)
    except NotFoundError:
        return None


def ensure_configured_daemons(cfg: Config, reg: Registry) -> list[Instance]:
    """Attach every ``[daemons.NAME]`` not attached yet (no round trip: a daemon that
    is down is recorded anyway and shows as disconnected). Returns the new instances."""
    from emutui.backends import get_backend
    from emutui.backends.vrtd import handles_for

    out = []
    for name, target in sorted(cfg.daemons.items()):
        if target.backend != "vrtd":
            continue
        get_backend("vrtd").validate(target)
        existing = _existing(reg, name)
        if existing is not None:
            h = existing.handles
            fresh = handles_for(target, name)
            if (
                h is not None
                and h.backend == "vrtd"
                and h.target == name  # recorded from this config entry, not by hand
                and h.options != fresh.options
            ):
                fresh.created = h.created
                fresh.save(existing.wd)  # the config changed: follow it
            continue
        wd = reg.create(name)
        handles_for(target, name).save(wd)
        out.append(Instance.load(wd))
    return out


async def attach_qemu(
    reg: Registry, name: str, qmp: str, serials: list[str], qtest: str | None
) -> Instance:
    """Adopt the QEMU whose monitor is ``qmp`` as instance ``name``."""
    from emutui.backends.qemu.attach import attach, parse_serials

    chans = parse_serials(serials)
    existing = _existing(reg, name)
    if existing is not None:
        raise EmutuiError(
            f"an instance named {name!r} already exists ({existing.backend}); "
            f"detach or stop it first, or pick another name"
        )
    with reg.name_lock(name):
        wd = reg.create(name)
        try:
            await attach(wd, name, qmp, chans, qtest)
        except BaseException:
            reg.remove(Instance.load(wd))
            raise
    return Instance.load(wd)


async def cmd_attach(args: argparse.Namespace) -> int:
    if args.backend == "qemu":
        if not args.qmp:
            raise EmutuiError("attach qemu: --qmp PATH|HOST:PORT is required")
        inst = await attach_qemu(registry(args), args.name, args.qmp, args.serial, args.qtest)
        if args.json:
            from emutui.cli import print_json

            print_json(inst.summary() | {"qmp": args.qmp})
        else:
            peer = inst.handles.options.get("peer_pid") if inst.handles else None
            pid = f", pid {peer}" if peer else ""
            print(
                f"attached {inst.name} (QEMU at {args.qmp}{pid}); dir {inst.wd}; "
                f"'emutui stop {inst.name}' detaches and leaves QEMU running"
            )
        return 0
    if args.qmp or args.serial or args.qtest:
        raise EmutuiError("--qmp, --serial and --qtest are for 'attach qemu'")
    inst = await attach_vrtd(
        registry(args),
        args.name,
        args.socket,
        simulated=args.simulated,
        check=not args.no_check,
        config=args.vrtd_config,
    )
    if args.json:
        from emutui.cli import print_json

        print_json(
            inst.summary() | {"socket": inst.handles.options["socket"] if inst.handles else None}
        )
    else:
        sock = inst.handles.options.get("socket") if inst.handles else "?"
        print(f"attached {inst.name} (vrtd at {sock}); dir {inst.wd}")
    return 0


def cmd_detach(args: argparse.Namespace) -> int:
    reg = registry(args)
    inst = reg.get(args.name)
    if not inst.is_daemon:
        raise EmutuiError(
            f"{args.name} is not an attached daemon ({inst.backend}); use 'emutui stop {args.name}'"
        )
    # a simulator emutui itself started is ended; a real daemon is never touched
    stop_simulated_card(reg, inst)
    print(detached_message(inst))
    return 0


def detached_message(inst: Instance) -> str:
    if inst.backend == "qemu":
        return (
            f"detached {inst.name} (QEMU keeps running: emutui did not start it "
            "and never signals it)"
        )
    return f"detached {inst.name}"
