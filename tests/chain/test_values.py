"""parse_hex: the one decoder of hex text from requests and the database."""

from __future__ import annotations

import pytest

from docchain.chain.errors import InvalidInput
from docchain.chain.values import parse_hex


@pytest.mark.parametrize(
    ("text", "raw"),
    [("0xabCD", b"\xab\xcd"), ("abcd", b"\xab\xcd"), (" 0XFF\n", b"\xff"), ("0x", b""), ("", b"")],
)
def test_accepts_hex_with_or_without_prefix(text: str, raw: bytes) -> None:
    assert parse_hex(text) == raw


@pytest.mark.parametrize(
    "text",
    ["0xabc", "0xab cd", "ab\ncd", "0xzz", "0x0x12", "0x-1", "0x\u0663\u0663", None, 12],
    ids=["odd", "inner-space", "inner-newline", "not-hex", "double-prefix", "sign", "arabic-digits", "none", "int"],
)
def test_refuses_anything_else(text: object) -> None:
    with pytest.raises(InvalidInput, match="not valid hex"):
        parse_hex(text)  # type: ignore[arg-type]


def test_checks_the_length_when_asked() -> None:
    assert parse_hex("0x" + "00" * 32, length=32) == bytes(32)
    with pytest.raises(InvalidInput, match="must be 32 bytes"):
        parse_hex("0x00", length=32, what="docHash")
