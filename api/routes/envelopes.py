"""Envelope routes: a multi-party signing envelope created, signed, declined and voided through the relayer
(gasless for everyone), and read back. Adapters from HTTP to :class:`~docchain.api.service.EnvelopeService`;
the rules are the service's and the contract's, the sending the anchoring worker's (docs/protocol.md,
"Envelopes over REST")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from docchain.api.deps import DocumentsDep, EnvelopesDep, RelayedWriteDep, SettingsDep
from docchain.api.openapi import BODY, CHAIN, RELAYED_WHY, problems_for
from docchain.api.routes.documents import SignedDep, accepted_out
from docchain.api.schemas import (
    EnvelopeActionOut,
    EnvelopeClosingOut,
    EnvelopeCreateIn,
    EnvelopeDeclineIn,
    EnvelopeDomainOut,
    EnvelopeLinksOut,
    EnvelopeOut,
    EnvelopeSignerOut,
    EnvelopeStepOut,
    EnvelopeVoidIn,
    SubmissionAccepted,
)
from docchain.api.service import EnvelopeClosing, EnvelopeService, EnvelopeStep, EnvelopeView
from docchain.chain.envelopes import Decline, EnvelopeRequest, Void
from docchain.chain.errors import InvalidInput
from docchain.chain.values import parse_address, parse_hash32, parse_signature, to_hex

router = APIRouter(prefix="/v1", tags=["envelopes"])
# an envelope's signature is a submission's JSON body (no file is stored through an envelope)
SIGN_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmissionIn"}}},
    }
}

RULES_WHY = (
    "refused by a rule of the envelope before anything is sent (the rule's name is the problem's title and its "
    "`rule`: OutOfOrder, ExpiredEnvelope, DeclinedEnvelope, VoidedEnvelope, CompletedEnvelope, AlreadySigned)"
)
WHY = {
    404: "no envelope has this id (on chain or accepted here)",
    409: RULES_WHY,
    422: "invalid input, or a rule about the request itself (NotASigner, WrongDocument, InvalidEnvelopeSignature, "
    "ExpiredSignature)",
    **RELAYED_WHY,
}
WRITE_PROBLEMS = problems_for(401, 404, 409, 429, *BODY, *CHAIN, why=WHY)


def _id(value: str) -> str:
    return to_hex(parse_hash32(value, "envelope id"))


def _step(step: EnvelopeStep | None) -> EnvelopeStepOut | None:
    if step is None:
        return None
    return EnvelopeStepOut(blockNumber=step.block_number, transactionHash=step.tx_hash, timestamp=step.timestamp)


def _closing(closing: EnvelopeClosing | None) -> EnvelopeClosingOut | None:
    if closing is None:
        return None
    step = closing.step
    return EnvelopeClosingOut(
        blockNumber=step.block_number,
        transactionHash=step.tx_hash,
        timestamp=step.timestamp,
        by=closing.by,
        reasonHash=closing.reason_hash,
        reason=closing.reason,
    )


def envelope_out(view: EnvelopeView, page: str) -> EnvelopeOut:
    return EnvelopeOut(
        id=view.id,
        docHash=view.doc_hash,
        requester=view.requester,
        status=view.status,
        ordered=view.ordered,
        deadline=view.deadline,
        signers=[
            EnvelopeSignerOut(
                address=s.address,
                state=s.state,
                signedAt=s.signed_at,
                blockNumber=s.block_number,
                transactionHash=s.tx_hash,
                submission=s.submission,
            )
            for s in view.signers
        ],
        next=view.next,
        declinedBy=view.declined_by,
        created=_step(view.created),
        completed=_step(view.completed),
        declined=_closing(view.declined),
        voided=_closing(view.voided),
        actions=[EnvelopeActionOut(kind=a.kind, state=a.state, signer=a.signer, error=a.error) for a in view.actions],
        chainId=view.chain_id,
        envelopes=view.envelopes,
        links=EnvelopeLinksOut(page=f"{page}/#/envelope/{view.id}"),
    )


def _page(request: Request, settings: SettingsDep) -> str:
    """The web page's address as people reach it: DOCCHAIN_PUBLIC_URL, else the address the request came to."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


PageDep = Annotated[str, Depends(_page)]


async def _answer(envelopes: EnvelopeService, eid: str, page: str, created: bool) -> JSONResponse:
    body = envelope_out(await envelopes.view(eid), page)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202 if created else 200,
        headers={"Location": f"/v1/envelopes/{eid}"},
    )


@router.get(
    "/envelopes/domain",
    response_model=EnvelopeDomainOut,
    responses=problems_for(*CHAIN),
    summary="The EIP-712 domain requests, declines and voids are signed under",
)
async def envelope_domain(envelopes: EnvelopesDep) -> EnvelopeDomainOut:
    domain = (await envelopes.reader()).domain
    return EnvelopeDomainOut(
        name=domain.name, version=domain.version, chainId=domain.chain_id, verifyingContract=domain.verifying_contract
    )


