"""events, logs, term: what an instance says, past and live."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emutui.backends.base import SerialStream
from emutui.commands import registry
from emutui.core.errors import EmutuiError, NotFoundError
from emutui.core.instance import Instance
from emutui.core.model import Event
from emutui.core.rotating import generations
from emutui.core.sanitize import TerminalSanitizer, display_line

Sub = argparse._SubParsersAction  # type: ignore[type-arg]
ESCAPE_KEY = 0x1D  # Ctrl+], as in telnet and virsh


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("events", help="event history, and live events with -f", parents=[common])
    p.add_argument("name", help="NAME (live or last run), NAME~N (N runs before) or a run id")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    p.add_argument("-n", "--lines", type=int, default=0, help="only the last N from history")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_events)

    p = sub.add_parser(
        "logs", help="serial output (everything the guest printed)", parents=[common]
    )
    p.add_argument("name", help="NAME (live or last run), NAME~N (N runs before) or a run id")
    p.add_argument("channel", nargs="?", help="serial channel (default: the first)")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--emulator", action="store_true", help="the emulator's own output instead")
    p.add_argument("--raw", action="store_true", help="bytes as received, even to a terminal")
    p.add_argument(
        "-t", "--timestamps", action="store_true", help="each line with the time it arrived"
    )
    p.add_argument("--since", help="lines that arrived from then on (10:42, 2026-11-30T10:42, 5m)")
    p.add_argument("--until", help="lines that arrived until then")
    p.add_argument("--last", help="only the last span of the log (5m, 1h)")
    p.set_defaults(handler=cmd_logs)

    p = sub.add_parser("term", help="interactive serial console (Ctrl+] leaves)", parents=[common])
    p.add_argument("name")
    p.add_argument("channel", nargs="?")
    p.set_defaults(handler=cmd_term)


def format_event(ev: Event) -> str:
    t = time.strftime("%H:%M:%S", time.localtime(ev.timestamp))
    ms = int((ev.timestamp % 1) * 1000)
    data = json.dumps(ev.data, separators=(",", ":"), default=str) if ev.data else ""
    return display_line(f"{t}.{ms:03d} {ev.name} {data}".rstrip())


async def cmd_events(args: argparse.Namespace) -> int:
    from emutui.control import connected

    inst = registry(args).resolve(args.name)
    if args.follow and inst.run is not None:
        raise EmutuiError(f"{inst.ref} is a kept run: it has no new events to follow")

    def show(ev: Event) -> None:
        print(json.dumps(ev.to_json(), default=str) if args.json else format_event(ev), flush=True)

    # every kept generation, oldest first (events.jsonl.N … events.jsonl)
    for ev in inst.journal().read(limit=args.lines or None):
        show(ev)
    if args.follow:
        while True:
            async with connected(inst) as conn:
                async for ev in conn.events():
                    show(ev)
            # The monitor went away. If the emulator lives on (its QMP broker was
            # restarted, say), follow it again; what it said meanwhile is lost.
            if not inst.alive():
                break
            print(f"emutui: {inst.name}: connection lost; reconnecting", file=sys.stderr)
            await asyncio.sleep(0.2)
        print(f"emutui: {inst.name}: connection closed", file=sys.stderr)
    return 0


def _channel(inst: Instance, channel: str | None) -> str:
    chans = inst.handles.serial_channels() if inst.handles else []
    if channel is None:
        if not chans:
            raise NotFoundError(f"{inst.name} has no serial channels")
        return chans[0]
    if channel not in chans:
        raise NotFoundError(
            f"{inst.name}: no serial channel {channel!r} (channels: {', '.join(chans) or 'none'})"
        )
    return channel


async def cmd_logs(args: argparse.Namespace) -> int:
    inst = registry(args).resolve(args.name)
    if args.follow and inst.run is not None:
        raise EmutuiError(f"{inst.ref} is a kept run: it has no new output to follow")
    path = inst.output_log() if args.emulator else inst.serial_log(_channel(inst, args.channel))
    out = sys.stdout.buffer
    sanitizer = None if args.raw or not sys.stdout.isatty() else TerminalSanitizer()
    if args.timestamps or args.since or args.until or args.last:
        if args.emulator:
            raise EmutuiError("logs --emulator: the emulator's output has no arrival times")
        _timed_logs(inst, path, args, out, sanitizer)
        return 0
    # Every kept generation, oldest first, then (with -f) what the live file gains.
    for old in generations(path)[:-1]:
        for chunk in follow_file(old, False):
            out.write(sanitizer.feed(chunk) if sanitizer else chunk)
        out.flush()
    for chunk in follow_file(path, args.follow, lambda: inst.alive()):
        out.write(sanitizer.feed(chunk) if sanitizer else chunk)
        out.flush()
    return 0


def _timed_logs(
    inst: Instance, path: Path, args: argparse.Namespace, out: Any, sanitizer: Any
) -> None:
    from emutui.core.timeline import FileSource, Timeline, clock
    from emutui.core.when import parse_span, parse_when

    created = inst.handles.created if inst.handles else 0.0
    src = FileSource(path.name, path, "serial", created)
    tl = Timeline([src], hold_partial=args.follow)
    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until) if args.until else None
    if args.last:
        span = parse_span(args.last)
        last = tl.backward(tl.end(), 1)[0]
        since = max(since or 0.0, (last[0].t if last else time.time()) - span)
    pos = tl.seek_time(since) if since is not None else tl.start()
    today = time.strftime("%Y-%m-%d")
    while True:
        lines, pos = tl.forward(pos, 512)
        for ln in lines:
            if until is not None and ln.t > until:
                return
            day = time.strftime("%Y-%m-%d", time.localtime(ln.t))
            text = ln.text + b"\n"
            out.write(clock(ln.t, date=day != today).encode() + b" ")
            out.write(sanitizer.feed(text) if sanitizer else text)
        out.flush()
        if len(lines) < 512:
            if not args.follow:
                return
            time.sleep(0.2)
            pos = tl.refresh(pos)


def follow_file(path: Path, follow: bool, alive: object = None) -> Iterator[bytes]:
    """Chunks of a file, then (with follow) what is appended, across rotation."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        if not follow:
            return
        while not path.exists():
            time.sleep(0.2)
        f = path.open("rb")
    with f:
        ino = os.fstat(f.fileno()).st_ino
        while True:
            chunk = f.read(65536)
            if chunk:
                yield chunk
                continue
            if not follow:
                return
            time.sleep(0.1)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if st.st_ino != ino:  # rotated: finish the old file, go on with the new one
                rest = f.read()
                if rest:
                    yield rest
                f.close()
                f = path.open("rb")
                ino = os.fstat(f.fileno()).st_ino


