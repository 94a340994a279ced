"""The IPFS content identifier (CID) of a byte stream, as kubo's ``ipfs add`` computes it with :data:`ADD_OPTIONS`.

docchain computes the CID of every copy it sends to IPFS itself and compares it with the node's answer, so a node
whose import settings differ (another chunker, CIDv0, trickle layout) is caught rather than trusted, and a receipt's
CID can be checked against the bytes without any IPFS software.

The import (UnixFS v1, as kubo and boxo build it):

* the bytes are cut into chunks of :data:`CHUNK_SIZE` (the last one shorter); each chunk is a ``raw`` block, and a
  stream of at most one chunk (the empty stream included) is that single raw block: ``bafkrei...``;
* otherwise the chunks are the leaves of a balanced tree of ``dag-pb`` nodes with at most :data:`MAX_LINKS` links
  each, all leaves at the same depth, every node filled from the left: level by level, consecutive groups of
  :data:`MAX_LINKS` become one node each, until one node remains, the root;
* a node is a dag-pb ``PBNode`` whose ``Data`` is a UnixFS ``Data`` message (``Type = File``, ``filesize``, one
  ``blocksizes`` entry per child) and whose links carry the child's CID, an empty name and the child's ``Tsize``
  (a raw block's length; a node's encoded length plus its links' ``Tsize``);
* CIDs are version 1, sha2-256, base32 (``raw`` codec for leaves, ``dag-pb`` for nodes).

multiformats makes and reads the CIDs; the two protobuf messages of a node are written here, a dozen lines that
the test vectors check against kubo: no well-kept Python library encodes UnixFS (libipld stops at CIDs and
DAG-CBOR, ipld-dag-pb is a first 0.0.1 release and would still leave the UnixFS message to write).

The builder keeps only the links of each level's unfinished node (:data:`MAX_LINKS` per level, a handful of
levels for any real file) and one partial chunk, so memory is bounded whatever the size.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO

from multiformats import CID, multibase, multihash

from docchain.chain.errors import InvalidInput

CHUNK_SIZE = 262_144
"""Bytes per leaf: kubo's ``size-262144`` chunker."""

MAX_LINKS = 174
"""Links per node of the balanced layout: kubo's ``Import.UnixFSFileMaxLinks`` default."""

ADD_OPTIONS: tuple[tuple[str, str], ...] = (
    ("cid-version", "1"),
    ("raw-leaves", "true"),
    ("chunker", f"size-{CHUNK_SIZE}"),
    ("hash", "sha2-256"),
    ("trickle", "false"),
    ("inline", "false"),
    ("max-file-links", str(MAX_LINKS)),
)
"""The options of kubo's ``add`` (HTTP RPC query or ``ipfs add --NAME=VALUE``) under which the node computes the
CIDs of this module. Every parameter is passed explicitly: a node's ``Import.*`` settings or profile would
otherwise choose them."""

# multiformats registers an encoding the first time it is used, by a check and then a registration that two
# threads can both enter (the second raises "already exists"); the API computes CIDs in threads, so the one
# encoding CIDs are written in is registered now, while the module is imported.
multibase.encode(b"", "base32")

_RAW = 0x55
_DAG_PB = 0x70
_UNIXFS_FILE = 2  # UnixFS Data.Type of a file


def _uvarint(value: int) -> bytes:
    """A protobuf varint (unsigned LEB128)."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _uvarint(number << 3 | 2) + _uvarint(len(payload)) + payload


def _prefix(codec: str) -> bytes:
    """The bytes that precede a sha2-256 digest in a binary CIDv1 of ``codec`` (version, codec, multihash code
    and length). Built once: constructing a multiformats CID validates its arguments, which costs more than
    hashing the 256 KiB block it names."""
    return bytes(CID("base32", 1, codec, multihash.wrap(bytes(32), "sha2-256")))[:-32]


_RAW_PREFIX = _prefix("raw")
_DAG_PB_PREFIX = _prefix("dag-pb")


@dataclass(frozen=True, slots=True)
class _Link:
    cid: bytes  # binary CID
    tsize: int  # bytes of the block and of every block below it
    file_size: int  # document bytes below it


def _node(links: list[_Link]) -> _Link:
    """The dag-pb UnixFS File node over ``links``, as boxo's importer encodes it."""
    file_size = sum(link.file_size for link in links)
    unixfs = bytearray(_uvarint(1 << 3) + _uvarint(_UNIXFS_FILE))  # Type
    unixfs += _uvarint(3 << 3) + _uvarint(file_size)  # filesize
    for link in links:
        unixfs += _uvarint(4 << 3) + _uvarint(link.file_size)  # blocksizes: repeated, not packed (proto2)
    block = bytearray()
    for link in links:
        # PBLink: Hash, Name (always present, empty) and Tsize; PBNode: Links before Data.
        encoded = _field(1, link.cid) + _field(2, b"") + _uvarint(3 << 3) + _uvarint(link.tsize)
        block += _field(2, encoded)
    block += _field(1, bytes(unixfs))
    digest = hashlib.sha256(block).digest()
    return _Link(_DAG_PB_PREFIX + digest, len(block) + sum(link.tsize for link in links), file_size)


