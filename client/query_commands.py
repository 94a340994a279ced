"""``docchain status`` and ``list``: what the API knows about documents and signers (``get``: get_commands.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from docchain.chain.values import parse_address, to_hex
from docchain.client import documents
from docchain.client.context import CliContext
from docchain.client.errors import UsageError
from docchain.client.options import command, new_app
from docchain.client.output import anchoring_text, when_short

app = new_app("Query documents.")
QUERY_GLOBALS = ("api", "timeout", "retries")

SIGNER_COLUMNS = ["signer", "state", "anchoring", "block", "time (UTC)", "conf.", "revoked"]


def signer_rows(signers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A document's signers as table rows (transaction hashes are in --json and `inspect`)."""
    return [
        (
            s.get("signer"),
            s.get("state"),
            anchoring_text(s.get("anchoring"), s.get("merkleRoot")),
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
    """Show a document's signers and their states (pending → submitted → anchored → confirmed).

    When the document was uploaded (submit --store), its copies follow, one per storage backend: stored (and
    where: file name, S3 key or IPFS CID), pending with the last attempt's error, or failed with the reason.
    """
    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    with c.api_client() as client:
        doc = client.document(to_hex(doc_hash))
    c.out.emit(doc)
    c.out.say(f"document {doc.get('docHash')}")
    stored = "stored: yes (docchain get)" if doc.get("stored") else "stored: no"
    c.out.table(stored, SIGNER_COLUMNS, signer_rows(doc.get("signers", [])))
    copies = doc.get("storage", [])
    if copies:
        c.out.table("copies", COPY_COLUMNS, copy_rows(copies))


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
            anchoring_text(item.get("anchoring"), item.get("merkleRoot")),
            item.get("blockNumber"),
            when_short(item.get("timestamp")),
        )
        for item in page.get("items", [])
    ]
    c.out.table(None, ["sha256", "signer", "state", "anchoring", "block", "time (UTC)"], rows)
    if page.get("nextCursor"):
        c.out.say(f"more: --cursor {page['nextCursor']}")
