"""The docchain receipt: a self-contained JSON proof that verifies with any Ethereum node.

Format versions 1 and 2 (schema: docs/receipt.schema.json): a directly anchored record is written as version 1,
which every reader understands; a Merkle-anchored one as version 2, whose ``anchor.merkle`` carries the
inclusion proof of its leaf under the anchored root (chain/merkle.py).

Reading is exactly as strict as the schema, plus the rules a schema cannot state (its description lists
them): no duplicate keys, integers written as JSON integers, copies of a value that agree (the document hash
in ``document`` and in the signed message), EIP-55 checksums. A receipt that parses says one thing only, and
the web page's reader (api/web/js/receipt.js) refuses the same texts with the same messages:
tests/vectors/receipts.json is the corpus both are held to.

A private registration (docs/protocol.md, "Private mode") signs a salted commitment to the document in place of
its SHA-256: its receipt's optional ``private`` section holds the salt, ``document.sha256`` stays the file's
SHA-256 and ``eip712.message.docHash`` is the commitment. Whether the two agree is a verification step
(``commitment``, chain/verify.py), not a reading rule: a wrong salt is evidence that fails, as a wrong signature
is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from docchain.chain.errors import InvalidInput
from docchain.chain.files import read_bounded
from docchain.chain.hashing import commitment
from docchain.chain.merkle import MAX_LEAVES, InclusionProof
from docchain.chain.typed_data import EIP712_DOMAIN_TYPE, NAME, Domain, Registration, typed_data
from docchain.chain.typed_data import VERSION as DOMAIN_VERSION
from docchain.chain.values import to_checksum_address, to_hex

if TYPE_CHECKING:  # chain/bundle.py reads the evidence key with this module's field readers: imported when met
    from docchain.chain.bundle import Evidence

VERSION = 2  # the newest format this docchain reads and writes
VERSIONS = (1, 2)  # every format it reads
MAX_BYTES = 64 * 1024  # a receipt is ~2 KB; the bound keeps a hostile file from costing memory
SUFFIX = ".docchain.json"
# The deepest legitimate value (eip712.types.Registration[i]) is at level 5; a bound well above it keeps a
# hostile file of nested brackets from exhausting the parser's stack, in Python and in the browser.
MAX_DEPTH = 16
# Integers other than the deadline stay below 2^53 so that every JSON reader, JavaScript's included, holds
# them exactly; chain ids (MetaMask's bound is lower still), block numbers, timestamps and sizes fit.
MAX_SAFE = 2**53 - 1

_TOP = ("docchainReceipt", "document", "signer", "eip712", "signature", "chainId", "contract", "anchor")
_TOP_OPTIONAL = ("storage", "evidence", "private")  # evidence: an evidence bundle (chain/bundle.py)
_PRIVATE = ("salt",)
_STORAGE = ("backends", "ipfs")
_IPFS = ("cid", "sealed", "key")
MAX_BACKENDS = 8
_DOCUMENT = ("sha256", "name", "size")
_EIP712 = ("types", "primaryType", "domain", "message")
_DOMAIN = ("name", "version", "chainId", "verifyingContract")
_MESSAGE = ("docHash", "signer", "metadataHash", "supersedes", "deadline")
_ANCHOR = ("transactionHash", "blockNumber", "blockHash", "timestamp", "merkle")
_MERKLE = ("root", "leafIndex", "leafCount", "proof")
MAX_PROOF = MAX_LEAVES.bit_length() - 1  # the deepest leaf of the largest tree: 32 hashes
_TYPES = {"EIP712Domain": EIP712_DOMAIN_TYPE, Registration.PRIMARY_TYPE: Registration.TYPE}

# The schema's patterns, matched whole (fullmatch: Python's "$" would also match before a final newline).
_HASH32 = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_SIGNATURE = re.compile(r"0x(?:[0-9a-fA-F]{2})+")
_UINT256_TEXT = re.compile(r"0|[1-9][0-9]{0,77}|0[xX][0-9a-fA-F]{1,64}")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$-]{1,64}")
_BACKEND = re.compile(r"[a-z][a-z0-9-]{0,31}")
# a CIDv1 in base32 (multibase prefix "b"): what docchain writes; a reader needs nothing more to fetch it
_CID = re.compile(r"b[a-z2-7]{58,200}")
_DOC_KEY = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes in base64url without padding (chain/sealed.py)


@dataclass(frozen=True)
class IpfsCopy:
    """The document's copy on IPFS: its CID, whether it is sealed (AES-256-GCM, docs/protocol.md) and, when
    the receipt's holder was given it, the key that opens it."""

    cid: str
    sealed: bool
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"cid": self.cid, "sealed": self.sealed, "key": self.key}


