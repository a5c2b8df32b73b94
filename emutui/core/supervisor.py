"""A tiny supervisor: keeps an instance's helper processes running while its emulator lives.

Why: the serial hub is the only thing that records what the guest prints. If it
dies (``kill -9``, OOM killer, a bug), the emulator drops the guest's output until
something reconnects, and before this supervisor that was "the next client",
which may be never. The supervisor restarts a dead child at once, so capture
resumes within a fraction of a second without any client, and tells the new
child when the old one died (``EMUTUI_GAP_SINCE``) so the gap is recorded.

Design (generic: a list of children, e.g. the serial hub, later a QMP broker):

- started detached in a session of its own, so a signal to its group (what
  ``stop_helpers`` sends) reaches every child too;
- each child is an argv with its own log; the supervisor waits on them with
  ``os.waitpid`` and restarts one that exits while the emulator (pid + start time)
  is alive, with a backoff when a child keeps dying (at most one start per
  ``MAX_BACKOFF`` seconds after repeated failures);
- it writes the children's current pids to ``STATE`` (``<name>.pids.json``) so a
  client can tell whether a hub is alive even if the supervisor was killed;
- it ends when the emulator is gone (children end by themselves when the
  emulator closes their sockets; stragglers get SIGTERM), or on SIGTERM, which it
  passes on to its children.

Run as ``python -m emutui.core.supervisor SPEC.json``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from emutui.core import proc

POLL = 0.02  # how often children are checked: a restart within tens of ms
EMULATOR_CHECK = 0.25
MAX_BACKOFF = 2.0
GAP_ENV = "EMUTUI_GAP_SINCE"  # when the child before this one died (a restart)
GAP_WHY_ENV = "EMUTUI_GAP_WHY"  # and why there is a gap, in words


@dataclass
class ChildSpec:
    """A child: ``module`` (a Python module run as ``__main__`` with ``args``, forked from
    the supervisor, which imported it once: a restart costs a fork, not an interpreter
    start), or else ``argv`` (any program, started afresh each time)."""

    name: str
    argv: list[str]
    log: str
    module: str | None = None
    args: list[str] = field(default_factory=list)


class _Forked:
    """The part of Popen's interface the supervisor uses, for a child it forked."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -1
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def _send(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self._send(signal.SIGTERM)

    def kill(self) -> None:
        self._send(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            time.sleep(POLL)
        assert self.returncode is not None
        return self.returncode


@dataclass
class SupervisorSpec:
    children: list[ChildSpec]
    state: str  # JSON file: {"children": {name: [pid, start]}, "restarts": {name: n}}
    emulator_pid: int | None = None
    emulator_start: int | None = None
    cwd: str = "."
    env: dict[str, str] = field(default_factory=dict)
    initial_gap: float | None = None  # the first start already follows a gap (a restart)

    def save(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> SupervisorSpec:
        obj = json.loads(path.read_text())
        children = [ChildSpec(**c) for c in obj.pop("children")]
        return cls(children=children, **obj)


def read_state(path: Path) -> dict[str, list[int | None]]:
    """The children's [pid, start] as the supervisor last wrote them ({} when unknown)."""
    try:
        obj = json.loads(path.read_text())
        children = obj.get("children", {})
        return {str(k): list(v) for k, v in children.items() if isinstance(v, list)}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def supervises(path: Path, name: str) -> bool:
    """The supervisor that wrote the state file ``path`` keeps a child ``name`` alive.

    Only the state's say-so: callers also check the supervisor itself is alive.
    """
    try:
        names = json.loads(path.read_text()).get("supervises", [])
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(names, list) and name in names


class Supervisor:
    def __init__(self, spec: SupervisorSpec) -> None:
        self.spec = spec
        self.procs: dict[str, subprocess.Popen[bytes] | _Forked] = {}
        self.restarts: dict[str, int] = {c.name: 0 for c in spec.children}
        self.failures: dict[str, int] = {c.name: 0 for c in spec.children}
        self.next_start: dict[str, float] = {}
        self.died_at: dict[str, float] = {}  # when a child died, until its successor starts
        self.started_at: dict[str, float] = {}
        self.stopping = False
        self.emulator_gone = False
        for c in spec.children:
            if c.module:
                importlib.import_module(c.module)  # once: each (re)start is then a fork

    def emulator_alive(self) -> bool:
        if self.spec.emulator_pid is None:
            return True  # nothing to watch: supervise until told to stop
        return proc.is_alive(self.spec.emulator_pid, self.spec.emulator_start)

    def start(self, child: ChildSpec, gap_since: float | None, why: str = "") -> None:
        env = dict(os.environ, **self.spec.env)
        if gap_since is not None:
            env[GAP_ENV] = f"{gap_since:.3f}"
        else:
            env.pop(GAP_ENV, None)
        if why:
            env[GAP_WHY_ENV] = why
        self.started_at[child.name] = time.time()
        fd = os.open(child.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if child.module:
            try:
                self.procs[child.name] = _Forked(self._fork(child, fd, env))
            finally:
                os.close(fd)
            self.write_state()
            return
        try:
            # Same session and group as the supervisor: a signal to the group reaches it.
            self.procs[child.name] = subprocess.Popen(
                child.argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                cwd=self.spec.cwd,
                env=env,
                close_fds=True,
            )
        except OSError as e:
            note(f"cannot start {child.name}: {e}")
        finally:
            os.close(fd)
        self.write_state()

    def _fork(self, child: ChildSpec, log_fd: int, env: dict[str, str]) -> int:
        assert child.module is not None
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # the child: never returns into the supervisor's loop
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log_fd, 1)
            os.dup2(log_fd, 2)
            os.chdir(self.spec.cwd)
            os.environ.clear()
            os.environ.update(env)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            # `ps -o comm`, `pgrep`: the child's own name
            with contextlib.suppress(OSError), open("/proc/self/comm", "w") as f:
                f.write(child.name[:15])
            sys.argv = [child.module, *child.args]
            try:
                runpy.run_module(child.module, run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def write_state(self) -> None:
        children = {n: [p.pid, proc.start_time(p.pid)] for n, p in self.procs.items()}
        # "supervises": every child this supervisor keeps alive, even one that is down
        # right now; a client reads it to leave restarts to the supervisor.
        names = [c.name for c in self.spec.children]
        data = json.dumps(
            {
                "children": children,
                "restarts": self.restarts,
                "pid": os.getpid(),
                "supervises": names,
            }
        )
        tmp = f"{self.spec.state}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(tmp, self.spec.state)

    def run(self) -> int:
        for c in self.spec.children:
            self.start(c, self.spec.initial_gap)
        last_check = 0.0
        while not self.stopping:
            now = time.monotonic()
            if now - last_check >= EMULATOR_CHECK:
                last_check = now
                if not self.emulator_alive():
                    self.emulator_gone = True
                    break
            for c in self.spec.children:
                p = self.procs.get(c.name)
                if p is not None and p.poll() is None:
                    continue
                if p is not None:
                    self.on_exit(c, p)
                if self.stopping:
                    break
                when = self.next_start.get(c.name, 0.0)
                if time.monotonic() >= when and not self.stopping and self.emulator_alive():
                    self.start(c, self.died_at.pop(c.name, None), f"{c.name} restarted")
            time.sleep(POLL)
        self.stop_children()
        return 0

    def on_exit(self, c: ChildSpec, p: subprocess.Popen[bytes] | _Forked) -> None:
        died = time.time()
        del self.procs[c.name]
        if p.returncode == 0:
            # A clean exit: the emulator closed the child's sockets, it is going away.
            # Restart only if it is still there after a moment.
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline and self.emulator_alive():
                time.sleep(POLL)
        if self.stopping or not self.emulator_alive():
            self.emulator_gone = not self.stopping
            self.stopping = True
            return
        self.restarts[c.name] += 1
        # Killed by a signal (kill -9, the OOM killer): at once, every time. Failing by
        # itself (an exit status) soon after its start, again and again: back off.
        failed = (p.returncode or 0) > 0 and died - self.started_at.get(c.name, 0.0) < 5.0
        self.failures[c.name] = self.failures[c.name] + 1 if failed else 0
        delay = min(MAX_BACKOFF, 0.05 * (2 ** self.failures[c.name])) if failed else 0.0
        if self.failures[c.name] <= 1:
            delay = 0.0
        self.next_start[c.name] = time.monotonic() + delay
        self.died_at.setdefault(c.name, died)
        note(f"{c.name} (pid {p.pid}) exited with status {p.returncode}; restarting")

    def stop_children(self) -> None:
        if self.emulator_gone:
            # Children end by themselves once the emulator has closed their sockets
            # (the hub flushes its log first); give them a moment before SIGTERM.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and any(
                p.poll() is None for p in self.procs.values()
            ):
                time.sleep(POLL)
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def note(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} supervisor: {msg}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = SupervisorSpec.load(Path(args[0]))
    sup = Supervisor(spec)

    def on_term(signum: int, frame: object) -> None:
        sup.stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
