"""``docchain receipt``: a document's receipt and its evidence bundle.

``receipt get`` (also ``docchain receipt FILE|HASH``: the group's default command) fetches a receipt again from the
API; ``receipt upgrade R`` adds or refreshes its evidence bundle from a node; ``receipt export R --vc`` writes it as a
W3C Verifiable Credential (chain/vc.py), which ``receipt import`` turns back into the receipt."""

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
from docchain.client.api_client import ApiClient
from docchain.client.context import CliContext
from docchain.client.errors import ApiError, CliError, ExitCode, UsageError, VerificationFailed
from docchain.client.options import ForceOpt, KeyOpt, SignerOpt, WaitTimeoutOpt, command, examples, new_app
from docchain.client.output import short

app = new_app("Fetch receipts.")
group = new_app(
    "A document's receipt: fetch it again (the default: `docchain receipt FILE`), add its evidence bundle from a "
    "node, export it as a Verifiable Credential.",
    default_command="get",
    epilog=examples(
        "docchain receipt contract.pdf     # docchain receipt get contract.pdf",
        "docchain receipt upgrade contract.pdf.docchain.json --rpc URL",
        "docchain receipt export contract.pdf.docchain.json --vc",
    ),
)
app.add_typer(group, name="receipt")

OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        envvar="DOCCHAIN_OUTPUT",
        metavar="FILE",
        help="Where to write it [default: FILE.docchain.json beside the document].",
    ),
]
ReceiptArg = Annotated[Path, typer.Argument(metavar="RECEIPT", help="A receipt file (FILE.docchain.json).")]


@command(
    group,
    "get",
    globals_used=("api", "timeout", "retries"),
    examples_=[
        "docchain receipt contract.pdf               # your key's receipt",
        "docchain receipt contract.pdf --signer 0xAbC…",
        "docchain receipt get contract.pdf --id 0193a1f2… --wait",
        "docchain receipt contract.pdf --force --evidence  # once the bundle is captured",
        "docchain receipt 0x3a7b…e1 --signer 0xAbC… -o r.json",
    ],
)
def get(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="FILE|HASH", help="The document, or its 0x SHA-256.")],
    signer: SignerOpt = None,
    submission: Annotated[
        str | None,
        typer.Option("--id", envvar="DOCCHAIN_SUBMISSION_ID", metavar="ID", help="The submission's id."),
    ] = None,
    key: KeyOpt = None,
    output: OutputOpt = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", "-w", envvar="DOCCHAIN_WAIT", help="Wait until the record is anchored."),
    ] = False,
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            envvar="DOCCHAIN_EVIDENCE",
            help="Wait, within --wait-timeout, until the receipt carries its evidence bundle (captured by the service "
            "once the record has its confirmations); implies --wait.",
        ),
    ] = False,
    wait_timeout: WaitTimeoutOpt = 120.0,
    force: ForceOpt = False,
) -> None:
    """Fetch a document's receipt from the API again, check it, and write it.

    The group's default command: `docchain receipt FILE` is `docchain receipt get FILE`. For a
    signer (--signer), a submission (--id, as `submit` printed it), or else your key's
    address (--key, or the only key; no password is needed). Use it after an interrupted
    `submit --wait`, or to get another signer's receipt. Once the record has its confirmations,
    the API's receipt carries its evidence bundle (see `docchain receipt upgrade`): `submit --wait`
    writes the receipt before that, and `--evidence` waits for it (exit 3 if --wait-timeout passes
    first, the receipt left as it was).
    """
    c: CliContext = ctx.obj
    if signer and submission:
        raise UsageError("give --signer or --id, not both")
    wait = wait or evidence
    doc_hash, path = documents.hash_or_file(target)
    target_file = output or (receipt_path(path) if path is not None else None)
    if target_file is None:
        raise UsageError("for a hash, say where to write the receipt with --output FILE")
    if target_file.exists() and not force:
        raise UsageError(f"{target_file} already exists; pass --force to replace it")
    address: str | None = parse_address(signer, "--signer") if signer else None
    if address is None and submission is None:
        address = keys.info(keys.default_key_name(c.config.pick("key", key), c.keys_dir), c.keys_dir).address
    # a private submission is registered under its commitment, which the salt kept beside the file opens
    opening = receipts.pending_private(path, doc_hash, target_file)
    registered = doc_hash if opening is None else opening.commitment
    doc = to_hex(registered)
    with c.api_client() as client:
        if submission is not None:
            found = client.submission(submission)
            if parse_hash32(str(found.get("docHash")), "docHash") != registered:
                raise UsageError(f"submission {submission} is of document {found.get('docHash')}, not {doc}")
            address = parse_address(str(found.get("signer")), "signer")
        assert address is not None
        until = time.monotonic() + (wait_timeout if wait else 0)
        try:
            entry = receipts.wait_anchored(client, doc, address, submission, until)
        except (ApiError, VerificationFailed) as exc:
            if opening is not None or not (isinstance(exc, ApiError) and exc.status == 404):
                raise  # (a document others signed: this signer has not, said as it is)
            # no document under the file's plain SHA-256, which a private submission's record is not under
            raise VerificationFailed(
                f"the API has no record of {doc} by {address}; a private submission (submit --private) is found "
                f"only by its commitment, opened by {_openings(path, target_file)}"
            ) from exc
        state = entry.get("state")
        if state not in receipts.ANCHORED:
            hint = "" if wait else " (add --wait to wait for it)"
            why = f": {entry['error']}" if entry.get("error") else ""
            raise CliError(f"{address}'s record of {doc} is {state}, not anchored yet{hint}{why}", ExitCode.UNAVAILABLE)
        if evidence:
            _await_evidence(c, client, doc, address, until)
        name = path.name if path is not None else None
        size = path.stat().st_size if path is not None else None
        fetched = receipts.fetch(client, registered, address, file_name=name, file_size=size, private=opening)
    fetched = receipts.keep_storage(fetched, target_file)
    written = receipts.save(fetched, target_file, force)
    if opening is not None and path is not None:
        receipts.settle_private(path, fetched)
    c.out.emit(
        {
            "docHash": doc,
            "signer": address,
            "state": state,
            "txHash": to_hex(fetched.tx_hash),
            "blockNumber": fetched.block_number,
            "receipt": str(written),
            "evidence": fetched.evidence is not None,
        }
    )
    bundle = " with its evidence bundle" if fetched.evidence is not None else ""
    c.out.say(f"receipt of {short(doc, 8)} by {address} (block {fetched.block_number}){bundle} written to {written}")


