"""mem regions|read|write: device memory (PCI BARs, sysbus ranges, vrtd BARs)."""

from __future__ import annotations

import argparse
import re

from emutui.commands import registry
from emutui.commands.props import confirm
from emutui.core.errors import EmutuiError, RangeError
from emutui.core.memvalue import WriteValue, parse_write_value

Sub = argparse._SubParsersAction  # type: ignore[type-arg]


def add_parser(sub: Sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("mem", help="device memory: regions, read, write", parents=[common])
    ps = p.add_subparsers(dest="mem_cmd", metavar="regions|read|write", required=True)
    q = ps.add_parser("regions", help="list memory regions", parents=[common])
    q.add_argument("name")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_regions)
    q = ps.add_parser("read", help="hexdump LENGTH bytes at OFFSET", parents=[common])
    q.add_argument("name")
    q.add_argument("region")
    q.add_argument("offset", type=str)
    q.add_argument("length", type=str)
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_read)
    q = ps.add_parser(
        "write",
        help="write VALUE at OFFSET: 0x12345678 is a number, 78563412 is bytes",
        description="A 0x-prefixed VALUE is a number, written as one word (the region's "
        "access width, or as wide as its digits) in the target's byte order: 0x12345678 "
        "reads back as 0x12345678. Plain hex digits are bytes in memory order: on a "
        "little-endian target 78563412 writes the 32-bit value 0x12345678 too.",
        parents=[common],
    )
    q.add_argument("name")
    q.add_argument("region")
    q.add_argument("offset", type=str)
    q.add_argument("hexbytes", metavar="VALUE")
    q.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    q.set_defaults(handler=cmd_write)


_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+", re.ASCII)


def parse_int(text: str, what: str) -> int:
    """Decimal digits or 0x-prefixed hex, ASCII only, as the help says: no 0b/0o,
    no ``_`` separators, no other scripts' digits (which ``int(text, 0)`` would take)."""
    t = text.strip()
    if t.startswith("-") and _NUMBER.fullmatch(t[1:]):
        raise RangeError(f"{what} {text!r} must not be negative")
    if not _NUMBER.fullmatch(t):
        raise RangeError(f"{what} {text!r} is not a number (decimal or 0x-prefixed hex)")
    return int(t, 16 if t[:2].lower() == "0x" else 10)


def parse_value(text: str, width: int = 1, byte_order: str = "little") -> WriteValue:
    """A write's VALUE: ``0x…`` a number (a word), plain hex digits bytes (memory order)."""
    try:
        return parse_write_value(text, width, byte_order)
    except ValueError as e:
        raise EmutuiError(str(e)) from None


def parse_hex(text: str) -> bytes:
    """The bytes of a VALUE for a byte-wide little-endian word (see parse_value)."""
    data = parse_value(text).data
    if not data:
        raise EmutuiError("nothing to write")
    return data


def xxd(data: bytes, offset: int = 0) -> str:
    """xxd's default layout: offset, eight 2-byte groups, two spaces, ASCII."""
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i : i + 16]
        hexpart = " ".join(chunk[j : j + 2].hex() for j in range(0, len(chunk), 2))
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset + i:08x}: {hexpart:<39}  {text}")
    return "\n".join(lines)


async def cmd_regions(args: argparse.Namespace) -> int:
    from emutui.control import connected

    inst = registry(args).get(args.name)
    async with connected(inst, events=False) as conn:
        regions = await conn.regions()
    if args.json:
        from emutui.cli import print_json

        print_json(
            [
                {
                    "name": r.name,
                    "base": r.base,
                    "size": r.size,
                    "writable": r.writable,
                    "access_width": r.access_width,
                    "description": r.description,
                }
                for r in regions
            ]
        )
        return 0
    for r in regions:
        rw = "rw" if r.writable else "r-"
        print(f"{r.name:<20} 0x{r.base:010x}  {r.size:>#12x}  {rw}  {r.description}")
    return 0


async def cmd_read(args: argparse.Namespace) -> int:
    from emutui.control import connected

    offset = parse_int(args.offset, "offset")
    length = parse_int(args.length, "length")
    inst = registry(args).get(args.name)
    async with connected(inst, events=False) as conn:
        data = await conn.read(args.region, offset, length)
    if args.json:
        from emutui.cli import print_json

        print_json({"region": args.region, "offset": offset, "hex": data.hex()})
    else:
        print(xxd(data, offset))
    return 0


async def cmd_write(args: argparse.Namespace) -> int:
    from emutui.control import connected

    offset = parse_int(args.offset, "offset")
    parse_hex(args.hexbytes)  # a typo is an error before anything is connected
    inst = registry(args).get(args.name)
    async with connected(inst, events=False) as conn:
        region = await conn.find_region(args.region)
        value = parse_value(args.hexbytes, region.access_width, region.byte_order)
        data = value.data
        if not args.yes and not confirm(
            f"write {value.describe()} at {args.region}+0x{offset:x} on {inst.name}?"
        ):
            raise EmutuiError("not confirmed; nothing was written (use --yes to skip the question)")
        await conn.write(args.region, offset, data)
    print(f"{inst.name}: wrote {len(data)} bytes at {args.region}+0x{offset:x}")
    return 0
