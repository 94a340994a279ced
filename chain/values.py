"""Parsing of the hex values users type or send: hashes, addresses, signatures; and the textual forms
docchain writes.

Every edge (API schemas, CLI options, receipt reader) parses through these, so a malformed value gets
the same clear :class:`InvalidInput` message everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from docchain.chain.errors import InvalidInput
from docchain.chain.hashing import keccak256

if TYPE_CHECKING:
    # Types only, so the CLI's start does not import eth_typing: its NewTypes are plain str at run time.
    from eth_typing import ChecksumAddress, HexStr

ZERO32 = bytes(32)


def parse_hex(value: str, *, length: int | None = None, what: str = "value") -> bytes:
    """Decode a 0x-prefixed (or bare) hex string, checking its byte length when given."""
    # bytes.fromhex rather than a regular expression (~5x faster: every hash and signature read from the
    # database or a request goes through here). fromhex skips whitespace between bytes, which the length
    # check refuses; it raises on odd lengths and on anything but hex digits.
    digits = value.strip() if isinstance(value, str) else ""
    if digits[:2] in ("0x", "0X"):
        digits = digits[2:]
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        raw = None
    if raw is None or not isinstance(value, str) or 2 * len(raw) != len(digits):
        raise InvalidInput(f"{what} is not valid hex: {value!r:.80}")
    if length is not None and len(raw) != length:
        raise InvalidInput(f"{what} must be {length} bytes ({2 * length} hex digits), got {len(raw)}")
    return raw


def parse_hash32(value: str, what: str = "hash") -> bytes:
    """A 32-byte hash such as a document's SHA-256."""
    return parse_hex(value, length=32, what=what)


@lru_cache(maxsize=8192)
def to_checksum_address(raw: bytes) -> ChecksumAddress:
    """EIP-55 form of a 20-byte address: a hex digit is upper-cased when the same nibble of the keccak256 of
    the lower-case hex is 8 or more. Written here rather than taken from eth_utils, whose import (~0.2 s,
    pydantic included) every start of the CLI paid. Memoised: the same few signers and contracts recur on
    every request."""
    digits = raw.hex()
    nibbles = keccak256(digits.encode()).hex()
    checksummed = "0x" + "".join(c.upper() if n >= "8" else c for c, n in zip(digits, nibbles, strict=False))
    return cast("ChecksumAddress", checksummed)


def parse_address(value: str, what: str = "address") -> ChecksumAddress:
    """An Ethereum address, returned checksummed. A mixed-case input must carry a valid checksum."""
    raw = parse_hex(value, length=20, what=what)
    checksummed = to_checksum_address(bytes(raw))
    digits = value.strip().removeprefix("0x")
    if digits != digits.lower() and digits != digits.upper() and "0x" + digits != checksummed:
        raise InvalidInput(f"{what} has an invalid EIP-55 checksum: {value}")
    return checksummed


def parse_signature(value: str, what: str = "signature") -> bytes:
    """A signature: 65 bytes for ordinary keys; contract wallets (ERC-1271) may use other lengths."""
    raw = parse_hex(value, what=what)
    if not 1 <= len(raw) <= 4096:
        raise InvalidInput(f"{what} must be between 1 and 4096 bytes, got {len(raw)}")
    return raw


def to_hex(raw: bytes) -> HexStr:
    """0x-prefixed lower-case hex, the one textual form docchain writes."""
    return cast("HexStr", "0x" + raw.hex())


def utc_text(timestamp: int) -> str:
    """A block timestamp as people read it: ``2026-11-23 18:37:34 UTC``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
