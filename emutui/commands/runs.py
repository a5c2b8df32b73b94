"""runs, rm, prune, timeline, export: what ended runs left, and one timeline of a run."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from typing import Any

from emutui.commands import registry
from emutui.core.errors import EmutuiError, NotFoundError
from emutui.core.instance import Instance
from emutui.core.registry import Registry
from emutui.core.sanitize import TerminalSanitizer, display_line

Sub = argparse._SubParsersAction  # type: ignore[type-arg]
REF_HELP = "NAME (the live or last run), NAME~N (N runs before) or a run id"


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "runs", help="one name's runs: the live one and the kept ones", parents=[common]
    )
    p.add_argument("name", nargs="?", help="instance name (default: every name)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("rm", help="remove kept runs (never a live instance)", parents=[common])
    p.add_argument(
        "refs", nargs="+", metavar="NAME|RUN", help="a run id or NAME~N; NAME: all its kept runs"
    )
    p.set_defaults(handler=cmd_rm)

    p = sub.add_parser(
        "prune", help="remove the oldest kept runs beyond the limits", parents=[common]
    )
    p.add_argument(
        "--keep-runs", type=int, help="runs kept per name (default: [history] keep_runs)"
    )
    p.add_argument("--max-bytes", type=int, help="bytes kept in all (default: [history] max_bytes)")
    p.set_defaults(handler=cmd_prune)

    p = sub.add_parser(
        "timeline", help="serial lines and events of runs, merged by time", parents=[common]
    )
    p.add_argument("refs", nargs="+", metavar="NAME|RUN", help=REF_HELP)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing what arrives")
    p.add_argument(
        "-s",
        "--source",
        action="append",
        default=[],
        help="only these sources (com1, events, run; repeat or comma-separate)",
    )
    p.add_argument("-g", "--grep", help="only lines matching this regular expression")
    p.add_argument("--since", help="from this time on (10:42, 2026-11-30T10:42, 5m)")
    p.add_argument("--until", help="up to this time")
    p.add_argument("--last", help="only the last span (5m, 1h)")
    p.add_argument("--date", action="store_true", help="print dates, not only times")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_timeline)

    p = sub.add_parser(
        "export",
        help="a run's logs, journal, command line and end in one .tar.gz",
        parents=[common],
    )
    p.add_argument("ref", metavar="NAME|RUN", help=REF_HELP)
    p.add_argument("-o", "--output", required=True, help="the archive to write (FILE.tar.gz)")
    p.add_argument("--since", help="only what arrived from then on")
    p.add_argument("--until", help="only what arrived until then")
    p.set_defaults(handler=cmd_export)


def _when(text: str | None) -> float | None:
    from emutui.core.when import parse_when

    return parse_when(text) if text else None


def _ago(t: float | None) -> str:
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def run_rows(reg: Registry, name: str | None = None) -> list[dict[str, Any]]:
    """Kept runs (oldest first) as rows for ls --all and runs."""
    from emutui.core.runs import describe_end

    rows = []
    for r in reg.runs(name):
        end = r.end()
        rows.append(
            {
                "run": r.id,
                "name": r.name,
                "backend": end.get("backend", "?"),
                "target": end.get("target", "?"),
                "started": end.get("started") or r.started,
                "ended": end.get("ended"),
                "how": end.get("how"),
                "end": describe_end(end) if end else "no end record",
                "dir": str(r.wd),
            }
        )
    return rows


def print_run_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'RUN':<36} {'BACKEND':<8} {'TARGET':<12} {'ENDED':<19}  END")
    for r in rows:
        print(_row(r))


def _row(r: dict[str, Any]) -> str:
    # end.json is a file in the state dir: what it says goes through the display filter
    backend, target, end = (display_line(str(r[k])) for k in ("backend", "target", "end"))
    ended = r["ended"] if isinstance(r["ended"], int | float) else None
    return f"{r['run']:<36} {backend:<8} {target:<12} {_ago(ended):<19}  {end}"


async def cmd_runs(args: argparse.Namespace) -> int:
    reg = registry(args)
    live = []
    if args.name:
        try:
            live = [reg.get(args.name)]
        except NotFoundError:
            live = []
    else:
        live = reg.instances()
    rows = run_rows(reg, args.name)
    if args.json:
        from emutui.cli import print_json

        print_json({"live": [i.summary() | {"alive": i.alive()} for i in live], "kept": rows[::-1]})
        return 0
    if not live and not rows:
        raise NotFoundError(f"no runs of {args.name!r}" if args.name else "no runs")
    for i in live:
        state = "running" if i.alive() else "dead (ends its run on stop or start)"
        started = _ago(i.handles.created if i.handles else None)
        what = display_line(f"{i.backend} {i.target}")
        print(f"{i.name:<36} live: {what}, {state}, started {started}")
    if rows:
        # newest first, with the NAME~N that names each
        counts: dict[str, int] = {i.name: 1 for i in live}
        print_run_rows([])  # header
        for r in reversed(rows):
            n = counts.get(r["name"], 0)
            counts[r["name"]] = n + 1
            ref = f"{r['name']}~{n}"
            print(f"{_row(r)}  [{ref}]")
    return 0


async def cmd_rm(args: argparse.Namespace) -> int:
    reg = registry(args)
    failures = 0
    for ref in args.refs:
        try:
            if "~" in ref or (ref[:1].isdigit() and "T" in ref):
                inst = reg.resolve(ref)
                if inst.run is None:
                    raise EmutuiError(
                        f"{ref} is the live instance {inst.name}, not a kept run "
                        f"('emutui stop {inst.name}' ends it and keeps its run)"
                    )
                reg.remove_run(inst.run)
                print(f"removed {inst.run.id}")
            else:
                runs = reg.runs(ref)
                if not runs:
                    raise NotFoundError(f"no kept runs of {ref!r}")
                for r in runs:
                    reg.remove_run(r)
                print(f"removed {len(runs)} kept run{'s' if len(runs) != 1 else ''} of {ref}")
        except EmutuiError as e:
            failures += 1
            print(f"emutui: {e}", file=sys.stderr)
    return 1 if failures else 0


async def cmd_prune(args: argparse.Namespace) -> int:
    from dataclasses import replace

    reg = registry(args)
    limits = reg.history
    if args.keep_runs is not None:
        limits = replace(limits, keep_runs=max(0, args.keep_runs))
    if args.max_bytes is not None:
        limits = replace(limits, max_bytes=max(0, args.max_bytes))
    reg.history = limits
    removed = reg.prune()
    for r in removed:
        print(f"removed {r.id}")
    print(
        f"pruned {len(removed)} run{'s' if len(removed) != 1 else ''} "
        f"(keep_runs {limits.keep_runs} per name, max_bytes {limits.max_bytes})"
    )
    return 0


def build_timeline(insts: list[tuple[str, Instance]], args: argparse.Namespace) -> Any:
    """``insts``: (the reference as typed, the instance or run); several: sources as REF:com1."""
    from emutui.core.timeline import Filter, Timeline, sources_for

    sources = []
    multi = len(insts) > 1
    for ref, inst in insts:
        sources.extend(sources_for(inst, prefix=f"{ref}:" if multi else ""))
    wanted = {s.strip() for arg in args.source for s in arg.split(",") if s.strip()}
    labels = {s.label for s in sources}
    if wanted:
        # "com1" matches "guest:com1" when several runs are merged
        chosen = {lab for lab in labels if lab in wanted or lab.split(":")[-1] in wanted}
        if not chosen:
            raise NotFoundError(
                f"no source {', '.join(sorted(wanted))} (sources: {', '.join(sorted(labels))})"
            )
        wanted = chosen
    pattern = None
    if args.grep:
        try:
            pattern = re.compile(args.grep.encode())
        except re.error as e:
            raise EmutuiError(f"--grep {args.grep!r}: {e}") from e
    return Timeline(
        sources, Filter(frozenset(wanted) if wanted else None, pattern), hold_partial=args.follow
    )


async def cmd_timeline(args: argparse.Namespace) -> int:
    from emutui.core.timeline import clock
    from emutui.core.when import parse_span

    reg = registry(args)
    insts = [(r, reg.resolve(r)) for r in dict.fromkeys(args.refs)]
    tl = build_timeline(insts, args)
    since, until = _when(args.since), _when(args.until)
    if args.last:
        last = tl.backward(tl.end(), 1)[0]
        since = max(since or 0.0, (last[0].t if last else time.time()) - parse_span(args.last))
    width = max(len(lab) for lab in tl.labels)
    out = sys.stdout
    sanitizer = TerminalSanitizer() if out.isatty() else None
    pos = tl.seek_time(since) if since is not None else tl.start()
    today = time.strftime("%Y-%m-%d")
    try:
        while True:
            lines, pos = tl.forward(pos, 512)
            for ln in lines:
                if until is not None and ln.t > until:
                    return 0
                if args.json:
                    obj = {
                        "time": ln.t,
                        "source": ln.source,
                        "kind": ln.kind,
                        "text": ln.text.decode("utf-8", "replace"),
                    }
                    out.write(json.dumps(obj) + "\n")
                    continue
                day = time.strftime("%Y-%m-%d", time.localtime(ln.t))
                text = ln.text.decode("utf-8", "replace")
                if sanitizer is not None:
                    text = sanitizer.feed(text.encode()).decode("utf-8", "replace")
                out.write(f"{clock(ln.t, args.date or day != today)} {ln.source:<{width}} {text}\n")
            out.flush()
            if len(lines) < 512:
                if not args.follow:
                    return 0
                time.sleep(0.2)
                pos = tl.refresh(pos)
    finally:
        tl.close()


async def cmd_export(args: argparse.Namespace) -> int:
    from emutui.core.export import export_run

    inst = registry(args).resolve(args.ref)
    n, size = export_run(inst, args.output, _when(args.since), _when(args.until))
    print(f"exported {inst.ref} to {args.output}: {n} files, {size} bytes")
    return 0
