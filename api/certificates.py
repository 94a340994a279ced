"""Certificates of completion served by the API: chain/certificate.py's certificate of an envelope, read through
the service's node connection and drawn by chain/certificate_pdf.py, the same PDF ``docchain certificate`` writes,
so ``docchain verify --certificate`` checks it against any node.

A certificate is kept per envelope (and web page address) once its completion is as deep as the service's
confirmations, when no reorganisation is expected to undo it; a revocation of one of its signers, which adds a
line, is noticed by the index and draws it anew.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from docchain.api.chainctx import ChainContext
from docchain.api.problems import Problem, not_found, unavailable
from docchain.api.store import Store
from docchain.chain.certificate import (
    ENVELOPE_ID,
    AmbiguousEnvelope,
    Certificate,
    CertificateError,
    Trusted,
    check_name,
    choose,
    completed_envelopes,
    gather,
)
from docchain.chain.certificate_pdf import render
from docchain.chain.envelopes import Status
from docchain.chain.envelopes_contract import EnvelopesReader
from docchain.chain.errors import InvalidInput
from docchain.chain.rpc import ChainReader
from docchain.chain.values import to_hex

CACHE_SIZE = 256  # certificates kept, most recently served first: a few KiB each


class EnvelopeNotComplete(Problem):
    """A certificate asked of an envelope that exists but certifies no completion: 409 naming its ``state``
    (``open``, ``expired``, ``declined`` or ``voided``; ``declinedBy`` who declined), where an unknown id is a
    404. Answered by api/problems.py's handler of every :class:`Problem`."""

    def __init__(self, envelope_id: bytes, state: str, detail: str, declined_by: str | None = None) -> None:
        by: dict[str, Any] = {} if declined_by is None else {"declinedBy": declined_by}
        super().__init__(
            409,
            "envelope-not-complete",
            "Envelope not complete",
            detail,
            envelope=to_hex(envelope_id),
            state=state,
            **by,
        )


@dataclass(frozen=True)
class _Kept:
    pdf: bytes
    doc: str  # the envelope's document
    revoked: frozenset[tuple[str, int]]  # the signers' revocations the index knew when it was drawn


class Certificates:
    """The PDF certificate of a completed envelope of this service's envelopes contract."""

    def __init__(self, chain: ChainContext, store: Store, confirmations: int, size: int = CACHE_SIZE) -> None:
        self.chain = chain
        self.store = store
        self.confirmations = confirmations
        self.size = size
        self._kept: OrderedDict[tuple[bytes, str], _Kept] = OrderedDict()

    async def of_document(self, doc_hash: bytes, page: str) -> bytes:
        """The certificate of the document's one completed envelope: 404 when it has none, 409 naming them when
        it has several (anyone may request an envelope of any document; the asker chooses by its id)."""
        bound = await self.chain.bound()
        envelopes = self._envelopes(bound.envelopes)
        try:
            completed = await completed_envelopes(
                ChainReader(self.chain.rpc), envelopes, doc_hash, bound.deployment_block
            )
            envelope_id = choose(doc_hash, completed)
        except AmbiguousEnvelope as exc:
            raise Problem(
                409,
                "ambiguous-envelope",
                "Several completed envelopes",
                f"{exc.detail}: ask for one at /v1/envelopes/{{id}}/certificate.pdf",
                envelopes=[to_hex(e.envelope_id) for e in exc.envelopes],
            ) from None
        except CertificateError as exc:
            raise not_found(exc.detail) from None
        return await self.of_envelope(envelope_id, page)

    async def of_envelope(self, envelope_id: bytes, page: str) -> bytes:
        """The certificate of envelope ``envelope_id``, with ``page`` the web page its QR code opens; 404 for an
        unknown envelope, :class:`EnvelopeNotComplete` (409) for one that is not complete."""
        bound = await self.chain.bound()
        envelopes = self._envelopes(bound.envelopes)
        key = (envelope_id, page)
        kept = self._kept.get(key)
        if kept is not None and await self._revoked(kept.doc) == kept.revoked:
            self._kept.move_to_end(key)
            return kept.pdf
        try:
            # the document's name is the issuer's line: read once the chain has said which document it is
            made = await gather(
                self.chain.rpc,
                envelopes,
                envelope_id,
                document_name="-",
                page=page,
                from_block=bound.deployment_block,
                trusted=Trusted(bound.registry.address, envelopes, "this service's deployment"),
            )
        except CertificateError as exc:
            if exc.label == ENVELOPE_ID:
                raise await self._not_complete(bound.domain.chain_id, envelopes, envelope_id, exc.detail) from None
            raise
        made = replace(made, document_name=await self._name(made.doc_hash))
        doc = to_hex(made.doc_hash)
        revoked = await self._revoked(doc)
        pdf = await asyncio.to_thread(render, made.text_lines(), made.verify_url)
        if await self._settled(made):
            self._kept[key] = _Kept(pdf, doc, revoked)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return pdf

    async def _not_complete(self, chain_id: int, envelopes: str, envelope_id: bytes, detail: str) -> Problem:
        """Why an envelope has no certificate: it does not exist (404), or the state it is in (409). Read only
        once a certificate is refused, so a served one costs no view more."""
        state = await EnvelopesReader(self.chain.rpc, envelopes, chain_id).state(envelope_id)
        if state.status is Status.NONE:
            return not_found(detail)
        if state.status is Status.DECLINED:
            detail = f"envelope {to_hex(envelope_id)} was declined by {state.declined_by}: it certifies no completion"
        elif state.status is Status.VOIDED:
            detail = f"envelope {to_hex(envelope_id)} was voided by its requester: it certifies no completion"
        return EnvelopeNotComplete(envelope_id, state.status.name.lower(), detail, state.declined_by)

    @staticmethod
    def _envelopes(address: str | None) -> str:
        if address is None:
            raise unavailable("no envelopes contract is recorded beside this service's registry: no certificates")
        return address

    async def _name(self, doc_hash: bytes) -> str:
        """The name the document was submitted with here, when the certificate's font can print it; else its
        hash (the name line is the issuer's, and says so)."""
        name = await self.store.file_name(to_hex(doc_hash))
        try:
            return check_name(name) if name else to_hex(doc_hash)
        except InvalidInput:
            return to_hex(doc_hash)

    async def _revoked(self, doc: str) -> frozenset[tuple[str, int]]:
        _, events, _ = await self.store.signers_of(doc)
        return frozenset((e.signer, e.timestamp) for e in events if e.kind == "Revoked")

    async def _settled(self, made: Certificate) -> bool:
        head = await ChainReader(self.chain.rpc).head()
        return head.number - made.completed.block_number + 1 >= self.confirmations
