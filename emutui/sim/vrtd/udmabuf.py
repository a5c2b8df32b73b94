"""A real dma-buf over a memfd, through ``/dev/udmabuf``, where the machine has it.

A V80's BAR descriptor is a dma-buf: libslash brackets every access with
``DMA_BUF_IOCTL_SYNC`` (``slash_bar_file_start/end_*``), which succeeds on a
dma-buf and fails with ENOTTY on a memfd. ``udmabuf`` turns the simulator's
memfd into a dma-buf over the same pages (the memfd must be sealed against
shrinking, which it is), so SYNC succeeds there as on the card. Without the
driver (most containers and VMs) the memfd is handed out as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct

UDMABUF_DEV = "/dev/udmabuf"
# struct udmabuf_create { __u32 memfd; __u32 flags; __u64 offset; __u64 size; }
_CREATE = struct.Struct("=IIQQ")
UDMABUF_CREATE = 0x40000000 | (_CREATE.size << 16) | (ord("u") << 8) | 0x42  # _IOW('u', 0x42, …)
UDMABUF_FLAGS_CLOEXEC = 0x01


def udmabuf_available() -> bool:
    return os.access(UDMABUF_DEV, os.R_OK | os.W_OK)


def dmabuf_over(memfd: int, size: int) -> int | None:
    """A dma-buf fd for ``memfd[0:size]``, or None when udmabuf is missing or refuses."""
    try:
        dev = os.open(UDMABUF_DEV, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with contextlib.suppress(OSError):
            # a mutable buffer: ioctl() then returns the syscall's result, the new fd
            arg = bytearray(_CREATE.pack(memfd, UDMABUF_FLAGS_CLOEXEC, 0, size))
            fd: int = fcntl.ioctl(dev, UDMABUF_CREATE, arg, True)
            return fd
        return None
    finally:
        os.close(dev)
