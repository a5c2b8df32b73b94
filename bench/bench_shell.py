"""Issue 6 figures: completion latency per keystroke with QEMU's full schema, start to prompt.

Run: .venv/bin/python bench/bench_shell.py [runs] [side]

- schema: fetching ``query-qmp-schema`` over the auxiliary monitor, and parsing it.
- keystrokes: every prefix of a few realistic lines, typed one character at a
  time, through the engine (``QmpCompleter.complete``) and through the
  prompt_toolkit adapter the shell uses (``EngineCompleter.get_completions``,
  which also builds the Completion objects). Dynamic lookups are warm, as they
  are after the first keystroke that needed them.
- cold lookup: a QOM path completion that has to run ``qom-list`` first.
- start to prompt: ``emutui shell g0`` in a pseudo-terminal, from exec until
  the prompt is on the screen; and ``emutui shell g0 -c query-status`` end to end.
- side by side with qemu.qmp's ``qmp-shell`` on the same QEMU socket (issue 11):
  start to prompt, and ``query-status`` typed as one line until its answer and
  the next prompt are drawn, as wall clock and as the shell process's CPU time
  (from /proc: what the shell itself costs, whatever else loads the machine).
  Both run from bytecode (PYTHONDONTWRITEBYTECODE is dropped, emutui compiled
  into a private pycache prefix) as an installed copy would.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import ROOT, close_lab, emutui, lab, machine, summary

LINES = [
    "query-status",
    "qom-get path=/machine/peripheral/edu0 property=type",
    "qom-set path=/machine/peripheral/edu0 property=dma_mask value=4294967295",
    "blockdev-add driver=file node-name=f0 filename=/tmp/x cache.direct=true discard=unmap",
    "transaction( block-dirty-bitmap-add node=f0 name=b0 granularity=512 ; abort ) "
    "completion-mode=grouped",
    "device_add driver=edu id=edu1",
    '{"execute": "query-pci"}',
    "!info pci",
]


def us(samples: list[float]) -> str:
    s = sorted(samples)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    return (
        f"median {statistics.median(s) * 1e6:.1f} µs, p99 {p99 * 1e6:.1f} µs, "
        f"max {s[-1] * 1e6:.1f} µs (n={len(s)})"
    )


async def in_process(state: Path, runs: int) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from emutui.control import connected
    from emutui.core.registry import Registry
    from emutui.shell.completion import QmpCompleter
    from emutui.shell.modes import QmpMode
    from emutui.shell.repl import EngineCompleter, Shell
    from emutui.shell.schema import Schema

    inst = Registry(state).get("g0")
    async with connected(inst, aux=True) as conn:
        fetch, parse = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            entries = await conn.execute("query-qmp-schema")
            t1 = time.perf_counter()
            Schema.from_introspection(entries)
            parse.append(time.perf_counter() - t1)
            fetch.append(t1 - t0)
        print(f"query-qmp-schema fetch ({len(entries)} entries): {summary(fetch)}")
        print(f"Schema.from_introspection:                 {summary(parse)}")

        mode = QmpMode(conn)
        await mode.prepare(wait=True)
        engine: QmpCompleter = mode.engine
        # warm the dynamic lookups the lines touch, as typing does, and keep them
        engine._lookups.ttl = 1e9
        for line in LINES:
            for i in range(len(line) + 1):
                await engine.complete_async(line[:i])

        shell = Shell(mode, conn, "g0", history=None)
        adapter = EngineCompleter(shell)
        ev = CompleteEvent(text_inserted=True)
        eng_t: list[float] = []
        ad_t: list[float] = []
        worst: tuple[float, str] = (0.0, "")
        for _ in range(runs):
            for line in LINES:
                for i in range(1, len(line) + 1):
                    text = line[:i]
                    t0 = time.perf_counter()
                    engine.complete(text)
                    t1 = time.perf_counter()
                    list(adapter.get_completions(Document(text), ev))
                    t2 = time.perf_counter()
                    eng_t.append(t1 - t0)
                    ad_t.append(t2 - t1)
                    if t2 - t1 > worst[0]:
                        worst = (t2 - t1, text)
        print(f"keystroke, engine.complete:          {us(eng_t)}")
        print(f"keystroke, prompt_toolkit adapter:   {us(ad_t)}")
        print(f"  slowest keystroke: {worst[0] * 1e6:.0f} µs at {worst[1]!r}")
        menu = []
        for _ in range(runs * 20):
            t0 = time.perf_counter()
            list(adapter.get_completions(Document(""), ev))
            menu.append(time.perf_counter() - t0)
        n = len(engine.complete(""))
        print(f"empty line, menu of all {n} commands:  {us(menu)}")

        cold = []
        for _ in range(runs * 5):
            engine.invalidate()
            t0 = time.perf_counter()
            got = await engine.complete_async("qom-get path=/machine/peri")
            cold.append(time.perf_counter() - t0)
            assert got, "no candidates"
        print(f"cold QOM path (qom-list round trip): {us(cold)}")


def start_to_prompt(env: dict[str, str], name: str) -> float:
    """Exec `emutui shell NAME` on a pty; seconds until the prompt is drawn."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execve(sys.executable, [sys.executable, "-m", "emutui", "shell", name], env)
    t0 = time.perf_counter()
    seen = b""
    try:
        while f"(qmp:{name})".encode() not in seen:
            r, _, _ = select.select([fd], [], [], 10)
            if not r:
                raise TimeoutError(f"no prompt; got {seen[-200:]!r}")
            seen += os.read(fd, 65536)
        elapsed = time.perf_counter() - t0
        os.write(fd, b"\x04")  # Ctrl+D: leave
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    if not os.read(fd, 65536):
                        break
                except OSError:
                    break
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        return elapsed
    finally:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)