def _await_evidence(c: CliContext, client: ApiClient, doc: str, address: str, until: float) -> None:
    """Wait until the API's receipt carries its evidence bundle, the record's confirmations counted on stderr."""
    required = max(1, int(client.chain().get("confirmations") or 1))
    shown = 0
    with c.out.waiting("evidence bundle: confirmations", required) as advance:

        def progress(confirmations: int) -> None:
            nonlocal shown
            while shown < min(confirmations, required):
                advance()
                shown += 1

        if receipts.wait_evidence(client, doc, address, until, progress):
            return
    plural = "" if required == 1 else "s"
    raise CliError(
        f"the API's receipt of {doc} by {address} carries no evidence bundle yet (the service captures it once the "
        f"record has {required} confirmation{plural}): run docchain receipt again later, or add one from a node "
        "with docchain receipt upgrade RECEIPT",
        ExitCode.UNAVAILABLE,
    )


@command(
    group,
    "upgrade",
    globals_used=("rpc", "timeout"),
    examples_=[
        "docchain receipt upgrade contract.pdf.docchain.json",
        "docchain receipt upgrade contract.pdf.docchain.json --rpc https://node.example",
    ],
)
def upgrade(ctx: typer.Context, path: ReceiptArg) -> None:
    """Add (or refresh) a receipt's evidence bundle from a node.

    The proofs of its record at the node's head block, checked, then written into the receipt: it
    then verifies with `docchain verify FILE --offline`, with no node at all.

    Nodes keep recent state only: when the node (--rpc, else the recorded one) no longer serves the
    state needed, it says so in one line (exit 3: an archive node may serve it); when its chain holds
    no record of the receipt (another chain, a reset node, a reorganised record), in one line too
    (exit 1: asking again will not find it). Either way the receipt is left as it was.
    """
    from docchain.chain.offline import verify_offline
    from docchain.chain.verify import Outcome

    c: CliContext = ctx.obj
    old = read_receipt(path)
    url = c.rpc_url()
    evidence = asyncio.run(_capture(url, c.timeout_s(), old))
    new = dataclasses.replace(old, evidence=evidence)
    # the node just served this block: its hash is the one the new evidence is checked against
    verdict = verify_offline(None, new, evidence.block.hash)
    block = evidence.block
    if verdict.outcome is Outcome.NOT_REGISTERED:
        # the node's chain holds no such record: another chain at the same id, a reset dev node, a receipt of
        # a record that a reorganisation removed. Not an outage that a retry outlives: a record not found
        raise VerificationFailed(
            f"the node at {url} holds no record of {path} as of its block {block.number}: {verdict.reason}"
        )
    if verdict.outcome not in (Outcome.VALID, Outcome.REVOKED):
        raise VerificationFailed(f"the evidence of the node at {url} does not prove {path}: {verdict.reason}")
    write_receipt(new, path, overwrite=True)
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


