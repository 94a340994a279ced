"""``docchain verify``: through the API by default, or independently through an Ethereum node."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from docchain.chain.errors import InvalidInput, NodeError
from docchain.chain.receipt import Receipt, receipt_path
from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents
from docchain.client.config import normalise_url
from docchain.client.context import CliContext
from docchain.client.errors import ApiUnreachable, CliError, ExitCode, UsageError, VerificationFailed
from docchain.client.options import command, new_app
from docchain.client.query_commands import SIGNER_COLUMNS, signer_rows

if TYPE_CHECKING:
    from docchain.chain.offline import NodeAnswer

app = new_app("Verify documents.")


class Via(StrEnum):
    API = "api"
    RPC = "rpc"


def _receipt_for(path: Path | None, receipt_opt: Path | None) -> Path | None:
    """The receipt to check: ``--receipt``, else the one beside the file, if any."""
    candidate = receipt_opt or (receipt_path(path) if path is not None else None)
    if candidate is None or not candidate.exists():
        if receipt_opt is not None:
            raise UsageError(f"no such receipt: {receipt_opt}")
        return None
    return candidate


def _read_receipt(path: Path) -> Receipt:
    """A receipt file, or a credential that `docchain receipt export --vc` wrote: its bundle, once every claim of
    the credential is the bundle's."""
    from docchain.chain.files import read_bounded
    from docchain.chain.vc import MAX_CREDENTIAL_BYTES, receipt_of

    return receipt_of(read_bounded(path, MAX_CREDENTIAL_BYTES, "receipt"))


async def _ask_canonical(urls: Sequence[str], number: int, timeout: float) -> list[NodeAnswer]:
    """Each node's hash of block ``number``: one eth_getBlockByNumber each, all at once. A node that cannot be
    asked, or answers no hash, is an outage (exit 3), not an answer: verification needs every node's word."""
    from docchain.chain.offline import NodeAnswer
    from docchain.chain.rpc import JsonRpc

    async def ask(url: str) -> NodeAnswer:
        async with JsonRpc(url, timeout=timeout) as rpc:
            block = await rpc.call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            return NodeAnswer(url, number, None)
        try:
            return NodeAnswer(url, number, parse_hash32(block["hash"], "hash"))
        except (InvalidInput, KeyError, TypeError):
            raise CliError(
                f"the node at {url} answered no block hash for block {number}", ExitCode.UNAVAILABLE
            ) from None

    return list(await asyncio.gather(*(ask(url) for url in urls)))


def _private_route(path: Path | None, doc_hash: bytes, receipt: Receipt | None, via: Via | None) -> Via:
    """Who checks a document the API would check: the node instead when the document is private. The API's
    verification takes the receipt, whose salt and file SHA-256 are what a private registration keeps off the
    service (docs/protocol.md, "Private mode"); the node reads the chain by the commitment alone."""
    from docchain.client.receipts import pending_private, salt_path

    if receipt is not None and receipt.private is None:
        return Via.API
    if receipt is None:
        if path is None or pending_private(path, doc_hash) is None:
            return Via.API
        raise UsageError(
            f"{path.name} was submitted privately (its salt is in {salt_path(path)}) and has no receipt "
            f"yet: fetch it first (docchain receipt {path.name}), then verify with it; asked by its SHA-256, the "
            "service would learn the file's hash"
        )
    if via is Via.API:
        raise UsageError(
            "a private receipt is not sent to the docchain API, which would learn its salt and file hash: verify "
            "it through a node (--via rpc, or --rpc URL) or offline (--offline)"
        )
    return Via.RPC


def choose_via(c: CliContext, via: Via | None) -> Via:
    """Through the node only when asked for on this command line (--rpc URL or --via rpc): DOCCHAIN_RPC
    and config.toml say which node to use, never that the API should be bypassed."""
    if via is not None:
        return via
    return Via.RPC if c.explicit("rpc") else Via.API