# -- against qemu.qmp's qmp-shell, on a pseudo-terminal (issue 11 item 3) -------------------

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (from /proc): load on the machine does not
    inflate it the way it inflates wall-clock figures."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Pty:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.t0 = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.execve(argv[0], argv, env)
        self.seen = b""

    def until(self, needle: bytes, start: int = 0, timeout: float = 20) -> None:
        while needle not in self.seen[start:]:
            r, _, _ = select.select([self.fd], [], [], timeout)
            if not r:
                raise TimeoutError(f"no {needle!r}; got {self.seen[-300:]!r}")
            self.seen += os.read(self.fd, 65536)

    def close(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def side_by_side(env: dict[str, str], sock: str, runs: int, n: int) -> None:
    """emutui shell and qmp-shell on the same QEMU socket: start to prompt, and
    query-status per command typed as one line (result and next prompt drawn)."""
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: both run from bytecode
    env["PYTHONPYCACHEPREFIX"] = str(Path(env["EMUTUI_STATE_DIR"]).parent / "pyc")
    qmp_shell = str(Path(sys.executable).parent / "qmp-shell")
    shells = {
        "emutui shell": ([sys.executable, "-m", "emutui", "shell", "g0"], b"(qmp:g0)"),
        "qmp-shell": ([qmp_shell, sock], b"(QEMU)"),
    }
    # Editing live: emutui draws its prompt before prompt_toolkit is imported (keys
    # typed meanwhile wait in the terminal); prompt_toolkit's first render turns on
    # bracketed paste. readline's prompt is live when drawn.
    live_mark = {"emutui shell": b"\x1b[?2004h", "qmp-shell": b""}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "emutui")], env=env)
    start: dict[str, list[float]] = {k: [] for k in shells}
    start_cpu: dict[str, list[float]] = {k: [] for k in shells}
    live: dict[str, list[float]] = {k: [] for k in shells}
    live_cpu: dict[str, list[float]] = {k: [] for k in shells}
    cmd: dict[str, list[float]] = {k: [] for k in shells}
    cmd_cpu: dict[str, list[float]] = {k: [] for k in shells}
    for _ in range(runs):
        for name, (argv, prompt) in shells.items():  # interleaved: same load for both
            p = Pty(argv, env)
            try:
                p.until(prompt)
                start[name].append(time.perf_counter() - p.t0)
                start_cpu[name].append(cpu_seconds(p.pid))
                p.until(live_mark[name])  # not before the prompt: timed after it
                live[name].append(time.perf_counter() - p.t0)
                live_cpu[name].append(cpu_seconds(p.pid))
                time.sleep(0.3)  # the schema arrives in the background
                c0 = cpu_seconds(p.pid)
                for _ in range(n):
                    mark = len(p.seen)
                    t0 = time.perf_counter()
                    os.write(p.fd, b"query-status\r")
                    p.until(b'"running"', mark)
                    p.until(prompt, p.seen.rfind(b'"running"'))
                    cmd[name].append(time.perf_counter() - t0)
                cmd_cpu[name].append((cpu_seconds(p.pid) - c0) / n)
            finally:
                p.close()
    for name in shells:
        print(f"{name:13} exec -> prompt:          {summary(start[name])}")
        print(f"{name:13} CPU to the prompt:       {summary(start_cpu[name])}")
        print(f"{name:13} exec -> editing live:    {summary(live[name])}")
        print(f"{name:13} CPU to editing live:     {summary(live_cpu[name])}")
        print(f"{name:13} query-status, wall:      {summary(cmd[name])}")
        print(f"{name:13} query-status, CPU/cmd:   {summary(cmd_cpu[name])}")
    e, q = "emutui shell", "qmp-shell"
    med = statistics.median
    print(
        f"ratios emutui/qmp-shell: start wall {med(start[e]) / med(start[q]):.2f}x, "
        f"start CPU {med(start_cpu[e]) / med(start_cpu[q]):.2f}x, "
        f"live wall {med(live[e]) / med(live[q]):.2f}x, "
        f"live CPU {med(live_cpu[e]) / med(live_cpu[q]):.2f}x, "
        f"per command wall {med(cmd[e]) / med(cmd[q]):.2f}x, "
        f"per command CPU {med(cmd_cpu[e]) / med(cmd_cpu[q]):.2f}x"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    d, env = lab()
    env["EMUTUI_SHELL_HISTORY"] = str(d / "history")
    env["TERM"] = "xterm-256color"
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"
    state = Path(env["EMUTUI_STATE_DIR"])
    try:
        emutui(env, "start", "guest", "--name", "g0")
        print(f"machine: {machine()}")
        if "side" in sys.argv[2:]:  # `bench_shell.py 5 side`: only against qmp-shell
            side_by_side(env, str(state / "g0" / "qmp.sock"), runs, 30)
            return
        asyncio.run(in_process(state, runs))
        prompt = [start_to_prompt(env, "g0") for _ in range(runs)]
        print(f"emutui shell: exec -> prompt drawn:  {summary(prompt)}")
        oneshot = [emutui(env, "shell", "g0", "-c", "query-status") for _ in range(runs)]
        print(f"emutui shell -c query-status:        {summary(oneshot)}")
        sock = str(state / "g0" / "qmp.sock")
        side_by_side(env, sock, runs, 30)
    finally:
        close_lab(d, env)


if __name__ == "__main__":
    main()