@command(
    group,
    "export",
    examples_=[
        "docchain receipt export contract.pdf.docchain.json --vc  # contract.pdf.vc.json",
        "docchain receipt export contract.pdf.docchain.json --vc -o credential.json",
        "docchain verify contract.pdf --receipt credential.json --offline",
    ],
)
def export(
    ctx: typer.Context,
    path: ReceiptArg,
    vc: Annotated[
        bool,
        typer.Option(
            "--vc",
            envvar="DOCCHAIN_VC",
            help="As a W3C Verifiable Credential (Data Model 2.0); the only format so far.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            envvar="DOCCHAIN_OUTPUT",
            metavar="FILE",
            help="Where to write it [default: the receipt's name with .vc.json for .docchain.json].",
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Write a receipt as a W3C Verifiable Credential.

    Issued by the signer's account (did:pkh), valid from the block time, about the document's
    SHA-256; its proof is the signer's EIP-712 signature and points at the on-chain evidence,
    and the evidence bundle travels inside it (docs/protocol.md section 8). A private receipt's
    credential carries its file hash and salt, as the receipt does: a warning says so.

    `docchain verify FILE --receipt CREDENTIAL --offline` verifies the credential as it does
    the receipt; `docchain receipt import` turns it back into the receipt.
    """
    from docchain.chain.vc import credential_of

    c: CliContext = ctx.obj
    if not vc:
        raise UsageError("say the format: --vc (a W3C Verifiable Credential)")
    receipt = read_receipt(path)
    target = output or _beside(path, ".vc.json")
    _write(target, credential_of(receipt).dumps(), force)
    c.out.emit({"receipt": str(path), "credential": str(target), "evidence": receipt.evidence is not None})
    bundle = "" if receipt.evidence is not None else " (no evidence bundle: `docchain receipt upgrade` adds one)"
    c.out.say(f"credential of {path} written to {target}{bundle}")
    if receipt.private is not None:
        # the credential is made to be handed to wallets and verifiers: unlike the chain, it opens the commitment
        c.out.warn(
            f"{target} carries the file's SHA-256 and the salt of a private registration: whoever holds it can find "
            "the record on chain and check a guess of the file; share it only where the document may be shown"
        )


@command(
    group,
    "import",
    examples_=["docchain receipt import credential.json -o contract.pdf.docchain.json"],
)
def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="CREDENTIAL", help="A credential `receipt export --vc` wrote.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", envvar="DOCCHAIN_OUTPUT", metavar="FILE", help="Where to write the receipt."),
    ],
    force: ForceOpt = False,
) -> None:
    """Turn a credential back into its receipt.

    For a credential of `docchain receipt export --vc`, once every claim of the credential is the
    one its evidence bundle makes."""
    from docchain.chain.files import read_bounded
    from docchain.chain.vc import MAX_CREDENTIAL_BYTES, parse_credential

    c: CliContext = ctx.obj
    credential = parse_credential(read_bounded(path, MAX_CREDENTIAL_BYTES, "credential"))
    _write(output, credential.receipt.dumps(), force)
    c.out.emit({"credential": str(path), "receipt": str(output)})
    c.out.say(f"receipt of {path} written to {output}")


def _openings(document: Path | None, target: Path) -> str:
    """Where the opening of a private submission of ``document`` is looked for, as the one line names them."""
    if document is None:
        return "its salt file or its receipt, which docchain receipt FILE finds beside the file"
    return f"its salt file {receipts.salt_path(document)} or its receipt {target}, and neither is there"


def _beside(path: Path, suffix: str) -> Path:
    name = path.name.removesuffix(".docchain.json").removesuffix(".json")
    return path.with_name(name + suffix)


def _write(path: Path, text: str, force: bool) -> None:
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to replace it")
    path.write_text(text)


async def _capture(url: str, timeout: float, receipt: Receipt) -> Evidence:
    """The evidence of ``receipt``'s record at the head of the node at ``url``, once it serves the same chain."""
    from docchain.chain.capture import EvidenceUnavailable, capture_evidence
    from docchain.chain.offline import proven_slots
    from docchain.chain.rpc import JsonRpc

    async with JsonRpc(url, timeout=timeout) as rpc:
        chain_id = int(await rpc.call("eth_chainId", []), 16)
        if chain_id != receipt.domain.chain_id:
            raise UsageError(
                f"the node at {url} serves chain {chain_id}, the receipt is for chain {receipt.domain.chain_id}"
            )
        try:
            [evidence] = await capture_evidence(rpc, receipt.domain.verifying_contract, [proven_slots(receipt)])
        except EvidenceUnavailable as exc:
            raise CliError(f"the node at {url}: {exc}", ExitCode.UNAVAILABLE) from exc
        return evidence
