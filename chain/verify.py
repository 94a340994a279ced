"""Verification of a (document, signer) claim against the chain — the algorithm of docs/protocol.md.

One function, :func:`verify`, answers one typed :class:`Verdict` for every caller: the API, the CLI's
independent ``--rpc`` mode and, through the API, the web page. It reads the chain through a
:class:`~docchain.chain.rpc.ChainReader` at one head, and trusts nothing a receipt says about where or how
to check it: the registry must run released docchain code (and be the pinned one, when a pin is given), the
signer's kind of signature follows from whether it has code, and the transaction, block, time and record
are read from the chain and compared with the receipt. The first check that fails ends verification at its
named step.

A Merkle-anchored registration (a version 2 receipt) runs the same steps: its record is the registry's view of
the registration under the receipt's root (inclusion and signature in one ``eth_call``), and its anchor is the
transaction that anchored that root. The chain holds the root only, so such a registration is verified with
its receipt, never found by its document hash alone.

What supersedes the document is said beside the verdict, never in place of it: :func:`superseded_by` reads the
registrations that name the document as the one they replace (their signed ``supersedes``), and
:func:`superseders` keeps those that count — by a signer of this document, not revoked. Anyone can register any
hash naming any document as replaced; only the old document's own signers can say it was.

A private registration (a receipt with a ``private`` salt) signs the commitment keccak256(sha256 || salt) as its
docHash: after the ``file`` step, the ``commitment`` step checks that the receipt's salt opens the signed docHash
for this file, and every later step reads the chain by that commitment. Without its receipt such a record is not
found by the file at all.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from eth_abi.abi import decode as abi_decode

from docchain.chain import merkle
from docchain.chain.errors import ChainError, ContractRevert, InvalidInput
from docchain.chain.merkle import InclusionProof
from docchain.chain.receipt import Receipt
from docchain.chain.registry import (
    REGISTERED_TOPIC,
    REVOKED_TOPIC,
    ROOT_ANCHORED_TOPIC,
    Record,
    decode_revert,
    encode_call,
)
from docchain.chain.rpc import Block, ChainReader, Log, RpcError, TxReceipt
from docchain.chain.trust import MERKLE_RELEASE, Pin, envelopes_release_of, release_of
from docchain.chain.typed_data import Domain, recover
from docchain.chain.values import to_checksum_address, to_hex, utc_text


class Outcome(StrEnum):
    VALID = "valid"
    REVOKED = "revoked"
    NOT_REGISTERED = "not_registered"
    OTHER_SIGNERS = "other_signers"
    FILE_MISMATCH = "file_mismatch"
    INVALID = "invalid"


TITLES = {
    Outcome.VALID: "Valid",
    Outcome.REVOKED: "Revoked",
    Outcome.NOT_REGISTERED: "Not registered",
    Outcome.OTHER_SIGNERS: "Signed by others",
    Outcome.FILE_MISMATCH: "File mismatch",
    Outcome.INVALID: "Invalid",
}


# what a receipt-less "not registered" cannot rule out, in the words every interface says: a private
# registration's salted commitment, and on a registry that anchors roots a Merkle leaf, neither found by the file
MERKLE_NEEDS_RECEIPT = "a Merkle-anchored or private signature is verified with its receipt"
PRIVATE_NEEDS_RECEIPT = "a private signature is verified with its receipt"


class Step(StrEnum):
    """The named steps, in the order verification runs them (docs/protocol.md)."""

    RECEIPT = "receipt"  # the receipt is read (strictly) before verification: its failures are named here
    FILE = "file"
    COMMITMENT = "commitment"  # a private receipt: its salt opens the signed docHash for this file
    CHAIN = "chain"
    REGISTRY = "registry"
    SIGNATURE = "signature"
    RECORD = "record"
    ANCHOR = "anchor"
    CONFIRMATIONS = "confirmations"
    REVOCATION = "revocation"


@dataclass(frozen=True)
class Check:
    name: Step
    ok: bool
    detail: str


@dataclass(frozen=True)
class Trust:
    """Why the registry is believed: its code is a released docchain registry, and perhaps a pin."""

    registry: str
    sources: tuple[str, ...]
    detail: str


@dataclass(frozen=True)
class Via:
    """A released docchain contract that the anchoring transaction was sent to, and that called the registry
    (an envelopes contract's ``sign``): said, not required — the registry's own log is the proof."""

    address: str
    release: str  # the release's name in contracts/releases.json


@dataclass(frozen=True)
class Anchor:
    """Where and when the record is on chain, as read from the chain (never from the receipt)."""

    chain_id: int
    registry: str
    block_number: int
    block_hash: bytes | None  # None offline: a bundle proves the record's block number and time, not its hash
    tx_hash: bytes | None  # nor which transaction wrote it
    timestamp: int
    confirmations: int
    merkle_root: bytes | None = None  # a Merkle anchor: the root the transaction anchored, the leaf under it
    via: Via | None = None  # the transaction went through a released envelopes contract


@dataclass(frozen=True)
class Revoked:
    by: str
    block_number: int | None
    timestamp: int


@dataclass(frozen=True)
class OtherSigner:
    signer: str
    block_number: int
    timestamp: int


@dataclass(frozen=True)
class Superseder:
    """A newer document whose registrations name this one as the document they replace, with the signers whose
    registration counts (:func:`superseders`)."""

    doc_hash: bytes
    signers: tuple[str, ...]

    @property
    def text(self) -> str:
        return f"superseded by {to_hex(self.doc_hash)} (signed by {', '.join(self.signers)})"

    def to_json(self) -> dict[str, Any]:
        return {"docHash": to_hex(self.doc_hash), "signers": list(self.signers)}


@dataclass(frozen=True)
class SupersedeClaim:
    """A registration of ``doc_hash`` by ``signer`` naming ``supersedes`` as the document it replaces, and whether
    that registration is revoked now."""

    doc_hash: bytes
    signer: str
    supersedes: bytes
    revoked: bool


def superseders(old: bytes, old_signers: Collection[str], claims: Iterable[SupersedeClaim]) -> tuple[Superseder, ...]:
    """The documents that supersede ``old``, in the order of ``claims`` (the chain's): a claim counts when it names
    ``old``, is by one of ``old_signers`` (who have a registration of ``old``, revoked or not: a signer may revoke
    the old version as they replace it) and is not revoked. A claim by anyone else is ignored, since anyone can
    register any hash naming any document; so is a document naming itself."""
    signers = {s.lower() for s in old_signers}
    found: dict[bytes, list[str]] = {}
    for claim in claims:
        if claim.supersedes != old or claim.doc_hash == old or claim.revoked or claim.signer.lower() not in signers:
            continue
        who = found.setdefault(claim.doc_hash, [])
        if claim.signer not in who:
            who.append(claim.signer)
    return tuple(Superseder(doc, tuple(who)) for doc, who in found.items())


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    doc_hash: bytes
    signer: str | None
    steps: tuple[Check, ...]
    failed_step: Step | None = None
    reason: str | None = None
    trust: Trust | None = None
    anchor: Anchor | None = None
    revocation: Revoked | None = None
    other_signers: tuple[OtherSigner, ...] = ()
    # asked without a receipt of a registry that anchors Merkle roots: a Merkle-anchored signature, whose leaf
    # the chain does not hold, may exist unseen, and "not registered" says only what the chain shows
    merkle_unseen: bool = False
    # asked without a receipt: a private signature, registered under a salted commitment, may exist unseen
    private_unseen: bool = False
    # newer documents that replace this one (:func:`superseded_by`): information beside the outcome, which stays
    superseded: tuple[Superseder, ...] = ()
    superseded_unsearched: str | None = None  # why the chain could not be searched for them all, when it could not
    # an evidence bundle's block (chain/offline.py): what the verdict proves holds as of that block only
    as_of_block: int | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.VALID

    @property
    def title(self) -> str:
        return TITLES[self.outcome]

    @property
    def summary(self) -> str:
        """The one sentence every interface says for this verdict."""
        a, who = self.anchor, self.signer
        if self.outcome is Outcome.VALID and a is not None:
            tx = f", transaction {to_hex(a.tx_hash)}" if a.tx_hash is not None else ""
            signed = (
                f"Signed by {who} on {utc_text(a.timestamp)} (block {a.block_number}{tx}, chain {a.chain_id}, "
                f"registry {a.registry})"
            )
            if self.as_of_block is None:
                return f"{signed}."
            return (
                f"{signed}, valid as of block {self.as_of_block}: a revocation after that block is not in the bundle."
            )
        if self.outcome is Outcome.REVOKED and self.revocation is not None:
            r = self.revocation
            where = f"in block {r.block_number}" if r.block_number is not None else "on chain"
            return f"{who} revoked this signature {where} on {utc_text(r.timestamp)}."
        if self.outcome is Outcome.OTHER_SIGNERS:
            others = ", ".join(
                f"{o.signer} on {utc_text(o.timestamp)} (block {o.block_number})" for o in self.other_signers
            )
            return f"{who} has not signed this file; it was signed by {others}."
        if self.outcome is Outcome.NOT_REGISTERED:
            registry = self.trust.registry if self.trust else "the registry"
            by = f" by {who}" if who else ""
            said = f"No signature of this file{by} is recorded on chain in {registry}"
            if self.merkle_unseen:
                return f"{said}; {MERKLE_NEEDS_RECEIPT}."
            return f"{said}; {PRIVATE_NEEDS_RECEIPT}." if self.private_unseen else f"{said}."
        return f"Verification failed at step {self.failed_step}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        a, t, r = self.anchor, self.trust, self.revocation
        return {
            "outcome": self.outcome.value,
            "title": self.title,
            "summary": self.summary,
            "docHash": to_hex(self.doc_hash),
            "signer": self.signer,
            "failedStep": None if self.failed_step is None else self.failed_step.value,
            "reason": self.reason,
            "steps": [{"name": c.name.value, "ok": c.ok, "detail": c.detail} for c in self.steps],
            "trust": None if t is None else {"registry": t.registry, "sources": list(t.sources), "detail": t.detail},
            "anchor": None
            if a is None
            else {
                "chainId": a.chain_id,
                "registry": a.registry,
                "blockNumber": a.block_number,
                "blockHash": None if a.block_hash is None else to_hex(a.block_hash),
                "transactionHash": None if a.tx_hash is None else to_hex(a.tx_hash),
                "timestamp": a.timestamp,
                "confirmations": a.confirmations,
                "merkleRoot": None if a.merkle_root is None else to_hex(a.merkle_root),
                "via": None if a.via is None else {"address": a.via.address, "release": a.via.release},
            },
            "revocation": None if r is None else {"by": r.by, "blockNumber": r.block_number, "timestamp": r.timestamp},
            "otherSigners": [
                {"signer": o.signer, "blockNumber": o.block_number, "timestamp": o.timestamp}
                for o in self.other_signers
            ],
            "superseded_by": [x.to_json() for x in self.superseded],
            **({} if self.superseded_unsearched is None else {"superseded_by_unsearched": self.superseded_unsearched}),
            **({} if self.as_of_block is None else {"asOfBlock": self.as_of_block}),
        }


def receipt_refused(doc_hash: bytes, reason: str) -> Verdict:
    """The verdict for a receipt that the strict reader refused: it fails before any chain read."""
    return Verdict(
        Outcome.INVALID,
        doc_hash,
        None,
        (Check(Step.RECEIPT, False, reason),),
        failed_step=Step.RECEIPT,
        reason=reason,
    )


@dataclass(frozen=True)
class Question:
    """What is asked: does ``signer`` (or the receipt's signer) vouch for the document hashing to
    ``doc_hash``? Without signer and receipt: does anyone?"""

    doc_hash: bytes
    signer: str | None = None
    receipt: Receipt | None = None
    confirmations: int = 1


class Stop(Exception):
    """Ends a verification at the step that failed: :meth:`Checks.fail` records the step and makes one."""

    def __init__(self, outcome: Outcome, step: Step, reason: str) -> None:
        self.outcome, self.step, self.reason = outcome, step, reason


@dataclass(kw_only=True)
class Checks:
    """A verification under way, against a node (:func:`verify`) or offline (chain/offline.py): the steps checked
    so far and what they established, which its verdict says in the same words either way."""

    doc_hash: bytes
    signer: str | None
    steps: list[Check] = field(default_factory=list)
    trust: Trust | None = None
    anchor: Anchor | None = None
    revocation: Revoked | None = None
    others: tuple[OtherSigner, ...] = ()
    merkle_unseen: bool = False
    private_unseen: bool = False
    as_of_block: int | None = None

    def ok(self, step: Step, detail: str) -> None:
        self.steps.append(Check(step, True, detail))

    def fail(self, step: Step, reason: str, outcome: Outcome = Outcome.INVALID) -> Stop:
        self.steps.append(Check(step, False, reason))
        return Stop(outcome, step, reason)

    def verdict(self, stop: Stop | None = None) -> Verdict:
        """The verdict of the steps checked: valid when none stopped it."""
        return Verdict(
            Outcome.VALID if stop is None else stop.outcome,
            self.doc_hash,
            self.signer,
            tuple(self.steps),
            failed_step=None if stop is None else stop.step,
            reason=None if stop is None else stop.reason,
            trust=self.trust,
            anchor=self.anchor,
            revocation=self.revocation,
            other_signers=self.others,
            merkle_unseen=self.merkle_unseen,
            private_unseen=self.private_unseen,
            as_of_block=self.as_of_block,
        )


@dataclass
class _Run(Checks):
    reader: ChainReader
    question: Question
    unsearched: str | None = None  # why the node would not search the registry's events, when it would not


async def verify(
    reader: ChainReader,
    question: Question,
    *,
    pin: Pin | None = None,
    candidates: Sequence[str] | None = None,
) -> Verdict:
    """Verify ``question`` on the chain ``reader`` reads.

    ``pin`` is a registry the verifier trusts by its own choice; without a receipt it is the registry
    asked. ``candidates`` are the signers to try when the question names none (an index's answer); without
    them the chain's Registered events are read.
    """
    receipt = question.receipt
    if receipt is None and pin is None:
        raise InvalidInput("nothing says which registry to check: give a receipt or pin a registry")
    if receipt is not None and question.signer is not None and question.signer.lower() != receipt.signer.lower():
        return await _expected_not_the_receipts(reader, question, receipt, pin)
    if question.signer is not None or receipt is not None:
        return await _verify_one(reader, question, pin, question.signer or receipt.signer)  # type: ignore[union-attr]
    assert pin is not None
    if candidates is None:
        # a revoked Merkle leaf leaves a Revoked event and no Registered one: its signer is a candidate too
        head = await reader.head()
        start = pin.deploy_block or 0
        found = await _events(reader, pin.address, [REGISTERED_TOPIC, question.doc_hash], start, head.number)
        if found.refused is None:
            revoked = await _events(reader, pin.address, [REVOKED_TOPIC, question.doc_hash], start, head.number)
            found = _Search(found.events + revoked.events, revoked.refused)
        if found.refused is not None:
            return await _verify_one(reader, question, pin, None, unsearched=found.refused)
        candidates = list(dict.fromkeys(_signer_of(e) for e in found.events))
    verdicts = [await _verify_one(reader, question, pin, who) for who in candidates]
    if not verdicts:
        return await _verify_one(reader, question, pin, None)
    return next((v for v in verdicts if v.ok), verdicts[0])


async def _expected_not_the_receipts(
    reader: ChainReader, question: Question, receipt: Receipt, pin: Pin | None
) -> Verdict:
    """The expected signer is not the receipt's: the question stays about the expected signer, so that it
    gets the verdict it gets without the receipt. The receipt is verified first, as its own signer's: one
    that fails is the verdict (nothing it says can be relied on, its registry included). One that holds makes
    its registry the one asked, and its signer is among those the verdict names when the expected signer has
    no record: "signed by others", whether or not the receipt's signature is found by its events (a Merkle
    leaf is not)."""
    expected = question.signer
    assert expected is not None
    own = await _verify_one(reader, replace(question, signer=None), pin, receipt.signer)
    if own.outcome not in (Outcome.VALID, Outcome.REVOKED) or own.trust is None or own.anchor is None:
        return own
    asked = pin or Pin(own.anchor.chain_id, own.trust.registry, "the receipt's registry, verified")
    answer = await _verify_one(
        reader, Question(question.doc_hash, expected, None, question.confirmations), asked, expected
    )
    answer = replace(answer, trust=own.trust)
    if answer.outcome not in (Outcome.NOT_REGISTERED, Outcome.OTHER_SIGNERS):
        return answer
    theirs = OtherSigner(receipt.signer, own.anchor.block_number, own.anchor.timestamp)
    others = answer.other_signers + tuple(
        o for o in [theirs] if o.signer not in {x.signer for x in answer.other_signers}
    )
    reason = (
        f"{expected} has not signed {to_hex(question.doc_hash)}; the receipt, which verifies, is {receipt.signer}'s"
    )
    return replace(
        answer,
        outcome=Outcome.OTHER_SIGNERS,
        steps=(*answer.steps[:-1], Check(Step.RECORD, False, reason)),
        failed_step=Step.RECORD,
        reason=reason,
        other_signers=others,
    )


async def _verify_one(
    reader: ChainReader, question: Question, pin: Pin | None, signer: str | None, *, unsearched: str | None = None
) -> Verdict:
    run = _Run(reader, question, doc_hash=question.doc_hash, signer=signer, unsearched=unsearched)
    try:
        await _steps(run, pin)
    except Stop as stop:
        return run.verdict(stop)
    return run.verdict()


async def _steps(run: _Run, pin: Pin | None) -> None:
    q, receipt, reader = run.question, run.question.receipt, run.reader
    doc = to_hex(q.doc_hash)

    # file: the document is the one the receipt is for
    if receipt is not None:
        if receipt.sha256 != q.doc_hash:
            raise run.fail(
                Step.FILE,
                f"the file hashes to {doc}, the receipt is for {to_hex(receipt.sha256)}",
                Outcome.FILE_MISMATCH,
            )
        run.ok(Step.FILE, f"the file matches the receipt (SHA-256 {doc})")
        if receipt.private is not None:
            check_commitment(run, receipt)
            # the chain knows the record by its commitment only: every read from here on asks for that
            run.question = q = replace(q, doc_hash=receipt.doc_hash)
            doc = to_hex(q.doc_hash)
    else:
        run.ok(Step.FILE, f"document SHA-256 is {doc}")

    # chain: the node serves the receipt's chain
    chain_id = await reader.chain_id()
    if receipt is not None and receipt.domain.chain_id != chain_id:
        raise run.fail(
            Step.CHAIN, f"the receipt is for chain {receipt.domain.chain_id}, the node serves chain {chain_id}"
        )
    if pin is not None and pin.chain_id is not None and pin.chain_id != chain_id:
        raise run.fail(Step.CHAIN, f"the pinned registry is on chain {pin.chain_id}, the node serves chain {chain_id}")
    run.ok(Step.CHAIN, f"chain {chain_id}")
    head = await reader.head()

    # registry: genuine docchain code, the pinned address when there is a pin, its own EIP-712 domain
    registry = receipt.domain.verifying_contract if receipt is not None else pin.address  # type: ignore[union-attr]
    if pin is not None and pin.address != registry:
        raise run.fail(
            Step.REGISTRY,
            f"the receipt names registry {registry}, but the trusted registry on chain {chain_id} is {pin.address} "
            f"({pin.source})",
        )
    code = await reader.code(registry, head.number)
    if not code:
        raise run.fail(Step.REGISTRY, f"there is no contract at {registry} on chain {chain_id}")
    release = release_of(code)
    if release is None:
        raise run.fail(
            Step.REGISTRY,
            f"the contract at {registry} is not a docchain registry: its code matches no released registry",
        )
    if receipt is not None and receipt.merkle is not None and not release.anchors_roots:
        raise run.fail(
            Step.REGISTRY,
            f"the receipt is Merkle-anchored, but the registry at {registry} is {release.name}, which anchors no "
            f"Merkle roots (release {MERKLE_RELEASE} or later does)",
        )
    domain = Domain(chain_id=chain_id, verifying_contract=registry)
    separator = await _call(reader, registry, encode_call("DOMAIN_SEPARATOR"), head.number, "bytes32")
    if bytes(separator) != domain.separator:
        raise run.fail(Step.REGISTRY, f"the registry at {registry} answers another EIP-712 domain than its own")
    sources = ("code",) + (("pin",) if pin is not None else ())
    trusted_by = f"released code ({release.name})" + (f", pinned by {pin.source}" if pin is not None else "")
    run.trust = Trust(registry, sources, trusted_by)
    run.ok(Step.REGISTRY, f"{registry} is trusted: {trusted_by}")

    # signature: the receipt's signature is the signer's, by ECDSA or, for a contract, by ERC-1271
    if receipt is not None:
        await _signature(run, registry, domain, head)

    run.merkle_unseen = receipt is None and release.anchors_roots
    run.private_unseen = receipt is None
    signer = run.signer
    if signer is None and run.unsearched is not None:
        raise run.fail(
            Step.RECORD,
            f"who signed {doc} cannot be told: {run.unsearched}; name the expected signer or give the receipt",
        )
    if signer is None:
        unseen = (_MERKLE_UNSEEN if release.anchors_roots else "") + _PRIVATE_UNSEEN
        raise run.fail(Step.RECORD, f"no one has signed {doc} in registry {registry}{unseen}", Outcome.NOT_REGISTERED)

    if receipt is not None and receipt.merkle is not None:
        # record: the registry confirms the signed registration under the receipt's root
        record = await _merkle_record(run, registry, receipt, receipt.merkle, head)
        # anchor: the receipt's transaction anchored that root, in the block and at the time the registry says
        tx_hash, block = await _merkle_anchor(run, registry, receipt, receipt.merkle, record)
        root: bytes | None = receipt.merkle.root
        via = None
    else:
        # record: the registry holds (docHash, signer)
        raw = await _call(
            reader, registry, encode_call("recordOf", q.doc_hash, signer), head.number, "(uint48,uint48,uint48)"
        )
        record = Record(*raw)
        if record.revoked and not record.exists:
            await _revoked_leaf(run, registry, record, pin, head)
        if not record.exists:
            await _others(run, registry, pin, head)
            if run.others:
                raise run.fail(Step.RECORD, f"{signer} has not signed {doc}", Outcome.OTHER_SIGNERS)
            unseen = _MERKLE_UNSEEN if receipt is None and release.anchors_roots else ""
            unseen += _PRIVATE_UNSEEN if receipt is None else ""
            if run.unsearched is not None:
                unseen += f"; whether others signed it is not known: {run.unsearched}"
            raise run.fail(
                Step.RECORD, f"no record of {signer} signing {doc} in {registry}{unseen}", Outcome.NOT_REGISTERED
            )
        run.ok(Step.RECORD, f"recorded in block {record.block_number} at {_utc(record.registered_at)}")
        # anchor: transaction, block, time and record agree, all read from the chain
        tx_hash, block, via = await _anchor(run, registry, record, head)
        root = None

    confirmations = max(0, head.number - block.number + 1)
    run.anchor = Anchor(
        chain_id, registry, block.number, block.hash, tx_hash, block.timestamp, confirmations, root, via
    )
    did = "" if root is None else f" anchored root {to_hex(root)}"
    where = f"in block {block.number} ({to_hex(block.hash)}) at {_utc(block.timestamp)}"
    through = "" if via is None else f", sent through {via.release} at {via.address}"
    run.ok(Step.ANCHOR, f"transaction {to_hex(tx_hash)}{did} {where}{through}")

    # confirmations: computed from the head, never read from the receipt
    detail = f"{confirmations} confirmation(s), {q.confirmations} required"
    if confirmations < q.confirmations:
        raise run.fail(Step.CONFIRMATIONS, detail)
    run.ok(Step.CONFIRMATIONS, detail)

    # revocation
    if record.revoked:
        events = await reader.logs(
            registry, [REVOKED_TOPIC, q.doc_hash, _word(signer)], record.block_number, head.number
        )
        revoked_in = events[0].block_number if events else None
        run.revocation = Revoked(signer, revoked_in, record.revoked_at)
        where = f"in block {revoked_in} " if revoked_in is not None else ""
        raise run.fail(Step.REVOCATION, f"revoked by {signer} {where}at {_utc(record.revoked_at)}", Outcome.REVOKED)
    run.ok(Step.REVOCATION, "not revoked")


def check_commitment(run: Checks, receipt: Receipt) -> None:
    """The ``commitment`` step of a private receipt (online and offline alike): keccak256 of the document's
    SHA-256 and the receipt's salt is the docHash its signer signed."""
    private = receipt.private
    assert private is not None
    opened = private.commitment
    if opened != receipt.doc_hash:
        raise run.fail(
            Step.COMMITMENT,
            f"keccak256(sha256 || salt) is {to_hex(opened)}, not the signed docHash {to_hex(receipt.doc_hash)}: the "
            "receipt's salt does not open this registration's commitment",
        )
    run.ok(
        Step.COMMITMENT,
        f"keccak256(sha256 || salt) is the signed docHash {to_hex(receipt.doc_hash)} (a private registration: the "
        "chain holds this commitment, not the file's SHA-256)",
    )


async def _revoked_leaf(run: _Run, registry: str, record: Record, pin: Pin | None, head: Block) -> None:
    """A revocation beside no registration: the registry records a Merkle leaf's revocation under the
    (docHash, signer) key only after checking the leaf's inclusion under an anchored root, so the signer did
    sign and revoked, whether or not a receipt is at hand. Its block is the Revoked event's, when the node
    searches for it."""
    q, signer = run.question, run.signer
    assert signer is not None
    start = pin.deploy_block if pin is not None and pin.address == registry and pin.deploy_block else 0
    found = await _events(run.reader, registry, [REVOKED_TOPIC, q.doc_hash, _word(signer)], start, head.number)
    revoked_in = found.events[-1].block_number if found.events else None
    run.revocation = Revoked(signer, revoked_in, record.revoked_at)
    run.ok(
        Step.RECORD,
        f"{signer}'s signature of {to_hex(q.doc_hash)} was Merkle-anchored (the chain holds its tree's root) and "
        f"its revocation is recorded in {registry}",
    )
    where = f"in block {revoked_in} " if revoked_in is not None else ""
    raise run.fail(Step.REVOCATION, f"revoked by {signer} {where}at {_utc(record.revoked_at)}", Outcome.REVOKED)


async def _signature(run: _Run, registry: str, domain: Domain, head: Block) -> None:
    receipt = run.question.receipt
    # verify() asks another expected signer's question apart (_expected_not_the_receipts)
    assert receipt is not None and run.signer == receipt.signer
    # at the anchoring block: an account's code then decides how its signature was checked on chain
    at = min(receipt.block_number, head.number)
    if await run.reader.code(receipt.signer, at):
        data = encode_call("isValidRegistration", receipt.registration.as_tuple(), receipt.signature)
        try:
            valid = await _call(run.reader, registry, data, at, "bool")
        except ChainError as exc:
            raise run.fail(Step.SIGNATURE, f"the contract wallet {receipt.signer} could not check it: {exc}") from None
        if not valid:
            raise run.fail(Step.SIGNATURE, f"the contract wallet {receipt.signer} rejects the signature (ERC-1271)")
        run.ok(Step.SIGNATURE, f"the contract wallet {receipt.signer} accepts the signature (ERC-1271)")
        return
    try:
        recovered = recover(domain, receipt.registration, receipt.signature)
    except InvalidInput as exc:
        raise run.fail(Step.SIGNATURE, f"not a valid ECDSA signature of {receipt.signer}: {exc}") from None
    if recovered != receipt.signer:
        raise run.fail(Step.SIGNATURE, f"the signature recovers {recovered}, not the signer {receipt.signer}")
    run.ok(Step.SIGNATURE, f"EIP-712 signature recovers {receipt.signer} (ECDSA, low s)")


async def _anchor(run: _Run, registry: str, record: Record, head: Block) -> tuple[bytes, Block, Via | None]:
    """The transaction and block that recorded ``record``, checked against the receipt when there is one, and
    the released envelopes contract the receipt's transaction went through, when it did."""
    q, receipt, reader = run.question, run.question.receipt, run.reader
    signer = run.signer
    assert signer is not None
    if receipt is None:
        events = await reader.logs(
            registry, [REGISTERED_TOPIC, q.doc_hash, _word(signer)], record.block_number, record.block_number
        )
        if not events:
            raise run.fail(Step.ANCHOR, f"no Registered event of this record in block {record.block_number}")
        event = events[0]
        block = await reader.block(record.block_number)
        if block is None or block.hash != event.block_hash:
            raise run.fail(Step.ANCHOR, f"block {record.block_number} changed while it was read (reorganised?)")
        if block.timestamp != record.registered_at:
            raise run.fail(Step.ANCHOR, f"the record's time {record.registered_at} is not block {block.number}'s")
        return event.tx_hash, block, None

    tx = to_hex(receipt.tx_hash)
    # Whichever contract the transaction was sent to (the registry, an envelopes contract calling its register, a
    # multisig), the registry's own Registered log in it proves the record: the registry is trusted by its code,
    # and it emits that log only for a registration whose signature it checked. The receipt carries the signature
    # itself (checked at step signature), so nothing here needs the calldata the transaction was sent with.
    found = await _mined_tx(run, receipt)
    logs = await reader.logs(registry, [REGISTERED_TOPIC, q.doc_hash, _word(signer)], block_hash=found.block_hash)
    recorded = next(
        (e for e in logs if e.tx_hash == receipt.tx_hash and _is_registered(e, registry, q.doc_hash, signer)), None
    )
    if recorded is None:
        raise run.fail(Step.ANCHOR, f"transaction {tx} did not record {to_hex(q.doc_hash)} by {signer}")
    reg = receipt.registration
    if recorded.data[:64] != reg.metadata_hash + reg.supersedes:
        raise run.fail(Step.ANCHOR, f"transaction {tx} recorded another metadataHash or supersedes than the receipt's")
    block = await _receipt_block(run, receipt)
    if (record.block_number, record.registered_at) != (block.number, block.timestamp):
        raise run.fail(
            Step.ANCHOR,
            f"the registry records block {record.block_number} at {_utc(record.registered_at)}, not the receipt's "
            f"block {block.number}",
        )
    return receipt.tx_hash, block, await _via(reader, registry, found)


async def _via(reader: ChainReader, registry: str, tx: TxReceipt) -> Via | None:
    """The released envelopes contract ``tx`` was sent to, if it was sent to one (its code when it ran)."""
    if tx.to is None or tx.to == registry:
        return None
    release = envelopes_release_of(await reader.code(tx.to, tx.block_number))
    return None if release is None else Via(tx.to, release.name)


# The chain holds a Merkle tree's root, never its leaves: only the leaf's receipt (its proof) can show it.
_MERKLE_UNSEEN = " (a Merkle-anchored signature is verified with its receipt only: the chain holds its tree's root)"
# A private registration's docHash is a salted commitment that the file alone cannot find.
_PRIVATE_UNSEEN = (
    "; a private signature is verified with its receipt (the chain holds a salted commitment, not the file's hash)"
)


async def _merkle_record(run: _Run, registry: str, receipt: Receipt, inclusion: InclusionProof, head: Block) -> Record:
    """The registry's record of a Merkle-anchored registration: the root's anchoring and the revocation of
    (docHash, signer), once ``verifyMerkleRegistration`` has confirmed the leaf under the root and its
    signature. The proof is checked here first, so that a leaf off the tree is said as such, with its hashes."""
    leaf = merkle.leaf(receipt.registration, receipt.signature)
    root = to_hex(inclusion.root)
    if not inclusion.verifies(leaf):
        raise run.fail(
            Step.RECORD,
            f"the receipt's registration (leaf {to_hex(leaf)}) is not in the tree of root {root}: its proof leads "
            f"to {to_hex(merkle.process_proof(leaf, inclusion.proof))}",
        )
    data = encode_call(
        "verifyMerkleRegistration",
        inclusion.root,
        receipt.registration.as_tuple(),
        receipt.signature,
        list(inclusion.proof),
    )
    try:
        raw = await _call(run.reader, registry, data, head.number, "(uint48,uint48,uint48)")
    except RpcError as exc:
        revert = None if exc.revert_data is None else decode_revert(exc.revert_data)
        if revert is None:
            raise
        outcome, reason = _merkle_refusal(revert, leaf, root, registry)
        raise run.fail(Step.RECORD, reason, outcome) from None
    record = Record(*raw)
    run.ok(
        Step.RECORD,
        f"leaf {to_hex(leaf)} (leafIndex {inclusion.index} of {inclusion.count} leaves) is under root {root}, "
        f"anchored in block {record.block_number} at {_utc(record.registered_at)}; the registry accepts its signature",
    )
    return record


def _merkle_refusal(revert: ContractRevert, leaf: bytes, root: str, registry: str) -> tuple[Outcome, str]:
    """What ``verifyMerkleRegistration``'s revert means for the verdict."""
    if revert.name == "RootNotAnchored":
        return Outcome.NOT_REGISTERED, f"root {root} is not anchored in registry {registry}"
    if revert.name == "NotInTree":
        return Outcome.INVALID, f"the registry does not find leaf {to_hex(leaf)} in the tree of root {root}"
    if revert.name == "ExpiredSignature":
        (deadline,) = revert.args_
        return Outcome.INVALID, f"the signature's deadline {deadline} had passed when root {root} was anchored"
    if revert.name == "InvalidSignature":
        return Outcome.INVALID, f"the registry refuses the signature of the registration under root {root}"
    return Outcome.INVALID, f"the registry refuses the registration under root {root}: {revert}"


async def _merkle_anchor(
    run: _Run, registry: str, receipt: Receipt, inclusion: InclusionProof, record: Record
) -> tuple[bytes, Block]:
    """The receipt's transaction and block, checked to be those that anchored the receipt's root."""
    tx, root = to_hex(receipt.tx_hash), to_hex(inclusion.root)
    # A root is anchored by a relayer's own anchorRoot call: no released contract anchors roots on another's
    # behalf, so this transaction is held to the registry (a direct record's is not, see _anchor).
    found = await _mined_tx(run, receipt, sent_to=registry)
    logs = await run.reader.logs(registry, [ROOT_ANCHORED_TOPIC, inclusion.root], block_hash=found.block_hash)
    anchored = next(
        (e for e in logs if e.tx_hash == receipt.tx_hash and _is_root_anchored(e, registry, inclusion.root)), None
    )
    if anchored is None:
        raise run.fail(Step.ANCHOR, f"transaction {tx} did not anchor root {root}")
    leaf_count = int.from_bytes(anchored.data[:32], "big")
    if leaf_count != inclusion.count:
        raise run.fail(
            Step.ANCHOR,
            f"transaction {tx} anchored root {root} as a tree of {leaf_count} leaves, the receipt says "
            f"{inclusion.count}",
        )
    block = await _receipt_block(run, receipt)
    if (record.block_number, record.registered_at) != (block.number, block.timestamp):
        raise run.fail(
            Step.ANCHOR,
            f"the registry anchored root {root} in block {record.block_number} at {_utc(record.registered_at)}, "
            f"not in the receipt's block {block.number}",
        )
    return receipt.tx_hash, block


async def _mined_tx(run: _Run, receipt: Receipt, *, sent_to: str | None = None) -> TxReceipt:
    """The receipt's transaction, which succeeded and is in the receipt's block (and was sent to ``sent_to``)."""
    tx = to_hex(receipt.tx_hash)
    found = await run.reader.receipt(receipt.tx_hash)
    if found is None:
        raise run.fail(Step.ANCHOR, f"transaction {tx} is not known to the node")
    if found.status != 1:
        raise run.fail(Step.ANCHOR, f"transaction {tx} failed on chain")
    if sent_to is not None and found.to != sent_to:
        raise run.fail(Step.ANCHOR, f"transaction {tx} was sent to {found.to}, not to the registry {sent_to}")
    if (found.block_number, found.block_hash) != (receipt.block_number, receipt.block_hash):
        raise run.fail(
            Step.ANCHOR,
            f"transaction {tx} is in block {found.block_number} ({to_hex(found.block_hash)}), the receipt says "
            f"block {receipt.block_number} ({to_hex(receipt.block_hash)})",
        )
    return found


async def _receipt_block(run: _Run, receipt: Receipt) -> Block:
    """The receipt's block, canonical on this chain and of the receipt's time."""
    block = await run.reader.block(receipt.block_number)
    if block is None or block.hash != receipt.block_hash:
        canonical = "no block" if block is None else to_hex(block.hash)
        raise run.fail(
            Step.ANCHOR,
            f"block {receipt.block_number} is {canonical} on this chain, the receipt says {to_hex(receipt.block_hash)}",
        )
    if block.timestamp != receipt.timestamp:
        raise run.fail(
            Step.ANCHOR,
            f"block {block.number}'s time is {_utc(block.timestamp)}, the receipt says {_utc(receipt.timestamp)}",
        )
    return block


async def _others(run: _Run, registry: str, pin: Pin | None, head: Block) -> None:
    """Who else signed the document, when the expected signer did not."""
    q = run.question
    start = pin.deploy_block if pin is not None and pin.address == registry and pin.deploy_block else 0
    found = await _events(run.reader, registry, [REGISTERED_TOPIC, q.doc_hash], start, head.number)
    run.unsearched = found.refused
    others = []
    for who in dict.fromkeys(_signer_of(e) for e in found.events):
        if who == run.signer:
            continue
        raw = await _call(
            run.reader, registry, encode_call("recordOf", q.doc_hash, who), head.number, "(uint48,uint48,uint48)"
        )
        record = Record(*raw)
        if record.exists:
            others.append(OtherSigner(who, record.block_number, record.registered_at))
    run.others = tuple(others)


async def superseded_by(reader: ChainReader, verdict: Verdict, pin: Pin | None = None) -> Verdict:
    """``verdict`` with the documents that supersede its document, read from the chain (:func:`superseders`'
    rule): the registry's Registered events by each signer of the document, whose data (not a topic) holds the
    ``supersedes`` each names, from the pin's deployment block in windows the node accepts; then each one's
    record, to leave out the revoked. Nothing is read when the registry was not trusted; the outcome is kept."""
    if verdict.trust is None:
        return verdict
    registry, old = verdict.trust.registry, verdict.doc_hash
    start = pin.deploy_block if pin is not None and pin.address == registry and pin.deploy_block else 0
    head = await reader.head()
    signed = await _events(reader, registry, [REGISTERED_TOPIC, old], start, head.number)
    old_signers = [_signer_of(e) for e in signed.events if _is_registered(e, registry, old, _signer_of(e))]
    # a Merkle leaf's or a private commitment's signer is found by its receipt only, as the verdict found them
    if verdict.anchor is not None and verdict.signer is not None:
        old_signers.append(verdict.signer)
    old_signers += [o.signer for o in verdict.other_signers]
    refused = signed.refused
    claims: list[SupersedeClaim] = []
    for signer in dict.fromkeys(old_signers):
        found = await _events(reader, registry, [REGISTERED_TOPIC, None, _word(signer)], start, head.number)
        refused = refused or found.refused
        for event in found.events:
            new = event.topics[1] if len(event.topics) == 3 else b""
            if not _is_registered(event, registry, new, signer) or event.data[32:64] != old or new == old:
                continue
            raw = await _call(
                reader, registry, encode_call("recordOf", new, signer), head.number, "(uint48,uint48,uint48)"
            )
            record = Record(*raw)
            claims.append(SupersedeClaim(new, signer, old, record.revoked or not record.exists))
    return replace(verdict, superseded=superseders(old, old_signers, claims), superseded_unsearched=refused)


# Public nodes cap eth_getLogs' block range (10,000 blocks, or 2,000, or fewer) and say so with an error. A
# search the node refuses is narrowed, a quarter each time, and run back from the head in windows of the width
# it accepts, within a bounded number of requests: without a known deploy block a registry's events may lie
# anywhere since genesis, and past the bound the verdict says the search was refused rather than failing.
MAX_LOG_REQUESTS = 64
NARROWING = 4


@dataclass(frozen=True)
class _Search:
    events: tuple[Log, ...]
    refused: str | None = None  # why the node would not search the whole range, when it would not


async def _events(reader: ChainReader, registry: str, topics: list[bytes | None], start: int, head: int) -> _Search:
    """The events of ``registry`` matching ``topics`` from ``start`` to ``head``."""
    events: list[Log] = []
    width, to, requests = head - start + 1, head, 0
    while to >= start:
        if requests == MAX_LOG_REQUESTS:
            return _Search(
                tuple(events),
                f"the node answers eth_getLogs over at most ~{width} blocks, too few to search blocks {start} to "
                f"{head} in {MAX_LOG_REQUESTS} requests (pin the registry with its deploy block)",
            )
        requests += 1
        low = max(start, to - width + 1)
        try:
            events[:0] = await reader.logs(registry, topics, low, to)
        except RpcError as exc:
            if width == 1:
                return _Search(tuple(events), f"the node refuses eth_getLogs ({exc.message:.200})")
            width = max(1, width // NARROWING)
            continue
        to = low - 1
    return _Search(tuple(events))


async def _call(reader: ChainReader, to: str, data: bytes, block: int, out_type: str) -> Any:
    result = await reader.call(to, data, block)
    try:
        (value,) = abi_decode([out_type], result)
    except Exception as exc:  # eth_abi raises several unrelated types for short or malformed data
        raise ChainError(f"the contract at {to} answered malformed data") from exc
    return value


def _word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _signer_of(event: Log) -> str:
    return to_checksum_address(event.topics[2][12:])


def _is_registered(event: Log, registry: str, doc_hash: bytes, signer: str) -> bool:
    return (
        event.address == registry
        and len(event.topics) == 3
        and event.topics[0] == REGISTERED_TOPIC
        and event.topics[1] == doc_hash
        and event.topics[2] == _word(signer)
        and len(event.data) >= 64
    )


def _is_root_anchored(event: Log, registry: str, root: bytes) -> bool:
    return (
        event.address == registry
        and len(event.topics) == 3
        and event.topics[0] == ROOT_ANCHORED_TOPIC
        and event.topics[1] == root
        and len(event.data) >= 32
    )


def _utc(timestamp: int) -> str:
    """A block timestamp for people, with the raw value a script can match."""
    return f"{utc_text(timestamp)} (unix {timestamp})"
