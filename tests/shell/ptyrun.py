"""``emutui shell`` in a pseudo-terminal, driven like a user at a keyboard."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sys
import time

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[=>]|\r")


class PtyShell:
    def __init__(self, *args: str, env: dict[str, str] | None = None, cols: int = 120) -> None:
        env = dict(env or os.environ)
        env.setdefault("TERM", "xterm-256color")
        env["PROMPT_TOOLKIT_NO_CPR"] = "1"
        env["COLUMNS"], env["LINES"] = str(cols), "40"
        argv = [sys.executable, "-m", "emutui", "shell", *args]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            try:
                os.execve(sys.executable, argv, env)
            finally:
                os._exit(127)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
        self.raw = b""
        self.rc: int | None = None

    def plain(self) -> str:
        return ANSI.sub(b"", self.raw).decode(errors="replace")

    def _pump(self, timeout: float) -> bool:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._reap(block=True)
            return False
        self.raw += chunk
        return True

    def expect(self, needle: str, timeout: float = 15.0, start: int = 0) -> None:
        """Until ``needle`` shows in the plain text from ``start`` (a len(plain()) mark)."""
        deadline = time.monotonic() + timeout
        while needle not in self.plain()[start:]:
            if self.rc is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {needle!r}; the terminal shows:\n{self.plain()[-1500:]}")
            self._pump(0.05)

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def _reap(self, block: bool = False) -> None:
        if self.rc is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.rc = -1
            return
        if pid:
            self.rc = os.waitstatus_to_exitcode(status)

    def wait(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while self.rc is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"shell still running; screen:\n{self.plain()[-1500:]}")
            if not self._pump(0.05):
                self._reap()
        return self.rc

    def close(self) -> None:
        if self.rc is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(block=True)
        try:
            os.close(self.fd)
        except OSError:
            pass
