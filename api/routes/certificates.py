"""Certificates of completion as PDFs (api/certificates.py): of an envelope, or of a document's completed envelope.
Their QR code opens this service's own web page, at the address the request came to."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from docchain.api.certificates import Certificates
from docchain.api.inputs import attachment
from docchain.api.openapi import problems_for
from docchain.chain.values import parse_hash32, to_hex

router = APIRouter(prefix="/v1", tags=["envelopes"])

PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "the certificate (docs/protocol.md)"}
}
WHY = {
    404: "no such envelope",
    409: "the envelope is not complete (`state`: open, expired, declined or voided): it certifies nothing",
    503: "the node is unavailable, or no envelopes contract is recorded beside the registry",
}
PDF_RESPONSES = {**PDF, **problems_for(404, 409, 422, 503, why=WHY)}
DOCUMENT_PDF_RESPONSES = {
    **PDF,
    **problems_for(
        404,
        409,
        422,
        503,
        why={
            **WHY,
            404: "the document has no completed envelope",
            409: "the document has several completed envelopes (`envelopes` lists their ids): ask for one by its id",
        },
    ),
}


async def _certificates(request: Request) -> Certificates:
    return request.app.state.certificates  # type: ignore[no-any-return]


CertificatesDep = Annotated[Certificates, Depends(_certificates)]


def _pdf(pdf: bytes, name: str) -> Response:
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": attachment(name)})


def _page(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(
    "/envelopes/{envelope_id}/certificate.pdf",
    response_class=Response,
    responses=PDF_RESPONSES,
    summary="The certificate of completion of an envelope: a PDF whose every line is read from the chain",
)
async def envelope_certificate(envelope_id: str, request: Request, certificates: CertificatesDep) -> Response:
    """Checked line by line with `docchain verify --certificate FILE --rpc URL`."""
    wanted = parse_hash32(envelope_id, "envelope id")
    pdf = await certificates.of_envelope(wanted, _page(request))
    return _pdf(pdf, f"certificate-{to_hex(wanted)[2:14]}.pdf")


@router.get(
    "/documents/{doc_hash}/certificate.pdf",
    response_class=Response,
    responses=DOCUMENT_PDF_RESPONSES,
    summary="The certificate of completion of a document's one completed envelope",
)
async def document_certificate(doc_hash: str, request: Request, certificates: CertificatesDep) -> Response:
    doc = parse_hash32(doc_hash, "docHash")
    pdf = await certificates.of_document(doc, _page(request))
    return _pdf(pdf, f"certificate-{to_hex(doc)[2:14]}.pdf")
