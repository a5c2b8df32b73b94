"""A 0x value is a number written as a word in the target's byte order; plain hex is bytes."""

from __future__ import annotations

import pytest

from emutui.core.memvalue import parse_write_value


def test_number_is_a_word_in_the_targets_byte_order() -> None:
    v = parse_write_value("0x12345678")
    assert v.data == bytes.fromhex("78563412") and v.width == 4
    assert int.from_bytes(v.data, "little") == 0x12345678  # reads back as typed
    assert "0x12345678 as 32-bit little-endian word" in v.describe()
    assert parse_write_value("0x12345678", byte_order="big").data == bytes.fromhex("12345678")


def test_number_takes_the_views_width() -> None:
    assert parse_write_value("0x12", 4).data == bytes.fromhex("12000000")
    assert parse_write_value("0x1 0x2", 2).data == bytes.fromhex("01000200")
    assert parse_write_value("0x1234", 1).width == 2  # as wide as its digits need


def test_plain_hex_stays_bytes_in_memory_order() -> None:
    v = parse_write_value("78 56 34 12", 4)
    assert v.data == bytes.fromhex("78563412") and v.words == 0
    assert "memory order" in v.describe()
    assert parse_write_value("deadbeef").data == b"\xde\xad\xbe\xef"


@pytest.mark.parametrize(
    ("text", "msg"),
    [("", "type a value"), ("0x12 34", "mix"), ("abc", "odd number"), ("zz", "not hex")],
)
def test_bad_values_say_why(text: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_write_value(text)
