"""The bundled x86 test guest (multiboot ELF), built from source with binutils at first use.

Carried as source so the demo and the tests run from an installed wheel with
nothing but ``as`` and ``ld``; the ELF is cached under the XDG cache dir,
keyed by a hash of the source so an upgrade rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from emutui.core.errors import EmutuiError


def _source(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def build(dest: Path | None = None) -> Path:
    """Path to a built guest.elf (cached unless ``dest`` is given)."""
    src, lds = _source("guest.S"), _source("guest.ld")
    digest = hashlib.sha256(src + lds).hexdigest()[:16]
    if dest is None:
        from platformdirs import user_cache_path

        dest = user_cache_path("emutui") / f"guest-{digest}.elf"
        if dest.exists():
            return dest
    for tool in ("as", "ld"):
        if shutil.which(tool) is None:
            raise EmutuiError(f"building the test guest needs binutils ({tool!r} not found)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "guest.S").write_bytes(src)
        (t / "guest.ld").write_bytes(lds)
        try:
            subprocess.run(
                ["as", "--32", "-o", "guest.o", "guest.S"], cwd=t, check=True, capture_output=True
            )
            subprocess.run(
                [
                    "ld",
                    "-m",
                    "elf_i386",
                    "-T",
                    "guest.ld",
                    "--no-warn-rwx-segments",
                    "-o",
                    "guest.elf",
                    "guest.o",
                ],
                cwd=t,
                check=True,
                capture_output=True,
            )
        except subprocess.CalledProcessError as e:
            raise EmutuiError(f"guest build failed: {e.stderr.decode(errors='replace')}") from e
        tmp_dest = dest.with_name(f".{dest.name}.{os.getpid()}")
        shutil.copyfile(t / "guest.elf", tmp_dest)
        os.replace(tmp_dest, dest)
    return dest
