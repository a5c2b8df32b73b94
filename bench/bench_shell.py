"""Issue 6 figures: completion latency per keystroke with QEMU's full schema, start to prompt.

Run: .venv/bin/python bench/bench_shell.py [runs]

- schema: fetching ``query-qmp-schema`` over the auxiliary monitor, and parsing it.
- keystrokes: every prefix of a few realistic lines, typed one character at a
  time, through the engine (``QmpCompleter.complete``) and through the
  prompt_toolkit adapter the shell uses (``EngineCompleter.get_completions``,
  which also builds the Completion objects). Dynamic lookups are warm, as they
  are after the first keystroke that needed them.
- cold lookup: a QOM path completion that has to run ``qom-list`` first.
- start to prompt: ``emutui shell g0`` in a pseudo-terminal, from exec until
  the prompt is on the screen; and ``emutui shell g0 -c query-status`` end to end.
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import close_lab, emutui, lab, machine, summary

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
        asyncio.run(in_process(state, runs))
        prompt = [start_to_prompt(env, "g0") for _ in range(runs)]
        print(f"emutui shell: exec -> prompt drawn:  {summary(prompt)}")
        oneshot = [emutui(env, "shell", "g0", "-c", "query-status") for _ in range(runs)]
        print(f"emutui shell -c query-status:        {summary(oneshot)}")
    finally:
        close_lab(d, env)


if __name__ == "__main__":
    main()
