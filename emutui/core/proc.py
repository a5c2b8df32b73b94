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


def is_alive(pid: int | None, started: int | None) -> bool:
    """True when ``pid`` exists, is not a zombie, and started at ``started``."""
    if not pid or pid <= 0:
        return False
    st = start_time(pid)
    if st is None:
        return False
    if started is not None and st != started:
        return False  # the pid was reused by another process
    return state_letter(pid) not in ("Z", "X")


def is_stopped(pid: int) -> bool:
    """SIGSTOPped (T) or traced (t): alive but not answering."""
    return state_letter(pid) in ("T", "t")


def kill_group(pid: int, sig: int) -> None:
    """Signal the process group led by ``pid`` (we start emulators with setsid), else the pid."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return


def wait_gone(pid: int, started: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid, started):
            _reap(pid)
            return True
        _reap(pid)
        time.sleep(0.02)
    return not is_alive(pid, started)


def _reap(pid: int) -> None:
    # If we are the parent (tests start processes directly), collect the zombie.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def terminate(pid: int, started: int | None, grace: float = 3.0) -> None:
    """SIGTERM then SIGKILL to the process group; returns when it is gone."""
    if not is_alive(pid, started):
        return
    if is_stopped(pid):
        kill_group(pid, signal.SIGCONT)
    kill_group(pid, signal.SIGTERM)
    if wait_gone(pid, started, grace):
        return
    kill_group(pid, signal.SIGKILL)
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
