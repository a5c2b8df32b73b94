"""``emutui export``: one run (live or kept) in one .tar.gz to attach to a bug report.

The archive holds one directory named after the run: its files as they are on
disk (every generation of every serial log with its time index, the event
journal, the emulator's output, handles.json with the command line, end.json
for a kept run), plus ``timeline.txt``, the merged timeline as text. With
``since``/``until`` the serial logs and the journal are cut to that span (one
file per log, all generations joined, with a time index rebuilt for it).
Sockets, locks and symlinks are never archived.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import time
from pathlib import Path

from emutui.core.errors import EmutuiError
from emutui.core.instance import Instance
from emutui.core.journal import EVENTS_FILE
from emutui.core.timeindex import REC, SUFFIX
from emutui.core.timeline import FileSource, Timeline, clock, sources_for

_SKIP = {".lock", "events.lock", ".emutui-instance"}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def _cut(src: FileSource, since: float | None, until: float | None) -> tuple[bytes, bytes]:
    """The lines of ``src`` within [since, until], and a time index for them."""
    tl = Timeline([src])
    pos = tl.seek_time(since) if since is not None else tl.start()
    body = bytearray()
    index = bytearray()
    last_ms = -1
    while True:
        lines, pos = tl.forward(pos, 1024)
        for ln in lines:
            if until is not None and ln.t > until:
                return bytes(body), bytes(index)
            ms = int(ln.t * 1000)
            if ms != last_ms:
                index += REC.pack(len(body), ln.t)
                last_ms = ms
            body += ln.text  # raw: as the guest printed it (the last line may lack its newline)
        if len(lines) < 1024:
            return bytes(body), bytes(index)


def export_run(
    inst: Instance, output: str | os.PathLike[str], since: float | None, until: float | None
) -> tuple[int, int]:
    """Write the archive; returns (files, bytes of content)."""
    out = Path(output)
    top = inst.ref if inst.run is not None else f"{inst.name}-live-{time.strftime('%Y%m%dT%H%M%S')}"
    cut = since is not None or until is not None
    count = 0
    total = 0
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            cut_names: set[str] = set()
            if cut:
                h = inst.handles
                created = h.created if h is not None else 0.0
                srcs = [
                    FileSource(ch, inst.serial_log(ch), "serial", created)
                    for ch in (h.serial_channels() if h is not None else [])
                ] + [FileSource("events", inst.wd / EVENTS_FILE, "event", created)]
                for s in srcs:
                    s.keep_raw = True
                    body, index = _cut(s, since, until)
                    s.close()
                    name = s.path.name
                    _add_bytes(tar, f"{top}/{name}", body, time.time())
                    if s.kind == "serial":
                        _add_bytes(tar, f"{top}/{name}{SUFFIX}", index, time.time())
                    count += 1
                    total += len(body)
                    cut_names.add(name)
            for e in sorted(os.scandir(inst.wd), key=lambda e: e.name):
                if e.name in _SKIP or e.name.endswith(".tmp"):
                    continue
                base = e.name
                for suffix in (SUFFIX,):
                    base = base.removesuffix(suffix)
                stem = base.rsplit(".", 1)[0] if base.rsplit(".", 1)[-1].isdigit() else base
                if cut and stem in cut_names:
                    continue  # replaced by its cut
                st = e.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue  # sockets, symlinks, directories
                tar.add(e.path, arcname=f"{top}/{e.name}", recursive=False)
                count += 1
                total += st.st_size
            # the merged timeline, as text, for a reader without emutui
            tl = Timeline(sources_for(inst))
            width = max(len(lab) for lab in tl.labels)
            buf = io.StringIO()
            pos = tl.seek_time(since) if since is not None else tl.start()
            while True:
                lines, pos = tl.forward(pos, 1024)
                stop = False
                for ln in lines:
                    if until is not None and ln.t > until:
                        stop = True
                        break
                    text = ln.text.decode("utf-8", "replace")
                    buf.write(f"{clock(ln.t, date=True)} {ln.source:<{width}} {text}\n")
                if stop or len(lines) < 1024:
                    break
            tl.close()
            _add_bytes(tar, f"{top}/timeline.txt", buf.getvalue().encode(), time.time())
            meta = {
                "ref": inst.ref,
                "name": inst.name,
                "exported": time.time(),
                "since": since,
                "until": until,
                "live": inst.run is None and inst.alive(),
            }
            _add_bytes(tar, f"{top}/export.json", json.dumps(meta, indent=2).encode(), time.time())
            count += 2
        os.replace(tmp, out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise EmutuiError(f"export to {out}: {e.strerror or e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count, total
