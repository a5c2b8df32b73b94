"""Parsers for the Monitor's output, on the spec's examples with each form of line-ending noise."""

from __future__ import annotations

import pytest

from emutui.backends.renode import monitor
from emutui.backends.renode.connector import parse_log_line
from emutui.core.errors import ProtocolError

# Spec 3.3, the MiV example exactly as written (no leading spaces, as in the docs).
DOCS_TREE = """Available peripherals:

sysbus (SystemBus)
│
├── clint (CoreLevelInterruptor)
│       <0x44000000, 0x4400FFFF>
│
├── cpu (RiscV)
│       Slot: 0
│
└── uart (MiV_CoreUART)
        <0x70001000, 0x70001017>
"""


def noisy(text: str, how: str) -> str:
    """The same output as raw capture (CR LF CR) or as an XML parser delivers it (LF LF)."""
    if how == "raw":
        return text.replace("\n", "\r\n\r")
    if how == "xml":
        return text.replace("\n", "\n\n")
    return text


@pytest.mark.parametrize("how", ["plain", "raw", "xml"])
def test_peripherals_tree(how: str) -> None:
    tree = monitor.parse_peripherals(noisy(DOCS_TREE, how))
    assert [(p.name, p.type, p.depth) for p in tree] == [
        ("sysbus", "SystemBus", 0),
        ("sysbus.clint", "CoreLevelInterruptor", 1),
        ("sysbus.cpu", "RiscV", 1),
        ("sysbus.uart", "MiV_CoreUART", 1),
    ]
    assert tree[1].ranges == [(0x44000000, 0x4400FFFF)]
    assert tree[2].notes == ["Slot: 0"]
    assert tree[3].describe() == "<0x70001000, 0x70001017>"


def test_nested_tree_with_leading_spaces_and_suffixes() -> None:
    text = (
        "Available peripherals:\n\n"
        "  sysbus (SystemBus)\n"
        "  │   \n"
        "  ├── gpio (STM32_GPIOPort)\n"
        "  │   │   <0x40020000, 0x400203FF>\n"
        "  │   │   \n"
        "  │   └── led (LED)\n"
        "  │           \n"
        "  └── mem (MappedMemory)\n"
        "          <0x20000000, 0x2001FFFF> with offset 0x10\n"
        "          0x30000000 for core cpu1\n"
    )
    tree = monitor.parse_peripherals(text)
    names = [p.name for p in tree]
    assert names == ["sysbus", "sysbus.gpio", "sysbus.gpio.led", "sysbus.mem"]
    assert tree[3].ranges == [(0x20000000, 0x2001FFFF)]
    assert tree[3].notes == ["0x30000000 for core cpu1"]


def test_empty_tree_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="no tree"):
        monitor.parse_peripherals("Available peripherals:\r\n\r\r\n\r")


HELP = """
The following methods are available:
 - Void CreateFileBackend (String path, Boolean immediateFlush = False)
 - UInt32 ReadDoubleWord (Int64 offset)

Usage:
 sysbus.uart0 MethodName param1 param2 ...


The following properties are available:
 - UInt32 BaudRate
     available for 'get'
 - Boolean Enabled
     available for 'get' and 'set'
 - List<String> Names
     available for 'get'

Usage:
 - get: sysbus.uart0 PropertyName
 - set: sysbus.uart0 PropertyName Value

The following fields are available:
 - Int32 Counter
 - String Id (read only)
"""


@pytest.mark.parametrize("how", ["plain", "raw", "xml"])
def test_object_help_listing(how: str) -> None:
    members = {m.name: m for m in monitor.parse_members(noisy(HELP, how))}
    assert members["CreateFileBackend"].kind == "method"
    assert members["ReadDoubleWord"].type == "UInt32"
    assert (members["BaudRate"].type, members["BaudRate"].writable) == ("UInt32", False)
    assert members["Enabled"].writable and members["Enabled"].readable
    assert members["Names"].type == "List<String>"
    assert members["Counter"].kind == "field" and members["Counter"].writable
    assert not members["Id"].writable


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0x00000000\r\r\n", 0),
        ("0x0001C200\n\n", 115200),
        ("0x0000000A (10)", 10),
        ("True\r\r\n", True),
        ("False", False),
        ("sysbus\r\r\n", "sysbus"),
        ("42", 42),
        (
            "Parity.None\r\n\r\r\n\rPossible values are:\r\n\r\tNone\r\n\r\tEven\r\n\r",
            "Parity.None",
        ),
    ],
)
def test_scalars(text: str, value: object) -> None:
    assert monitor.parse_scalar(text) == value


def test_batched_values_and_lists() -> None:
    assert monitor.parse_hex_values("0x00000011\r\r\n0x00000010\r\r\n", 2) == [0x11, 0x10]
    with pytest.raises(ProtocolError, match="expected 3"):
        monitor.parse_hex_values("0x00000011\n\n", 3)
    assert monitor.parse_list("[\r\n\rmachine-0, \r\n\r]\r\n\r") == ["machine-0"]
    assert monitor.clean("Starting emulation...\r\n\r") == "Starting emulation..."


def test_arguments() -> None:
    assert monitor.format_arg(True) == "true"
    assert monitor.format_arg(9600) == "9600"
    assert monitor.format_arg("sysbus.uart0") == "sysbus.uart0"
    assert monitor.format_arg('a "b"') == '"a \\"b\\""'


def test_log_lines() -> None:
    assert parse_log_line("16:48:13.7321 [INFO] uart0: hello: world") == (
        "16:48:13.7321",
        "INFO",
        "uart0",
        "hello: world",
    )
    assert parse_log_line("02:28:52.0669 [INFO] Monitor available in telnet mode on port 1234") == (
        "02:28:52.0669",
        "INFO",
        "",
        "Monitor available in telnet mode on port 1234",
    )
    # master's bracketed timestamp (2026-07)
    assert parse_log_line("[02:28:52.0669] [WARNING] machine-0/sysbus: odd") == (
        "02:28:52.0669",
        "WARNING",
        "machine-0/sysbus",
        "odd",
    )
    assert parse_log_line("    a continuation line") is None
