"""``docchain certificate``: a completed envelope's certificate of completion as a PDF, every line read from the
chain (chain/certificate.py), with a QR code of the web page's view of the document; and the reading back of a
certificate's text for ``docchain verify --certificate``.

fpdf2 draws the PDF and segno the QR code (both pure Python), pypdf reads a certificate's text back; each is
imported by the function that uses it, so they cost nothing at the CLI's start.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from docchain.chain.errors import InvalidInput
from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents
from docchain.client.config import normalise_url
from docchain.client.context import CliContext
from docchain.client.errors import UsageError, VerificationFailed
from docchain.client.options import ForceOpt, command, new_app

if TYPE_CHECKING:
    from docchain.chain.certificate import Certificate
    from docchain.chain.rpc import ChainReader

app = new_app("Certificates of completion.")

# The QR code's modules in the PNG drawn into the PDF, and the quiet zone around them the QR standard asks for.
QR_SCALE = 8
QR_BORDER = 4
QR_ERROR = "m"  # 15% of the code may be smudged or folded and it still reads
QR_SIZE_MM = 42.0
FONT_SIZE = 9.0
LINE_MM = 5.2


def render(lines: Sequence[str], verify_url: str) -> bytes:
    """A certificate's ``lines`` (:meth:`Certificate.text_lines`: the title, the note, then the claims) as an
    A4 PDF, each drawn as one line of text so that a text extractor gives it back as printed, with the
    QR code of ``verify_url`` at the top right."""
    import segno
    from fpdf import FPDF

    title, note, *claims = lines
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("docchain")
    pdf.set_auto_page_break(auto=True, margin=15)  # 16 signers' lines run onto a second page
    pdf.add_page()
    png = io.BytesIO()
    segno.make(verify_url, error=QR_ERROR).save(png, kind="png", scale=QR_SCALE, border=QR_BORDER)
    png.seek(0)
    pdf.image(png, x=pdf.w - pdf.r_margin - QR_SIZE_MM, y=pdf.t_margin, w=QR_SIZE_MM, h=QR_SIZE_MM)
    pdf.set_font("Helvetica", style="B", size=16)
    pdf.cell(text=title, new_x="LMARGIN", new_y="NEXT", h=9)
    pdf.set_font("Helvetica", size=7)
    pdf.cell(text=note, new_x="LMARGIN", new_y="NEXT", h=LINE_MM)
    pdf.set_y(pdf.t_margin + QR_SIZE_MM + 4)
    pdf.set_font("Helvetica", size=FONT_SIZE)
    for claim in claims:
        pdf.cell(text=claim, new_x="LMARGIN", new_y="NEXT", h=LINE_MM)
    return bytes(pdf.output())


def read_text(path: Path) -> str:
    """The text of every page of the PDF at ``path``; a file that is no PDF is bad input (exit 2)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        return "\n".join(page.extract_text() for page in reader.pages)
    except (PyPdfError, ValueError) as exc:
        raise UsageError(f"{path} is not a readable PDF: {exc}") from None


def _from_block(c: CliContext, chain_id: int, envelopes: str) -> int:
    """Where the envelopes' logs can start: their recorded deployment block when it is the recorded contract."""
    from docchain.chain import deploy

    recorded = deploy.read_all(c.data_path).get(chain_id)
    known = None if recorded is None else recorded.envelopes
    return known.block_number if known is not None and known.address == envelopes else 0


async def _completed_envelope(chain: ChainReader, envelopes: str, doc_hash: bytes, from_block: int) -> bytes:
    """The document's latest completed envelope: one that is open, declined or voided certifies nothing."""
    from docchain.chain import envelopes as env
    from docchain.chain.envelopes_contract import EnvelopesReader

    head = await chain.head()
    logs = await chain.logs(envelopes, [env.CREATED_TOPIC, None, doc_hash], from_block, head.number)
    created = [e for e in map(env.decode_log, logs) if isinstance(e, env.EnvelopeCreated)]
    reader = EnvelopesReader(chain.transport, envelopes, await chain.chain_id())
    states = [(e.envelope_id, await reader.state(e.envelope_id)) for e in created]
    complete = [i for i, s in states if s.status == env.Status.COMPLETED]
    if not complete:
        said = ", ".join(f"{to_hex(i)} {s.status.name.lower()}" for i, s in states) or "none"
        raise VerificationFailed(f"document {to_hex(doc_hash)} has no completed envelope (its envelopes: {said})")
    return complete[-1]


async def _gather(
    c: CliContext, doc_hash: bytes, wanted: bytes | None, address: str | None, name: str, page: str
) -> Certificate:
    from docchain.chain import deploy
    from docchain.chain.certificate import gather
    from docchain.chain.rpc import ChainReader, JsonRpc

    async with JsonRpc(c.rpc_url(), timeout=c.timeout_s()) as rpc:
        chain = ChainReader(rpc)
        chain_id = await chain.chain_id()
        envelopes = address or deploy.lookup_envelopes(c.data_path, chain_id).address
        from_block = _from_block(c, chain_id, envelopes)
        envelope = wanted or await _completed_envelope(chain, envelopes, doc_hash, from_block)
        certificate = await gather(rpc, envelopes, envelope, document_name=name, page=page, from_block=from_block)
    if certificate.doc_hash != doc_hash:
        raise UsageError(
            f"envelope {to_hex(envelope)} is of document {to_hex(certificate.doc_hash)}, not {to_hex(doc_hash)}"
        )
    return certificate


