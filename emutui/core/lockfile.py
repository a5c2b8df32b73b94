"""A lock file that does not outlive its use (``.NAME.lock`` beside the instances).

``flock`` on a file that is unlinked when released: whoever waited on the old
file notices (its inode is no longer the one at the path) and tries again on a
fresh one, so removing the file never lets two holders in at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def transient_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600); the file is gone afterwards."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                cur = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                cur = None
            if cur is None or (cur.st_ino, cur.st_dev) != (st.st_ino, st.st_dev):
                os.close(fd)  # the holder before us removed it: lock the new one
                continue
        except BaseException:
            os.close(fd)
            raise
        break
    try:
        yield
    finally:
        try:
            os.unlink(path)  # still ours: we hold the lock on this very inode
        except OSError:
            pass
        os.close(fd)
