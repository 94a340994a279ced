"""``docchain status``, ``list`` and ``get``: what the API knows about documents and signers."""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents
from docchain.client.context import CliContext
from docchain.client.errors import UsageError, VerificationFailed
from docchain.client.options import ForceOpt, command, new_app
from docchain.client.output import when_short

app = new_app("Query documents.")
QUERY_GLOBALS = ("api", "timeout", "retries")

SIGNER_COLUMNS = ["signer", "state", "block", "time (UTC)", "conf.", "revoked"]


def signer_rows(signers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A document's signers as table rows (transaction hashes are in --json and `inspect`)."""
    return [
        (
            s.get("signer"),
            s.get("state"),
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
    globals_used=QUERY_GLOBALS,
    examples_=["docchain status contract.pdf", "docchain status 0x3a7b…e1 --json"],
)
def status(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="HASH|FILE", help="A 0x SHA-256 or a file to hash.")],
) -> None:
    """Show a document's signers and their states (pending → submitted → anchored → confirmed)."""
    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    with c.api_client() as client:
        doc = client.document(to_hex(doc_hash))
    c.out.emit(doc)
    c.out.say(f"document {doc.get('docHash')}")
    stored = "stored: yes (docchain get)" if doc.get("stored") else "stored: no"
    c.out.table(stored, SIGNER_COLUMNS, signer_rows(doc.get("signers", [])))


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
            item.get("blockNumber"),
            when_short(item.get("timestamp")),
        )
        for item in page.get("items", [])
    ]
    c.out.table(None, ["sha256", "signer", "state", "block", "time (UTC)"], rows)
    if page.get("nextCursor"):
        c.out.say(f"more: --cursor {page['nextCursor']}")


@command(
    app,
    "get",
    globals_used=QUERY_GLOBALS,
    examples_=["docchain get 0x3a7b…e1 -o contract.pdf"],
)
def get(
    ctx: typer.Context,
    doc: Annotated[str, typer.Argument(metavar="HASH", help="The document's 0x SHA-256.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", envvar="DOCCHAIN_OUTPUT", metavar="FILE", help="Where to write it."),
    ],
    force: ForceOpt = False,
) -> None:
    """Download a stored document and check that its SHA-256 is the one asked for."""
    c: CliContext = ctx.obj
    doc_hash = parse_hash32(doc, "document hash")
    if output.exists() and not force:
        raise UsageError(f"{output} already exists; pass --force to replace it")
    digest, size = hashlib.sha256(), 0
    directory = output.resolve().parent
    if not directory.is_dir():
        raise UsageError(f"no such directory: {directory}")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{output.name}.")
    try:
        with (
            c.api_client() as client,
            os.fdopen(fd, "wb") as out,
            client.download(to_hex(doc_hash)) as resp,
        ):
            for chunk in resp.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if digest.digest() != doc_hash:
            raise VerificationFailed(
                f"the downloaded bytes hash to {to_hex(digest.digest())}, not {to_hex(doc_hash)}; nothing written"
            )
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    c.out.emit({"docHash": to_hex(doc_hash), "path": str(output), "size": size})
    c.out.say(f"wrote {output} ({size} bytes, SHA-256 checked)")
