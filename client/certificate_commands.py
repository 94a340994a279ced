"""``docchain certificate``: a completed envelope's certificate of completion as a PDF, every line read from the
chain (chain/certificate.py), with a QR code of the web page's view of the document; and the reading back of a
certificate's text for ``docchain verify --certificate``.

chain/certificate_pdf.py draws the PDF (the API's certificates are the same drawing), pypdf reads a certificate's
text back; each PDF library is imported by the function that uses it, so they cost nothing at the CLI's start.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from docchain.chain.certificate_pdf import qr_holds, render
from docchain.chain.errors import InvalidInput
from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents
from docchain.client.config import normalise_url
from docchain.client.context import CliContext
from docchain.client.errors import UsageError, VerificationFailed
from docchain.client.options import ForceOpt, command, new_app

# a certificate docchain draws is tens of kilobytes (16 signers and a QR code); a file beyond this is not one
MAX_CERTIFICATE_BYTES = 8 * 1024 * 1024

if TYPE_CHECKING:
    from PIL.Image import Image

    from docchain.chain.certificate import Certificate, Trusted

app = new_app("Certificates of completion.")


@dataclass(frozen=True)
class ReadBack:
    """What a certificate's PDF holds: the text of every page, and the images of its first (the QR code)."""

    text: str
    images: tuple[Image, ...]


def read_back(path: Path) -> ReadBack:
    """The text and first page's images of the PDF at ``path``; a file that is no PDF is bad input (exit 2)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    from docchain.chain.files import read_bounded

    # pypdf's modules log what they repair or give up on as warnings (to stderr, with no handler set): the
    # one-line error below says it for the user. Its modules' loggers inherit the package logger's level.
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        reader = PdfReader(io.BytesIO(read_bounded(path, MAX_CERTIFICATE_BYTES, "certificate")))
        text = "\n".join(page.extract_text() for page in reader.pages)
        images = tuple(i.image for i in reader.pages[0].images if i.image is not None) if reader.pages else ()
        return ReadBack(text, images)
    except (PyPdfError, ValueError, OSError) as exc:
        raise UsageError(f"{path} is not a readable PDF: {exc}") from None
    finally:
        logger.setLevel(level)


def read_text(path: Path) -> str:
    """The text of every page of the PDF at ``path``."""
    return read_back(path).text


def _from_block(c: CliContext, chain_id: int, envelopes: str) -> int:
    """Where the envelopes' logs can start: their recorded deployment block when it is the recorded contract."""
    from docchain.chain import deploy

    recorded = deploy.read_all(c.data_path).get(chain_id)
    known = None if recorded is None else recorded.envelopes
    return known.block_number if known is not None and known.address == envelopes else 0


def trusted(c: CliContext, chain_id: int, registry: str | None, source: str) -> Trusted | None:
    """The deployment this user trusts on ``chain_id``, pinned as receipt verification pins it
    (client/verifying.py): ``registry`` when given, else the deployments recorded in the config directory, else
    those shipped with docchain; the envelopes contract recorded beside a pinned registry is pinned with it."""
    from docchain.chain import deploy
    from docchain.chain.certificate import Trusted
    from docchain.chain.trust import shipped_deployments
    from docchain.client.verifying import resolve_pin

    pin = resolve_pin(chain_id, registry, source, c.trusted_deployments)
    if pin is None:
        return None
    recorded = (deploy.read_file(c.trusted_deployments).get(chain_id), shipped_deployments().get(chain_id))
    beside = next((d.envelopes for d in recorded if d is not None and d.address == pin.address), None)
    envelopes = None if pin.chain_id is None or beside is None else beside.address
    return Trusted(pin.address, envelopes, pin.source, pin.chain_id)


