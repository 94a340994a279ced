"""Request and response shapes (camelCase, as docs/rest-contract.md fixes them), with OpenAPI examples.

Field formats are checked by the chain layer's parsers (``docchain.chain.values``), so a malformed hex
value gets the same message here as in the CLI.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from docchain.api import lifecycle

ZERO32 = "0x" + "00" * 32
EXAMPLE_HASH = "0x9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
EXAMPLE_SIGNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

# the lifecycle's own enums (api/lifecycle.py): the OpenAPI document lists their values
State = lifecycle.State
Anchoring = lifecycle.Anchoring
ANCHORING_WHY = "direct: its own record on chain; merkle: a leaf of a tree whose root alone goes on chain"
MAX_TREE_DOCUMENTS = 1000  # an explorer answer stays small whatever the tree: its leafCount says how many it holds


class Strict(BaseModel):
    # unknown fields refused, and each value of its documented JSON type: lax mode took "5" or 5.0 for an
    # integer and "no" or 0 for a boolean, so the API accepted requests its own OpenAPI document calls invalid
    model_config = ConfigDict(extra="forbid", strict=True)


PRIVATE_IN_WHY = (
    "registration.docHash is the salted commitment keccak256(sha256(file) || salt), not the document's SHA-256 "
    '(docs/protocol.md, "Private mode"): the service is told so in order to show it as such; it never sees the '
    "file nor the salt, which the signer keeps in the receipt. JSON only: a multipart upload is refused"
)
PRIVATE_WHY = "docHash is a salted commitment (private mode), not the document's SHA-256: verify with the receipt"


class RegistrationIn(Strict):
    docHash: str = Field(examples=[EXAMPLE_HASH], description="SHA-256 of the document, 0x + 64 hex")
    signer: str = Field(examples=[EXAMPLE_SIGNER])
    metadataHash: str = Field(ZERO32, description="keccak256 of the canonical metadata JSON, or zero")
    supersedes: str = Field(ZERO32, description="docHash of the document this one replaces, or zero")
    deadline: int | str = Field(examples=[1893456000], description="unix time after which the signature expires")


class SubmissionIn(Strict):
    registration: RegistrationIn
    signature: str = Field(description="EIP-712 signature (65 bytes r‖s‖v, or an ERC-1271 wallet's bytes)")
    metadata: dict[str, Any] | None = Field(None, description="optional metadata; its hash must be metadataHash")
    fileName: str | None = Field(
        None, min_length=1, max_length=1024, description="file name to put in the receipt (no control characters)"
    )
    fileSize: int | None = Field(None, ge=0, le=2**53 - 1, description="bytes, as a receipt holds it (at most 2^53-1)")
    public: bool = Field(
        False, description="store the uploaded file on IPFS as it is, readable by anyone with its CID (else sealed)"
    )
    anchoring: Literal["direct", "merkle"] | None = Field(
        None,
        description=f"{ANCHORING_WHY}; null or absent: the deployment's (DOCCHAIN_ANCHORING). A repeated "
        "submission keeps the first one's",
    )
    private: bool = Field(False, description=PRIVATE_IN_WHY)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "registration": {
                        "docHash": EXAMPLE_HASH,
                        "signer": EXAMPLE_SIGNER,
                        "metadataHash": ZERO32,
                        "supersedes": ZERO32,
                        "deadline": 1893456000,
                    },
                    "signature": "0x" + "11" * 64 + "1b",
                }
            ]
        },
    )


class IpfsCopyOut(BaseModel):
    cid: str | None = Field(
        description="CIDv1 of what IPFS holds (the sealed bytes, or the document itself when public); fetch it "
        "from any gateway at /ipfs/{cid}"
    )
    sealed: bool = Field(description="encrypted with AES-256-GCM (docs/protocol.md); false: stored public")
    key: str | None = Field(
        None,
        description="the sealed copy's key (43 base64url characters): given once, in this answer, and kept by no "
        "one else; put it in the receipt (docchain submit does) to read the copy back",
    )


class StorageAccepted(BaseModel):
    storedIn: str = Field(description="the first backend, which held the file before this answer")
    backends: list[str] = Field(description="every configured backend; the others receive copies shortly")
    ipfs: IpfsCopyOut | None = None
    keyGivenEarlier: bool = Field(
        False,
        description="the document already had a sealed IPFS copy (ipfs.cid): no second one was made, and its key "
        "went to the answer of the submission that made it (the server keeps no key)",
    )


class SubmissionAccepted(BaseModel):
    id: str
    docHash: str
    signer: str
    state: State
    statusUrl: str
    eventsUrl: str
    storage: StorageAccepted | None = Field(None, description="where the uploaded file went (multipart only)")


class SubmissionStatus(BaseModel):
    id: str
    docHash: str
    signer: str
    state: State
    txHash: str | None = None
    blockNumber: int | None = None
    blockHash: str | None = None
    timestamp: int | None = None
    confirmations: int = 0
    stored: bool = False
    error: str | None = None
    anchoring: Anchoring = Field(Anchoring.DIRECT, description=ANCHORING_WHY)
    merkleRoot: str | None = Field(None, description="the Merkle root its leaf is under, once in a tree (merkle)")
    private: bool = Field(False, description=PRIVATE_WHY)


class SignerStatus(BaseModel):
    signer: str
    state: State
    submissionId: str | None = None
    metadataHash: str | None = None
    supersedes: str | None = None
    txHash: str | None = None
    blockNumber: int | None = None
    blockHash: str | None = None
    timestamp: int | None = None
    confirmations: int = 0
    revokedAt: int | None = None
    error: str | None = None
    anchoring: Anchoring | None = Field(None, description=f"{ANCHORING_WHY}; null: recorded on chain without this API")
    merkleRoot: str | None = Field(None, description="the Merkle root its leaf is under, once in a tree (merkle)")
    private: bool = Field(False, description=f"{PRIVATE_WHY}; false also for a record this API did not accept")
    metadata: dict[str, Any] | None = Field(
        None,
        description="the metadata object submitted with the signature (its keccak256 is metadataHash); null when "
        "none was submitted, or the record was registered on chain without this API",
        examples=[{"title": "Employment contract", "version": 2}],
    )


class StorageCopyOut(BaseModel):
    backend: str = Field(examples=["s3"])
    state: lifecycle.CopyState
    locator: str | None = Field(
        None, description="the backend's name for the copy (S3 key, IPFS CID, local name); null until stored"
    )
    sealed: bool = Field(description="encrypted (IPFS, unless submitted public): reading it needs the key")
    size: int | None = None
    attempts: int = Field(0, description="attempts at the copy so far")
    error: str | None = Field(None, description="why the copy failed, or why the last attempt did (pending)")


class SupersederOut(BaseModel):
    """A newer document that replaces this one: named as replaced in the registrations of ``signers``, each a
    signer of this document whose registration of the newer one is not revoked (docs/protocol.md, "Superseding a
    document")."""

    docHash: str
    signers: list[str]


SUPERSEDED_WHY = "newer documents that replace this one, by its own signers; the verdict stays as it is"


class DocumentStatus(BaseModel):
    docHash: str
    stored: bool = Field(description="some backend holds a copy")
    signers: list[SignerStatus]
    storage: list[StorageCopyOut] = Field(default_factory=list, description="the document's copy per backend")
    superseded_by: list[SupersederOut] = Field(default_factory=list, description=SUPERSEDED_WHY)


LISTED_ANCHORING_WHY = (
    "direct: its own record (a Registered event); merkle: a leaf of the tree whose root txHash anchored (the"
    " chain holds the root alone)"
)


class DocumentSummary(BaseModel):
    docHash: str
    signer: str
    state: State
    metadataHash: str | None
    txHash: str = Field(description="the transaction that recorded it: its registration, or its root's anchorRoot")
    blockNumber: int
    timestamp: int
    confirmations: int
    revokedAt: int | None = None
    anchoring: Literal["direct", "merkle"] = Field("direct", description=LISTED_ANCHORING_WHY)
    merkleRoot: str | None = Field(None, description="the root its leaf is under (merkle), else null")
    private: bool = Field(False, description=f"{PRIVATE_WHY}; false also for a record this API did not accept")


class DocumentPage(BaseModel):
    items: list[DocumentSummary]
    nextCursor: str | None


class VerifyIn(Strict):
    docHash: str = Field(examples=[EXAMPLE_HASH], max_length=66)
    signer: str | None = Field(None, max_length=42)
    receipt: dict[str, Any] | str | None = Field(
        None, description="a docchain receipt: the JSON object, or its text (at most 65,536 bytes)"
    )
    signers: bool | None = Field(
        None, description="list every signer on record (default: only when neither signer nor receipt is given)"
    )


# chain/verify.py's Step, in its order, as the OpenAPI document lists them
StepName = Literal[
    "receipt",
    "file",
    "commitment",
    "chain",
    "registry",
    "signature",
    "record",
    "anchor",
    "confirmations",
    "revocation",
]


class StepOut(BaseModel):
    name: StepName
    ok: bool
    detail: str


class TrustOut(BaseModel):
    registry: str
    sources: list[Literal["code", "pin"]] = Field(
        description="code: its runtime code is a released docchain registry; pin: it is the registry this "
        "verifier was configured to trust"
    )
    detail: str


class ViaOut(BaseModel):
    address: str
    release: str = Field(description="its release in contracts/releases.json (envelopes)")


class AnchorOut(BaseModel):
    chainId: int
    registry: str
    blockNumber: int
    blockHash: str
    transactionHash: str
    timestamp: int = Field(description="the block's time (unix seconds): when it was signed")
    confirmations: int
    merkleRoot: str | None = Field(
        None, description="the Merkle root the transaction anchored, for a Merkle-anchored record (else null)"
    )
    via: ViaOut | None = Field(
        None, description="the released envelopes contract the receipt's transaction was sent to, when it was"
    )


class RevokedOut(BaseModel):
    by: str
    blockNumber: int | None
    timestamp: int


class OtherSignerOut(BaseModel):
    signer: str
    blockNumber: int
    timestamp: int


class VerifyOut(BaseModel):
    """One verdict, said the same way by the API, the CLI and the web page."""

    outcome: Literal["valid", "revoked", "not_registered", "other_signers", "file_mismatch", "invalid"]
    title: str
    summary: str = Field(description="the verdict in one sentence")
    docHash: str
    signer: str | None
    failedStep: StepName | None
    reason: str | None
    steps: list[StepOut]
    trust: TrustOut | None
    anchor: AnchorOut | None
    revocation: RevokedOut | None
    otherSigners: list[OtherSignerOut]
    signers: list[SignerStatus] | None = Field(None, description="every signer on record, when asked (see VerifyIn)")
    superseded_by: list[SupersederOut] = Field(default_factory=list, description=SUPERSEDED_WHY)


class RevocationIn(Strict):
    class Body(Strict):
        docHash: str
        signer: str
        nonce: int | str
        deadline: int | str

    revocation: Body
    signature: str


RevocationState = lifecycle.RevocationState


class RevocationAccepted(BaseModel):
    docHash: str
    signer: str
    nonce: int
    state: RevocationState


class RevocationRequest(BaseModel):
    nonce: int = Field(description="the signer's registry nonce the revocation was signed with")
    state: RevocationState = Field(
        description="pending (queued) → submitted (revokeBySig sent) → revoked (mined); failed: the chain refused it"
    )
    error: str | None = Field(None, description="why the relayer gave up (state failed), e.g. the registry's error")
    txHash: str | None = Field(None, description="the revokeBySig transaction, once one was sent")
    createdAt: float = Field(description="unix time (seconds) the API accepted the request")


class RevocationStatus(BaseModel):
    docHash: str
    signer: str
    revocations: list[RevocationRequest] = Field(description="every request of (docHash, signer), newest first")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "docHash": EXAMPLE_HASH,
                    "signer": EXAMPLE_SIGNER,
                    "revocations": [
                        {
                            "nonce": 1,
                            "state": "failed",
                            "error": f"InvalidSignature({EXAMPLE_HASH[2:]}, {EXAMPLE_SIGNER})",
                            "txHash": None,
                            "createdAt": 1767225600.25,
                        },
                        {
                            "nonce": 0,
                            "state": "revoked",
                            "error": None,
                            "txHash": "0x" + "ab" * 32,
                            "createdAt": 1767225000.5,
                        },
                    ],
                }
            ]
        }
    )


