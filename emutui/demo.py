"""``emutui demo``: a ready-made lab in a temporary state dir (or the one given with
``--state-dir`` / ``$EMUTUI_STATE_DIR``), and its teardown.

Two QEMU guests booted from the bundled test guest (a ``pc`` with edu and
qtest, and a ``q35``), plus the simulated V80 card (vrtd simulator, attached)
and a simulated Renode machine (the stand-in), each when its pieces exist.
Whatever cannot be started is skipped with a note saying what is missing, so
the demo opens anyway. No Textual import here: the CLI tests can use it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from emutui.config import Config, parse_config
from emutui.core.errors import EmutuiError
from emutui.core.instance import Instance
from emutui.core.registry import Registry

QEMU = "qemu-system-x86_64"

QEMU_TARGETS = """
[targets.pc]
backend = "qemu"
binary = "{qemu}"
machine = "pc"
kernel = "{elf}"
serial = ["com1", "com2"]
args = ["-device", "edu,id=edu0", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
qtest = true

[targets.q35]
backend = "qemu"
binary = "{qemu}"
machine = "q35"
kernel = "{elf}"
serial = ["com1"]
"""

RENODE_TARGET = """
[targets.board]
backend = "renode"
binary = "{binary}"
platform = "{platform}"
uarts = ["sysbus.uart0", "sysbus.uart1"]
simulated = true
"""


@dataclass
class DemoLab:
    root: Path
    state_dir: Path
    config_path: Path
    config: Config | None = None
    notes: list[str] = field(default_factory=list)
    started: set[str] = field(default_factory=set)  # what the demo started, all it stops
    own_state_dir: bool = True  # a temporary state dir of its own (else the user's)
    created_at: float = field(default_factory=time.time)

    def is_demos(self, inst: Instance) -> bool:
        """Started by the demo, or from its console afterwards (a target of the lab's
        config started since the lab was made): what teardown stops."""
        if self.own_state_dir or inst.name in self.started:
            return True
        h = inst.handles
        targets = self.config.targets if self.config else {}
        return h is not None and h.target in targets and (h.created or 0) >= self.created_at

    @property
    def registry(self) -> Registry:
        return Registry(self.state_dir)

    def label(self) -> str:
        extra = f"  ({'; '.join(self.notes)})" if self.notes else ""
        return f"demo lab in {self.root}{extra}"

    async def teardown(self, remove: bool = True) -> None:
        """Stop every instance the demo started, the simulators, and remove the lab."""
        from emutui.control import stop_instance

        reg = self.registry
        # In a state dir of its own, everything there is the demo's; in the user's,
        # only what it started.
        insts = [i for i in reg.instances() if self.is_demos(i)]
        results = await asyncio.gather(
            *(stop_instance(reg, i) for i in insts), return_exceptions=True
        )
        for inst, r in zip(insts, results, strict=True):
            if isinstance(r, Exception):
                try:
                    print(f"emutui demo: stopping {inst.name}: {r}", file=sys.stderr)
                except OSError:
                    pass
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def _standin_binary(root: Path) -> Path:
    for cand in (Path(sys.executable).parent / "renode-standin", shutil.which("renode-standin")):
        if cand and Path(cand).is_file():
            return Path(cand)
    wrapper = root / "renode-standin"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m emutui.sim.renode "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


MARKER = ".emutui-demo"  # in a temporary lab's root: `emutui stop` removes an emptied one


def remove_if_empty_lab(state_dir: Path) -> bool:
    """After a stop: a kept demo's temporary lab whose instances are all gone is
    removed, so nothing of the demo stays behind in /tmp. Returns whether it was."""
    root = state_dir.parent
    if not (root / MARKER).is_file() or state_dir.name != "state":
        return False
    if state_dir.is_dir() and any(not p.name.startswith(".") for p in state_dir.iterdir()):
        return False
    shutil.rmtree(root, ignore_errors=True)
    return True


async def create_lab(progress: bool = True, state_dir: Path | None = None) -> DemoLab:
    """Start the demo lab; never raises for a missing piece (it becomes a note).

    ``state_dir``: the instances go there (its ``.demo`` subdirectory holds the lab's
    config), and teardown stops only what the demo started; without it, a temporary
    lab of its own under /tmp, removed by teardown (or by the last ``emutui stop``).
    """

    def say(msg: str) -> None:
        if progress:
            try:
                print(f"emutui demo: {msg}", file=sys.stderr, flush=True)
            except OSError:
                pass

    # Short path: unix socket paths must fit in 107 bytes.
    if state_dir is not None:
        from emutui.core.paths import ensure_private_dir

        state_dir = Path(state_dir).expanduser().absolute()
        ensure_private_dir(state_dir)
        root = state_dir / ".demo"  # a dot dir: never taken for an instance
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(mode=0o700)
        lab = DemoLab(root, state_dir, root / "emutui.toml", own_state_dir=False)
    else:
        root = Path(tempfile.mkdtemp(prefix="emutui-demo-", dir="/tmp"))
        lab = DemoLab(root=root, state_dir=root / "state", config_path=root / "emutui.toml")
        lab.state_dir.mkdir(mode=0o700)
        (root / MARKER).write_text("emutui demo lab\n")
    toml = ""
    qemu = shutil.which(QEMU)
    if qemu is None:
        lab.notes.append(f"{QEMU} not installed: no QEMU guests (apt-get install qemu-system-x86)")
    else:
        try:
            from emutui.guest import build

            elf = build()
            toml += QEMU_TARGETS.format(qemu=qemu, elf=elf)
        except EmutuiError as e:
            lab.notes.append(f"no QEMU guests: {e}")
    renode = _has("emutui.sim.renode") and _has("emutui.backends.renode")
    if renode:
        from emutui.sim.renode import demo_platform

        toml += RENODE_TARGET.format(binary=_standin_binary(root), platform=demo_platform())
    else:
        lab.notes.append("no Renode stand-in in this build")
    lab.config_path.write_text(toml)
    lab.config = parse_config(lab.config_path)
    reg = lab.registry

    async def start(name: str) -> None:
        from emutui.control import start_target

        say(f"starting {name}…")
        try:
            await start_target(lab.config, reg, name, None, False)  # type: ignore[arg-type]
            lab.started.add(name)
        except EmutuiError as e:
            lab.notes.append(f"{name}: {e}")

    jobs = [start(n) for n in lab.config.targets]
    if _has("emutui.sim.vrtd") and _has("emutui.backends.vrtd"):
        jobs.append(_start_vrtd(lab, say))
    else:
        lab.notes.append("no vrtd simulator in this build")
    await asyncio.gather(*jobs)
    return lab


async def _start_vrtd(lab: DemoLab, say: object) -> None:
    # The card is an instance like any other: its simulator's pid is in its
    # handles, so teardown, `emutui stop v80` and `--keep` all treat it alike.
    if callable(say):
        say("starting the simulated V80 card (vrtd)…")
    try:
        from emutui.commands.attach import start_simulated_card

        await start_simulated_card(lab.registry, "v80", target="v80-sim")
        lab.started.add("v80")
    except (EmutuiError, ImportError, OSError) as e:
        lab.notes.append(f"v80: {e}")
