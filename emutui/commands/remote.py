"""Remote hosts from the command line: ``NAME@HOST`` on any command, ``--host``, ``agent``.

A command naming ``NAME@HOST`` (or given ``--host HOST``) runs as the same
emutui command on the host, in a session on the host's SSH ControlMaster: one
round trip on a warm connection, the host's own emutui doing the work where
the instance lives (so every command, present and future, works remotely,
and vrtd BARs are mapped on the host). Its output is filtered here again
before it reaches a terminal: the host is trusted no more than a guest.
``emutui ls`` lists the local instances and every configured host's, fetched
in parallel, an unreachable host being one row that says why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from emutui.backends.remote.ssh import HostConfig, SSHHost, check_host_name, split_at
from emutui.core.errors import EmutuiError

Sub = argparse._SubParsersAction  # type: ignore[type-arg]
INTERACTIVE = {"term", "shell", "gdb"}  # need a terminal on the host


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "agent",
        help="serve this host's instances on stdio (run by a remote emutui over ssh)",
        parents=[common],
    )
    p.set_defaults(handler=cmd_agent)


def cmd_agent(args: argparse.Namespace) -> int:
    from emutui.backends.remote.agent import serve_stdio

    return asyncio.run(serve_stdio(args.state_dir, args.config))


def configured_hosts(args: argparse.Namespace) -> dict[str, HostConfig]:
    """The config's [hosts.*], read once per command (ls asks several times)."""
    cached: dict[str, HostConfig] | None = getattr(args, "_hosts", None)
    if cached is None:
        from emutui.config import load_config

        cfg = load_config(args.config, validate=False)
        cached = dict(getattr(cfg, "hosts", {}) or {})
        args._hosts = cached
    return dict(cached)


def resolve_host(args: argparse.Namespace, name: str) -> HostConfig:
    hosts = configured_hosts(args)
    if name in hosts:
        return hosts[name]
    check_host_name(name)
    return HostConfig(name=name, ssh=name)  # `--host lab2`: any ssh destination


def _ref_attr(args: argparse.Namespace) -> str | None:
    for attr in ("name", "target"):
        v = getattr(args, attr, None)
        if isinstance(v, str) and "@" in v:
            return attr
    return None


def wants_forward(args: argparse.Namespace) -> bool:
    if args.command in (None, "agent", "demo", "sim"):
        return False
    if args.command == "ls":
        return False  # ls merges every host itself
    return bool(getattr(args, "host", None)) or _ref_attr(args) is not None


def forward(args: argparse.Namespace, argv: list[str]) -> int:
    """Run this command on the host; its exit status is ours."""
    attr = _ref_attr(args)
    host_name = getattr(args, "host", None)
    rest = list(argv)
    if attr is not None:
        ref = getattr(args, attr)
        name, at_host = split_at(ref)
        if host_name and at_host and host_name != at_host:
            raise EmutuiError(f"{ref}: --host {host_name} names another host")
        host_name = at_host
        rest = [name if a == ref else a for a in rest]
    assert host_name is not None
    rest = _strip_local_options(rest)
    host = SSHHost(resolve_host(args, host_name))
    tty = args.command in INTERACTIVE and sys.stdin.isatty() and sys.stdout.isatty()
    cmd = host.session(rest, tty=tty, auto=True)
    if tty or not sys.stdout.isatty():
        # the host's emutui filters for its tty; 255 is ssh's own failure (said on stderr)
        rc = subprocess.run(cmd).returncode
        return 1 if rc == 255 else rc
    # Our terminal, the host's pipe: the host passes bytes raw, so filter them here.
    from emutui.core.sanitize import TerminalSanitizer

    san = TerminalSanitizer()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert p.stdout is not None
    out = sys.stdout.buffer
    try:
        while chunk := os.read(p.stdout.fileno(), 65536):
            out.write(san.feed(chunk))
            out.flush()
    except KeyboardInterrupt:
        p.terminate()
    rc = p.wait()
    return 1 if rc == 255 else rc


def _strip_local_options(argv: list[str]) -> list[str]:
    """--host, --state-dir and --config are this machine's; the host has its own."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--host", "--state-dir", "--config"):
            skip = True
            continue
        if a.startswith(("--host=", "--state-dir=", "--config=")):
            continue
        out.append(a)
    return out


# -- ls over every host ------------------------------------------------------------------


async def host_rows(host: HostConfig) -> list[dict[str, Any]]:
    """One host's ``ls --json`` rows, or one row saying why there are none."""
    ssh = SSHHost(host)
    try:
        p = await asyncio.create_subprocess_exec(
            *ssh.session(["ls", "--json"], auto=True),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(p.communicate(), host.connect_timeout + 10)
        except TimeoutError:
            p.kill()
            await p.wait()
            raise EmutuiError("no answer from the host") from None
        if p.returncode != 0:
            text = err.decode("utf-8", "replace").strip().splitlines()
            why = text[-1] if text else f"exit status {p.returncode}"
            if p.returncode == 127:
                why = f"emutui is not installed on the host ({why})"
            raise EmutuiError(why.removeprefix("emutui: "))
        rows = json.loads(out)
        if not isinstance(rows, list):
            raise EmutuiError("the host's emutui answered something that is not a listing")
    except EmutuiError as e:
        return [_unreachable(host, str(e))]
    except ValueError:
        return [_unreachable(host, "the host's emutui answered something that is not JSON")]
    return _tagged(host, rows)


def _unreachable(host: HostConfig, why: str) -> dict[str, Any]:
    why = "".join(c for c in why.removeprefix(f"{host.name}: ") if c.isprintable())
    return {
        "name": f"@{host.name}", "host": host.name, "backend": "ssh", "target": host.ssh,
        "state": "unreachable", "detail": why, "pid": None, "uptime": None,
        "simulated": False, "dir": "", "error": why,
    }  # fmt: skip


async def remote_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every configured host's rows (or only --host's), fetched in parallel.

    Through the lingering helper (backends/remote/mux.py) that keeps each host's
    agent up between commands; if it cannot be had, one ssh session per host.
    """
    hosts = configured_hosts(args)
    only = getattr(args, "host", None)
    if only:
        hosts = {only: resolve_host(args, only)}
    if not hosts:
        return []
    from emutui.backends.remote import mux

    try:
        found = await mux.listing(list(hosts.values()))
    except (OSError, TimeoutError, EmutuiError):
        results = await asyncio.gather(*(host_rows(h) for h in hosts.values()))
        return [r for rows in results for r in rows]
    out: list[dict[str, Any]] = []
    for name, h in hosts.items():
        got = found.get(name, "no answer")
        if not isinstance(got, list):
            out.append(_unreachable(h, str(got)))
            continue
        out += _tagged(h, got)
    return out


def _tagged(host: HostConfig, rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if isinstance(r, dict):
            r = dict(r)
            r["host"] = host.name
            r["name"] = f"{r.get('name', '?')}@{host.name}"
            out.append(r)
    return out


def tui_hosts(args: argparse.Namespace, cfg: Any) -> Any:
    """The TUI's view of the configured hosts (or --host), or None without any."""
    hosts = dict(getattr(cfg, "hosts", {}) or {})
    if args.host:
        hosts = {args.host: resolve_host(args, args.host)}
    if not hosts:
        return None
    from emutui.backends.remote.connector import RemoteHosts
    from emutui.backends.remote.ssh import private_dir

    return RemoteHosts(hosts.values(), private_dir() / "mirror")