# ------------------------------------------------------------------ chain info (GET /v1/chain)


class TypedField(BaseModel):
    name: str
    type: str


class Eip712Domain(BaseModel):
    name: str = Field(examples=["docchain"])
    version: str = Field(examples=["1"])
    chainId: int = Field(examples=[31337])
    verifyingContract: str = Field(examples=["0x5FbDB2315678afecb367f032d93F642f64180aa3"])


class Eip712Action(BaseModel):
    primaryType: str = Field(examples=["Registration"])
    types: dict[str, list[TypedField]] = Field(
        description="the action's struct types only, without EIP712Domain: what ethers' "
        "signTypedData(domain, types, value) takes as it is (it refuses an EIP712Domain entry)"
    )


class Eip712EnvelopeAction(Eip712Action):
    domain: Eip712Domain = Field(
        description="the envelopes contract's domain (GET /v1/envelopes/domain), which this action is signed under "
        "in place of the registry's"
    )


class Eip712Actions(BaseModel):
    registration: Eip712Action = Field(description="what a signer signs to register a document (POST /v1/documents)")
    revocation: Eip712Action = Field(description="what a signer signs to revoke it (POST /v1/revocations)")
    envelopeRequest: Eip712EnvelopeAction | None = Field(
        description="what a requester signs to create an envelope (POST /v1/envelopes); null without an envelopes "
        "contract"
    )
    decline: Eip712EnvelopeAction | None = Field(
        description="what a named signer signs to decline an envelope (POST /v1/envelopes/{id}/decline)"
    )
    void: Eip712EnvelopeAction | None = Field(
        description="what the requester signs to void an envelope (POST /v1/envelopes/{id}/void)"
    )