@command(
    app,
    "certificate",
    globals_used=("api", "rpc", "data_dir", "timeout"),
    examples_=[
        "docchain certificate deal.pdf -o deal.certificate.pdf",
        "docchain certificate deal.pdf --id 0x4f… -o certificate.pdf --page https://docchain.example",
        "docchain verify --certificate deal.certificate.pdf --rpc https://node.example",
    ],
)
def certificate(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="FILE|HASH", help="The document, or its 0x SHA-256.")],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", envvar="DOCCHAIN_OUTPUT", metavar="PDF", help="Where to write the certificate (a PDF)."
        ),
    ],
    envelope_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            envvar="DOCCHAIN_ENVELOPE_ID",
            metavar="ID",
            help="The envelope's 0x id [default: the document's latest completed envelope].",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            envvar="DOCCHAIN_DOCUMENT_NAME",
            metavar="TEXT",
            help="The document's name on the certificate, marked as yours [default: FILE's name].",
        ),
    ] = None,
    page: Annotated[
        str | None,
        typer.Option(
            "--page",
            envvar="DOCCHAIN_PAGE",
            metavar="URL",
            help="The web page the QR code opens [default: the API's address, which serves it].",
        ),
    ] = None,
    envelopes: Annotated[
        str | None,
        typer.Option(
            "--envelopes",
            envvar="DOCCHAIN_ENVELOPES",
            metavar="ADDRESS",
            help="Envelopes contract [default: the one recorded beside the registry in the data dir for the chain].",
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Write the certificate of completion of FILE's completed envelope: the document's hash, the
    envelope's creation and completion, every signer with the time, block and transaction of their
    registration, the chain, registry and envelopes contract, and a QR code of the web page's view of
    the document. Every line is read from the node (--rpc), so `docchain verify --certificate` can check
    each one; only the name (--name) and the page's address are yours.

    An envelope that is open, declined or voided has no certificate (exit 1): it certifies no completion.
    """
    from docchain.chain.certificate import check_name

    c: CliContext = ctx.obj
    doc_hash, path = documents.hash_or_file(target)
    wanted = None if envelope_id is None else parse_hash32(envelope_id, "--id")
    address = None if envelopes is None else parse_address(envelopes, "--envelopes")
    try:
        shown_name = check_name(name if name is not None else (path.name if path else to_hex(doc_hash)))
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    base = normalise_url(page, "--page") if page else c.api_url()
    if output.exists() and not force:
        raise UsageError(f"{output} exists: pass --force to overwrite it")
    made = asyncio.run(_gather(c, doc_hash, wanted, address, shown_name, base))
    output.write_bytes(render(made.text_lines(), made.verify_url))
    c.out.emit(
        {
            "certificate": str(output),
            "envelopeId": to_hex(made.envelope_id),
            "docHash": to_hex(made.doc_hash),
            "verifyUrl": made.verify_url,
            "lines": list(made.text_lines()),
        }
    )
    for line in made.text_lines():
        c.out.say(escape(line))  # the name is the user's text, never rich markup
    c.out.say(f"wrote {output}")


def verify_certificate(c: CliContext, pdf: Path, target: str | None) -> None:
    """``docchain verify --certificate PDF [FILE|HASH]``: read the certificate's text back and check every line
    against the node (--rpc); with a document, its hash must be the certificate's too. Exit 1 names the first
    line the chain does not bear out."""
    from docchain.chain import certificate as cert
    from docchain.chain.rpc import ChainReader, JsonRpc

    if not pdf.is_file():
        raise UsageError(f"no such certificate: {pdf}")
    doc_hash = None if target is None else documents.hash_or_file(target)[0]
    printed = cert.printed(read_text(pdf))

    async def check() -> cert.Certificate:
        async with JsonRpc(c.rpc_url(), timeout=c.timeout_s()) as rpc:
            chain_id = await ChainReader(rpc).chain_id()
            return await cert.verify(rpc, printed, _from_block(c, chain_id, printed.envelopes))

    checked = asyncio.run(check())
    if doc_hash is not None and doc_hash != checked.doc_hash:
        raise VerificationFailed(
            f"the document's hash {to_hex(doc_hash)} is not the certificate's {to_hex(checked.doc_hash)}"
        )
    c.out.emit(
        {
            "outcome": "valid",
            "certificate": str(pdf),
            "linesChecked": len(printed.lines),
            "chainId": checked.chain_id,
            "envelopeId": to_hex(checked.envelope_id),
            "docHash": to_hex(checked.doc_hash),
            "issuers": {"documentName": checked.document_name, "page": checked.page},
        }
    )
    c.out.say(
        f"[bold green]VALID[/]: all {len(printed.lines)} lines of {escape(str(pdf))} hold on chain "
        f"{checked.chain_id} ({escape(c.rpc_url())})"
    )
    c.out.say(
        f"not on chain, the issuer's: the document's name {escape(repr(checked.document_name))} and the page's "
        f"address {escape(checked.page)}"
    )
