"""Builds the QEMU command line and starts QEMU detached, paused, then lets it run.

QEMU is the server on every socket (two QMP monitors, the serial chardevs,
qtest), so any process can attach and reattach from handles.json alone.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from pathlib import Path

from emutui.core import proc, qmpbroker, serialhub
from emutui.core.errors import BackendError, ConfigError, EmutuiError
from emutui.core.handles import Channel, Handles
from emutui.core.instance import OUTPUT_LOG
from emutui.core.paths import socket_path
from emutui.core.targets import TargetConfig

ALLOWED_KEYS = {"binary", "machine", "kernel", "serial", "args", "qtest", "memory", "cpu"}
ALLOWED_KEYS |= {"elf", "snapshots"}  # the CPU pane's symbols; a qcow2 for snapshots
DEFAULT_BINARY = "qemu-system-x86_64"
SOCKET_WAIT = 5.0  # QEMU creates its sockets ~25 ms after exec; a loaded CI machine is slower


def validate(target: TargetConfig) -> None:
    target.check_keys(ALLOWED_KEYS)
    target.str_opt("binary")
    target.str_opt("machine")
    target.path_opt("kernel")
    serial = target.list_opt("serial", ["com1"])
    for ch in serial:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", ch):  # ASCII only: no look-alikes
            raise target.error("serial", "channel names made of letters, digits, '-' or '_'")
    if len(set(serial)) != len(serial):
        raise target.error("serial", "distinct channel names")
    target.list_opt("args")
    target.bool_opt("qtest")
    target.str_opt("memory")
    target.str_opt("cpu")
    target.path_opt("elf")
    target.bool_opt("snapshots")
    target.log_limits()


def resolve_binary(target: TargetConfig) -> str:
    binary = target.str_opt("binary", DEFAULT_BINARY) or DEFAULT_BINARY
    found = shutil.which(binary)
    if found is None:
        raise ConfigError(
            f"{target.source}: targets.{target.name}.binary: {binary!r} not found on PATH "
            f"(Debian: apt-get install qemu-system-x86)"
        )
    return found


def build_command(target: TargetConfig, wd: Path) -> tuple[list[str], dict[str, Channel]]:
    """The full command line and the channels it creates. Always starts paused (-S)."""
    binary = resolve_binary(target)
    cmd = [binary, "-display", "none", "-no-user-config", "-nodefaults", "-S"]
    machine = target.str_opt("machine")
    if machine:
        cmd += ["-machine", machine]
    if target.str_opt("memory"):
        cmd += ["-m", str(target.str_opt("memory"))]
    if target.str_opt("cpu"):
        cmd += ["-cpu", str(target.str_opt("cpu"))]
    channels: dict[str, Channel] = {}
    # QEMU serves each monitor to one client. The first one's client is the QMP
    # broker, which serves qmp.sock to any number of clients; the second one
    # (qmp-aux) is left free: the way in when the broker is wedged.
    upstream = socket_path(wd, "qmp.qemu.sock")
    cmd += ["-qmp", f"unix:{upstream},server=on,wait=off"]
    channels["qmp"] = qmpbroker.channel_for(wd, str(upstream))
    aux = socket_path(wd, "qmp-aux.sock")
    cmd += ["-qmp", f"unix:{aux},server=on,wait=off"]
    channels["qmp-aux"] = Channel(role="qmp-aux", kind="unix", path=str(aux))
    for i, name in enumerate(target.list_opt("serial", ["com1"])):
        # QEMU serves the port to one client: the serial hub, which logs with
        # rotation and fans out to any number of emutui clients on its own socket.
        upstream = socket_path(wd, f"serial-{name}.qemu.sock")
        cid = f"serial{i}"
        cmd += [
            "-chardev",
            f"socket,id={cid},path={upstream},server=on,wait=off",
            "-serial",
            f"chardev:{cid}",
        ]
        channels[name] = Channel(
            role="serial",
            kind="unix",
            path=str(socket_path(wd, f"serial-{name}.sock")),
            log=str(wd / f"serial-{name}.log"),
            upstream=str(upstream),
        )
    # The CPU as a peer: QEMU's gdbstub on a socket of its own (see emutui/core/gdbhub.py).
    gdb = socket_path(wd, "gdb.sock")
    cmd += ["-chardev", f"socket,id=gdb,path={gdb},server=on,wait=off", "-gdb", "chardev:gdb"]
    channels["gdb"] = Channel(role="gdb", kind="unix", path=str(gdb))
    if target.bool_opt("snapshots"):
        from emutui.backends.qemu.snapshots import drive_args

        cmd += drive_args(wd)
    # Every instance gets the qtest side channel: MMIO reads go through it pipelined
    # (HMP xp reads one word per command). It sits in the private instance dir,
    # owner-only like QMP. Writing through it still needs `qtest = true` (the
    # connector checks handles.options["qtest"]). -accel tcg keeps the guest
    # running under qtest; -qtest-log silences QEMU's per-command log.
    path = socket_path(wd, "qtest.sock")
    cmd += ["-accel", "tcg", "-qtest", f"unix:{path},server=on,wait=off"]
    cmd += ["-qtest-log", "/dev/null"]
    channels["qtest"] = Channel(role="qtest", kind="unix", path=str(path))
    kernel = target.path_opt("kernel")
    if kernel:
        cmd += ["-kernel", str(kernel)]
    cmd += target.list_opt("args")
    return cmd, channels


def spawn(cmd: list[str], wd: Path) -> subprocess.Popen[bytes]:
    """QEMU in its own session: it outlives the CLI and the TUI, and signals reach its group."""
    return proc.spawn_detached(cmd, wd, wd / OUTPUT_LOG)


def exited_at_start(popen: subprocess.Popen[bytes], wd: Path) -> str | None:
    """QEMU's own last words (filtered) once it has exited, else None."""
    if popen.poll() is None:
        return None
    from emutui.core.instance import Instance

    tail = [t for t in Instance(name="", wd=wd, handles=None).tail(lines=3) if t.strip()]
    return f"QEMU exited with status {popen.returncode} at start: " + " | ".join(tail)


