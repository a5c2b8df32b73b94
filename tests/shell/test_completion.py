"""The completion engine on QEMU 7.2's recorded schema, with a fake QOM tree (no QEMU)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from emutui.shell.completion import (
    MonitorCompleter,
    QmpCompleter,
    apply_candidate,
    parse_hmp_help,
    suggest,
)
from emutui.shell.schema import Schema
from tests.shell.conftest import FakeQom


def texts(cands: list) -> list[str]:  # type: ignore[type-arg]
    return [c.text for c in cands]


@pytest.fixture
def qom() -> FakeQom:
    return FakeQom()


@pytest.fixture
def engine(schema: Schema, qom: FakeQom) -> QmpCompleter:
    async def execute(cmd: str, args: dict | None = None) -> object:  # type: ignore[type-arg]
        if cmd == "qom-list-types":
            return [{"name": "edu"}, {"name": "e1000"}, {"name": "isa-debug-exit"}]
        if cmd == "human-monitor-command" and args and args["command-line"] == "help":
            return (
                "info [subcommand] -- show various information\n"
                "x /fmt addr -- virtual memory dump\n"
                "xp /fmt addr -- physical memory dump\n"
            )
        if cmd == "human-monitor-command":
            return "info pci  -- show PCI info\ninfo status  -- show the VM status\n"
        raise AssertionError(cmd)

    return QmpCompleter(schema, list_props=qom.list_props, execute=execute)


def test_schema_parsed(schema: Schema) -> None:
    assert len(schema.command_names) == 216
    assert len(schema.event_names) == 52
    assert "query-status" in schema.command_names


def test_command_names(engine: QmpCompleter) -> None:
    assert "query-status" in texts(engine.complete("query-st"))
    assert all(t.startswith("query-st") for t in texts(engine.complete("query-st")))
    c = engine.complete("query-stat")
    assert [x.start for x in c] == [0, 0, 0]
    # no prefix match: substring, so "status" still finds query-status
    assert "query-status" in texts(engine.complete("status"))


def test_argument_names_skip_given_ones(engine: QmpCompleter) -> None:
    assert texts(engine.complete("qom-get ")) == ["path=", "property="]
    assert texts(engine.complete("qom-get path=/machine ")) == ["property="]
    c = engine.complete("qom-get pro")
    assert (c[0].text, c[0].start) == ("property=", 8)


def test_nested_objects_and_union_branches(engine: QmpCompleter) -> None:
    # the file driver's own members appear once driver=file is known
    assert "filename=" in texts(engine.complete("blockdev-add driver=file fil"))
    assert "filename=" not in texts(engine.complete("blockdev-add driver=null-co fil"))
    assert texts(engine.complete("blockdev-add driver=file cache.")) == [
        "cache.direct=",
        "cache.no-flush=",
    ]
    assert "cache." in texts(engine.complete("blockdev-add driver=file ca"))


def test_enum_and_bool_values(engine: QmpCompleter) -> None:
    assert texts(engine.complete("blockdev-add driver=file discard=")) == ["ignore", "unmap"]
    assert texts(engine.complete("set_link name=n up=t")) == ["true"]
    assert "qcow2" in texts(engine.complete("blockdev-add driver=qc"))


async def test_qom_paths_are_listed_as_you_type(engine: QmpCompleter, qom: FakeQom) -> None:
    assert engine.complete("qom-get path=/machine/peri") == []  # nothing cached yet
    c = await engine.complete_async("qom-get path=/machine/peri")
    assert texts(c) == ["/machine/peripheral/", "/machine/peripheral-anon/"]
    assert c[0].start == len("qom-get path=")
    # cached: the synchronous call now answers, without another qom-list
    assert texts(engine.complete("qom-get path=/machine/peri")) == texts(c)
    assert qom.calls == ["/machine"]
    assert texts(await engine.complete_async("qom-list path=")) == [
        "/chardevs/",
        "/machine/",
        "/objects/",
    ]
    assert texts(await engine.complete_async("qom-list path=/machine/peripheral/")) == [
        "/machine/peripheral/edu0/"
    ]
    assert await engine.complete_async("qom-list path=/nope/x") == []


async def test_property_names_for_the_given_path(engine: QmpCompleter) -> None:
    c = await engine.complete_async("qom-get path=/machine/peripheral/edu0 property=")
    assert texts(c) == ["'bus master[0]'", "dma_mask", "realized", "type"]
    c = await engine.complete_async("qom-set path=/machine/peripheral/edu0 property=re")
    assert texts(c) == ["realized"]


async def test_device_ids_and_types(engine: QmpCompleter) -> None:
    assert texts(await engine.complete_async("device_del id=")) == ["edu0"]
    assert texts(await engine.complete_async("device_add driver=e")) == ["e1000", "edu"]


async def test_hmp_commands(engine: QmpCompleter) -> None:
    assert texts(await engine.complete_async("!x")) == ["x", "xp"]
    assert texts(await engine.complete_async("!info st")) == ["status"]


def test_transactions(engine: QmpCompleter) -> None:
    assert "block-dirty-bitmap-add" in texts(engine.complete("transaction( block-dirty-bitmap-a"))
    assert "granularity=" in texts(
        engine.complete("transaction( abort ; block-dirty-bitmap-add node=x gr")
    )
    assert texts(engine.complete("transaction( abort ) ")) == ["completion-mode="]
    assert texts(engine.complete("transaction( abort ) completion-mode=g")) == ["grouped"]


def test_meta_raw_json_and_nonsense(engine: QmpCompleter) -> None:
    assert texts(engine.complete(".h")) == [".help"]
    assert "qom-get" in texts(engine.complete(".help qom-g"))
    assert 'query-status"' in texts(engine.complete('{"execute": "query-sta'))
    assert engine.complete("no-such-command ") == []
    assert engine.complete('qom-get path="unterminated ') == []


def test_signature_for_the_toolbar(engine: QmpCompleter) -> None:
    sig = engine.signature("qom-get path=/m")
    assert sig is not None
    assert [p.name for p in sig.params] == ["path", "property"]
    assert sig.current == "path"
    assert "path: str" in sig.render()
    sig = engine.signature("qom-get pro")
    assert sig is not None and sig.current == "property"
    sig = engine.signature("blockdev-add driver=file ")
    assert sig is not None and "filename" in [p.name for p in sig.params]
    assert engine.signature("nonsense") is None


def test_no_schema_yet_is_harmless() -> None:
    e = QmpCompleter()
    assert e.complete("query-st") == []
    assert texts(e.complete(".q")) == [".quit"]
    assert e.signature("query-status") is None


def test_engine_imports_no_ui_toolkit() -> None:
    src = (Path(__file__).parents[2] / "emutui/shell/completion.py").read_text()
    mods = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(ast.parse(src))
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in n.names
    }
    assert not any(m.startswith(("prompt_toolkit", "textual")) for m in mods)


def test_parse_hmp_help() -> None:
    text = "announce_self [interfaces] -- Trigger\nblock_job_cancel [-f] device -- stop\n\t\tmore\n"
    assert parse_hmp_help(text) == {"announce_self": "Trigger", "block_job_cancel": "stop"}


async def test_monitor_completer_words() -> None:
    async def load(key: str) -> dict[str, str]:
        if key == "commands":
            return {"help": "", "peripherals": "list", "pause": "p"}
        if key == "objects":
            return {"sysbus": "", "sysbus.uart0": "UART"}
        if key == "members:sysbus.uart0":
            return {"BaudRate": "UInt32", "WriteChar": "Void"}
        return {}

    e = MonitorCompleter({"commands": load, "objects": load, "members": load, "args": load})
    assert texts(await e.complete_async("pe")) == ["peripherals"]
    assert texts(await e.complete_async("sysbus.u")) == ["sysbus.uart0"]
    c = await e.complete_async("sysbus.uart0 Wr")
    assert (texts(c), c[0].start) == (["WriteChar"], 13)
    sig = e.signature("sysbus.uart0 WriteChar 0x41")
    assert sig is not None and sig.note == "Void"
    sig = e.signature("pause")
    assert sig is not None and sig.note == "p"


async def test_names_with_spaces_are_quoted(engine: QmpCompleter) -> None:
    line = "qom-list path=/machine/peripheral/edu0/"
    c = await engine.complete_async(line)
    assert texts(c) == ["'/machine/peripheral/edu0/bus master[0]/'"]
    assert c[0].start == len("qom-list path=")
    # typing inside the quote keeps completing, and the quoted path parses
    c = await engine.complete_async("qom-list path='/machine/peripheral/edu0/bu")
    assert texts(c) == ["'/machine/peripheral/edu0/bus master[0]/'"]
    from emutui.shell.syntax import parse_line

    assert parse_line("qom-list path=" + c[0].text).args == {
        "path": "/machine/peripheral/edu0/bus master[0]/"
    }
    c = await engine.complete_async(
        "qom-get path='/machine/peripheral/edu0/bus master[0]/' property=ty"
    )
    assert texts(c) == ["type"]


async def test_inline_suggestion_helpers(engine: QmpCompleter) -> None:
    assert await suggest(engine, "query-st") == "query-status"
    assert await suggest(engine, "qom-get path=/machine/peri") == (
        "qom-get path=/machine/peripheral/"
    )
    assert await suggest(engine, "no-such-command ") is None
    (c,) = engine.complete("qom-get pa")
    assert apply_candidate("qom-get pa x", 10, c) == ("qom-get path= x", 13)