@dataclass(frozen=True)
class Storage:
    """Where the service keeps the document (informative, not signed): the backends, in the order it reads
    them, and its IPFS copy, which anyone can fetch from any gateway with this section alone."""

    backends: tuple[str, ...]
    ipfs: IpfsCopy | None = None

    def to_json(self) -> dict[str, Any]:
        return {"backends": list(self.backends), "ipfs": None if self.ipfs is None else self.ipfs.to_json()}


@dataclass(frozen=True)
class Private:
    """The opening of a private registration's commitment: the document's SHA-256 and the salt that hides it.
    The chain holds only :attr:`commitment`; this receipt is the one place the salt is kept."""

    sha256: bytes
    salt: bytes

    @property
    def commitment(self) -> bytes:
        return commitment(self.sha256, self.salt)

    def to_json(self) -> dict[str, Any]:
        return {"salt": to_hex(self.salt)}


@dataclass(frozen=True)
class Receipt:
    domain: Domain
    registration: Registration
    signature: bytes
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    timestamp: int
    file_name: str | None = None
    file_size: int | None = None
    storage: Storage | None = None
    merkle: InclusionProof | None = None  # a Merkle anchor: the leaf's proof under the root the transaction anchored
    evidence: Evidence | None = None  # proofs of the record under one block's header: verifies with no node
    private: Private | None = None  # a private registration: docHash is a salted commitment to the document

    @property
    def version(self) -> int:
        """The format version this receipt is written in: 1 unless it needs version 2's Merkle anchor."""
        return 1 if self.merkle is None else 2

    @property
    def doc_hash(self) -> bytes:
        """The registered docHash: what the chain holds (a private registration's commitment)."""
        return self.registration.doc_hash

    @property
    def sha256(self) -> bytes:
        """The document's SHA-256 (``document.sha256``): the docHash itself, unless the registration is private."""
        return self.registration.doc_hash if self.private is None else self.private.sha256

    @property
    def signer(self) -> str:
        return self.registration.signer

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "docchainReceipt": self.version,
            "document": {"sha256": to_hex(self.sha256), "name": self.file_name, "size": self.file_size},
            "signer": self.signer,
            "eip712": typed_data(self.domain, self.registration),
            "signature": to_hex(self.signature),
            "chainId": self.domain.chain_id,
            "contract": self.domain.verifying_contract,
            "anchor": {
                "transactionHash": to_hex(self.tx_hash),
                "blockNumber": self.block_number,
                "blockHash": to_hex(self.block_hash),
                "timestamp": self.timestamp,
                "merkle": None if self.merkle is None else self.merkle.to_json(),
            },
        }
        if self.storage is not None:  # optional: receipts without it read as they always did
            out["storage"] = self.storage.to_json()
        if self.evidence is not None:
            out["evidence"] = self.evidence.to_json()
        if self.private is not None:
            out["private"] = self.private.to_json()
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"


def build_receipt(
    *,
    domain: Domain,
    registration: Registration,
    signature: bytes,
    tx_hash: bytes,
    block_number: int,
    block_hash: bytes,
    timestamp: int,
    file_name: str | None = None,
    file_size: int | None = None,
    merkle: InclusionProof | None = None,
) -> Receipt:
    return Receipt(
        domain,
        registration,
        signature,
        tx_hash,
        block_number,
        block_hash,
        timestamp,
        file_name,
        file_size,
        merkle=merkle,
    )


def _fail(message: str) -> NoReturn:
    raise InvalidInput(message)