async def _gather(
    c: CliContext,
    doc_hash: bytes,
    wanted: bytes | None,
    requester: str | None,
    address: str | None,
    name: str,
    page: str,
) -> Certificate:
    from docchain.chain import deploy
    from docchain.chain.certificate import AmbiguousEnvelope, CertificateError, choose, completed_envelopes, gather
    from docchain.chain.rpc import ChainReader, JsonRpc

    async with JsonRpc(c.rpc_url(), timeout=c.timeout_s()) as rpc:
        chain = ChainReader(rpc)
        chain_id = await chain.chain_id()
        envelopes = address or deploy.lookup_envelopes(c.data_path, chain_id).address
        from_block = _from_block(c, chain_id, envelopes)
        try:
            envelope = wanted or choose(
                doc_hash, await completed_envelopes(chain, envelopes, doc_hash, from_block), requester
            )
        except AmbiguousEnvelope as exc:
            raise UsageError(f"{exc.detail}: choose one with --id or --requester") from None
        except CertificateError as exc:
            raise VerificationFailed(exc.detail) from None
        certificate = await gather(
            rpc,
            envelopes,
            envelope,
            document_name=name,
            page=page,
            from_block=from_block,
            trusted=trusted(c, chain_id, None, ""),
        )
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
            help="The envelope's 0x id [default: the document's one completed envelope (of --requester)].",
        ),
    ] = None,
    requester: Annotated[
        str | None,
        typer.Option(
            "--requester",
            envvar="DOCCHAIN_REQUESTER",
            metavar="ADDRESS",
            help="Certify the document's completed envelope requested by ADDRESS (when it has several).",
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
    A document with several completed envelopes needs --id or --requester (exit 2 names them): anyone may
    request an envelope of any document, so which one to certify is yours to say.
    """
    from docchain.chain.certificate import check_name

    c: CliContext = ctx.obj
    doc_hash, path = documents.hash_or_file(target)
    wanted = None if envelope_id is None else parse_hash32(envelope_id, "--id")
    asked = None if requester is None else parse_address(requester, "--requester")
    if wanted is not None and asked is not None:
        raise UsageError("--id names one envelope, --requester chooses among the document's: give one")
    address = None if envelopes is None else parse_address(envelopes, "--envelopes")
    try:
        shown_name = check_name(name if name is not None else (path.name if path else to_hex(doc_hash)))
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    base = normalise_url(page, "--page") if page else c.api_url()
    if output.exists() and not force:
        raise UsageError(f"{output} exists: pass --force to overwrite it")
    made = asyncio.run(_gather(c, doc_hash, wanted, asked, address, shown_name, base))
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


def verify_certificate(c: CliContext, pdf: Path, target: str | None, registry: str | None, source: str) -> None:
    """``docchain verify --certificate PDF [FILE|HASH]``: read the certificate's text back and check every line
    against the node (--rpc), its registry and envelopes contract the ones pinned as for a receipt (``registry``,
    given as ``source``, else the recorded deployments); with a document, its hash must be the certificate's too.
    Exit 1 names the first line the chain does not bear out."""
    from docchain.chain import certificate as cert
    from docchain.chain.rpc import ChainReader, JsonRpc

    if not pdf.is_file():
        raise UsageError(f"no such certificate: {pdf}")
    doc_hash = None if target is None else documents.hash_or_file(target)[0]
    read = read_back(pdf)
    printed = cert.printed(read.text)

    async def check() -> cert.Certificate:
        async with JsonRpc(c.rpc_url(), timeout=c.timeout_s()) as rpc:
            chain_id = await ChainReader(rpc).chain_id()
            pinned = trusted(c, chain_id, registry, source)
            return await cert.verify(rpc, printed, _from_block(c, chain_id, printed.envelopes), pinned)

    checked = asyncio.run(check())
    # the code a reader scans: it must open the page the checked lines name, not another
    if not any(qr_holds(image, checked.verify_url) for image in read.images):
        raise VerificationFailed(
            f"the certificate's QR code does not hold {checked.verify_url}, its page line's address"
        )
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
