"""What envelope notifications say and when they are retried: pure, no I/O but the one name lookup that keeps
webhooks off private networks (:func:`check_webhook_url`)."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import ipaddress
import json
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from docchain.chain import envelopes as env
from docchain.chain.errors import InvalidInput
from docchain.chain.values import to_hex

MAX_URL_BYTES = 2048
MAX_EMAIL_BYTES = 254  # RFC 5321's path limit less its angle brackets
MAX_INVITATIONS = 16  # an envelope's signers at most (chain/envelopes.py MAX_SIGNERS)
# A delivery is attempted at most this many times: 1 s after the first failure, doubling, each wait capped at an
# hour, so the last attempt comes about 4 h 40 min after the first (docs/protocol.md, "Envelope notifications").
MAX_ATTEMPTS = 16
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 3600.0
SIGNATURE_HEADER = "X-Docchain-Signature"
DELIVERY_HEADER = "X-Docchain-Delivery"
RESOLVE_TIMEOUT_S = 3.0  # a webhook host's name lookup, so that a request is not held by a slow resolver
WATCH_PREFIX = "env-"  # beside the submission ids the notifier carries (32 hex digits: never this)


class WebhookExists(Exception):
    """The URL is registered for the envelope already (as ``webhook_id``): one receiver is called once a change."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"this URL is registered for the envelope already, as webhook {webhook_id}")
        self.webhook_id = webhook_id


class WebhooksFull(Exception):
    """The envelope has as many webhooks as a setting allows (DOCCHAIN_WEBHOOKS_PER_ENVELOPE)."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"the envelope has {cap} webhooks, as many as this service allows")
        self.cap = cap


class ContactTaken(Exception):
    """A signer's e-mail address is set, and this request may not change it (another API key set it, or none)."""

    def __init__(self, signer: str) -> None:
        super().__init__(
            f"{signer}'s e-mail address for this envelope is set, and only the API key that set it may change it"
        )
        self.signer = signer


class MailTooSoon(Exception):
    """Signers were written to (invited or reminded) less than the interval ago (DOCCHAIN_MAIL_INTERVAL_S)."""

    def __init__(self, signers: tuple[str, ...], wait_s: float) -> None:
        super().__init__(f"{', '.join(signers)} had an e-mail for this envelope less than the interval ago")
        self.signers = signers
        self.wait_s = wait_s


class ChangeKind(enum.StrEnum):
    CREATED = "created"
    SIGNED = "signed"
    DECLINED = "declined"
    VOIDED = "voided"
    COMPLETED = "completed"


class DeliveryKind(enum.StrEnum):
    WEBHOOK = "webhook"
    INVITATION = "invitation"
    REMINDER = "reminder"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # given up after MAX_ATTEMPTS, its last error kept
    SKIPPED = "skipped"  # an e-mail not sent: the envelope closed or expired first (the reason in last_error)


@dataclass(frozen=True, slots=True)
class EnvelopeChange:
    """One thing that happened to an envelope on chain, or (``removed``) a reorg's taking it back: the body of a
    server-sent ``envelope`` event and of a webhook call. ``id`` orders an envelope's changes (SSE's event id)."""

    id: int
    envelope_id: str
    kind: ChangeKind
    signer: str | None
    block_number: int
    transaction_hash: str
    removed: bool

    def body(self) -> bytes:
        """The JSON subscribers receive, in this key order, compact: the bytes a webhook's HMAC covers."""
        return json.dumps(
            {
                "envelopeId": self.envelope_id,
                "kind": self.kind.value,
                "signer": self.signer,
                "blockNumber": self.block_number,
                "transactionHash": self.transaction_hash,
                "removed": self.removed,
            },
            separators=(",", ":"),
        ).encode()


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    """An envelope event as the indexer persists it (a row of ``envelope_events``)."""

    envelope_id: str
    kind: ChangeKind
    doc_hash: str | None
    signer: str | None
    signers: tuple[str, ...] | None  # created: the required signers, in order
    ordered: bool | None
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    timestamp: int
    deadline: int | None = None  # created: unix s, 0 none


def indexed(event: env.EnvelopeEvent, timestamp: int) -> IndexedEvent:
    """A decoded event of the envelopes contract as ``envelope_events`` keeps it."""
    doc: bytes | None = None
    signer: str | None = None
    signers: tuple[str, ...] | None = None
    ordered: bool | None = None
    deadline: int | None = None
    match event:
        case env.EnvelopeCreated():
            kind, doc, signers, ordered = ChangeKind.CREATED, event.doc_hash, event.signers, event.ordered
            deadline = event.deadline
        case env.EnvelopeSigned():
            kind, signer = ChangeKind.SIGNED, event.signer
        case env.EnvelopeDeclined():
            kind, signer = ChangeKind.DECLINED, event.signer
        case env.EnvelopeVoided():
            kind = ChangeKind.VOIDED
        case env.EnvelopeCompleted():
            kind, doc = ChangeKind.COMPLETED, event.doc_hash
    at = event.at
    return IndexedEvent(
        envelope_id=to_hex(event.envelope_id),
        kind=kind,
        doc_hash=None if doc is None else to_hex(doc),
        signer=signer,
        signers=signers,
        ordered=ordered,
        block_number=at.block_number,
        block_hash=to_hex(at.block_hash),
        tx_hash=to_hex(at.tx_hash),
        log_index=at.log_index,
        timestamp=timestamp,
        deadline=deadline,
    )


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    envelope_id: str
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """A pending delivery with what it needs: a webhook's URL, secret and change, or an e-mail's address and link."""

    id: str
    kind: DeliveryKind
    envelope_id: str
    attempts: int  # made so far
    webhook: Webhook | None
    change: EnvelopeChange | None
    email: str | None
    signer: str | None
    link: str | None