class _Object(dict[str, Any]):
    """A JSON object as written: ``pairs`` keeps every key, repeated ones included, in document order."""

    pairs: list[tuple[str, Any]]


def _object_pairs(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    obj.pairs = pairs
    return obj


def keys_as_written(obj: dict[str, Any]) -> list[str]:
    """The keys of an object read by :func:`loads`, repeated ones included."""
    return [k for k, _ in obj.pairs] if isinstance(obj, _Object) else list(obj)


class _Fraction(Decimal):
    """A JSON number written with a fraction or an exponent, and its text as written (``1e3`` stays ``1e3``,
    which Decimal would print as ``1E+3``): a message quotes it as the JavaScript reader does."""

    text: str


def _fraction(text: str) -> _Fraction:
    number = _Fraction(text)
    number.text = text
    return number


SHOWN = 40  # the characters of an offending value a message quotes: enough to recognise it, one short line


def got(value: Any) -> str:
    """The offending value as a message quotes it (``, got true``): JSON as written, bounded to SHOWN
    characters; an object or a list by its kind. api/web/js/receipt.js's ``got`` writes the same text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, str):
        return json.dumps(value[:SHOWN]) + ("..." if len(value) > SHOWN else "")
    text = value.text if isinstance(value, _Fraction) else str(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _integer_literal(text: str) -> int | Decimal:
    # Python refuses to convert integers of more than 4,300 digits (a ValueError mid-parse); any integer
    # longer than a uint256 is out of range anyway, so it becomes a value no integer check accepts.
    return int(text) if len(text) <= 80 else Decimal(text)


def _show(key: str) -> str:
    """A key as a message names it: plain keys as they are, any other one quoted (one line, bounded)."""
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key[:40])


def _walk(value: Any, path: str, depth: int) -> None:
    """Refuse a repeated key anywhere (the first one of a pre-order walk) and nesting beyond MAX_DEPTH."""
    if depth > MAX_DEPTH:
        _fail(f"receipt: values nest deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        pairs = value.pairs if isinstance(value, _Object) else list(value.items())
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                _fail(f"receipt: duplicate field {path}{_show(key)}")
            seen.add(key)
        for key, item in pairs:
            _walk(item, f"{path}{_show(key)}.", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path.removesuffix('.')}[{i}].", depth + 1)


def _object(value: Any, path: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(f"receipt: {path} must be an object, got {got(value)}")
    prefix = f"{path}." if path else ""
    unknown = [prefix + _show(k) for k in value if k not in keys and k not in optional]
    if unknown:
        _fail(f"receipt: unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    missing = [prefix + k for k in keys if k not in value]
    if missing:
        _fail(f"receipt: missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return value


def _types_difference(types: Any) -> str:
    """Where a receipt's eip712.types first departs from docchain's, quoted: the changed type string is
    what a reader needs to see (the types are what the signature hashes)."""
    if not isinstance(types, dict):
        return f", got {got(types)}"
    if set(types) != set(_TYPES):
        return f", got the types {', '.join(_show(k) for k in list(types)[:4])}" + ("..." if len(types) > 4 else "")
    for name, fields in _TYPES.items():
        given = types[name]
        if not isinstance(given, list) or len(given) != len(fields):
            return f", got {name} as {got(given)}"
        for i, (want, have) in enumerate(zip(fields, given, strict=True)):
            if have != want:
                return f", got {name}[{i}] as {_member(have)}"
    return ""


def _member(member: Any) -> str:
    if isinstance(member, dict) and set(member) == {"name", "type"}:
        return f"{got(member['type'])} {got(member['name'])}"
    return got(member)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uint(value: Any, path: str) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_SAFE:
        _fail(f"receipt: {path} must be a non-negative integer below 2^53, got {got(value)}")
    return int(value)


def _uint256(value: Any, path: str) -> int:
    number = int(value, 0) if isinstance(value, str) and _UINT256_TEXT.fullmatch(value) else value
    if not _is_int(number) or not 0 <= number < 2**256:
        _fail(
            f"receipt: {path} must be a uint256: a non-negative integer below 2^256, or its decimal or 0x-hex "
            f"string, got {got(value)}"
        )
    return int(number)


def _hash32(value: Any, path: str) -> bytes:
    if not isinstance(value, str) or not _HASH32.fullmatch(value):
        _fail(f"receipt: {path} must be 0x followed by 64 hex digits, got {got(value)}")
    return bytes.fromhex(value[2:])


def _address(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        _fail(f"receipt: {path} must be 0x followed by 40 hex digits, got {got(value)}")
    checksummed = to_checksum_address(bytes.fromhex(value[2:]))
    digits = value[2:]
    if digits != digits.lower() and digits != digits.upper() and value != checksummed:
        _fail(f"receipt: {path} has an invalid EIP-55 checksum: {value}, checksummed {checksummed}")
    return checksummed


def _const(value: Any, path: str, expected: str) -> None:
    if not isinstance(value, str) or value != expected:
        _fail(f'receipt: {path} must be "{expected}", got {got(value)}')


def loads(data: str | bytes, *, limit: int = MAX_BYTES, what: str = "receipt") -> Any:
    """JSON text as receipts are read: UTF-8, at most ``limit`` bytes, no NaN, numbers kept as written (a
    ``1.0`` stays a non-integer) and every object keeping its repeated keys, so that :func:`parse_receipt`
    judges a receipt inside a larger document (the API's verify body) exactly as it judges a file."""
    if isinstance(data, bytes):
        if len(data) > limit:
            _fail(f"{what} is larger than {limit} bytes")
        try:
            # UTF-8 only, as RFC 8259 says; json.loads would also guess UTF-16 and UTF-32 from the bytes
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            _fail(f"{what} is not valid JSON: not UTF-8")
    elif len(data.encode("utf-8", "surrogatepass")) > limit:
        _fail(f"{what} is larger than {limit} bytes")
    try:
        return json.loads(
            data,
            object_pairs_hook=_object_pairs,
            parse_constant=_no_constant,  # NaN and Infinity are Python's, not JSON's
            parse_float=_fraction,  # 1.0 and 1e3 stay non-integers, whatever their value
            parse_int=_integer_literal,
        )
    except RecursionError:
        _fail(f"{what}: values nest deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        _fail(f"{what} is not valid JSON: {str(exc).splitlines()[0]:.120}")


def parse_receipt(data: dict[str, Any] | str | bytes) -> Receipt:
    """Parse and cross-check a receipt (its text, or a JSON object already parsed); :class:`InvalidInput`
    names the first problem found and its field, in the order the checks are written here."""
    if isinstance(data, str | bytes):
        data = loads(data)
    elif isinstance(data, dict):
        # An object already parsed (a receipt inside a request's JSON or a credential) has no text of its own:
        # it is measured by its compact JSON, which no file holding that receipt can undercut. default=str: a
        # number kept as written (a fraction, an integer beyond uint256), refused anyway, counts about as long.
        compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(compact.encode("utf-8", "surrogatepass")) > MAX_BYTES:
            _fail(f"receipt is larger than {MAX_BYTES} bytes")
    _walk(data, "", 0)
    if not isinstance(data, dict):
        _fail("receipt must be a JSON object")
    # The version comes first: a later version's receipt is told apart as such, not as unknown fields.
    if "docchainReceipt" not in data:
        _fail("receipt: missing field docchainReceipt")
    version = data["docchainReceipt"]
    if not _is_int(version) or version not in VERSIONS:
        _fail(f"receipt: docchainReceipt must be 1 or 2 (the format versions this docchain reads), got {got(version)}")
    top = _object(data, "", _TOP, _TOP_OPTIONAL)

    document = _object(top["document"], "document", _DOCUMENT)
    doc_hash = _hash32(document["sha256"], "document.sha256")
    name, size = document["name"], document["size"]
    # len counts code points, as the schema's maxLength does (and not UTF-16 units)
    if name is not None and (not isinstance(name, str) or len(name) > 1024):
        _fail(
            "receipt: document.name must be null or a string of at most 1024 characters, got "
            + (f"{len(name)} characters" if isinstance(name, str) else got(name))
        )
    if size is not None:
        size = _uint(size, "document.size")
    signer = _address(top["signer"], "signer")

    signed = _object(top["eip712"], "eip712", _EIP712)
    if signed["types"] != _TYPES:
        _fail(
            "receipt: eip712.types must be docchain's EIP712Domain and Registration types"
            + _types_difference(signed["types"])
        )
    _const(signed["primaryType"], "eip712.primaryType", Registration.PRIMARY_TYPE)
    domain_json = _object(signed["domain"], "eip712.domain", _DOMAIN)
    _const(domain_json["name"], "eip712.domain.name", NAME)
    _const(domain_json["version"], "eip712.domain.version", DOMAIN_VERSION)
    domain = Domain(
        chain_id=_uint(domain_json["chainId"], "eip712.domain.chainId"),
        verifying_contract=_address(domain_json["verifyingContract"], "eip712.domain.verifyingContract"),
    )
    message = _object(signed["message"], "eip712.message", _MESSAGE)
    registration = Registration(
        doc_hash=_hash32(message["docHash"], "eip712.message.docHash"),
        signer=_address(message["signer"], "eip712.message.signer"),
        metadata_hash=_hash32(message["metadataHash"], "eip712.message.metadataHash"),
        supersedes=_hash32(message["supersedes"], "eip712.message.supersedes"),
        deadline=_uint256(message["deadline"], "eip712.message.deadline"),
    )

    signature = top["signature"]
    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        _fail(
            "receipt: signature must be 0x followed by hex digits, two per byte, at least one byte, got "
            + got(signature)
        )
    chain_id = _uint(top["chainId"], "chainId")
    contract = _address(top["contract"], "contract")

    anchor = _object(top["anchor"], "anchor", _ANCHOR)
    tx_hash = _hash32(anchor["transactionHash"], "anchor.transactionHash")
    block_number = _uint(anchor["blockNumber"], "anchor.blockNumber")
    block_hash = _hash32(anchor["blockHash"], "anchor.blockHash")
    timestamp = _uint(anchor["timestamp"], "anchor.timestamp")
    merkle = None
    if version == 1 and anchor["merkle"] is not None:
        _fail("receipt: anchor.merkle must be null: Merkle anchors are not in format version 1")
    if version == 2:
        if anchor["merkle"] is None:
            _fail("receipt: anchor.merkle must be an object in format version 2 (a direct anchor is version 1)")
        merkle = _merkle(anchor["merkle"])

    # the copies must agree, so that the receipt says one thing only
    private = None
    if "private" in top:
        section = _object(top["private"], "private", _PRIVATE)
        private = Private(doc_hash, _hash32(section["salt"], "private.salt"))
        # docHash is the commitment: whether the salt opens it is verification's commitment step
        if doc_hash == registration.doc_hash:
            _fail("receipt: a private receipt's eip712.message.docHash is the commitment, not document.sha256")
    elif doc_hash != registration.doc_hash:
        _fail("receipt: document.sha256 differs from eip712.message.docHash")
    if signer != registration.signer:
        _fail("receipt: signer differs from eip712.message.signer")
    if chain_id != domain.chain_id:
        _fail("receipt: chainId differs from eip712.domain.chainId")
    if contract != domain.verifying_contract:
        _fail("receipt: contract differs from eip712.domain.verifyingContract")
    storage = parse_storage(top["storage"]) if "storage" in top else None
    evidence = None
    if "evidence" in top:
        from docchain.chain.bundle import parse_evidence

        evidence = parse_evidence(top["evidence"])
    return Receipt(
        domain=domain,
        registration=registration,
        signature=bytes.fromhex(signature[2:]),
        tx_hash=tx_hash,
        block_number=block_number,
        block_hash=block_hash,
        timestamp=timestamp,
        file_name=name,
        file_size=size,
        storage=storage,
        merkle=merkle,
        evidence=evidence,
        private=private,
    )


def _merkle(value: Any) -> InclusionProof:
    """A version 2 anchor's inclusion proof. Its length is fixed by where the leaf sits in the tree, so a proof
    that could never verify is refused here, with its field, rather than found out on chain."""
    section = _object(value, "anchor.merkle", _MERKLE)
    root = _hash32(section["root"], "anchor.merkle.root")
    index = _uint(section["leafIndex"], "anchor.merkle.leafIndex")
    count = section["leafCount"]
    if not _is_int(count) or not 1 <= count <= MAX_LEAVES:
        _fail(f"receipt: anchor.merkle.leafCount must be an integer from 1 to 2^32, got {got(count)}")
    if index >= count:
        _fail(f"receipt: anchor.merkle.leafIndex must be below anchor.merkle.leafCount, got {index} of {count}")
    proof = section["proof"]
    if not isinstance(proof, list) or len(proof) > MAX_PROOF:
        _fail(f"receipt: anchor.merkle.proof must be a list of at most {MAX_PROOF} hashes, got {got(proof)}")
    hashes = tuple(_hash32(h, f"anchor.merkle.proof[{i}]") for i, h in enumerate(proof))
    # StandardMerkleTree keeps leaf `index` of `count` at array position 2*count-2-index; a node's depth there
    # is floor(log2(position + 1)), one proof hash per level (chain/merkle.py, docs/protocol.md)
    depth = (2 * count - 1 - index).bit_length() - 1
    if len(hashes) != depth:
        _fail(f"receipt: anchor.merkle.proof must hold {depth} hashes for leaf {index} of {count}, got {len(hashes)}")
    return InclusionProof(index=index, count=int(count), proof=hashes, root=root)


def parse_storage(value: Any) -> Storage:
    """A receipt's storage section (the API's 202 answers one), checked as a receipt reader checks it."""
    section = _object(value, "storage", _STORAGE)
    backends = section["backends"]
    if not isinstance(backends, list) or not 1 <= len(backends) <= MAX_BACKENDS:
        _fail(f"receipt: storage.backends must be a list of 1 to {MAX_BACKENDS} backend names, got {got(backends)}")
    for i, name in enumerate(backends):
        if not isinstance(name, str) or not _BACKEND.fullmatch(name):
            _fail(
                f"receipt: storage.backends[{i}] must be a backend name: a-z, 0-9 and -, at most 32 characters, "
                f"got {got(name)}"
            )
    if len(set(backends)) != len(backends):
        _fail("receipt: storage.backends names a backend twice")
    ipfs = None
    if section["ipfs"] is not None:
        copy = _object(section["ipfs"], "storage.ipfs", _IPFS)
        cid, sealed, key = copy["cid"], copy["sealed"], copy["key"]
        if not isinstance(cid, str) or not _CID.fullmatch(cid):
            _fail(f"receipt: storage.ipfs.cid must be a CIDv1 in base32 (b followed by a-z and 2-7), got {got(cid)}")
        if not isinstance(sealed, bool):
            _fail(f"receipt: storage.ipfs.sealed must be true or false, got {got(sealed)}")
        if key is not None and (not isinstance(key, str) or not _DOC_KEY.fullmatch(key)):
            _fail("receipt: storage.ipfs.key must be null or 43 base64url characters (a 32-byte key)")
        if key is not None and not sealed:
            _fail("receipt: storage.ipfs.key must be null when storage.ipfs.sealed is false")
        ipfs = IpfsCopy(cid, sealed, key)
    return Storage(tuple(backends), ipfs)


def receipt_path(document: Path) -> Path:
    """Where the receipt of ``document`` lives: beside it, ``NAME.docchain.json``."""
    return document.with_name(document.name + SUFFIX)


def read_receipt(path: Path) -> Receipt:
    return parse_receipt(read_bounded(path, MAX_BYTES, "receipt"))


def write_receipt(receipt: Receipt, path: Path, *, overwrite: bool = False) -> None:
    """Write ``receipt``; an existing file is replaced only when ``overwrite`` (never silently)."""
    mode = "w" if overwrite else "x"
    try:
        with open(path, mode) as out:
            out.write(receipt.dumps())
    except FileExistsError as exc:
        raise InvalidInput(f"{path} already exists; pass --force to replace it") from exc
