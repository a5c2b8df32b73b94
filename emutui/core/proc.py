"""Process liveness that survives pid reuse: a pid plus its start time."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from emutui.core.errors import BackendError


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields 3… of /proc/PID/stat (state first), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return data[data.rfind(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def state_letter(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0].decode() if fields else None


def valid_pid(pid: object) -> bool:
    """An int naming one process: never a bool, never 0, 1 (init) or a negative "group"."""
    return type(pid) is int and pid > 1


def exists(pid: object) -> bool:
    """A live (not zombie) process with this pid, whoever it is: for processes we just spawned."""
    if not valid_pid(pid):
        return False
    assert isinstance(pid, int)
    return start_time(pid) is not None and state_letter(pid) not in ("Z", "X")


def is_alive(pid: object, started: object) -> bool:
    """True when ``pid`` exists, is not a zombie, and started at ``started``.

    The identity of a process is its pid plus its start time: without a recorded
    start time (or with a malformed one) nothing is known to be ours, so False.
    """
    if not valid_pid(pid) or type(started) is not int:
        return False
    assert isinstance(pid, int)
    st = start_time(pid)
    if st is None or st != started:
        return False  # gone, or the pid was reused by another process
    return state_letter(pid) not in ("Z", "X")


def is_stopped(pid: int) -> bool:
    """SIGSTOPped (T) or traced (t): alive but not answering."""
    return valid_pid(pid) and state_letter(pid) in ("T", "t")


def _pgrp_sid(pid: int) -> tuple[int, int] | None:
    fields = _stat_fields(pid)
    try:
        return (int(fields[2]), int(fields[3])) if fields else None
    except (IndexError, ValueError):
        return None


def signal_owned(pid: object, started: object, sig: int, group: object = None) -> bool:
    """Send ``sig`` to an emulator emutui started, and only to it; True when sent.

    Sent only when ``pid`` is a real pid (> 1) whose recorded start time is present and
    matches /proc's. The signal goes to the process group ``group`` (default: ``pid``)
    only when that group is the process's own session (pgrp == sid == group, as
    ``start_new_session`` makes it); otherwise to the pid alone. A pidfd pins the
    process between the check and the signal.
    """
    if not is_alive(pid, started):
        return False
    assert isinstance(pid, int)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if start_time(pid) != started:
            return False  # reused between the check and pidfd_open
        ids = _pgrp_sid(pid)
        leader = pid if group is None else group
        if ids is not None and valid_pid(leader) and ids[0] == ids[1] == leader:
            assert isinstance(leader, int)
            try:
                os.killpg(leader, sig)
                return True
            except (ProcessLookupError, PermissionError):
                pass
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    finally:
        os.close(pidfd)


def wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    """True once the process is gone (without a start time: any process with that pid)."""
    if not valid_pid(pid):
        return True

    def present() -> bool:
        return exists(pid) if started is None else is_alive(pid, started)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not present():
            _reap(pid)
            return True
        _reap(pid)
        time.sleep(0.02)
    return not present()


def _reap(pid: int) -> None:
    if not valid_pid(pid):
        return  # waitpid(-1) or waitpid(0) would reap someone else's child
    # If we are the parent (tests start processes directly), collect the zombie.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def terminate(pid: object, started: object, grace: float = 3.0) -> None:
    """SIGTERM then SIGKILL to the process (its group when it leads its own session).

    A process that is not provably ours (see ``signal_owned``) is left alone.
    """
    if not is_alive(pid, started):
        return
    assert isinstance(pid, int) and isinstance(started, int)
    if is_stopped(pid):
        signal_owned(pid, started, signal.SIGCONT)
    signal_owned(pid, started, signal.SIGTERM)
    if wait_gone(pid, started, grace):
        return
    signal_owned(pid, started, signal.SIGKILL)
    wait_gone(pid, started, 5.0)


def spawn_detached(
    argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process emutui does not wait for: an emulator, a hub, a simulator.

    Its own session, so it outlives the CLI and the TUI and a signal to its group
    reaches its children; umask 077, so its sockets and files are the owner's
    only; stdout and stderr appended to ``log``; an argument list, never a shell.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            cwd=cwd,
            env=env,
            start_new_session=True,
            close_fds=True,
            umask=0o077,
        )
    except OSError as e:
        raise BackendError(f"cannot run {argv[0]}: {e.strerror or e}") from e
    finally:
        os.close(fd)