class Eip712Info(BaseModel):
    """The EIP-712 pieces a client signs with, each action's types apart, so that both common library shapes can
    be built from them without editing: ethers takes ``(domain, action.types, message)``; a wallet's
    ``eth_signTypedData_v4`` and eth_account's ``encode_typed_data(full_message=...)`` take ``{types:
    {EIP712Domain: domainType, ...action.types}, primaryType: action.primaryType, domain, message}``."""

    domain: Eip712Domain
    domainType: list[TypedField] = Field(description="the EIP712Domain type, for the full (eth_signTypedData_v4) form")
    actions: Eip712Actions


class ChainInfo(BaseModel):
    chainId: int
    contract: str = Field(description="the registry's address")
    deploymentBlock: int = Field(
        description="the registry's deployment block, where the indexer starts (0 when an address was configured "
        "without DOCCHAIN_DEPLOYMENT_BLOCK)"
    )
    latestBlock: int = Field(description="the node's latest block")
    indexedHead: int | None = Field(description="the last block the indexer has read; null before its first pass")
    confirmations: int = Field(description="blocks after which an anchored record counts as confirmed")
    relayer: str = Field(description="the account that pays for and sends the registry transactions")
    relayerBalanceWei: str = Field(description="its balance in wei, as a decimal string (it exceeds 2^53)")
    eip712: Eip712Info