@dataclass(frozen=True, slots=True)
class EnvelopeFacts:
    """What the index knows of an envelope: its request, and who has signed or declined (None: not created)."""

    envelope_id: str
    doc_hash: str
    signers: tuple[str, ...]
    ordered: bool
    signed: frozenset[str]
    ended: ChangeKind | None  # completed, declined or voided: nobody is to be invited or reminded
    deadline: int | None = None  # unix s, 0 none; None: unknown (indexed before migration 0013)

    @property
    def closed(self) -> bool:
        return self.ended is not None

    def not_open(self, at: float) -> str | None:
        """Why nobody is to be invited or reminded at ``at`` (the envelope completed, declined, voided or
        expired), or None while it is open."""
        if self.ended is not None:
            return self.ended.value
        if self.deadline and at > self.deadline:
            return "expired"
        return None

    @property
    def waiting_for(self) -> tuple[str, ...]:
        """The signers a reminder goes to: the next one of an ordered envelope, every unsigned one otherwise."""
        if self.closed:
            return ()
        unsigned = tuple(s for s in self.signers if s not in self.signed)
        return unsigned[:1] if self.ordered else unsigned


def watch_key(envelope_id: str) -> str:
    """The notifier's key (api/notify.py) of an envelope's changes: its event streams wait on it. As long as a
    submission id (32 characters), so that NOTIFY's payload bound (api/notify.py MAX_IDS) holds for a step's mix
    of both; 112 bits of the id, so two envelopes share a key only by a chance no one meets (and it would cost a
    spurious re-read, nothing more)."""
    return f"{WATCH_PREFIX}{envelope_id.removeprefix('0x')[:28]}"


def signature(secret: str, body: bytes) -> str:
    """``X-Docchain-Signature``'s value: ``sha256=`` and the hex HMAC-SHA256 of the raw body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int) -> float | None:
    """How long after its ``attempts``-th failed attempt a delivery is tried again; None: given up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return min(FIRST_RETRY_S * float(2 ** (attempts - 1)), MAX_RETRY_S)


def signing_link(page: str, envelope_id: str, signer: str) -> str:
    """The web page's link that opens an envelope for one of its signers."""
    return f"{page.rstrip('/')}/#/envelope/{envelope_id}?signer={signer}"


def check_email(value: str) -> str:
    """An address to send to: one ``local@domain`` without spaces or line breaks (a header injection)."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if (
        len(text.encode()) > MAX_EMAIL_BYTES
        or not at
        or not local
        or "." not in domain
        or any(c.isspace() or c in '<>,;"' for c in text)
    ):
        raise InvalidInput(f"not an e-mail address: {value[:80]!r}")
    return text


@dataclass(frozen=True)
class WebhookTarget:
    """Where a webhook call goes: its URL, and the address its host was checked to resolve to (None where private
    receivers are allowed and nothing was checked). The call connects to that address, with the URL's host in
    ``Host`` and as the TLS server name (so the certificate is checked for the name): resolving the name again
    when connecting could give another address than the one checked (DNS rebinding)."""

    url: str
    address: str | None = None

    def request(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL to connect to, the headers to add and the httpx request extensions, for this target."""
        if self.address is None:
            return self.url, {}, {}
        parts = urlsplit(self.url)
        host = f"[{self.address}]" if ":" in self.address else self.address
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        name = str(parts.hostname)
        given = f"[{name}]" if ":" in name else name
        headers = {"Host": given if parts.port is None else f"{given}:{parts.port}"}
        extensions = {"sni_hostname": name} if parts.scheme == "https" else {}
        return parts._replace(netloc=netloc).geturl(), headers, extensions


async def check_webhook_url(url: str, *, allow_private: bool) -> WebhookTarget:
    """A URL a webhook may call: http or https, at most 2 KiB, with a host; unless ``allow_private``, every address
    its host resolves to is a public one (not loopback, private, link-local or reserved), so that a webhook cannot
    make the service call its own network. The target is pinned to the first address checked."""
    if len(url.encode()) > MAX_URL_BYTES:
        raise InvalidInput(f"the webhook URL is longer than {MAX_URL_BYTES} bytes")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("a webhook URL is http:// or https:// with a host")
    if parts.username or parts.password:
        raise InvalidInput("a webhook URL carries no user or password (the HMAC signature authenticates)")
    if allow_private:
        return WebhookTarget(url)
    try:
        lookup = asyncio.get_running_loop().getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
        infos = await asyncio.wait_for(lookup, RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError):
        raise InvalidInput(f"the webhook's host {parts.hostname!r} does not resolve") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    for address in addresses:
        if not address.is_global:
            raise InvalidInput(
                f"the webhook's host {parts.hostname!r} is a private or loopback address ({address}); a service "
                "whose receivers are on its own network allows them with DOCCHAIN_WEBHOOK_ALLOW_PRIVATE=true"
            )
    if not addresses:
        raise InvalidInput(f"the webhook's host {parts.hostname!r} does not resolve")
    return WebhookTarget(url, str(addresses[0]))
