"""parse_hex: the one decoder of hex text from requests and the database; EIP-55 addresses."""

from __future__ import annotations

import pytest

from docchain.chain.errors import InvalidInput
from docchain.chain.values import parse_address, parse_hex, to_checksum_address


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


# EIP-55's own test vectors (all caps, all lower, mixed)
EIP55 = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55)
def test_eip55_checksums_match_the_specification(address: str) -> None:
    assert to_checksum_address(bytes.fromhex(address[2:])) == address
    assert parse_address(address.lower()) == address


def test_a_mixed_case_address_with_a_wrong_checksum_is_refused() -> None:
    wrong = EIP55[4][:-1] + "D"  # 0x5aAe...BeAed -> ...BeAeD
    with pytest.raises(InvalidInput, match="invalid EIP-55 checksum"):
        parse_address(wrong)