class NonceOut(BaseModel):
    signer: str
    nonce: int = Field(description="the nonce the signer's next Revocation must carry")


class SignedDocument(BaseModel):
    docHash: str
    state: State
    txHash: str = Field(description="the transaction that recorded it: its registration, or its root's anchorRoot")
    blockNumber: int
    timestamp: int
    confirmations: int
    revokedAt: int | None = None
    metadataHash: str | None = None
    anchoring: Literal["direct", "merkle"] = Field("direct", description=LISTED_ANCHORING_WHY)
    merkleRoot: str | None = Field(None, description="the root its leaf is under (merkle), else null")


class PendingDocument(BaseModel):
    docHash: str
    state: State
    submissionId: str


class SignerDocuments(BaseModel):
    signer: str
    documents: list[SignedDocument] = Field(description="the signer's records on chain, newest first")
    pending: list[PendingDocument] = Field(description="its submissions not on chain yet")


# ------------------------------------------------------------------ explorer (GET /v1/explorer/...)


class BlockSummary(BaseModel):
    number: int
    hash: str
    timestamp: int
    txCount: int
    registryTxs: int = Field(description="the block's transactions that emitted registry events (from the index)")


class RegistryCall(BaseModel):
    function: str
    args: dict[str, Any] | None = Field(description="decoded arguments (integers past 2^53 as decimal strings)")


