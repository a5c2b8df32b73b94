"""``emutui sim vrtd``: a vrtd daemon serving simulated V80 cards, byte-compatible with vrtd.

``model`` is the pure device model (no sockets), ``server`` the network layer,
``perms`` the daemon's INI permission format. ``main(argv)`` is the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from emutui.core.errors import EmutuiError
from emutui.sim.vrtd.model import MIB, SimOptions, VrtdModel
from emutui.sim.vrtd.perms import Permissions, PermsError, load_permissions
from emutui.sim.vrtd.server import VrtdServer

log = logging.getLogger("emutui.sim.vrtd")


def private_socket() -> str:
    """``vrtd.sock`` in emutui's private runtime directory: ``$XDG_RUNTIME_DIR/emutui``
    or ``$TMPDIR/emutui-UID`` (0700 and ours, or refused: core.paths)."""
    from emutui.core.paths import ensure_private_dir, runtime_base

    return str(ensure_private_dir(runtime_base()) / "vrtd.sock")


def default_socket() -> str:
    env = os.environ.get("VRTD_SOCKET")
    if env:
        return env
    return private_socket()


def build_parser() -> argparse.ArgumentParser:
    from emutui.sim.vrtd.udmabuf import udmabuf_available

    bars = (
        "BAR descriptors are dma-bufs (udmabuf over a memfd), as on a real card"
        if udmabuf_available()
        else "BAR descriptors are memfds: this machine has no /dev/udmabuf, so libslash's "
        "slash_bar_file_start/end_* (DMA_BUF_IOCTL_SYNC) fail with ENOTTY on them, "
        "where a real card's dma-buf accepts them"
    )
    p = argparse.ArgumentParser(
        prog="emutui sim vrtd",
        description="A vrtd daemon serving simulated V80 cards (slash_ctl0...) over the real "
        f"wire protocol. Point real vrtd clients at it with VRTD_SOCKET=PATH. {bars}.",
    )
    p.add_argument(
        "--socket",
        help="listening socket path (default: $VRTD_SOCKET, else vrtd.sock in a private "
        "0700 directory: $XDG_RUNTIME_DIR/emutui or $TMPDIR/emutui-UID). The socket is "
        "0600 (only you) unless --config is given: then 0666 like vrtd's, and the "
        "permission file decides who may do what",
    )
    p.add_argument(
        "--config",
        help="vrtd permission file, INI as /etc/vrt/vrtd.conf (default: $VRTD_CONFIG; "
        "without one the socket is yours alone and you get full access)",
    )
    p.add_argument("--cards", type=int, default=1, help="number of simulated cards (default 1)")
    p.add_argument(
        "--generation",
        type=int,
        choices=[0, 1, 2],
        default=2,
        help="protocol generation: 0 seed (128-byte device info, opcodes 0-3), "
        "1 (168 bytes, opcodes 0-15), 2 current dev (170 bytes, 0-19; default)",
    )
    p.add_argument("--bar-size", type=int, default=128, metavar="MIB", help="BAR0/2/4 size")
    p.add_argument(
        "--mock",
        action="store_true",
        help="answer as the real daemon does for libslash '@mock' cards (its test patch, "
        "VRTD_TEST_MOCK_DEVICES): every card named @mock, BAR0 only (64 MiB of zeros, a "
        "sparse file in $XDG_RUNTIME_DIR or /tmp), no PCI info, no clocks, sensors or hotplug",
    )
    p.add_argument(
        "--hang-on-malformed",
        action="store_true",
        help="leave a client that sent a malformed frame hanging (seed/v1/dev vrtd) instead "
        "of disconnecting it (hardened vrtd)",
    )
    p.add_argument("--log", help="log file (default: $VRTD_LOG, else stderr)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    return p


def _load_perms(path: str | None, generation: int = 2) -> Permissions:
    return load_permissions(path, generation) if path else Permissions.everyone()


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    log_path = args.log or os.environ.get("VRTD_LOG")
    handler: logging.Handler = (
        logging.FileHandler(log_path) if log_path else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(logging.Formatter("%(asctime)s vrtd-sim %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO if args.verbose else logging.WARNING)
    log.propagate = False

    if args.cards < 0 or args.cards > 64:
        print("emutui sim vrtd: --cards must be between 0 and 64", file=sys.stderr)
        return 2
    if not 1 <= args.bar_size <= 4096 or args.bar_size & (args.bar_size - 1):
        print("emutui sim vrtd: --bar-size must be a power of two, 1..4096 MiB", file=sys.stderr)
        return 2
    config = args.config or os.environ.get("VRTD_CONFIG") or None
    try:
        perms = _load_perms(config, args.generation)
    except PermsError as e:
        print(f"emutui sim vrtd: {e}", file=sys.stderr)
        return 1
    try:
        path = args.socket or default_socket()
    except EmutuiError as e:
        print(f"emutui sim vrtd: {e}", file=sys.stderr)
        return 1
    if len(os.fsencode(path)) >= 108:
        print(f"emutui sim vrtd: socket path too long (max 107 bytes): {path}", file=sys.stderr)
        return 1
    opts = SimOptions(
        cards=args.cards,
        generation=args.generation,
        bar_size=args.bar_size * MIB,
        mock=args.mock,
        hang_on_malformed=args.hang_on_malformed,
    )
    model = VrtdModel(opts, perms)
    server = VrtdServer(model, path, mode=0o666 if config else 0o600)
    try:
        server.bind()
    except OSError as e:
        print(f"emutui sim vrtd: cannot listen on {path}: {e.strerror or e}", file=sys.stderr)
        model.close()
        return 1
    print(
        f"vrtd simulator: {len(model.cards)} card(s) on {path} "
        f"(protocol v{opts.generation}, permissions: {perms.source})",
        flush=True,
    )
    try:
        asyncio.run(_run(server, config, args.generation))
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        model.close()
    return 0


async def _run(server: VrtdServer, config: str | None, generation: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def reload() -> None:
        # Hardened behaviour: a failed reload keeps the live config.
        try:
            server.model.reload(_load_perms(config, generation))
            log.warning("SIGHUP: permissions reloaded from %s", config or "<built-in>")
        except PermsError as e:
            log.error("SIGHUP: reload failed, keeping the live config: %s", e)

    loop.add_signal_handler(signal.SIGHUP, reload)
    task = asyncio.create_task(server.serve())
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