async def wait_for_sockets(
    popen: subprocess.Popen[bytes], paths: list[str], wd: Path, timeout: float = SOCKET_WAIT
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        gone = exited_at_start(popen, wd)
        if gone:
            raise BackendError(gone)
        if all(os.path.exists(p) for p in paths):
            return
        if loop.time() > deadline:
            raise BackendError(f"QEMU did not create its sockets within {timeout:.0f} s")
        await asyncio.sleep(0.005)


async def start(target: TargetConfig, wd: Path, name: str, paused: bool) -> Handles:
    # Imported here: connector pulls in qemu.qmp, which the launcher's validation does not need.
    from emutui.backends.qemu.connector import QemuConnector
    from emutui.core.instance import Instance

    max_bytes, gens = target.log_limits()
    cmd, channels = build_command(target, wd)
    popen = spawn(cmd, wd)
    handles = Handles(
        name=name,
        backend="qemu",
        target=target.name,
        pid=popen.pid,
        pid_start=proc.start_time(popen.pid),
        command=cmd,
        channels=channels,
        options={"qtest": target.bool_opt("qtest"), "machine": target.str_opt("machine") or ""},
    )
    handles.options.update(log_max_bytes=max_bytes, log_generations=gens)
    if target.path_opt("elf"):
        handles.options["elf"] = str(target.path_opt("elf"))  # symbols for the CPU pane
    try:
        # The hub starts beside QEMU and holds the serial ports before the first
        # guest instruction (QEMU waits at -S), so the banner is in the log.
        hub = serialhub.launch_for(handles, wd)  # its supervisor runs the QMP broker too
        broker = qmpbroker.supervised_spec(handles, wd)
        handles.save(wd)
        await wait_for_sockets(
            popen, [c.upstream or c.path for c in channels.values() if c.path], wd
        )
        # QEMU may create its sockets and then fail (a kernel it cannot load): its
        # own words are the error, at once, not a hub that waited for it.
        await serialhub.wait_launched(
            handles, wd, hub, emulator_gone=lambda: exited_at_start(popen, wd)
        )
        await qmpbroker.wait_launched(handles, wd, broker)
        if not paused:
            conn = QemuConnector(Instance(name=name, wd=wd, handles=handles), aux=True)
            await conn.connect()
            try:
                # The hub logs from the first byte, so nothing printed before a
                # console attaches is lost.
                await conn.resume()
            finally:
                await conn.close()
    except (EmutuiError, OSError):
        proc.terminate(popen.pid, handles.pid_start, grace=1.0)
        serialhub.stop_helpers(handles)
        raise
    return handles