@router.post(
    "/envelopes",
    status_code=202,
    response_model=EnvelopeOut,
    responses={200: {"model": EnvelopeOut, "description": "the same request again: the envelope"}, **WRITE_PROBLEMS},
    summary="Create an envelope from the requester's signed EnvelopeRequest (relayed: gasless)",
)
async def create_envelope(
    admission: RelayedWriteDep, body: EnvelopeCreateIn, envelopes: EnvelopesDep, page: PageDep
) -> JSONResponse:
    r = body.request
    request = EnvelopeRequest(
        doc_hash=parse_hash32(r.docHash, "request.docHash"),
        requester=parse_address(r.requester, "request.requester"),
        signers=tuple(parse_address(s, f"request.signers[{i}]") for i, s in enumerate(r.signers)),
        ordered=r.ordered,
        deadline=r.deadline,
        salt=parse_hash32(r.salt, "request.salt"),
        request_deadline=_uint(r.requestDeadline, "request.requestDeadline"),
    )
    eid, created = await envelopes.create(request, parse_signature(body.signature), admission)
    return await _answer(envelopes, eid, page, created)


@router.post(
    "/envelopes/{envelope_id}/sign",
    status_code=202,
    response_model=SubmissionAccepted,
    openapi_extra=SIGN_BODY,
    responses={
        200: {"model": SubmissionAccepted, "description": "already submitted: the existing submission"},
        **WRITE_PROBLEMS,
    },
    summary="Sign an envelope: the signer's Registration of its document (as POST /v1/documents), relayed",
)
async def sign_envelope(
    envelope_id: str,
    admission: RelayedWriteDep,
    submission: SignedDep,
    envelopes: EnvelopesDep,
    documents: DocumentsDep,
) -> Response:
    signed, upload = submission
    if upload is not None:
        await upload.close()
        raise InvalidInput("an envelope's signature is sent as JSON, without the file")
    acceptance = await envelopes.sign(_id(envelope_id), signed, admission)
    return Response(
        accepted_out(acceptance, documents.replicas).model_dump_json(),
        status_code=202 if acceptance.created else 200,
        media_type="application/json",
        headers={"Location": f"/v1/submissions/{acceptance.submission.id}"},
    )


@router.post(
    "/envelopes/{envelope_id}/decline",
    status_code=202,
    response_model=EnvelopeOut,
    responses={200: {"model": EnvelopeOut, "description": "already received"}, **WRITE_PROBLEMS},
    summary="Decline an envelope with the signer's signed Decline (relayed)",
)
async def decline_envelope(
    envelope_id: str, admission: RelayedWriteDep, body: EnvelopeDeclineIn, envelopes: EnvelopesDep, page: PageDep
) -> JSONResponse:
    eid = _id(envelope_id)
    d = body.decline
    decline = Decline(
        envelope_id=parse_hash32(d.envelopeId, "decline.envelopeId"),
        signer=parse_address(d.signer, "decline.signer"),
        deadline=_uint(d.deadline, "decline.deadline"),
        reason_hash=parse_hash32(d.reasonHash, "decline.reasonHash"),
    )
    created = await envelopes.decline(eid, decline, parse_signature(body.signature), body.reason, admission)
    return await _answer(envelopes, eid, page, created)


@router.post(
    "/envelopes/{envelope_id}/void",
    status_code=202,
    response_model=EnvelopeOut,
    responses={200: {"model": EnvelopeOut, "description": "already received"}, **WRITE_PROBLEMS},
    summary="Void an envelope with the requester's signed Void (relayed)",
)
async def void_envelope(
    envelope_id: str, admission: RelayedWriteDep, body: EnvelopeVoidIn, envelopes: EnvelopesDep, page: PageDep
) -> JSONResponse:
    eid = _id(envelope_id)
    v = body.void
    void = Void(
        envelope_id=parse_hash32(v.envelopeId, "void.envelopeId"),
        deadline=_uint(v.deadline, "void.deadline"),
        reason_hash=parse_hash32(v.reasonHash, "void.reasonHash"),
    )
    created = await envelopes.void(eid, void, parse_signature(body.signature), body.reason, admission)
    return await _answer(envelopes, eid, page, created)


@router.get(
    "/envelopes/{envelope_id}",
    response_model=EnvelopeOut,
    responses=problems_for(404, 422, *CHAIN, why=WHY),
    summary="An envelope: who signed (block, transaction), who is next, who is pending, and actions not on chain",
)
async def get_envelope(envelope_id: str, envelopes: EnvelopesDep, page: PageDep) -> EnvelopeOut:
    return envelope_out(await envelopes.view(_id(envelope_id)), page)


def _uint(value: int | str, what: str) -> int:
    """A uint256 given as a JSON number or a decimal string."""
    try:
        number = int(value) if isinstance(value, int) or value.isdigit() else -1
    except ValueError:
        number = -1
    if not 0 <= number < 2**256:
        raise InvalidInput(f"{what} must be an unsigned 256-bit integer")
    return number
