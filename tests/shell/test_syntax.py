"""The shell's grammar, without QEMU: shorthand, JSON, HMP, transactions, clear errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emutui.shell.schema import Schema
from emutui.shell.syntax import ShellSyntaxError, is_incomplete, parse_line, parse_value


def test_plain_command() -> None:
    c = parse_line("query-status")
    assert (c.kind, c.name, c.args) == ("qmp", "query-status", {})


def test_shorthand_values_json_and_literals() -> None:
    c = parse_line("x a=1 b=true c=null d=0x10 e=/machine f=1.5 g=-3 h=\"two words\" i='x y'")
    assert c.args == {
        "a": 1,
        "b": True,
        "c": None,
        "d": 16,
        "e": "/machine",
        "f": 1.5,
        "g": -3,
        "h": "two words",
        "i": "x y",
    }


def test_json_values_may_contain_spaces() -> None:
    c = parse_line('x a={"b": [1, 2], "c": "} ]"} d=[ 1 , 2 ]')
    assert c.args == {"a": {"b": [1, 2], "c": "} ]"}, "d": [1, 2]}


def test_dotted_keys_nest() -> None:
    c = parse_line("blockdev-add driver=file node-name=n0 file.a.b=1 file.a.c=x cache.direct=true")
    assert c.args == {
        "driver": "file",
        "node-name": "n0",
        "file": {"a": {"b": 1, "c": "x"}},
        "cache": {"direct": True},
    }


def test_json_arguments_and_raw_message() -> None:
    assert parse_line('device_add {"driver": "edu", "id": "e1"}').args == {
        "driver": "edu",
        "id": "e1",
    }
    c = parse_line('{"execute": "qom-list", "arguments": {"path": "/"}}')
    assert (c.name, c.args) == ("qom-list", {"path": "/"})


def test_hmp_passthrough() -> None:
    c = parse_line("!info pci")
    assert c.kind == "hmp"
    assert c.message() == {
        "execute": "human-monitor-command",
        "arguments": {"command-line": "info pci"},
    }


def test_meta_command() -> None:
    c = parse_line(".help qom-get")
    assert (c.kind, c.name, c.text) == ("meta", "help", "qom-get")


def test_transaction_one_line_with_properties() -> None:
    c = parse_line(
        "transaction( block-dirty-bitmap-add node=n0 name=b0 granularity=512 ; abort ) "
        "completion-mode=grouped"
    )
    assert c.name == "transaction"
    assert c.args == {
        "actions": [
            {
                "type": "block-dirty-bitmap-add",
                "data": {"node": "n0", "name": "b0", "granularity": 512},
            },
            {"type": "abort", "data": {}},
        ],
        "properties": {"completion-mode": "grouped"},
    }


def test_transaction_multi_line() -> None:
    assert is_incomplete("transaction(")
    assert is_incomplete("transaction(\n abort")
    assert not is_incomplete("transaction(\n abort\n)")
    c = parse_line("transaction(\n abort\n abort\n)")
    assert [a["type"] for a in c.args["actions"]] == ["abort", "abort"]


def test_schema_keeps_strings_strings(schema: Schema) -> None:
    # qmp-shell would send 123 (a number) and QEMU would refuse it; the schema says str
    assert parse_line("device_del id=123", schema).args == {"id": "123"}
    assert parse_line("human-monitor-command command-line=x cpu-index=1", schema).args == {
        "command-line": "x",
        "cpu-index": 1,
    }
    c = parse_line("transaction( block-dirty-bitmap-add node=7 name=0x1 granularity=512 )", schema)
    assert c.args["actions"][0]["data"] == {"node": "7", "name": "0x1", "granularity": 512}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ('x a={"b":1', "'{' at column 5 is never closed"),
        ("x a=[1,2}", "unexpected '}' at column 9"),
        ('{"execute": ', "is never closed"),
        ('{"execute": "x"} y', "unexpected text after the JSON message"),
        ('{"arguments": {}}', 'needs "execute"'),
        ("x foo", "expected key=value, got 'foo'"),
        ("x a=1 a=2", "given twice"),
        ('x a="abc', "unterminated string"),
        ("x a=1 a.b=2", "not an object"),
        ('x a={"b":}', "invalid JSON value"),
        ("x =1", "missing argument name"),
        ("transaction( abort", "never closed"),
        ("transaction( )", "at least one action"),
        ("!", "needs an HMP command"),
        ("   ", "empty command"),
    ],
)
def test_clear_errors(line: str, needle: str) -> None:
    with pytest.raises(ShellSyntaxError) as ei:
        parse_line(line)
    assert needle in str(ei.value)


def test_parse_value_literal_fallbacks() -> None:
    assert parse_value("010") == ("010", True)
    assert parse_value("0b101") == (5, True)
    assert parse_value("abc") == ("abc", True)
    assert parse_value("") == ("", True)


_line_chars = st.text(alphabet="abc-_.=/ {}[]\":,'!()\n;0x19tru", max_size=60)


@settings(max_examples=400, deadline=None)
@given(_line_chars)
def test_parser_never_crashes(line: str) -> None:
    try:
        c = parse_line(line)
    except ShellSyntaxError as e:
        assert str(e)
        return
    json.dumps(c.message())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True), json_values, max_size=4)
)
def test_json_values_round_trip(args: dict[str, object]) -> None:
    line = "cmd " + " ".join(f"{k}={json.dumps(v)}" for k, v in args.items())
    parsed = parse_line(line).args
    expect = {k: v for k, v in args.items()}
    assert parsed == expect


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_truncated_json_is_a_clear_error(value: object) -> None:
    text = json.dumps({"v": value})
    for cut in range(1, len(text)):
        try:
            parse_line(f"cmd a={text[:cut]}")
        except ShellSyntaxError as e:
            assert "column" in str(e) or "never closed" in str(e) or "unterminated" in str(e)
