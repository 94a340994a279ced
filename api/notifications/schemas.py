"""Request and response bodies of the notification routes (docs/protocol.md, "Envelope notifications")."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from docchain.api.notifications.model import MAX_EMAIL_BYTES, MAX_INVITATIONS, MAX_URL_BYTES

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
HASH_PATTERN = r"^0x[0-9a-fA-F]{64}$"


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_URL_BYTES, description="http(s) URL to POST each change of the envelope to")


class WebhookCreated(BaseModel):
    id: str
    url: str
    secret: str = Field(description="the HMAC-SHA256 key of X-Docchain-Signature; shown only in this answer")


class Invitation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signer: str = Field(pattern=ADDRESS_PATTERN, description="one of the envelope's signers")
    email: str = Field(max_length=MAX_EMAIL_BYTES)


class InvitationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invitations: list[Invitation] = Field(min_length=1, max_length=MAX_INVITATIONS)


class Queued(BaseModel):
    """E-mails queued: one delivery each, sent (and retried) by the delivery loop."""

    envelopeId: str
    deliveries: list[str] = Field(description="the deliveries' ids, one per e-mail")
    recipients: list[str] = Field(description="the signers written to, in the envelope's order")


class DocumentEnvelopes(BaseModel):
    docHash: str
    envelopes: list[str] = Field(description="ids of the envelopes created on chain for the document, oldest first")
