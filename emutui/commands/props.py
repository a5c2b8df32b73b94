"""prop ls|get|set: the property tree (QOM, Renode peripherals, vrtd devices)."""

from __future__ import annotations

import argparse
import json
import sys

from emutui.commands import registry
from emutui.core.errors import EmutuiError

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("prop", help="list, read and write properties", parents=[common])
    ps = p.add_subparsers(dest="prop_cmd", metavar="ls|get|set", required=True)
    q = ps.add_parser("ls", help="list the properties and children at PATH", parents=[common])
    q.add_argument("name")
    q.add_argument("path", nargs="?", default="/")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_ls)
    q = ps.add_parser("get", help="read one property", parents=[common])
    q.add_argument("name")
    q.add_argument("path")
    q.add_argument("prop")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_get)
    q = ps.add_parser("set", help="write one property (asks first)", parents=[common])
    q.add_argument("name")
    q.add_argument("path")
    q.add_argument("prop")
    q.add_argument("value", help='JSON (42, true, "text") or a bare string')
    q.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    q.set_defaults(handler=cmd_set)


async def cmd_ls(args: argparse.Namespace) -> int:
    from emutui.control import connected

    inst = registry(args).get(args.name)
    async with connected(inst, events=False) as conn:
        nodes = await conn.list_props(args.path)
    if args.json:
        from emutui.cli import print_json

        print_json(
            [
                {
                    "name": n.name,
                    "type": n.type,
                    "path": n.path,
                    "children": n.has_children,
                    "description": n.description,
                }
                | ({"value": n.value} if n.value is not None else {})
                for n in nodes
            ]
        )
        return 0
    for n in sorted(nodes, key=lambda n: (not n.has_children, n.name)):
        mark = "/" if n.has_children else ""
        extra = f"  {n.description}" if n.description else ""
        value = f" = {json.dumps(n.value)}" if n.value is not None else ""
        print(f"{n.name + mark:<32} {n.type}{value}{extra}")
    return 0


async def cmd_get(args: argparse.Namespace) -> int:
    from emutui.control import connected

    inst = registry(args).get(args.name)
    async with connected(inst, events=False) as conn:
        value = await conn.get_prop(args.path, args.prop)
    if args.json:
        from emutui.cli import print_json

        print_json({"path": args.path, "property": args.prop, "value": value})
    elif isinstance(value, str):
        print(value)
    else:
        print(json.dumps(value, default=str))
    return 0


async def cmd_set(args: argparse.Namespace) -> int:
    from emutui.control import connected, parse_value

    value = parse_value(args.value)
    inst = registry(args).get(args.name)
    if not args.yes and not confirm(
        f"set {args.path} {args.prop} = {json.dumps(value)} on {inst.name}? "
        "(some properties abort QEMU when set)"
    ):
        raise EmutuiError("not confirmed; nothing was written (use --yes to skip the question)")
    async with connected(inst, events=False) as conn:
        await conn.set_prop(args.path, args.prop, value)
    print(f"{inst.name}: {args.path} {args.prop} = {json.dumps(value)}")
    return 0


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
