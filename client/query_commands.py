"""``docchain status`` and ``list``: what the API knows about documents and signers (``get``: get_commands.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents
from docchain.client.context import CliContext
from docchain.client.errors import CliError, ExitCode, UsageError, VerificationFailed
from docchain.client.options import command, new_app
from docchain.client.output import anchoring_text, when_short

if TYPE_CHECKING:
    from docchain.chain.registry import Record  # brings web3: imported by the one command that reads records
    from docchain.chain.rpc import JsonRpc

app = new_app("Query documents.")
QUERY_GLOBALS = ("api", "timeout", "retries")

SIGNER_COLUMNS = ["signer", "state", "anchoring", "block", "time (UTC)", "conf.", "revoked"]


def signer_rows(signers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A document's signers as table rows (transaction hashes are in --json and `inspect`)."""
    return [
        (
            s.get("signer"),
            s.get("state"),
            anchoring_text(s.get("anchoring"), s.get("merkleRoot"), s.get("private")),
            s.get("blockNumber"),
            when_short(s.get("timestamp")),
            s.get("confirmations"),
            when_short(s.get("revokedAt")),
        )
        for s in signers
    ]


def _parse_time(value: str | None, what: str) -> int | None:
    """ISO-8601 date/time (UTC unless it says otherwise) or unix seconds."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what} must be an ISO-8601 date such as 2025-01-31 or unix seconds, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@command(
    app,
    "status",
    globals_used=(*QUERY_GLOBALS, "rpc"),
    examples_=[
        "docchain status contract.pdf",
        "docchain status 0x3a7b…e1 --json",
        "docchain status contract.pdf --as-of-block 1200 --rpc https://archive.example",
        "docchain status contract.pdf --as-of-block 1200 -r contract.pdf.docchain.json",
    ],
)
def status(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="HASH|FILE", help="A 0x SHA-256 or a file to hash.")],
    as_of_block: Annotated[
        int | None,
        typer.Option(
            "--as-of-block",
            envvar="DOCCHAIN_AS_OF_BLOCK",
            min=0,
            metavar="N",
            help="Say whether each signer's record was registered and revoked as of block N, proven from the node "
            "(--rpc) at that block.",
        ),
    ] = None,
    receipt_opt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            "-r",
            envvar="DOCCHAIN_RECEIPT",
            metavar="FILE",
            help="With --as-of-block: the signer, registry and chain of this receipt, with no API asked.",
        ),
    ] = None,
) -> None:
    """Show a document's signers and their states (pending → submitted → anchored → confirmed).

    When the document was uploaded (submit --store), its copies follow, one per storage backend: stored (and
    where: file name, S3 key or IPFS CID), pending with the last attempt's error, or failed with the reason.

    A file submitted privately (submit --private) is asked about by its commitment, which its salt file or
    its receipt beside it opens: its SHA-256 is not sent.

    With --as-of-block N, the API names the signers and the registry (or --receipt R its signer, registry
    and chain, with no API); the node (--rpc, else the recorded one) then proves each record's state at
    block N (eth_getProof, checked against the block's stateRoot). Nodes keep recent states only: an older
    block needs an archive node, and a node that no longer serves it is said in one line (exit 3). A block
    before the registry's deployment, where it has no code, is said so in one line (exit 1).
    """
    c: CliContext = ctx.obj
    if receipt_opt is not None and as_of_block is None:
        raise UsageError("--receipt is for --as-of-block (a document's status otherwise comes from the API)")
    doc_hash, path = documents.hash_or_file(target)
    asked = _asked_by(c, path, doc_hash)
    if as_of_block is not None:
        _status_as_of(c, _subjects(c, doc_hash, asked, receipt_opt), as_of_block)
        return
    with c.api_client() as client:
        doc = client.document(to_hex(asked))
    c.out.emit(doc)
    c.out.say(f"document {doc.get('docHash')}")
    stored = "stored: yes (docchain get)" if doc.get("stored") else "stored: no"
    c.out.table(stored, SIGNER_COLUMNS, signer_rows(doc.get("signers", [])))
    copies = doc.get("storage", [])
    if copies:
        c.out.table("copies", COPY_COLUMNS, copy_rows(copies))


@dataclass(frozen=True)
class AsOf:
    """A signer's record as a block's state holds it."""

    signer: str
    merkle_root: bytes | None
    record: Record

    def to_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "signer": self.signer,
            "merkleRoot": None if self.merkle_root is None else to_hex(self.merkle_root),
            "registered": r.exists,
            "blockNumber": r.block_number if r.exists else None,
            "timestamp": r.registered_at if r.exists else None,
            "revoked": r.revoked,
            "revokedAt": r.revoked_at if r.revoked else None,
        }


@dataclass(frozen=True)
class Subjects:
    """What --as-of-block proves: the signers of a document (each with the Merkle root its leaf is under, if
    any) in one registry."""

    doc_hash: bytes
    chain_id: int
    registry: str
    signers: tuple[tuple[str, bytes | None], ...]


def _asked_by(c: CliContext, path: Path | None, doc_hash: bytes) -> bytes:
    """The hash the API is asked about for the file at ``path``: a private submission's commitment, opened by the
    salt file or the receipt beside the file, since its SHA-256 is what a private registration keeps off the
    service (docs/protocol.md, "Private mode"); else the file's SHA-256."""
    if path is None:
        return doc_hash
    from docchain.chain.receipt import receipt_path
    from docchain.client.receipts import pending_private

    opening = pending_private(path, doc_hash, receipt_path(path))
    if opening is None:
        return doc_hash
    c.out.say(f"private: asked by its commitment {to_hex(opening.commitment)}; the file's SHA-256 is not sent")
    return opening.commitment


def _subjects(c: CliContext, doc_hash: bytes, asked: bytes, receipt_file: Path | None) -> Subjects:
    """The receipt's signer, registry and chain; else the API's signers of the document (by ``asked``, its hash or
    its private commitment) and its registry."""
    if receipt_file is not None:
        from docchain.chain.receipt import read_receipt

        receipt = read_receipt(receipt_file)
        if receipt.sha256 != doc_hash:
            raise UsageError(f"{receipt_file} is a receipt of {to_hex(receipt.sha256)}, not of {to_hex(doc_hash)}")
        root = None if receipt.merkle is None else receipt.merkle.root
        domain = receipt.domain
        return Subjects(receipt.doc_hash, domain.chain_id, domain.verifying_contract, ((receipt.signer, root),))
    with c.api_client() as client:
        doc = client.document(to_hex(asked))
        chain = client.chain()
    signers = tuple(
        (parse_address(str(s["signer"]), "signer"), parse_hash32(s["merkleRoot"]) if s.get("merkleRoot") else None)
        for s in doc.get("signers", [])
    )
    if not signers:
        raise UsageError(f"the API names no signer of {to_hex(asked)}")
    registry = parse_address(str(chain.get("contract")), "the API's registry")
    return Subjects(asked, int(chain["chainId"]), registry, signers)


def _status_as_of(c: CliContext, subjects: Subjects, number: int) -> None:
    url = c.rpc_url()
    found, block_hash = asyncio.run(_records_as_of(url, c.timeout_s(), subjects, number))
    doc = to_hex(subjects.doc_hash)
    c.out.emit(
        {
            "docHash": doc,
            "asOfBlock": number,
            "blockHash": to_hex(block_hash),
            "registry": subjects.registry,
            "signers": [f.to_json() for f in found],
        }
    )
    c.out.say(f"document {doc} as of block {number} ({to_hex(block_hash)}), proven by {url}")
    rows = [
        (
            f.signer,
            "registered" if f.record.exists else "not registered",
            f.record.block_number if f.record.exists else None,
            when_short(f.record.registered_at) if f.record.exists else None,
            when_short(f.record.revoked_at) if f.record.revoked else ("no" if f.record.exists else None),
        )
        for f in found
    ]
    c.out.table(f"as of block {number}", ["signer", "record", "block", "time (UTC)", "revoked"], rows)


async def _records_as_of(url: str, timeout: float, subjects: Subjects, number: int) -> tuple[list[AsOf], bytes]:
    """Each signer's record in the state of block ``number``, with that block's hash: one eth_getProof for all."""
    from docchain.chain.capture import EvidenceUnavailable, StateUnavailable, capture_evidence_at, proven_record
    from docchain.chain.offline import slots_of
    from docchain.chain.rpc import JsonRpc

    async with JsonRpc(url, timeout=timeout) as rpc:
        node_chain = int(await rpc.call("eth_chainId", []), 16)
        if node_chain != subjects.chain_id:
            raise UsageError(
                f"the node at {url} serves chain {node_chain}, the registry is on chain {subjects.chain_id}"
            )
        slots = [slots_of(subjects.doc_hash, signer, root) for signer, root in subjects.signers]
        try:
            evidence = await capture_evidence_at(rpc, subjects.registry, slots, number)
        except StateUnavailable as exc:
            said = exc.__cause__ or exc
            raise CliError(
                f"the node at {url} no longer serves the state of block {number}: ask an archive node (it said: "
                f"{said})",
                ExitCode.UNAVAILABLE,
            ) from exc
        except EvidenceUnavailable:
            # a block before the registry's deployment proves an account without code, which is no registry's
            # evidence: said as such rather than as the bundle reader's refusal of empty code
            if await _without_code(rpc, subjects.registry, number):
                raise VerificationFailed(
                    f"the registry {subjects.registry} has no code at block {number} on the node at {url}: it held "
                    "no record then (it was deployed later, or is not on this chain)"
                ) from None
            raise
    found = [AsOf(signer, root, proven_record(e)) for (signer, root), e in zip(subjects.signers, evidence, strict=True)]
    return found, evidence[0].block.hash


async def _without_code(rpc: JsonRpc, address: str, number: int) -> bool:
    """Whether the node says ``address`` has no code at block ``number`` (not when it cannot say: no such block, or
    a state it no longer keeps)."""
    from docchain.chain.errors import ChainError

    try:
        return bool(await rpc.call("eth_getCode", [address, hex(number)]) == "0x")
    except ChainError:
        return False


COPY_COLUMNS = ["backend", "state", "where", "sealed", "attempts", "reason"]


def copy_rows(copies: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A document's storage copies as table rows: stored, pending (being copied) or failed, with why."""
    return [
        (
            c.get("backend"),
            c.get("state"),
            c.get("locator") or "-",
            "yes" if c.get("sealed") else "no",
            c.get("attempts"),
            c.get("error") or "",
        )
        for c in copies
    ]


@command(
    app,
    "list",
    globals_used=QUERY_GLOBALS,
    examples_=["docchain list --signer 0xAbC… --since 2025-01-01", "docchain list --json --limit 200"],
)
def list_documents(
    ctx: typer.Context,
    signer: Annotated[
        str | None,
        typer.Option(
            "--signer",
            envvar="DOCCHAIN_SIGNER",
            metavar="ADDRESS",
            help="Only documents this address signed.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", envvar="DOCCHAIN_SINCE", metavar="DATE", help="ISO-8601 date/time or unix seconds."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", envvar="DOCCHAIN_UNTIL", metavar="DATE", help="ISO-8601 date/time or unix seconds."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", envvar="DOCCHAIN_LIMIT", min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", envvar="DOCCHAIN_CURSOR", help="Continue from a previous page.")
    ] = None,
) -> None:
    """List registered documents, newest first, by signer and time."""
    c: CliContext = ctx.obj
    address = parse_address(signer, "--signer") if signer else None
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")
    with c.api_client() as client:
        page = client.documents(signer=address, since=start, until=end, limit=limit, cursor=cursor)
    c.out.emit(page)
    rows = [
        (
            item.get("docHash"),
            item.get("signer"),
            item.get("state"),
            anchoring_text(item.get("anchoring"), item.get("merkleRoot"), item.get("private")),
            item.get("blockNumber"),
            when_short(item.get("timestamp")),
        )
        for item in page.get("items", [])
    ]
    c.out.table(None, ["sha256", "signer", "state", "anchoring", "block", "time (UTC)"], rows)
    if page.get("nextCursor"):
        c.out.say(f"more: --cursor {page['nextCursor']}")
