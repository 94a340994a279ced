"""The sealed format (docs/protocol.md, "Documents on IPFS"): a golden vector any AES-GCM library reproduces,
streaming that does not depend on chunk boundaries, and every way a sealed document can fail to open."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from docchain.chain.errors import InvalidInput
from docchain.chain.sealed import (
    HEADER_SIZE,
    KEY_SIZE,
    OVERHEAD,
    UnsealError,
    key_from_text,
    key_to_text,
    new_key,
    seal,
    sealed_size,
    unseal,
)

KEY = bytes(range(32))
NONCE = bytes(range(100, 112))
PLAIN = b"docchain sealed format, version 1\n"
# "DCSEAL" | 0x01 | nonce | ciphertext | tag
GOLDEN = bytes.fromhex(
    "44435345414c01"
    "6465666768696a6b6c6d6e6f"
    "2c74bd0511883ff01e113a89b6000edd24ad7467ea18df52d1b4de3b92cccb68a5e3"
    "93589313b0eebcb812e13b60760188e5"
)


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_golden_vector() -> None:
    assert b"".join(seal([PLAIN], KEY, nonce=NONCE)) == GOLDEN
    assert b"".join(unseal([GOLDEN], KEY)) == PLAIN
    assert key_to_text(KEY) == "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


def test_any_aes_gcm_library_opens_it() -> None:
    """The documented recipe: nonce = bytes 7..19, associated data = the 19-byte header, the rest is
    ciphertext followed by the tag (the layout one-shot AEAD APIs take)."""
    header, body = GOLDEN[:HEADER_SIZE], GOLDEN[HEADER_SIZE:]
    assert AESGCM(KEY).decrypt(header[7:19], body, header) == PLAIN


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), size=st.integers(min_value=1, max_value=100))
def test_streaming_round_trip_whatever_the_chunks(data: bytes, size: int) -> None:
    key = new_key()
    sealed = b"".join(seal(_split(data, size), key))
    assert len(sealed) == sealed_size(len(data)) == len(data) + OVERHEAD
    assert b"".join(unseal(_split(sealed, size), key)) == data


def test_each_seal_draws_a_fresh_nonce() -> None:
    assert b"".join(seal([PLAIN], KEY)) != b"".join(seal([PLAIN], KEY))


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("sealed", "message"),
    [
        (b"", "header is incomplete"),
        (GOLDEN[: HEADER_SIZE - 1], "header is incomplete"),
        (b"XCSEAL" + GOLDEN[6:], "bad magic"),
        (GOLDEN[:6] + b"\x02" + GOLDEN[7:], "version 2 is not supported"),
        (GOLDEN[: HEADER_SIZE + 15], "tag is incomplete"),
        (GOLDEN[:-1], "does not open"),  # the last ciphertext byte taken for the tag
        (_flip(GOLDEN, 10), "does not open"),  # nonce
        (_flip(GOLDEN, HEADER_SIZE + 3), "does not open"),  # ciphertext
        (_flip(GOLDEN, len(GOLDEN) - 1), "does not open"),  # tag
        (GOLDEN + b"\x00", "does not open"),  # trailing byte
    ],
    ids=[
        "empty",
        "short-header",
        "magic",
        "version",
        "short-tag",
        "truncated",
        "nonce",
        "ciphertext",
        "tag",
        "trailing",
    ],
)
def test_what_does_not_open(sealed: bytes, message: str) -> None:
    with pytest.raises(UnsealError, match=message):
        b"".join(unseal(_split(sealed, 5) or [b""], KEY))


def test_another_key_does_not_open() -> None:
    with pytest.raises(UnsealError, match="does not open with this key"):
        b"".join(unseal([GOLDEN], bytes(KEY_SIZE)))


def test_unseal_error_is_invalid_input() -> None:
    """The edges map it as bad input (4xx, exit 2): a key that does not fit."""
    assert issubclass(UnsealError, InvalidInput)


def test_key_text_round_trip() -> None:
    key = new_key()
    assert len(key) == KEY_SIZE and key != new_key()
    text = key_to_text(key)
    assert len(text) == 43 and key_from_text(text) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",  # padded
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",  # 42 characters
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+",  # standard alphabet, not url-safe
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",  # non-canonical last character (same 32 bytes)
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhé",  # non-ASCII
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",  # hex
    ],
)
def test_malformed_key_texts(text: str) -> None:
    with pytest.raises(InvalidInput, match="43 base64url characters"):
        key_from_text(text)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_keys_of_other_sizes_are_refused(size: int) -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        list(seal([PLAIN], bytes(size)))
    with pytest.raises(InvalidInput, match="32 bytes"):
        list(unseal([GOLDEN], bytes(size)))


def test_protocol_shows_this_vector() -> None:
    """docs/protocol.md section 5 shows the golden vector: the same bytes as this file's."""
    protocol = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    section = protocol[protocol.index("### The sealed format (`chain/sealed.py`)") :]
    block = section[section.index("```\n") + 4 :]
    assert bytes.fromhex("".join(block[: block.index("```")].split())) == GOLDEN
    assert key_to_text(KEY) in section
