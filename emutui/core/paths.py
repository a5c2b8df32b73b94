"""Where things live: the state root, instance directories, unix socket paths."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from emutui.core.errors import EmutuiError

# sun_path is 108 bytes including the terminating NUL.
UNIX_PATH_MAX = 107
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def state_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding one subdirectory per instance.

    XDG *state* dir, not $XDG_RUNTIME_DIR: the runtime dir is wiped at logout and
    instances outlive a login.
    """
    if explicit:
        return Path(explicit).expanduser().absolute()
    env = os.environ.get("EMUTUI_STATE_DIR")
    if env:
        return Path(env).expanduser().absolute()
    from platformdirs import user_state_path

    return user_state_path("emutui") / "instances"


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise EmutuiError(
            f"invalid instance name {name!r}: use letters, digits, '.', '_' or '-' (max 64)"
        )
    return name


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def socket_path(wd: Path, filename: str) -> Path:
    """A unix socket path for ``wd/filename`` that fits the kernel's limit.

    When the natural path is too long, the socket lives in a short private
    directory under /tmp and ``wd/filename`` becomes a symlink to it, so people
    still find it in the instance directory. Clients must connect to the
    returned path (a symlink path is subject to the same length limit).
    """
    natural = wd / filename
    if len(os.fsencode(natural)) <= UNIX_PATH_MAX:
        return natural
    digest = hashlib.sha256(os.fsencode(wd)).hexdigest()[:12]
    short_dir = ensure_private_dir(Path(tempfile.gettempdir()) / f"emutui-{os.getuid()}" / digest)
    short = short_dir / filename
    if len(os.fsencode(short)) > UNIX_PATH_MAX:
        raise EmutuiError(
            f"socket path {natural} is longer than {UNIX_PATH_MAX} bytes and no short "
            f"path fits either; use a shorter --state-dir"
        )
    try:
        if natural.is_symlink() or natural.exists():
            natural.unlink()
        natural.symlink_to(short)
    except OSError:
        pass
    return short