async def cmd_term(args: argparse.Namespace) -> int:
    from emutui.control import connected

    inst = registry(args).get(args.name)
    channel = _channel(inst, args.channel)
    async with connected(inst) as conn:
        stream = await conn.serial(channel)
    try:
        interactive = sys.stdin.isatty()
        if interactive:
            print(f"[{inst.name}:{channel}] connected; Ctrl+] leaves\r", file=sys.stderr)
        await _pump(stream, interactive)
    finally:
        await stream.close()
        if sys.stdin.isatty():
            print(f"\r\n[{inst.name}:{channel}] left", file=sys.stderr)
    return 0


async def _pump(stream: SerialStream, interactive: bool) -> None:
    loop = asyncio.get_running_loop()
    sanitizer = TerminalSanitizer()
    out = sys.stdout.buffer
    to_tty = sys.stdout.isatty()
    stdin_fd = sys.stdin.fileno()
    done = asyncio.Event()
    keys: asyncio.Queue[bytes] = asyncio.Queue()

    def on_key_bytes(data: bytes) -> None:
        if ESCAPE_KEY in data:
            data = data[: data.index(ESCAPE_KEY)]
            if data:
                keys.put_nowait(data)
            done.set()
            return
        keys.put_nowait(data)

    def on_stdin() -> None:
        try:
            data = os.read(stdin_fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(stdin_fd)
            done.set()
            return
        on_key_bytes(data)

    async def piped_input() -> None:
        # A pipe or file (scripts, tests): read it in a thread (epoll refuses regular
        # files), then give the guest a moment to answer the last bytes.
        while True:
            data = await loop.run_in_executor(None, os.read, stdin_fd, 4096)
            if not data:
                break
            keys.put_nowait(data)
        await asyncio.sleep(0.5)
        done.set()

    async def reader() -> None:
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                done.set()
                return
            # Guest bytes reach a terminal only through the sanitizer; a pipe gets them as is.
            out.write(sanitizer.feed(chunk) if to_tty else chunk)
            out.flush()

    async def writer() -> None:
        while True:
            await stream.write(await keys.get())

    with _raw_mode(stdin_fd, interactive):
        tasks = [asyncio.create_task(reader()), asyncio.create_task(writer())]
        if interactive:
            loop.add_reader(stdin_fd, on_stdin)
        else:
            tasks.append(asyncio.create_task(piped_input()))
        try:
            await done.wait()
            while not keys.empty():  # keys typed just before leaving still go out
                await stream.write(keys.get_nowait())
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(stdin_fd)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def _raw_mode(fd: int, enable: bool) -> Iterator[None]:
    if not enable:
        yield
        return
    import termios
    import tty

    old = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