@command(
    app,
    "verify",
    globals_used=("api", "rpc", "timeout", "retries"),
    examples_=[
        "docchain verify contract.pdf",
        "docchain verify contract.pdf --signer 0xAbC… --json",
        "docchain verify contract.pdf --rpc https://node.example",
        "docchain verify contract.pdf --via rpc    # the node of $DOCCHAIN_RPC",
        "docchain verify contract.pdf --rpc https://node.example \\",
        "    --registry 0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "docchain verify contract.pdf --offline --trusted-block-hash 0x9c…",
        "docchain verify contract.pdf --offline --rpc URL1 --rpc URL2",
        "docchain verify contract.pdf --receipt contract.pdf.vc.json --offline",
    ],
)
def verify(
    ctx: typer.Context,
    target: Annotated[
        str | None, typer.Argument(metavar="[FILE|HASH]", help="The document (or its 0x SHA-256).")
    ] = None,
    receipt_opt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            "-r",
            envvar="DOCCHAIN_RECEIPT",
            metavar="FILE",
            help="Receipt to check [default: FILE.docchain.json if present].",
        ),
    ] = None,
    signer: Annotated[
        str | None,
        typer.Option("--signer", envvar="DOCCHAIN_SIGNER", metavar="ADDRESS", help="Expected signer."),
    ] = None,
    via: Annotated[
        Via | None,
        typer.Option(
            "--via",
            envvar="DOCCHAIN_VERIFY_VIA",
            case_sensitive=False,
            help="Who checks: the docchain API, or an Ethereum node alone [default: rpc if --rpc is on the "
            "command line, else api].",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            envvar="DOCCHAIN_REGISTRY",
            metavar="ADDRESS",
            help="Trust only this registry [default: the one the local stack recorded, else docchain's published "
            "deployment for the chain, else any registry running released docchain code].",
        ),
    ] = None,
    confirmations: Annotated[
        int | None,
        typer.Option(
            "--confirmations",
            envvar="DOCCHAIN_CONFIRMATIONS",
            min=1,
            help="Confirmations required through a node [default: 1].",
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            envvar="DOCCHAIN_OFFLINE",
            help="Verify the receipt's evidence bundle alone: no API, no node, no network (with --rpc URL, one "
            "call per node: is the bundle's block canonical there).",
        ),
    ] = False,
    trusted_block_hash: Annotated[
        str | None,
        typer.Option(
            "--trusted-block-hash",
            envvar="DOCCHAIN_TRUSTED_BLOCK_HASH",
            metavar="HASH",
            help="With --offline: the hash of the bundle's block, as you know it from a source you trust.",
        ),
    ] = None,
    certificate: Annotated[
        Path | None,
        typer.Option(
            "--certificate",
            envvar="DOCCHAIN_CERTIFICATE",
            metavar="PDF",
            help="Check every line of a certificate of completion (docchain certificate) against the node.",
        ),
    ] = None,
) -> None:
    """Verify who signed a document, when, and that it is unchanged.

    By default the docchain API checks it. With --rpc URL on the command line (or --via rpc, which
    uses $DOCCHAIN_RPC or the recorded node), verification is independent: only the file, the receipt
    and an Ethereum node are used, no docchain server. A private receipt (submit --private) is never
    sent to the API, which would learn its salt and file hash: by default the node checks it (the
    chain is read by the commitment alone), --via api is refused, and a private file whose receipt
    is not fetched yet is not asked about. The registry named by a receipt is trusted only
    if its code is a released docchain registry and, when a registry is pinned (--registry, or a
    recorded deployment for the chain), only if it is that one. Each step (file, chain, registry,
    signature, record, anchor, confirmations, revocation) is printed, then the verdict.

    With --offline, the receipt's evidence bundle (docchain receipt fetches one once the record has its
    confirmations) is checked with no network at all, from the file down to one block hash: give that
    hash with --trusted-block-hash, or let nodes say it: with --rpc URL (repeatable), each node is asked
    once for that block's hash, and they must all agree (nodes that disagree, or lack the block, fail
    verification at the chain step, each answer named). Without either, verification fails at the
    chain step, naming the hash to check: a bundle alone proves nothing on chain. A pinned registry
    (--registry, or the local stack's) must be the receipt's, as online.
    The receipt may also be a credential of `docchain receipt export --vc`.

    With --certificate PDF, every line of a certificate of completion is checked against the node
    (--rpc), its registry (and envelopes contract) the pinned ones as for a receipt; with FILE too, its
    hash must be the certificate's.

    Exit status: 0 valid · 1 verification failed (revoked, not registered, signed by others, file
    mismatch, invalid at a step) · 2 bad input · 3 network or chain unavailable.
    """
    from docchain.chain.verify import Question, receipt_refused
    from docchain.client import verifying

    c: CliContext = ctx.obj
    expected = parse_address(signer, "--signer") if signer else None
    pinned = c.config.pick("registry", registry)
    # a bad address is said with where it was given: the flag, the environment or the config file's key
    source = "DOCCHAIN_REGISTRY" if registry and os.environ.get("DOCCHAIN_REGISTRY") == registry else "--registry"
    if pinned and not registry:
        source = f"the config file ({c.config.source})"
    given_as = source if registry else f"registry in the config file {c.config.source}"
    pinned = parse_address(pinned, given_as) if pinned else None
    if certificate is not None:
        from docchain.client.certificate_commands import verify_certificate

        return verify_certificate(c, certificate, target, pinned, source)
    if target is None:
        raise UsageError("give the document (FILE or HASH), or a certificate with --certificate PDF")
    trusted = parse_hash32(trusted_block_hash, "--trusted-block-hash") if trusted_block_hash else None
    if trusted is not None and not offline:
        raise UsageError("--trusted-block-hash is for --offline verification")
    # a malformed URL is bad input, said before any file is read or node asked
    canonical_at = tuple(normalise_url(url, "--rpc") for url in c.rpcs) if offline and c.explicit("rpc") else ()
    if offline and via is not None:
        raise UsageError(
            "--offline uses no node but those of --rpc, asked whether its block is canonical: leave out --via"
        )
    if trusted is not None and canonical_at:
        raise UsageError(
            "give the block hash you trust (--trusted-block-hash) or the nodes to ask for it (--rpc), not both"
        )
    if len(c.rpcs) > 1 and c.explicit("rpc") and not offline:
        raise UsageError("several --rpc are for --offline, whose block each node is asked about; give one node")
    mode = choose_via(c, via)
    doc_hash, path = documents.hash_or_file(target, progress=None if c.json else c.out.err)
    receipt_file = _receipt_for(path, receipt_opt)
    receipt: Receipt | None = None
    result: dict[str, Any] | None = None
    try:
        receipt = None if receipt_file is None else _read_receipt(receipt_file)
    except InvalidInput as exc:
        # evidence that fails, not a usage mistake: said as the verdict of the receipt step
        result = {**receipt_refused(doc_hash, f"{receipt_file}: {exc}").to_json(), "mode": "local"}
    if result is None and not offline and mode is Via.API:
        mode = _private_route(path, doc_hash, receipt, via)
    if result is None and offline:
        if receipt is None:
            raise UsageError("--offline verifies a receipt's evidence bundle: give the receipt with --receipt FILE")
        from docchain.chain.offline import verify_offline

        canonical: list[NodeAnswer] = []
        evidence = receipt.evidence
        if canonical_at and evidence is not None:  # without evidence, verification fails at the receipt step
            canonical = asyncio.run(_ask_canonical(canonical_at, evidence.block.number, c.timeout_s()))
        pin = verifying.resolve_pin(receipt.domain.chain_id, pinned, source, c.trusted_deployments)
        verdict = verify_offline(doc_hash, receipt, trusted, pin, nodes=canonical)
        result = {**verdict.to_json(), "mode": "offline"}
        if canonical:
            result["canonical"] = [answer.to_json() for answer in canonical]
    elif result is None and mode is Via.RPC:
        if receipt is not None and receipt.private is not None and not c.explicit("rpc") and via is None:
            c.out.say(f"private receipt: verified through the node {c.rpc_url()}, not the docchain API")
        question = Question(doc_hash, expected, receipt, int(c.config.pick("confirmations", confirmations)))
        try:
            verdict = verifying.verify_with_node(
                c.rpc_url(), c.timeout_s(), question, pinned, source, c.trusted_deployments
            )
        except NodeError as exc:
            if receipt is None or receipt.private is None or receipt.evidence is None:
                raise
            raise NodeError(f"{exc}; a private receipt with its evidence bundle also verifies with --offline") from exc
        result = {**verdict.to_json(), "mode": "rpc"}
    elif result is None:
        try:
            with c.api_client() as client:
                result = {
                    **client.verify(to_hex(doc_hash), expected, None if receipt is None else receipt.to_json()),
                    "mode": "api",
                }
        except ApiUnreachable as exc:
            if c.rpc is None:
                raise
            # a node is configured but, without --rpc on the command line, not used: say how to use it
            raise ApiUnreachable(f"{exc}; to verify through the node {c.rpc} instead, add --via rpc") from exc
        trusted = (result.get("trust") or {}).get("registry")
        if pinned and trusted and trusted != pinned:
            raise VerificationFailed(f"the API verified against registry {trusted}, not the pinned {pinned} ({source})")
    c.out.emit(result)
    c.out.say(f"document {to_hex(doc_hash)}" + (f" ({path})" if path else ""))
    verifying.show(c.out, result)
    for answer in result.get("canonical", ()):
        number, held = answer["blockNumber"], answer["blockHash"]
        c.out.say(f"canonical: {answer['rpc']} has " + (f"block {number} as {held}" if held else f"no block {number}"))
    if result.get("signers"):
        c.out.table("signers on record", SIGNER_COLUMNS, signer_rows(result["signers"]))
    if result.get("outcome") != "valid":
        raise typer.Exit(ExitCode.VERIFICATION_FAILED)
