#!/usr/bin/env python3
"""screenshots/remote-200x50.svg: two lab hosts' guests side by side in one emutui.

Both "hosts" are this machine through a private sshd on 127.0.0.1 (tests/remote/sshd.py),
each with its own state dir; needs root (sshd logs in as root) and QEMU.

    .venv/bin/python screenshots/make_remote.py [--png]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from emutui.backends.remote.connector import RemoteHosts  # noqa: E402
from emutui.config import parse_config  # noqa: E402
from emutui.core.registry import Registry  # noqa: E402
from emutui.guest import build  # noqa: E402
from emutui.tui.app import EmutuiApp  # noqa: E402
from tests.remote.sshd import start_sshd  # noqa: E402
from tests.tui.helpers import until  # noqa: E402


async def shoot(d: Path, png: bool) -> None:
    elf = build()
    host_cfg = d / "host.toml"
    host_cfg.write_text(
        f'[targets.guest]\nbackend = "qemu"\nmachine = "pc"\nkernel = "{elf}"\n'
        f'serial = ["com1", "com2"]\nargs = ["-device", "edu,id=edu0"]\n'
    )
    sshd = start_sshd(d / "sshd")
    states = {h: d / f"state-{h}" for h in ("lab1", "lab2")}
    try:
        text = ""
        for h, sd in states.items():
            sd.mkdir(mode=0o700)
            text += sshd.host_toml(h, sd, host_cfg) + "\n"
            subprocess.run(
                [sys.executable, "-m", "emutui", "--state-dir", str(sd), "--config",
                 str(host_cfg), "start", "guest"], check=True, capture_output=True,
            )  # fmt: skip
        laptop = d / "laptop.toml"
        laptop.write_text(text)
        cfg = parse_config(laptop, validate=False)
        (d / "mirror").mkdir(mode=0o700)
        (d / "local").mkdir(mode=0o700)
        hosts = RemoteHosts(cfg.hosts.values(), d / "mirror")
        local = Registry(d / "local")
        app = EmutuiApp(local, cfg, instances=hosts.with_local(local))
        async with app.run_test(size=(200, 50)) as pilot:

            def up() -> bool:
                return all(
                    (link := app.links.get(n)) is not None and link.conn is not None
                    for n in ("guest@lab1", "guest@lab2")
                )

            await until(pilot, up, timeout=60, what="both hosts connected")
            app.main.select(app.links["guest@lab1"])
            await pilot.press("2")
            await pilot.pause(1.0)
            await pilot.press(
                "enter", *"hello from the laptop", "enter", "ctrl+right_square_bracket"
            )
            await pilot.press("s")
            await pilot.pause(1.0)
            await pilot.press("1", "down")
            await pilot.pause(1.0)
            await pilot.press("2")
            await pilot.pause(2.0)
            await pilot.press("enter", *"hello lab2", "enter", "ctrl+right_square_bracket")
            await pilot.pause(2.0)
            path = app.save_screenshot(filename="remote-200x50.svg", path=str(HERE))
        print(f"wrote {path}")
        if png and shutil.which("rsvg-convert"):
            subprocess.run(["rsvg-convert", path, "-o", path[:-4] + ".png"], check=True)
        await hosts.close()
        await hosts.close_masters()
    finally:
        for sd in states.values():
            if sd.exists():
                subprocess.run(
                    [sys.executable, "-m", "emutui", "--state-dir", str(sd), "stop", "--all"],
                    capture_output=True,
                )
        sshd.stop()


def main() -> int:
    if os.geteuid() != 0:
        print("make_remote.py: needs root (the private sshd logs in as root)", file=sys.stderr)
        return 1
    d = Path(tempfile.mkdtemp(prefix="es-", dir="/tmp"))
    try:
        asyncio.run(shoot(d, "--png" in sys.argv))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
