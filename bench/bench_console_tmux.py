"""Console switching and key-to-screen latency, end to end through tmux (issue 15, items 27/28).

    .venv/bin/python bench/bench_console_tmux.py [--samples 60] [--size 120x40] [--flood]
    .venv/bin/python bench/bench_console_tmux.py --tiles --size 200x50

``emutui demo`` runs in a detached tmux session; a tmux *control-mode* client
(``tmux -C attach``) receives every byte the app writes as a ``%output`` line, which a
reader thread timestamps as it arrives (no polling of the screen). Keys go in through
the same control client (``send-keys``, all keys of one step in one command, so they
reach the app in one write, as a paste or a fast typist over SSH would). A sample is
the time from writing the command to the first ``%output`` whose text (escape
sequences removed) shows the expected result:

- ``switch``: on the instance table, Down/Up between pc and q35; done when the other
  instance's console note (``q35/com1``) is drawn: the console is shown, no replay.
- ``leave+switch``: in pc's console, ``C-] 1 Down`` in one write; done when q35's
  console is shown.
- ``echo``: a letter typed into q35's console (a real QEMU test guest that echoes);
  done when it is drawn. ``--flood`` makes pc's COM1 flood (``^F``, ~200-380 KiB/s)
  first, in the background (its console kept and parsed, not shown), and for
  ``switch`` the flooding console is the one shown half of the time.

- ``--tiles``: four tiles (board uart0, pc com1 flooding, q35 com1, pc com2), and
  ``echo`` into q35's tile (issue 15's "done when").

Figures are milliseconds: p50 / p95 / p99 / max. The machine is shared (load shown).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SESSION = f"t-console-bench-{os.getpid()}"
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-B]|\x1b[=>78]|\x1b\][^\x07]*\x07")
_OCTAL = re.compile(r"\\([0-7]{3})")
# What shows that an instance's console is up: its note and a word typed into that
# console before measuring (both guests print the same banner; the note alone was
# once drawn a frame before the console under it). With --flood, pc's output.
MARK: dict[str, tuple[str, ...]] = {"pc": ("pc/com1", "pcpcpc"), "q35": ("q35/com1", "qqqqqq")}
LETTERS = "ZXJWYV"  # letters in no label, header or footer of the demo's screen


def _unescape(s: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), s)


class Control:
    """A tmux control-mode client: timestamped output, commands in."""

    def __init__(self, session: str) -> None:
        self.p = subprocess.Popen(
            ["tmux", "-C", "attach", "-t", session],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self.session = session
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            t = time.perf_counter()
            if line.startswith("%output "):
                _, _pane, data = line.rstrip("\n").split(" ", 2)
                text = _ANSI.sub("", _unescape(data))
                with self.cond:
                    self.lines.append((t, text))
                    self.cond.notify_all()

    def send(self, *keys: str) -> tuple[float, int]:
        """Send keys in one command; returns (time, index of the next output line)."""
        with self.cond:
            start = len(self.lines)
        assert self.p.stdin is not None
        cmd = "send-keys -t " + self.session + " " + " ".join(_quote(k) for k in keys) + "\n"
        t0 = time.perf_counter()
        self.p.stdin.write(cmd)
        self.p.stdin.flush()
        return t0, start

    def wait_for(
        self, start: int, marker: str | tuple[str, ...], timeout: float = 10.0
    ) -> float | None:
        """Time of the first output from line ``start`` on by which every marker has
        been drawn."""
        deadline = time.perf_counter() + timeout
        todo = {marker} if isinstance(marker, str) else set(marker)
        acc = ""
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    t, text = self.lines[i]
                    acc = (acc + text)[-4000:]
                    i += 1
                    todo = {m for m in todo if m not in acc}
                    if not todo:
                        return t
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        try:
            assert self.p.stdin is not None
            self.p.stdin.write("detach\n")
            self.p.stdin.flush()
        except OSError:
            pass
        self.p.wait(timeout=5)


def _quote(k: str) -> str:
    return "'" + k.replace("'", "'\\''") + "'" if not k.isalnum() else k


def capture() -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", SESSION], capture_output=True, text=True, check=False
    ).stdout


def wait_screen(pred, what: str, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred(capture()):
            return
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}:\n{capture()}")


def stats(xs: list[float]) -> str:
    if not xs:
        return "no samples"
    xs = sorted(x * 1000 for x in xs)

    def q(p: float) -> float:
        return xs[min(len(xs) - 1, round(p * (len(xs) - 1)))]

    return (
        f"p50 {statistics.median(xs):6.1f}  p95 {q(0.95):6.1f}  p99 {q(0.99):6.1f}  "
        f"max {xs[-1]:6.1f}  (n={len(xs)})"
    )


def echo(ctl: Control, samples: int, letters: str = LETTERS) -> list[float]:
    """Letters typed into the console in focus, each until its echo is drawn."""
    xs: list[float] = []
    for n in range(samples):
        c = letters[n % len(letters)]
        t0, i = ctl.send(c)
        t = ctl.wait_for(i, c, 5.0)
        if t is not None:
            xs.append(t - t0)
        time.sleep(random.uniform(0.05, 0.15))
        if n % 30 == 29:
            ctl.send("Enter")
            time.sleep(0.2)
    return xs


def report(args: argparse.Namespace, results: dict[str, list[float]], flood: str) -> None:
    print(f"size {args.size}  flood {flood}  load {os.getloadavg()[0]:.1f}")
    for name, xs in results.items():
        print(f"  {name:13s} {stats(xs)}")


def start_flood(ctl: Control) -> None:
    """Into the console (or tile) in view, then ^F: its guest floods COM1."""
    _t0, i = ctl.send("Enter")
    ctl.wait_for(i, "TYPING", 5.0)
    time.sleep(0.3)
    _t0, i = ctl.send("C-f")
    if ctl.wait_for(i, "flood ") is None:
        raise SystemExit("pc's COM1 did not flood:\n" + capture())


def tiles(ctl: Control, args: argparse.Namespace) -> None:
    """Issue 15's last check: four consoles of three instances side by side (board
    uart0, pc com1 flooding, q35 com1, pc com2), typing into q35's tile."""
    rows = {"board": 0, "pc": 1, "q35": 2}
    for name, extra in (("board", ()), ("pc", ()), ("q35", ()), ("pc", ("Right",))):
        ctl.send("1", "Up", "Up", "Up", "Up", *(["Down"] * rows[name]))
        time.sleep(0.5)
        ctl.send("2")
        time.sleep(0.5)
        ctl.send("s", *extra)
        time.sleep(1.0)
    ctl.send("o", "o")  # tile 2 (pc/com1) floods
    time.sleep(0.5)
    start_flood(ctl)
    time.sleep(1.0)
    _t0, i = ctl.send("C-]", "o", "Enter")  # tile 3 (q35/com1): type there
    if ctl.wait_for(i, "q35/com1", 5.0) is None:
        raise SystemExit("q35's tile is not in focus:\n" + capture())
    time.sleep(1.0)
    # not X or J: the flood's lines, on screen here, have them
    echo_ms = echo(ctl, args.samples, letters="ZWYV")
    report(args, {"echo (tiles)": echo_ms}, "pc COM1 (^F) in a tile beside")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--size", default="120x40")
    ap.add_argument("--flood", action="store_true")
    ap.add_argument(
        "--tiles",
        action="store_true",
        help="four tiles (board, pc com1 flooding, q35, pc com2): echo in q35's tile",
    )
    ap.add_argument(
        "--old",
        metavar="DIR",
        help="run the emutui package found in DIR (an older commit, e.g. `git archive "
        "215d764 emutui | tar -x -C DIR`) and wait for its console note instead",
    )
    args = ap.parse_args()
    if args.old:
        MARK.update({"pc": ("pc  Enter: type",), "q35": ("q35  Enter: type",)})
    w, h = (int(x) for x in args.size.split("x"))
    exe = f"{ROOT / '.venv' / 'bin' / 'emutui'} demo"
    if args.old:
        exe = f"env PYTHONPATH={args.old} {ROOT / '.venv' / 'bin' / 'python'} -m emutui demo"
    subprocess.run(
        ["tmux", "new", "-d", "-s", SESSION, "-x", str(w), "-y", str(h), exe],
        check=True,
    )
    ctl = None
    try:
        wait_screen(lambda s: s.count("running") >= 4 and "board" in s, "the demo lab")
        ctl = Control(SESSION)
        time.sleep(1.0)
        if args.tiles:
            tiles(ctl, args)
            return 0
        # Select pc (second row: the demo selects board first), look at its console.
        t0, i = ctl.send("1", "Down")
        if ctl.wait_for(i, MARK["pc"][0]) is None:
            raise SystemExit("pc's console did not show:\n" + capture())
        if not args.old:
            # A word of its own in each console, echoed by its guest.
            for key, name in (("Down", "pc"), ("Up", "q35")):
                t0, i = ctl.send("Enter")
                ctl.wait_for(i, "TYPING", 5.0)
                t0, i = ctl.send(*MARK[name][1], "Enter")
                if ctl.wait_for(i, MARK[name][1]) is None:
                    raise SystemExit(f"{name}'s guest did not echo:\n" + capture())
                t0, i = ctl.send("C-]", "1", key)
                ctl.wait_for(i, MARK["q35" if name == "pc" else "pc"][0], 5.0)
                time.sleep(0.3)
        if args.flood:
            start_flood(ctl)
            MARK["pc"] = ("pc/com1", "flood ")  # its word is gone with the scrollback
            t0, i = ctl.send("C-]", "1")
            time.sleep(1.0)
        time.sleep(1.0)
        results: dict[str, list[float]] = {"switch": [], "leave+switch": []}
        # Switching on the instance table: pc <-> q35.
        for n in range(args.samples):
            key, marker = ("Down", MARK["q35"]) if n % 2 == 0 else ("Up", MARK["pc"])
            t0, i = ctl.send(key)
            t = ctl.wait_for(i, marker)
            if t is not None:
                results["switch"].append(t - t0)
            time.sleep(random.uniform(0.15, 0.3))
        # Leaving a console and switching in one write: from pc's console to q35's.
        # The switch loop ends on pc (an even number of switches from pc).
        if args.samples % 2:
            t0, i = ctl.send("Up")
            ctl.wait_for(i, MARK["pc"], 3.0)
        for n in range(max(10, args.samples // 3)):
            if n:
                t0, i = ctl.send("Up")  # from q35 back to pc
                ctl.wait_for(i, MARK["pc"], 3.0)
                time.sleep(0.2)
            t0, i = ctl.send("Enter")
            ctl.wait_for(i, "TYPING" if not args.old else "Ctrl+]", 3.0)
            time.sleep(0.2)
            t0, i = ctl.send("C-]", "1", "Down")
            t = ctl.wait_for(i, MARK["q35"])
            if t is not None:
                results["leave+switch"].append(t - t0)
            time.sleep(random.uniform(0.15, 0.3))
        # Echo in q35's console (the selection is on q35 now).
        t0, i = ctl.send("Enter")
        ctl.wait_for(i, "TYPING" if not args.old else "Ctrl+]", 3.0)
        time.sleep(0.5)
        results["echo"] = echo(ctl, args.samples)
        report(args, results, "pc COM1 (^F), in the background" if args.flood else "none")
    finally:
        if ctl is not None:
            ctl.close()
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "C-]"], check=False)
        time.sleep(0.3)
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "q"], check=False)
        time.sleep(8)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