class TreeDocument(BaseModel):
    docHash: str
    signer: str
    state: State = Field(description="its submission's state here")
    leafIndex: int | None = Field(description="its place among the tree's sorted leaves (its receipt's leafIndex)")


class AnchoredRoot(BaseModel):
    root: str
    leafCount: int = Field(description="how many signed registrations the root commits to (the event says)")
    sender: str
    logIndex: int
    documents: list[TreeDocument] = Field(
        description="the leaves this service put in the tree, in leaf order (another sender's tree: none; at most"
        f" {MAX_TREE_DOCUMENTS} in all)"
    )


class ExplorerTx(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    hash: str
    blockNumber: int | None
    from_: str = Field(alias="from")
    to: str | None
    nonce: int
    status: int | None = Field(description="1 mined, 0 reverted; null while pending")
    gasUsed: int | None
    call: RegistryCall | None = Field(description="the registry call, decoded (null for other contracts)")
    events: list[dict[str, Any]] = Field(description="the registry's events the transaction emitted, decoded")
    roots: list[AnchoredRoot] = Field(
        default_factory=list, description="the Merkle roots the transaction anchored (its RootAnchored events)"
    )


class BlockDetail(BaseModel):
    number: int
    hash: str
    parentHash: str
    timestamp: int
    txCount: int
    gasUsed: int
    transactions: list[ExplorerTx] = Field(description="the block's transactions to the registry")


# ------------------------------------------------------------------ errors (every 4xx and 5xx)


class ValidationIssue(BaseModel):
    loc: list[str] = Field(description="where: body, query, path or header, then the field's path")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``): every error the API answers has this shape.
    Some problems add members: ``errors`` (validation), ``recovered`` (signer-mismatch), ``error`` (the
    registry's custom error), ``step`` (verification), ``limit`` (a size limit), ``checks`` (readiness)."""

    type: str = Field(examples=["https://docchain.dev/problems/not-found"], description="the problem's kind")
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(description="what went wrong, for a person", examples=["no submission 0190c3..."])
    instance: str | None = Field(None, description="the request's path")
    errors: list[ValidationIssue] | None = Field(None, description="every invalid field (type .../validation)")

    model_config = ConfigDict(extra="allow")


# ------------------------------------------------------------------ envelopes (api/routes/envelopes.py)

MAX_ENVELOPE_SIGNERS = 16  # the contract's bitmap of counted signers (chain/envelopes.py MAX_SIGNERS)
MAX_REASON_BYTES = 1024  # a decline's or void's reason text, UTF-8; only its keccak256 goes on chain
SIGNATURE_WHY = "EIP-712 signature under the envelopes' domain (GET /v1/envelopes/domain): 65 bytes, or a wallet's"
# The reason's bound is in bytes of UTF-8, checked by the service (413 naming the limit): a character bound here
# would answer 422 to 1,025 ASCII characters and 413 to 600 two-byte ones. The route's 64 KiB body bounds the text.
REASON_WHY = "optional reason, at most 1,024 bytes of UTF-8 (413 above); when given, reasonHash must be its keccak256"


class EnvelopeRequestIn(Strict):
    docHash: str = Field(examples=[EXAMPLE_HASH], description="SHA-256 of the document, 0x + 64 hex")
    requester: str = Field(examples=[EXAMPLE_SIGNER], description="who signs the request (and may void it)")
    signers: list[str] = Field(min_length=1, max_length=MAX_ENVELOPE_SIGNERS, description="the required signers")
    ordered: bool = Field(False, description="the signers sign in the listed order")
    deadline: int = Field(0, ge=0, le=2**48 - 1, description="unix time after which no signature counts; 0: none")
    salt: str = Field(description="32 bytes, 0x + 64 hex, that make the request unique")
    requestDeadline: int | str = Field(description="unix time after which the request itself cannot be submitted")


class EnvelopeCreateIn(Strict):
    request: EnvelopeRequestIn
    signature: str = Field(max_length=8194, description=SIGNATURE_WHY)


class DeclineIn(Strict):
    envelopeId: str = Field(description="the envelope's id, 0x + 64 hex")
    signer: str = Field(examples=[EXAMPLE_SIGNER])
    reasonHash: str = Field(ZERO32, description="keccak256 of the reason's UTF-8, or zero")
    deadline: int | str = Field(description="unix time after which the decline cannot be submitted")


class EnvelopeDeclineIn(Strict):
    decline: DeclineIn
    signature: str = Field(max_length=8194, description=SIGNATURE_WHY)
    reason: str | None = Field(None, description=REASON_WHY)


class VoidIn(Strict):
    envelopeId: str = Field(description="the envelope's id, 0x + 64 hex")
    reasonHash: str = Field(ZERO32, description="keccak256 of the reason's UTF-8, or zero")
    deadline: int | str = Field(description="unix time after which the void cannot be submitted")


class EnvelopeVoidIn(Strict):
    void: VoidIn
    signature: str = Field(max_length=8194, description="the requester's " + SIGNATURE_WHY)
    reason: str | None = Field(None, description=REASON_WHY)


SignerState = Literal["signed", "next", "pending", "declined"]
EnvelopeStatus = Literal["pending", "open", "completed", "declined", "voided", "expired", "failed"]


class EnvelopeSignerOut(BaseModel):
    address: str
    state: SignerState = Field(
        description="next: an open ordered envelope waits for this signer (an unordered one: every pending signer)"
    )
    signedAt: int | None = Field(None, description="unix time of the registration that counts")
    blockNumber: int | None = Field(None, description="block of the registration that counts")
    transactionHash: str | None = Field(None, description="the transaction that counted it (EnvelopeSigned)")
    submission: str | None = Field(None, description="this service's submission of the signature, when it has one")


class EnvelopeStepOut(BaseModel):
    blockNumber: int
    transactionHash: str
    timestamp: int


class EnvelopeClosingOut(EnvelopeStepOut):
    by: str = Field(description="who declined (a signer) or voided (the requester)")
    reasonHash: str = Field(description="the reason's keccak256 on chain; zero for none")
    reason: str | None = Field(
        None, description="the reason's text, when it was given to this service with the signed message"
    )


class EnvelopeActionOut(BaseModel):
    kind: lifecycle.ActionKind | Literal["sign"] = Field(description="sign: a signature, which is a submission")
    state: lifecycle.ActionState
    signer: str | None = Field(None, description="whose sign, count or decline")
    error: str | None = Field(None, description="why it failed: the contract's rule first (OutOfOrder, ...)")


class EnvelopeLinksOut(BaseModel):
    page: str = Field(description="the envelope on the web page, for its signers")


class EnvelopeOut(BaseModel):
    """An envelope: the chain's view of it, with this service's actions not on chain yet."""

    id: str = Field(description="the envelope's id: the EIP-712 digest of its request, 0x + 64 hex")
    docHash: str
    requester: str
    status: EnvelopeStatus = Field(
        description="pending: accepted, not on chain yet; failed: its creation was refused (see actions)"
    )
    ordered: bool
    deadline: int = Field(description="unix time; 0: none")
    signers: list[EnvelopeSignerOut]
    next: str | None = Field(None, description="whose turn it is in an open ordered envelope")
    declinedBy: str | None = None
    created: EnvelopeStepOut | None = Field(None, description="its EnvelopeCreated event; null until mined")
    completed: EnvelopeStepOut | None = Field(None, description="its EnvelopeCompleted event")
    declined: EnvelopeClosingOut | None = Field(None, description="its EnvelopeDeclined event: by whom, when, why")
    voided: EnvelopeClosingOut | None = Field(None, description="its EnvelopeVoided event: when, why")
    actions: list[EnvelopeActionOut]
    chainId: int
    envelopes: str = Field(description="the envelopes contract's address")
    links: EnvelopeLinksOut


class EnvelopeDomainOut(BaseModel):
    name: str = Field(examples=["docchain envelopes"])
    version: str = Field(examples=["1"])
    chainId: int
    verifyingContract: str
