"""Where things live: the state root, instance directories, unix socket paths."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

from emutui.core.errors import EmutuiError

# sun_path is 108 bytes including the terminating NUL.
UNIX_PATH_MAX = 107
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)


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
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise EmutuiError(
            f"invalid instance name {name!r}: use letters, digits, '.', '_' or '-' (max 64)"
        )
    return name


def ensure_private_dir(path: Path) -> Path:
    """A directory only this user can change; the contract every caller relies on:

    - missing components are created 0700 whatever the umask (``mkdir(0o700)`` can
      only come out narrower, never wider; only a directory created here is then
      chmodded, to put back what a strict umask took away);
    - the final component must be a real directory (``lstat``: not a symlink), owned
      by this user and not group- or other-writable, else EmutuiError (one line),
      as OpenSSH checks a ControlPath directory;
    - an existing directory's mode is never changed.
    """
    missing: list[Path] = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue  # someone else made it meanwhile: checked below like any existing one
        except OSError as e:
            raise EmutuiError(f"cannot create directory {d}: {e.strerror or e}") from e
        os.chmod(d, 0o700)
    check_private_dir(path)
    return path


def check_private_dir(path: Path) -> None:
    """EmutuiError unless ``path`` is a real directory of ours that others cannot write."""
    try:
        st = os.lstat(path)
    except OSError as e:
        raise EmutuiError(f"directory {path}: {e.strerror or e}") from e
    why = None
    if stat.S_ISLNK(st.st_mode):
        why = "is a symlink"
    elif not stat.S_ISDIR(st.st_mode):
        why = "is not a directory"
    elif st.st_uid != os.getuid():
        why = f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()})"
    elif st.st_mode & 0o022:
        why = f"is writable by other users (mode {stat.S_IMODE(st.st_mode):04o})"
    if why:
        raise EmutuiError(
            f"refusing directory {path}: it {why}; another user could take over "
            f"emutui's sockets there (remove it, or point XDG_RUNTIME_DIR or TMPDIR elsewhere)"
        )


def runtime_base() -> Path:
    """Where short socket directories live: ``$XDG_RUNTIME_DIR/emutui`` when that runtime
    dir is ours and private (0700, as systemd makes it), else ``$TMPDIR/emutui-<uid>``."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg):
        try:
            st = os.lstat(xdg)
        except OSError:
            st = None
        if (
            st is not None
            and stat.S_ISDIR(st.st_mode)
            and st.st_uid == os.getuid()
            and not st.st_mode & 0o077
        ):
            return Path(xdg) / "emutui"
    return Path(tempfile.gettempdir()) / f"emutui-{os.getuid()}"


def short_socket_dir(wd: Path) -> Path:
    """The short directory that holds ``wd``'s sockets when its own paths are too long."""
    digest = hashlib.sha256(os.fsencode(wd.absolute())).hexdigest()[:12]
    return runtime_base() / digest


def socket_path(wd: Path, filename: str) -> Path:
    """A unix socket path for ``wd/filename`` that fits the kernel's limit.

    When the natural path is too long, the socket lives in a short private
    directory (``short_socket_dir``, checked like OpenSSH's ControlPath dirs)
    and ``wd/filename`` becomes a symlink to it, so people still find it in the
    instance directory. Clients must connect to the returned path (a symlink
    path is subject to the same length limit).
    """
    natural = wd / filename
    if len(os.fsencode(natural)) <= UNIX_PATH_MAX:
        return natural
    short_dir = short_socket_dir(wd)
    ensure_private_dir(short_dir.parent)
    ensure_private_dir(short_dir)
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


def release_socket_dir(wd: Path) -> None:
    """Once ``wd``'s instance is gone: remove its short socket directory, if emutui made
    one, it is still ours and private, and nothing but our dead sockets is left in it."""
    d = short_socket_dir(wd)
    try:
        check_private_dir(d.parent)
        check_private_dir(d)
    except EmutuiError:
        return  # absent, or not ours: never touched
    uid = os.getuid()
    try:
        for entry in os.scandir(d):
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISSOCK(st.st_mode) and st.st_uid == uid:
                os.unlink(entry.path)
        os.rmdir(d)
    except OSError:
        pass  # not empty (someone's file) or raced: leave it
