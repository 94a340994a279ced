"""The certificate of completion of an envelope: every line a claim read from the chain, so anyone can check it.

A :class:`Certificate` holds only what the chain says of a completed envelope (contracts/DocumentEnvelopes.sol):
the document's hash, the envelope's id, requester, order and deadline, the block, time and transaction of its
creation and of its completion, every signer with the block, time and transaction of the registration that
counted (said to predate the envelope when it does: the contract counts a signer's earlier record), and the chain,
registry and envelopes contract they are read from. Two lines are the issuer's, not the chain's: the document's
name, and the address of the web page its QR code opens (only the page's document path is checked).

:meth:`Certificate.lines` is the certificate as people read it, one ``Label: value`` claim a line, between a
title and a note of fixed text. :func:`check` compares printed lines with the lines the chain gives now and names
the first that differs; :func:`printed` reads from the printed lines what to ask the chain (its chain id,
envelopes contract and envelope id). :func:`gather` and :func:`completed_envelopes` are the only code here that
talks to a node, through the one JSON-RPC transport (chain/rpc.py); :func:`choose` picks a document's envelope
only when it is the one (of the requester asked for).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from docchain.chain.errors import InvalidInput, VerificationError
from docchain.chain.rpc import ChainReader, Transport
from docchain.chain.trust import envelopes_release_of, release_of
from docchain.chain.values import parse_address, parse_hash32, to_hex, utc_text

TITLE = "docchain certificate of completion"
NOTE = "Each line below is read from the chain. Check them all with: docchain verify --certificate FILE --rpc URL"
# The page the QR code opens: the web page's document view, which shows the document's signers on chain.
PAGE_PATH = "/#/doc/"

NAME = "Document name (the issuer's, not on chain)"
DOC_HASH = "Document SHA-256"
CHAIN_ID = "Chain id"
REGISTRY = "Registry"
ENVELOPES = "Envelopes contract"
ENVELOPE_ID = "Envelope id"
REQUESTER = "Requested by"
CREATED = "Created"
CREATED_TX = "Creation transaction"
ORDER = "Signing order"
DEADLINE = "Deadline"
COMPLETED = "Completed"
COMPLETED_TX = "Completion transaction"
PAGE = "Verify page"

ORDERED_TEXT = "as listed, each after the one before"
UNORDERED_TEXT = "any"
NO_DEADLINE = "none"
# Said after a signer's registration that the chain holds from before the envelope's creation: the contract counts
# it all the same (a named signer's record of the document), so the certificate says it was no answer to the request.
BEFORE_CREATION = "before the envelope was created"

_LINE = re.compile(r"^([A-Za-z0-9 '(),-]+): (.*)$")
_PAGE = re.compile(r"^(.*)" + re.escape(PAGE_PATH) + r"(0x[0-9a-f]{64})$")
# The names' width on a page in the core fonts: a longer or non-Latin-1 name is the issuer's to shorten.
MAX_NAME = 100


class CertificateError(VerificationError):
    """A certificate that the chain does not bear out; ``label`` names its line when one is at fault."""

    def __init__(self, detail: str, label: str | None = None) -> None:
        super().__init__("certificate", detail)
        self.label = label


class CertificateMismatch(CertificateError):
    """Printed line ``number`` (1-based, counting the certificate's non-empty lines) is not what the chain
    says, which is ``expected`` (None: the chain says nothing there)."""

    def __init__(self, number: int, line: str, expected: str | None) -> None:
        said = "the chain gives no such line" if expected is None else f"the chain says {expected!r}"
        super().__init__(f"line {number} {line!r} is not the chain's: {said}")
        self.number = number
        self.line = line
        self.expected = expected


@dataclass(frozen=True)
class Moment:
    """Where something happened on chain: its block, the block's time, and the transaction."""

    block_number: int
    timestamp: int
    tx_hash: bytes

    @property
    def text(self) -> str:
        return f"block {self.block_number}, {utc_text(self.timestamp)}"


@dataclass(frozen=True)
class SignerEntry:
    """A required signer, in the envelope's order, and the registration that counted toward it."""

    position: int  # from 1
    signer: str
    registered: Moment
    revoked_at: int  # 0: never; a revocation after completion is said, since it changes what the record proves
    before_creation: bool = False  # the registration's event precedes the envelope's EnvelopeCreated on chain

    @property
    def registered_text(self) -> str:
        return f"{self.registered.text}, {BEFORE_CREATION}" if self.before_creation else self.registered.text


@dataclass(frozen=True)
class Line:
    label: str
    value: str

    @property
    def text(self) -> str:
        return f"{self.label}: {self.value}"


@dataclass(frozen=True)
class Certificate:
    """A completed envelope as the chain holds it, with the issuer's name for the document and page address."""

    document_name: str
    doc_hash: bytes
    chain_id: int
    registry: str
    envelopes: str
    envelope_id: bytes
    requester: str
    ordered: bool
    deadline: int  # 0: none
    created: Moment
    completed: Moment
    signers: tuple[SignerEntry, ...]
    page: str  # the web page's address, e.g. http://127.0.0.1:8000

    @property
    def verify_url(self) -> str:
        """What the QR code holds: the web page's view of the document."""
        return f"{self.page.rstrip('/')}{PAGE_PATH}{to_hex(self.doc_hash)}"

    def lines(self) -> tuple[Line, ...]:
        """The claims, in the order printed."""
        out = [
            Line(NAME, self.document_name),
            Line(DOC_HASH, to_hex(self.doc_hash)),
            Line(CHAIN_ID, str(self.chain_id)),
            Line(REGISTRY, self.registry),
            Line(ENVELOPES, self.envelopes),
            Line(ENVELOPE_ID, to_hex(self.envelope_id)),
            Line(REQUESTER, self.requester),
            Line(CREATED, self.created.text),
            Line(CREATED_TX, to_hex(self.created.tx_hash)),
            Line(ORDER, ORDERED_TEXT if self.ordered else UNORDERED_TEXT),
            Line(DEADLINE, utc_text(self.deadline) if self.deadline else NO_DEADLINE),
        ]
        for s in self.signers:
            out += [
                Line(f"Signer {s.position}", s.signer),
                Line(f"Signer {s.position} registered", s.registered_text),
                Line(f"Signer {s.position} transaction", to_hex(s.registered.tx_hash)),
            ]
            if s.revoked_at:
                out.append(Line(f"Signer {s.position} revoked", utc_text(s.revoked_at)))
        out += [
            Line(COMPLETED, self.completed.text),
            Line(COMPLETED_TX, to_hex(self.completed.tx_hash)),
            Line(PAGE, self.verify_url),
        ]
        return tuple(out)

    def text_lines(self) -> tuple[str, ...]:
        """Every line of the certificate as printed: the title, the note, then the claims."""
        return (TITLE, NOTE, *(line.text for line in self.lines()))


def check_name(name: str) -> str:
    """``name`` if it can be printed and read back in the PDF's core font (Latin-1, one line)."""
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidInput(f"the document's name must be 1 to {MAX_NAME} printable characters on one line")
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidInput("the document's name must be Latin-1 (the certificate's font): pass --name") from None
    return name


# ---------------------------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class Printed:
    """A printed certificate's lines, and what they say to ask the chain."""

    lines: tuple[str, ...]
    chain_id: int
    envelopes: str
    envelope_id: bytes
    document_name: str
    page: str

    def mismatch(self, label: str) -> CertificateMismatch | None:
        """The error naming the printed line of ``label``, if there is one."""
        for number, line in enumerate(self.lines, start=1):
            if line.startswith(f"{label}: "):
                return CertificateMismatch(number, line, None)
        return None


def _values(lines: Sequence[str]) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(lines, start=1):
        match = _LINE.match(line)
        if match and match[1] not in found:
            found[match[1]] = (number, match[2])
    return found


def printed(text: str) -> Printed:
    """The non-empty lines of a certificate's extracted ``text`` and the values that say what to read on chain;
    a line missing or malformed among those is :class:`CertificateError` naming it."""
    lines = tuple(stripped for raw in text.splitlines() if (stripped := raw.strip()))
    found = _values(lines)

    def value(label: str) -> tuple[int, str]:
        if label not in found:
            raise CertificateError(f"the certificate has no line {label!r}", label)
        return found[label]

    number, chain_text = value(CHAIN_ID)
    if not chain_text.isdigit():
        raise CertificateMismatch(number, lines[number - 1], None)
    try:
        envelopes = parse_address(value(ENVELOPES)[1], ENVELOPES)
    except InvalidInput:
        number = value(ENVELOPES)[0]
        raise CertificateMismatch(number, lines[number - 1], None) from None
    try:
        envelope_id = parse_hash32(value(ENVELOPE_ID)[1], ENVELOPE_ID)
    except InvalidInput:
        number = value(ENVELOPE_ID)[0]
        raise CertificateMismatch(number, lines[number - 1], None) from None
    number, url = value(PAGE)
    page = _PAGE.match(url)
    if page is None:
        raise CertificateMismatch(number, lines[number - 1], None)
    return Printed(lines, int(chain_text), envelopes, envelope_id, value(NAME)[1], page[1])


def check(lines: Sequence[str], chain: Certificate) -> None:
    """Raise :class:`CertificateMismatch` at the first of ``lines`` that is not the line ``chain`` gives there.
    :func:`verify` gathers ``chain`` with the printed document name and page address, which are the issuer's."""
    expected = chain.text_lines()
    for number, (line, wanted) in enumerate(zip(lines, expected, strict=False), start=1):
        if line != wanted:
            raise CertificateMismatch(number, line, wanted)
    if len(lines) > len(expected):
        raise CertificateMismatch(len(expected) + 1, lines[len(expected)], None)
    if len(lines) < len(expected):
        missing = expected[len(lines)]
        raise CertificateError(f"the certificate ends before the chain's line {missing!r}", missing.split(":")[0])


# ---------------------------------------------------------------------------------------------- the chain


@dataclass(frozen=True)
class CompletedEnvelope:
    """A completed envelope of a document, and who requested it: what tells one certificate from another."""

    envelope_id: bytes
    requester: str

    @property
    def text(self) -> str:
        return f"{to_hex(self.envelope_id)} (requested by {self.requester})"


class AmbiguousEnvelope(CertificateError):
    """The document has several completed envelopes (of the requester asked for, when one is): which one is
    certified is the asker's choice, never the chain's order, since anyone may request an envelope of any
    document and count registrations its signers made for another."""

    def __init__(self, doc_hash: bytes, envelopes: tuple[CompletedEnvelope, ...]) -> None:
        listed = ", ".join(e.text for e in envelopes)
        super().__init__(f"document {to_hex(doc_hash)} has {len(envelopes)} completed envelopes: {listed}", ENVELOPE_ID)
        self.envelopes = envelopes


async def completed_envelopes(
    chain: ChainReader, envelopes: str, doc_hash: bytes, from_block: int = 0
) -> tuple[CompletedEnvelope, ...]:
    """The document's completed envelopes at ``envelopes``, in the chain's order: one that is open, declined or
    voided certifies nothing. :class:`CertificateError` (at the envelope id's line) when it has none, naming
    those it has."""
    from docchain.chain import envelopes as env
    from docchain.chain.envelopes_contract import EnvelopesReader

    head = await chain.head()
    logs = await chain.logs(envelopes, [env.CREATED_TOPIC, None, doc_hash], from_block, head.number)
    created = [e for e in map(env.decode_log, logs) if isinstance(e, env.EnvelopeCreated)]
    reader = EnvelopesReader(chain.transport, envelopes, await chain.chain_id())
    states = [(e.envelope_id, await reader.state(e.envelope_id)) for e in created]
    complete = tuple(CompletedEnvelope(i, s.requester) for i, s in states if s.status == env.Status.COMPLETED)
    if not complete:
        said = ", ".join(f"{to_hex(i)} {s.status.name.lower()}" for i, s in states) or "none"
        raise CertificateError(
            f"document {to_hex(doc_hash)} has no completed envelope (its envelopes: {said})", ENVELOPE_ID
        )
    return complete


def choose(doc_hash: bytes, completed: tuple[CompletedEnvelope, ...], requester: str | None = None) -> bytes:
    """The one envelope of ``completed`` (of ``requester``, when given) to certify; :class:`AmbiguousEnvelope`
    when there are several, :class:`CertificateError` when the requester has none."""
    mine = completed if requester is None else tuple(e for e in completed if e.requester == requester)
    if not mine:
        listed = ", ".join(e.text for e in completed)
        raise CertificateError(
            f"document {to_hex(doc_hash)} has no completed envelope requested by {requester} (its completed "
            f"envelopes: {listed})",
            ENVELOPE_ID,
        )
    if len(mine) > 1:
        raise AmbiguousEnvelope(doc_hash, mine)
    return mine[0].envelope_id


@dataclass(frozen=True)
class Trusted:
    """The deployment a verifier trusts on its chain, as receipt verification pins it (chain/trust.py's
    :class:`~docchain.chain.trust.Pin`): the registry, and the envelopes contract recorded beside it when the pin
    comes from a deployments list (None: any released envelopes contract counting toward that registry)."""

    registry: str
    envelopes: str | None
    source: str  # where the trust comes from, said when a certificate names another contract
    chain_id: int | None = None  # None: whatever chain the node serves (an explicit --registry)


async def gather(
    rpc: Transport,
    envelopes: str,
    envelope_id: bytes,
    *,
    document_name: str,
    page: str,
    from_block: int = 0,
    trusted: Trusted | None = None,
) -> Certificate:
    """Read the certificate of envelope ``envelope_id`` of the contract at ``envelopes`` from the node behind
    ``rpc``: the envelope's state and events, the registry's record and Registered event of each signer, and the
    blocks' times. The contract must be docchain's envelopes, counting a released registry, and the envelope
    complete; otherwise :class:`CertificateError` names the line at fault. ``from_block``: where the envelope
    contract's logs can start (its deployment block, when known). ``trusted``: the deployment the reader pins,
    whose registry (and envelopes contract, when it names one) the certificate's must be."""
    from docchain.chain import envelopes as env
    from docchain.chain.envelopes_contract import EnvelopesReader
    from docchain.chain.registry import REGISTERED_TOPIC, RegistryReader

    chain = ChainReader(rpc)
    chain_id = await chain.chain_id()
    pinned = trusted if trusted is not None and trusted.chain_id in (None, chain_id) else None
    if pinned is not None and pinned.envelopes is not None and pinned.envelopes != envelopes:
        raise CertificateError(
            f"{envelopes} is not the envelopes contract trusted on chain {chain_id}, {pinned.envelopes} "
            f"({pinned.source})",
            ENVELOPES,
        )
    # released DocumentEnvelopes code, its immutables (the registry it counts toward among them) aside: the
    # registry is then read from the contract itself
    if envelopes_release_of(await chain.code(envelopes)) is None:
        raise CertificateError(f"{envelopes} on chain {chain_id} is not docchain's envelopes contract", ENVELOPES)
    reader = EnvelopesReader(rpc, envelopes, chain_id)
    state = await reader.state(envelope_id)
    if state.status == env.Status.NONE:
        raise CertificateError(f"no envelope has the id {to_hex(envelope_id)} at {envelopes}", ENVELOPE_ID)
    if state.status != env.Status.COMPLETED:
        raise CertificateError(
            f"envelope {to_hex(envelope_id)} is {state.status.name.lower()}, not complete: "
            f"{len(state.pending)} of {len(state.signers)} signer(s) have not signed",
            ENVELOPE_ID,
        )
    registry = await reader.view(env.registry_view())
    if release_of(await chain.code(registry)) is None:
        raise CertificateError(f"the envelopes count registry {registry}, which is no released registry", REGISTRY)
    if pinned is not None and pinned.registry != registry:
        raise CertificateError(
            f"the envelopes count registry {registry}, not the registry trusted on chain {chain_id}, "
            f"{pinned.registry} ({pinned.source})",
            REGISTRY,
        )

    head = await chain.head()
    logs = await chain.logs(envelopes, [None, envelope_id], from_block, head.number)
    events = [e for e in (env.decode_log(log) for log in logs) if e is not None]
    created = next((e for e in events if isinstance(e, env.EnvelopeCreated)), None)
    completed = next((e for e in events if isinstance(e, env.EnvelopeCompleted)), None)
    if created is None or completed is None:
        raise CertificateError(
            f"the node has no creation or completion event of envelope {to_hex(envelope_id)} from block {from_block}",
            ENVELOPE_ID,
        )

    async def moment(block_number: int, tx_hash: bytes) -> Moment:
        block = await chain.block(block_number)
        if block is None:
            raise CertificateError(f"the node has no block {block_number}")
        return Moment(block_number, block.timestamp, tx_hash)

    registry_reader = RegistryReader(rpc, registry, chain_id)
    signers = []
    for position, s in enumerate(state.signers, start=1):
        record = await registry_reader.record(state.doc_hash, s.signer)
        topic = bytes(12) + bytes.fromhex(s.signer[2:])
        registered = await chain.logs(
            registry, [REGISTERED_TOPIC, state.doc_hash, topic], record.block_number, record.block_number
        )
        if not record.exists or not registered:
            raise CertificateError(f"the registry holds no registration of the document by signer {s.signer}")
        event = registered[-1]
        registration = Moment(record.block_number, record.registered_at, event.tx_hash)
        # a record is one registration per (document, signer): the one that counted, made before the request when
        # its event precedes the envelope's creation
        before = (event.block_number, event.log_index) < (created.at.block_number, created.at.log_index)
        signers.append(SignerEntry(position, s.signer, registration, record.revoked_at, before))

    return Certificate(
        document_name=document_name,
        doc_hash=state.doc_hash,
        chain_id=chain_id,
        registry=registry,
        envelopes=reader.address,
        envelope_id=envelope_id,
        requester=state.requester,
        ordered=state.ordered,
        deadline=state.deadline,
        created=await moment(created.at.block_number, created.at.tx_hash),
        completed=await moment(completed.block_number, completed.at.tx_hash),
        signers=tuple(signers),
        page=page,
    )


async def verify(
    rpc: Transport, certificate: Printed, from_block: int = 0, trusted: Trusted | None = None
) -> Certificate:
    """Check every printed line of ``certificate`` against the node behind ``rpc`` (and the deployment
    ``trusted``, as :func:`gather` does); the chain's certificate when all hold, else :class:`CertificateError`
    naming the first line the chain does not bear out."""
    chain_id = await ChainReader(rpc).chain_id()
    if chain_id != certificate.chain_id:
        wrong = certificate.mismatch(CHAIN_ID)
        assert wrong is not None  # printed() found the line
        raise CertificateMismatch(wrong.number, wrong.line, f"{CHAIN_ID}: {chain_id}")
    try:
        chain = await gather(
            rpc,
            certificate.envelopes,
            certificate.envelope_id,
            document_name=certificate.document_name,
            page=certificate.page,
            from_block=from_block,
            trusted=trusted,
        )
    except CertificateError as exc:
        at = None if exc.label is None else certificate.mismatch(exc.label)
        if at is None:
            raise
        raise CertificateError(f"line {at.number} {at.line!r}: {exc.detail}", exc.label) from exc
    check(certificate.lines, chain)
    return chain