def _leaf(chunk: bytes | bytearray | memoryview) -> _Link:
    return _Link(_RAW_PREFIX + hashlib.sha256(chunk).digest(), len(chunk), len(chunk))


class CidBuilder:
    """Computes a stream's CID incrementally: :meth:`update` with its bytes in any pieces, then :meth:`cid`.

    ``chunk_size`` and ``max_links`` are kubo's ``--chunker=size-N`` and ``--max-file-links``: docchain always
    uses the defaults; tests use small values to build deep trees from little data."""

    def __init__(self, *, chunk_size: int = CHUNK_SIZE, max_links: int = MAX_LINKS) -> None:
        if chunk_size < 1 or max_links < 2:
            raise ValueError("chunk_size must be positive and max_links at least 2")
        self._chunk_size = chunk_size
        self._max_links = max_links
        self._partial = bytearray()
        self._levels: list[list[_Link]] = []  # level 0: leaves; each list is one unfinished node's links
        self._size = 0
        self._cid: str | None = None

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if self._cid is not None:
            raise ValueError("CidBuilder.update after cid()")
        view = memoryview(data).cast("B")
        self._size += len(view)
        if self._partial:
            take = min(self._chunk_size - len(self._partial), len(view))
            self._partial += view[:take]
            view = view[take:]
            if len(self._partial) < self._chunk_size:
                return
            self._add(_leaf(self._partial))
            self._partial.clear()
        # Whole chunks straight from the caller's buffer: no copy.
        while len(view) >= self._chunk_size:
            self._add(_leaf(view[: self._chunk_size]))
            view = view[self._chunk_size :]
        self._partial += view

    def _add(self, link: _Link, level: int = 0) -> None:
        if level == len(self._levels):
            self._levels.append([])
        links = self._levels[level]
        # A full node is closed only when a sibling follows: if nothing does, it may be the root.
        if len(links) == self._max_links:
            self._add(_node(links), level + 1)
            self._levels[level] = links = []
        links.append(link)

    def cid(self) -> str:
        """The stream's CID (base32 CIDv1); the builder takes no more bytes afterwards."""
        if self._cid is None:
            if self._partial or not self._levels:  # the empty stream is one empty raw block
                self._add(_leaf(self._partial))
                self._partial.clear()
            level = 0
            while not (level == len(self._levels) - 1 and len(self._levels[level]) == 1):
                links = self._levels[level]
                self._levels[level] = []
                self._add(_node(links), level + 1)
                level += 1
            self._cid = str(CID.decode(self._levels[level][0].cid).encode("base32"))
        return self._cid


def cid_of_bytes(data: bytes) -> str:
    builder = CidBuilder()
    builder.update(data)
    return builder.cid()


def cid_of_stream(stream: BinaryIO, chunk: int = 1 << 20) -> str:
    """The CID of everything left in ``stream``."""
    builder = CidBuilder()
    while data := stream.read(chunk):
        builder.update(data)
    return builder.cid()


def parse_cid(text: str) -> str:
    """``text`` checked to be a CID docchain makes (v1, sha2-256, raw or dag-pb), in its base32 form."""
    try:
        cid = CID.decode(text.strip())
    except Exception as exc:  # multiformats raises several unrelated types for malformed text
        raise InvalidInput(f"not a CID: {text!r}") from exc
    if cid.version != 1 or cid.hashfun.name != "sha2-256" or cid.codec.code not in (_RAW, _DAG_PB):
        raise InvalidInput(f"{text!r} is not a CIDv1 of a raw or dag-pb block hashed with sha2-256")
    return str(cid.encode("base32"))
