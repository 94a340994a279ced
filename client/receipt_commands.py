"""``docchain receipt``: fetch a document's receipt again, for a signer or a submission id; ``docchain receipt
upgrade R``: add or refresh a receipt's evidence bundle from a node."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Annotated

import typer

from docchain.chain.bundle import Evidence
from docchain.chain.receipt import Receipt, read_receipt, receipt_path, write_receipt
from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents, keys, receipts
from docchain.client.context import CliContext
from docchain.client.errors import CliError, ExitCode, UsageError, VerificationFailed
from docchain.client.options import ForceOpt, KeyOpt, SignerOpt, WaitTimeoutOpt, command, new_app
from docchain.client.output import short

app = new_app("Fetch receipts.")


UPGRADE = "upgrade"  # `docchain receipt upgrade R`: the word in the place of FILE|HASH, then the receipt


@command(
    app,
    "receipt",
    globals_used=("api", "rpc", "timeout", "retries"),
    examples_=[
        "docchain receipt contract.pdf               # your key's receipt",
        "docchain receipt contract.pdf --signer 0xAbC…",
        "docchain receipt contract.pdf --id 0193a1f2… --wait",
        "docchain receipt 0x3a7b…e1 --signer 0xAbC… -o r.json",
        "docchain receipt upgrade contract.pdf.docchain.json --rpc URL",
    ],
)
def receipt(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(metavar="FILE|HASH|upgrade", help="The document, or its 0x SHA-256; or upgrade.")
    ],
    upgraded: Annotated[
        Path | None,
        typer.Argument(metavar="[RECEIPT]", help="After upgrade: the receipt to add the evidence bundle to."),
    ] = None,
    signer: SignerOpt = None,
    submission: Annotated[
        str | None,
        typer.Option("--id", envvar="DOCCHAIN_SUBMISSION_ID", metavar="ID", help="The submission's id."),
    ] = None,
    key: KeyOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            envvar="DOCCHAIN_OUTPUT",
            metavar="FILE",
            help="Where to write it [default: FILE.docchain.json beside the document].",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", "-w", envvar="DOCCHAIN_WAIT", help="Wait until the record is anchored."),
    ] = False,
    wait_timeout: WaitTimeoutOpt = 120.0,
    force: ForceOpt = False,
) -> None:
    """Fetch a document's receipt from the API again, check it, and write it.

    For a signer (--signer), a submission (--id, as `submit` printed it), or else your key's
    address (--key, or the only key; no password is needed). Use it after an interrupted
    `submit --wait`, or to get another signer's receipt.

    `docchain receipt upgrade RECEIPT` adds (or refreshes) the receipt's evidence bundle from the
    node of --rpc instead: the proofs of its record at the node's head block, which then verify
    with `docchain verify FILE --offline`, with no node at all. Nodes keep recent state only:
    it fails, saying so, when the node does not serve it.
    """
    c: CliContext = ctx.obj
    if target == UPGRADE and upgraded is not None:
        if signer or submission or key or output or wait or force:
            raise UsageError("receipt upgrade takes the receipt file and --rpc only")
        _upgrade(c, upgraded)
        return
    if upgraded is not None:
        raise UsageError(f"one document at a time; to add evidence to a receipt: docchain receipt {UPGRADE} RECEIPT")
    if signer and submission:
        raise UsageError("give --signer or --id, not both")
    doc_hash, path = documents.hash_or_file(target)
    target_file = output or (receipt_path(path) if path is not None else None)
    if target_file is None:
        raise UsageError("for a hash, say where to write the receipt with --output FILE")
    if target_file.exists() and not force:
        raise UsageError(f"{target_file} already exists; pass --force to replace it")
    address: str | None = parse_address(signer, "--signer") if signer else None
    if address is None and submission is None:
        address = keys.info(keys.default_key_name(c.config.pick("key", key), c.keys_dir), c.keys_dir).address
    doc = to_hex(doc_hash)
    with c.api_client() as client:
        if submission is not None:
            found = client.submission(submission)
            if parse_hash32(str(found.get("docHash")), "docHash") != doc_hash:
                raise UsageError(f"submission {submission} is of document {found.get('docHash')}, not {doc}")
            address = parse_address(str(found.get("signer")), "signer")
        assert address is not None
        until = time.monotonic() + (wait_timeout if wait else 0)
        entry = receipts.wait_anchored(client, doc, address, submission, until)
        state = entry.get("state")
        if state not in receipts.ANCHORED:
            hint = "" if wait else " (add --wait to wait for it)"
            why = f": {entry['error']}" if entry.get("error") else ""
            raise CliError(f"{address}'s record of {doc} is {state}, not anchored yet{hint}{why}", ExitCode.UNAVAILABLE)
        name = path.name if path is not None else None
        size = path.stat().st_size if path is not None else None
        fetched = receipts.fetch(client, doc_hash, address, file_name=name, file_size=size)
    fetched = receipts.keep_storage(fetched, target_file)
    written = receipts.save(fetched, target_file, force)
    c.out.emit(
        {
            "docHash": doc,
            "signer": address,
            "state": state,
            "txHash": to_hex(fetched.tx_hash),
            "blockNumber": fetched.block_number,
            "receipt": str(written),
        }
    )
    c.out.say(f"receipt of {short(doc, 8)} by {address} (block {fetched.block_number}) written to {written}")


def _upgrade(c: CliContext, path: Path) -> None:
    """Add a fresh evidence bundle to the receipt at ``path``, once it proves the receipt's record."""
    from docchain.chain.offline import verify_offline
    from docchain.chain.verify import Outcome

    old = read_receipt(path)
    url = c.rpc_url()
    evidence = asyncio.run(_capture(url, c.timeout_s(), old))
    new = dataclasses.replace(old, evidence=evidence)
    verdict = verify_offline(None, new, None)
    if verdict.outcome not in (Outcome.VALID, Outcome.REVOKED):
        raise VerificationFailed(f"the evidence of the node at {url} does not prove {path}: {verdict.reason}")
    write_receipt(new, path, overwrite=True)
    block = evidence.block
    c.out.emit(
        {
            "receipt": str(path),
            "outcome": verdict.outcome.value,
            "blockNumber": block.number,
            "blockHash": to_hex(block.hash),
            "replaced": old.evidence is not None,
        }
    )
    c.out.say(f"evidence of block {block.number} ({to_hex(block.hash)}) added to {path}: {verdict.summary}")


async def _capture(url: str, timeout: float, receipt: Receipt) -> Evidence:
    from docchain.chain.capture import capture_evidence
    from docchain.chain.offline import proven_slots
    from docchain.chain.rpc import JsonRpc

    async with JsonRpc(url, timeout=timeout) as rpc:
        chain_id = int(await rpc.call("eth_chainId", []), 16)
        if chain_id != receipt.domain.chain_id:
            raise UsageError(
                f"the node at {url} serves chain {chain_id}, the receipt is for chain {receipt.domain.chain_id}"
            )
        [evidence] = await capture_evidence(rpc, receipt.domain.verifying_contract, [proven_slots(receipt)])
        return evidence
