"""``docchain envelope``: multi-party signing on chain (contracts/DocumentEnvelopes.sol), straight through a node.

Every command signs locally and sends its transaction from the key's own account, as ``submit --direct`` does
(the key pays gas; no API). The envelopes contract is the one recorded beside the registry in the data dir for
the node's chain (``docchain up`` / ``docchain deploy`` record it), or ``--envelopes``. A command that names
a FILE finds its envelope from the contract's ``EnvelopeCreated`` events (the document's hash is an indexed
topic), so a signer needs nothing from the requester but the file; ``--id`` picks one when several match.

Every refusal of the contract is one line naming the rule: exit 1 for a rule the envelope enforces (out of
order, past its deadline, not a named signer, declined, voided, complete), exit 2 for input this command
checks before sending anything (addresses, deadlines, an id of another document).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from docchain.chain.errors import ContractRevert, InvalidInput
from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents, receipts
from docchain.client.context import CliContext
from docchain.client.errors import CliError, ExitCode, UsageError
from docchain.client.options import ForceOpt, KeyOpt, PasswordFileOpt, command, examples, new_app
from docchain.client.output import short, when, when_short

if TYPE_CHECKING:
    from web3 import Web3
    from web3.types import TxReceipt

    # chain/envelopes.py brings eth_abi (a quarter second): the commands that use it import it, not every start
    from docchain.chain import envelopes as env
    from docchain.chain.envelopes_contract import Envelopes
    from docchain.chain.registry import Registry
    from docchain.client.keys import SigningKey

app = new_app(
    "Multi-party signing: envelopes naming a document's signers, their order and deadline, on chain. Each "
    "command sends its transaction from your key's account through the node (--rpc), as `submit --direct` does.",
    epilog=examples(
        "docchain envelope create deal.pdf --signer 0xA11… --signer 0xB0B… --ordered",
        "docchain envelope sign deal.pdf --key alice",
        "docchain envelope status deal.pdf",
        'docchain envelope decline deal.pdf --reason "clause 4" --key bob',
    ),
)

# How long a signed request, decline or void may wait to be mined (a relayer may hold it during an outage).
MESSAGE_DEADLINE_S = documents.DEFAULT_DEADLINE_S

EnvelopesOpt = Annotated[
    str | None,
    typer.Option(
        "--envelopes",
        envvar="DOCCHAIN_ENVELOPES",
        metavar="ADDRESS",
        help="Envelopes contract [default: the one recorded beside the registry in the data dir for the chain].",
    ),
]
IdOpt = Annotated[
    str | None,
    typer.Option(
        "--id",
        envvar="DOCCHAIN_ENVELOPE_ID",
        metavar="ID",
        help="The envelope's 0x id [default: the document's only envelope that applies].",
    ),
]
ReasonOpt = Annotated[
    str | None,
    typer.Option(
        "--reason",
        envvar="DOCCHAIN_ENVELOPE_REASON",
        metavar="TEXT",
        help="Why; only its keccak256 goes on chain (keep the text to show it matches).",
    ),
]
Target = Annotated[str, typer.Argument(metavar="FILE|HASH", help="The document, or its 0x SHA-256.")]


# ---------------------------------------------------------------------------------------------- refusals


class EnvelopeRefused(CliError):
    """The envelopes contract (or the registry behind it) refused the call: a rule of the envelope."""

    code = ExitCode.VERIFICATION_FAILED


def _id(value: object) -> str:
    return to_hex(value) if isinstance(value, bytes) else str(value)


# Each custom error of DocumentEnvelopes (and of the registry, which ``sign`` passes through): its line, and
# whether it is input this command should have caught (exit 2) rather than a rule of the envelope (exit 1).
_REFUSALS: dict[str, tuple[str, bool]] = {
    "InvalidEnvelopeSignature": ("the signature is not {1}'s valid signature for envelope {0}", False),
    "InvalidSignature": ("the registration's signature is not {1}'s valid signature of {0}", False),
    "ExpiredSignature": ("the signed message's deadline {0:time} has passed", False),
    "BadSignerCount": ("an envelope names 1 to {1} signers, not {0}", True),
    "ZeroAddressSigner": ("signer {0:position} is the zero address", True),
    "DuplicateSigner": ("signer {0} is named twice", True),
    "UnknownEnvelope": ("no envelope has the id {0}", False),
    "WrongDocument": ("envelope {0} is of another document than {1}", True),
    "NotASigner": ("{1} is not one of envelope {0}'s signers", False),
    "AlreadySigned": ("{1}'s signature already counts toward envelope {0}", False),
    "OutOfOrder": ("envelope {0} is ordered: {2} signs before {1}", False),
    "ExpiredEnvelope": ("envelope {0}'s deadline {1:time} has passed", False),
    "DeclinedEnvelope": ("envelope {0} was declined by {1}", False),
    "VoidedEnvelope": ("envelope {0} was voided by its requester", False),
    "CompletedEnvelope": ("envelope {0} is complete already", False),
    "NoRegistration": (
        "the registry holds no registration of envelope {0}'s document by {1}: "
        "sign with `docchain envelope sign` (or `docchain submit --direct`) first",
        False,
    ),
    "RevokedRegistration": ("{1} revoked their registration of envelope {0}'s document: it cannot count", False),
    "EnvelopeExists": ("envelope {0} exists already: this very request was submitted before", False),
    "NotARegistry": ("{0} is no registry (no code there)", True),
}
_FIELD = re.compile(r"\{(\d)(?::(time|position))?\}")


def refusal(exc: ContractRevert) -> CliError:
    """The contract's custom error ``exc`` as the CLI's one line and exit status."""
    known = _REFUSALS.get(exc.name)
    if known is None:
        return EnvelopeRefused(f"the envelopes contract refused the call: {exc}")
    template, bad_input = known

    def field(match: re.Match[str]) -> str:
        value = exc.args_[int(match.group(1))]
        if match.group(2) == "time":
            return when(int(str(value)))
        if match.group(2) == "position":
            return str(int(str(value)) + 1)
        return _id(value)

    message = f"refused ({exc.name}): " + _FIELD.sub(field, template)
    return UsageError(message) if bad_input else EnvelopeRefused(message)


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except ContractRevert as exc:
        raise refusal(exc) from exc


# ---------------------------------------------------------------------------------------------- deadlines

_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Deadline:
    """``--deadline`` as given: a Unix time, or a duration counted from :meth:`Chain.next_block_time` (the
    contract compares with ``block.timestamp``, which need not be this machine's clock)."""

    at: int | None = None
    after_s: int | None = None

    def resolve(self, chain_now: int) -> int:
        return self.at if self.at is not None else chain_now + int(self.after_s or 0)


def parse_deadline(text: str | None) -> Deadline | None:
    """``7d``, ``48h``, ``30m``, ``90s``, ``2w``; or an ISO 8601 time (``2027-01-31T17:00:00Z``; without a zone,
    UTC; a date alone is its midnight UTC). Usage error (exit 2) otherwise."""
    from docchain.chain import envelopes as env

    if text is None:
        return None
    value = text.strip()
    duration = _DURATION.match(value.lower())
    if duration:
        seconds = int(duration.group(1)) * _UNIT_S[duration.group(2)]
        if seconds <= 0:
            raise UsageError(f"--deadline {text!r}: a duration must be positive")
        return Deadline(after_s=seconds)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--deadline {text!r} is neither a duration (90s, 30m, 48h, 7d, 2w) nor an ISO 8601 time "
            "(2027-01-31T17:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    at = int(moment.timestamp())
    if not 0 < at <= env.MAX_DEADLINE:
        raise UsageError(f"--deadline {text!r} is out of range")
    return Deadline(at=at)


def _reason_hash(reason: str | None) -> bytes:
    from docchain.chain import envelopes as env

    return env.reason_hash(reason)


# ---------------------------------------------------------------------------------------------- the chain


@dataclass(frozen=True)
class Chain:
    """The node and the contracts one command talks to; ``from_block`` is where envelope logs can start."""

    w3: Web3
    envelopes: Envelopes
    registry: Registry
    from_block: int

    def now(self) -> int:
        """The latest block's time: what the contract's deadlines are compared with."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def next_block_time(self) -> int:
        """The earliest time the next block can carry: the later of the latest block's time and this machine's
        clock. A dev node mines a block only when a transaction comes, so its latest block may be long past, and a
        deadline counted from it would end early (or before the envelope's own block)."""
        return max(self.now(), int(time.time()))


def _connect(c: CliContext, address: str | None, key: SigningKey | None = None) -> Chain:
    from docchain.chain import deploy
    from docchain.chain.envelopes_contract import Envelopes
    from docchain.chain.registry import Registry
    from docchain.chain.sender import TxSender
    from docchain.client import rpc as rpc_mod

    flag = parse_address(address, "--envelopes") if address else None
    w3 = rpc_mod.connect(c.rpc_url(), c.timeout_s())  # the node answers before a password is asked
    chain_id = int(w3.eth.chain_id)
    if flag is None:
        flag = deploy.lookup_envelopes(c.data_path, chain_id).address
    recorded = deploy.read_all(c.data_path).get(chain_id)
    # no envelope event is older than the contract: log scans start at its recorded deployment, when known
    known = None if recorded is None else recorded.envelopes
    from_block = known.block_number if known is not None and known.address == flag else 0
    sender = None
    if key is not None:
        private = key.unlock()
        sender = TxSender(w3, private)
        if int(w3.eth.get_balance(parse_address(sender.address))) == 0:
            raise UsageError(
                f"{sender.address} has no ether on chain {chain_id} to pay gas: send it some first (on a local "
                "anvil, the JSON-RPC method anvil_setBalance), or go through the API, whose relayer pays"
            )
    envelopes = Envelopes(w3, flag, sender)
    return Chain(w3, envelopes, Registry(w3, envelopes.registry()), from_block)


# Which of a document's envelopes a command may act on: those naming the key as a signer, those it requested, any.
Applies = Literal["signer", "requester", "any"]


@dataclass(frozen=True)
class Found:
    """An envelope of the document: its creation event and its state now."""

    created: env.EnvelopeCreated
    state: env.EnvelopeState

    @property
    def id(self) -> bytes:
        return self.created.envelope_id


def _find(chain: Chain, doc_hash: bytes, wanted: bytes | None, applies: Applies, *, who: str | None = None) -> Found:
    """The envelope a command acts on: ``wanted`` (``--id``), else the document's envelope that ``applies``
    (``signer``: names ``who``; ``requester``: created by ``who``; ``any``): its open one, else its latest.
    Exit 1 when none applies; exit 2 when ``--id`` is another document's or several are open."""
    from docchain.chain import envelopes as env

    if wanted is not None:
        events = chain.envelopes.events(chain.from_block, envelope=wanted)
        first = next((e for e in events if isinstance(e, env.EnvelopeCreated)), None)
        if first is None:
            raise EnvelopeRefused(f"no envelope has the id {to_hex(wanted)}")
        if first.doc_hash != doc_hash:
            raise UsageError(f"envelope {to_hex(wanted)} is of document {to_hex(first.doc_hash)}, not this one")
        return Found(first, chain.envelopes.state(wanted))
    candidates = [
        e
        for e in chain.envelopes.created_for(doc_hash, chain.from_block)
        if applies == "any"
        or (applies == "signer" and who in e.signers)
        or (applies == "requester" and e.requester == who)
    ]
    if not candidates:
        whose = {"signer": f" naming {who}", "requester": f" created by {who}"}.get(applies, "")
        raise EnvelopeRefused(f"no envelope of document {to_hex(doc_hash)}{whose}")
    found = [Found(e, chain.envelopes.state(e.envelope_id)) for e in candidates]
    open_ = [f for f in found if f.state.status == env.Status.OPEN]
    if len(open_) > 1 and applies != "any":
        ids = ", ".join(to_hex(f.id) for f in open_)
        raise UsageError(f"the document has {len(open_)} open envelopes; pick one with --id ({ids})")
    # none open: the latest, whose refusal (expired, declined, voided, complete) is the answer
    return (open_ or found)[-1]


def _tx(receipt: TxReceipt) -> dict[str, Any]:
    return {
        "txHash": to_hex(bytes(receipt["transactionHash"])),
        "blockNumber": int(receipt["blockNumber"]),
        "gasUsed": int(receipt["gasUsed"]),  # paid by the key's account
    }


def _completed_in(chain: Chain, receipt: TxReceipt) -> int | None:
    from docchain.chain import envelopes as env

    done = [e for e in chain.envelopes.events_in(receipt) if isinstance(e, env.EnvelopeCompleted)]
    return done[0].block_number if done else None


# ---------------------------------------------------------------------------------------------- commands


@command(
    app,
    "create",
    globals_used=("rpc", "data_dir", "timeout"),
    examples_=[
        "docchain envelope create deal.pdf --signer 0xA11… --signer 0xB0B… --ordered",
        "docchain envelope create deal.pdf --signer 0xA11… --deadline 7d --json",
        "docchain envelope create deal.pdf --signer 0xA11… --deadline 2027-01-31T17:00Z",
    ],
)
def create(
    ctx: typer.Context,
    target: Target,
    signers: Annotated[
        list[str],
        typer.Option(
            "--signer",
            envvar="DOCCHAIN_ENVELOPE_SIGNERS",
            metavar="ADDRESS",
            help="A required signer (repeat, in order; 1 to 16).",
            show_default=False,
        ),
    ],
    ordered: Annotated[
        bool,
        typer.Option("--ordered", envvar="DOCCHAIN_ENVELOPE_ORDERED", help="Signers sign in the order given."),
    ] = False,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            envvar="DOCCHAIN_ENVELOPE_DEADLINE",
            metavar="ISO|DURATION",
            help="No signature counts after it: 2027-01-31T17:00:00Z, or 7d / 48h / 30m from the chain's "
            "latest block [default: none].",
        ),
    ] = None,
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    envelopes: EnvelopesOpt = None,
) -> None:
    """Ask for signatures: an envelope naming FILE's required signers, created by your signed request.

    You sign an EIP-712 EnvelopeRequest and send it from your key's account (you pay gas). The
    envelope's id is the request's digest; signers find it from the file alone.
    """
    from docchain.chain import envelopes as env

    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    named = tuple(parse_address(s, f"--signer {s}") for s in signers)
    until = parse_deadline(deadline)
    signing = c.signing_key(key, password_file)
    # the signers checked before any network call; the deadlines need the chain's time, so they are checked at
    # time 0 here (no deadline has passed) and again below
    preview = env.EnvelopeRequest(doc_hash, signing.address, named, ordered, 0, env.new_salt(), 0)
    try:
        env.check_request(preview, 0)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    chain = _connect(c, envelopes, signing)
    now = chain.next_block_time()
    request = env.EnvelopeRequest(
        doc_hash=doc_hash,
        requester=signing.address,
        signers=named,
        ordered=ordered,
        deadline=0 if until is None else until.resolve(now),
        salt=preview.salt,
        request_deadline=now + MESSAGE_DEADLINE_S,
    )
    try:
        env.check_request(request, now)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    signature = env.sign(chain.envelopes.domain, request, signing.unlock())
    with _refusals():
        receipt = chain.envelopes.create(request, signature)
    envelope = env.envelope_id(chain.envelopes.domain, request)
    data = {
        "id": to_hex(envelope),
        "docHash": to_hex(doc_hash),
        "requester": signing.address,
        "signers": list(named),
        "ordered": ordered,
        "deadline": request.deadline or None,
        "envelopes": chain.envelopes.address,
        **_tx(receipt),
    }
    c.out.emit(data)
    c.out.say(f"envelope [bold]{to_hex(envelope)}[/] created in block {data['blockNumber']}")
    order = " in this order" if ordered else ""
    c.out.say(f"signers{order}: " + ", ".join(named))
    if request.deadline:
        c.out.say(f"deadline: {when(request.deadline)}")
    c.out.say(f"each signer runs: docchain envelope sign {target}")


@command(
    app,
    "sign",
    globals_used=("rpc", "data_dir", "timeout"),
    examples_=["docchain envelope sign contract.pdf --key bob", "docchain envelope sign contract.pdf --id 0x4f…"],
)
def sign(
    ctx: typer.Context,
    target: Target,
    envelope_id: IdOpt = None,
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    envelopes: EnvelopesOpt = None,
    force: ForceOpt = False,
) -> None:
    """Sign FILE in its envelope: a registry Registration, registered and counted in one transaction.

    The envelope checks its rules first (named signer, order, deadline, not declined or voided),
    so a refused signature leaves no record in the registry. The receipt is written beside FILE
    (FILE.docchain.json; one already there is kept unless --force), as `submit --direct` writes it:
    `docchain verify FILE --rpc URL` checks it, and after `docchain receipt upgrade` so does
    `docchain verify FILE --offline`.
    """
    from docchain.chain.receipt import receipt_path
    from docchain.chain.registry import SignedRegistration

    c: CliContext = ctx.obj
    doc_hash, path = documents.hash_or_file(target)
    if path is not None:
        receipts.check_targets([path], force)
    wanted = None if envelope_id is None else parse_hash32(envelope_id, "--id")
    signing = c.signing_key(key, password_file)
    chain = _connect(c, envelopes, signing)
    found = _find(chain, doc_hash, wanted, "signer", who=signing.address)
    if chain.registry.record(doc_hash, signing.address).exists:
        # the registry ignores a second registration and the contract judges the one it holds
        _check_record(chain, found, signing.address)
    registration, signature = documents.sign_registration(
        chain.registry.domain, doc_hash, signing.unlock(), signing.address, metadata={}
    )
    signed = SignedRegistration(registration, signature)
    with _refusals():
        receipt = chain.envelopes.sign(found.id, signed)
    written = None
    if path is not None:
        # the registry's Registered log in this transaction proves the record, though it was sent to the
        # envelopes contract (docs/protocol.md section 4, step anchor), so its receipt verifies like any other
        made = chain.registry.receipt_for(signed, receipt, file_name=path.name, file_size=path.stat().st_size)
        written = receipts.save(made, receipt_path(path), force)
    _report_count(c, chain, found, signing.address, receipt, "signed", written)
    if written is not None:
        c.out.say(f"receipt written to {written}")
    else:
        c.out.say(f"check it on chain: docchain verify {target} --signer {signing.address} --rpc {c.rpc_url()}")


def _plan(chain: Chain, state: env.EnvelopeState) -> env.CountPlan:
    """chain/envelopes.py's count rule applied to the registry's records of the signers not counted yet."""
    from docchain.chain import envelopes as env

    return env.plan_counts(state, {s: chain.registry.record(state.doc_hash, s) for s in state.pending})


def _check_record(chain: Chain, found: Found, signer: str) -> None:
    """Refuse (exit 1) before any transaction a registration by ``signer`` the envelope can never count, saying
    why in the chain's terms: the contract's own error names only the signer who had to come first, which reads
    wrong once that signer has signed."""
    from docchain.chain import envelopes as env

    if signer not in found.state.pending or found.state.status not in (env.Status.OPEN, env.Status.EXPIRED):
        return  # the contract's own refusal (already counted, not named, closed) says it right
    plan = _plan(chain, found.state)
    rule = plan.never.get(signer)
    if rule is not None:
        raise EnvelopeRefused(
            f"refused ({rule}): {plan.reasons[signer]}, so envelope {to_hex(found.id)} can never count it; {env.REMEDY}"
        )


def _report_count(
    c: CliContext, chain: Chain, found: Found, signer: str, receipt: TxReceipt, did: str, written: Path | None = None
) -> None:
    completed = _completed_in(chain, receipt)
    data = {"id": to_hex(found.id), "signer": signer, **_tx(receipt), "completed": completed is not None}
    if completed is not None:
        data["completedBlock"] = completed
    if written is not None:
        data["receipt"] = str(written)
    c.out.emit(data)
    c.out.say(f"{signer} {did} envelope {to_hex(found.id)} in block {data['blockNumber']}")
    if completed is not None:
        c.out.say(f"[bold green]the envelope is complete[/] as of block {completed}")


@command(
    app,
    "count",
    globals_used=("rpc", "data_dir", "timeout"),
    examples_=[
        "docchain submit contract.pdf --direct && docchain envelope count contract.pdf",
        "docchain envelope count contract.pdf --signer 0xB0B… --key relayer",
    ],
)
def count(
    ctx: typer.Context,
    target: Target,
    signer: Annotated[
        str | None,
        typer.Option(
            "--signer",
            envvar="DOCCHAIN_SIGNER",
            metavar="ADDRESS",
            help="Whose registration to count [default: your key's].",
        ),
    ] = None,
    envelope_id: IdOpt = None,
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    envelopes: EnvelopesOpt = None,
) -> None:
    """Count a signer's existing registration of FILE (a plain `submit`) toward its envelope.

    Anyone may send it (your key pays gas); the envelope's rules apply to the registration's own
    time: made by the deadline, and after the previous signer's in an ordered envelope.
    """
    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    wanted = None if envelope_id is None else parse_hash32(envelope_id, "--id")
    named = parse_address(signer, "--signer") if signer else None
    signing = c.signing_key(key, password_file)
    who = named or signing.address
    chain = _connect(c, envelopes, signing)
    found = _find(chain, doc_hash, wanted, "signer", who=who)
    _check_record(chain, found, who)
    with _refusals():
        receipt = chain.envelopes.count_registration(found.id, who)
    _report_count(c, chain, found, who, receipt, "counted toward")


@command(
    app,
    "decline",
    globals_used=("rpc", "data_dir", "timeout"),
    examples_=['docchain envelope decline contract.pdf --reason "clause 4 is wrong" --key bob'],
)
def decline(
    ctx: typer.Context,
    target: Target,
    reason: ReasonOpt = None,
    envelope_id: IdOpt = None,
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    envelopes: EnvelopesOpt = None,
) -> None:
    """Decline to sign FILE: the envelope ends, declined by you (a signed EIP-712 Decline)."""
    from docchain.chain import envelopes as env

    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    wanted = None if envelope_id is None else parse_hash32(envelope_id, "--id")
    signing = c.signing_key(key, password_file)
    chain = _connect(c, envelopes, signing)
    found = _find(chain, doc_hash, wanted, "signer", who=signing.address)
    message = env.Decline(found.id, signing.address, chain.now() + MESSAGE_DEADLINE_S, _reason_hash(reason))
    signature = env.sign(chain.envelopes.domain, message, signing.unlock())
    with _refusals():
        receipt = chain.envelopes.decline(message, signature)
    data = {
        "id": to_hex(found.id),
        "signer": signing.address,
        "reasonHash": to_hex(message.reason_hash),
        **_tx(receipt),
    }
    c.out.emit(data)
    c.out.say(f"{signing.address} declined envelope {to_hex(found.id)} in block {data['blockNumber']}")


@command(
    app,
    "void",
    globals_used=("rpc", "data_dir", "timeout"),
    examples_=['docchain envelope void contract.pdf --reason "wrong version" --key alice'],
)
def void(
    ctx: typer.Context,
    target: Target,
    reason: ReasonOpt = None,
    envelope_id: IdOpt = None,
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    envelopes: EnvelopesOpt = None,
) -> None:
    """Withdraw your incomplete envelope of FILE (you created it; a signed EIP-712 Void)."""
    from docchain.chain import envelopes as env

    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    wanted = None if envelope_id is None else parse_hash32(envelope_id, "--id")
    signing = c.signing_key(key, password_file)
    chain = _connect(c, envelopes, signing)
    found = _find(chain, doc_hash, wanted, "requester", who=signing.address)
    message = env.Void(found.id, chain.now() + MESSAGE_DEADLINE_S, _reason_hash(reason))
    signature = env.sign(chain.envelopes.domain, message, signing.unlock())
    with _refusals():
        receipt = chain.envelopes.void(message, signature)
    data = {"id": to_hex(found.id), "reasonHash": to_hex(message.reason_hash), **_tx(receipt)}
    c.out.emit(data)
    c.out.say(f"envelope {to_hex(found.id)} voided in block {data['blockNumber']}")


# ---------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class SignerRow:
    """One required signer as ``status`` shows it. ``registered``: the registry holds their registration of
    the document although the envelope does not count it yet (a plain ``submit``); ``never``: the rule that
    refuses that registration for good (``envelope count`` counts it only when None), and ``why`` in words."""

    position: int
    signer: str
    signed: bool
    signed_at: int | None
    block_number: int | None
    tx_hash: str | None
    revoked_at: int | None
    registered: bool
    next: bool
    declined: bool = False  # this signer declined the envelope
    never: str | None = None
    why: str | None = None

    @property
    def state(self) -> str:
        if self.signed:
            return "signed (revoked)" if self.revoked_at else "signed"
        if self.declined:
            return "declined"
        if self.registered:
            return "registered, never counts" if self.never else "registered, not counted"
        return "next" if self.next else "pending"

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "signer": self.signer,
            "state": self.state,
            "signed": self.signed,
            "signedAt": self.signed_at,
            "blockNumber": self.block_number,
            "txHash": self.tx_hash,
            "revokedAt": self.revoked_at,
            "registered": self.registered,
            "neverCounts": self.never,
        }


@dataclass(frozen=True)
class Step:
    """An envelope-wide event: where it happened, and by whom and why when it says."""

    block_number: int
    tx_hash: str
    by: str | None = None
    reason_hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"blockNumber": self.block_number, "txHash": self.tx_hash}
        if self.by is not None:
            data["by"] = self.by
        if self.reason_hash is not None:
            data["reasonHash"] = self.reason_hash
        return data


@dataclass(frozen=True)
class Report:
    """``envelope status``: the contract's view of the envelope, with each step's block and transaction."""

    id: bytes
    state: env.EnvelopeState
    signers: tuple[SignerRow, ...]
    created: Step
    declined: Step | None
    voided: Step | None
    completed: Step | None
    others: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": to_hex(self.id),
            "docHash": to_hex(self.state.doc_hash),
            "requester": self.state.requester,
            "status": self.state.status.name.lower(),
            "ordered": self.state.ordered,
            "deadline": self.state.deadline or None,
            "signers": [s.to_json() for s in self.signers],
            "next": self.state.next,
            "pending": list(self.state.pending),
            "created": self.created.to_json(),
            "declined": None if self.declined is None else self.declined.to_json(),
            "voided": None if self.voided is None else self.voided.to_json(),
            "completed": None if self.completed is None else self.completed.to_json(),
            "otherEnvelopes": [to_hex(i) for i in self.others],
        }


def _step(at: env.LogPosition, by: str | None = None, reason: bytes | None = None) -> Step:
    return Step(at.block_number, to_hex(at.tx_hash), by, None if reason is None else to_hex(reason))


def report(chain: Chain, found: Found, others: tuple[bytes, ...] = ()) -> Report:
    """What ``status`` shows of ``found``: its state, each signer's block and transaction from the envelope's
    events, and whether a signer not counted yet is registered already."""
    from docchain.chain import envelopes as env

    state = found.state
    past = env.history(chain.envelopes.events(found.created.at.block_number, envelope=found.id))
    declined = (
        None if past.declined is None else _step(past.declined.at, past.declined.signer, past.declined.reason_hash)
    )
    voided = None if past.voided is None else _step(past.voided.at, state.requester, past.voided.reason_hash)
    completed = None if past.completed is None else _step(past.completed.at)
    records = {s: chain.registry.record(state.doc_hash, s) for s in state.pending}
    plan = env.plan_counts(state, records)
    rows = []
    for position, s in enumerate(state.signers):
        counted = past.signed.get(s.signer)
        at = None if counted is None else counted.at
        registered = not s.signed and records[s.signer].exists
        never = plan.never.get(s.signer) if registered else None
        rows.append(
            SignerRow(
                position=position + 1,
                signer=s.signer,
                signed=s.signed,
                signed_at=s.signed_at or None,
                block_number=s.block_number or None,
                tx_hash=None if at is None else to_hex(at.tx_hash),
                revoked_at=s.revoked_at or None,
                registered=registered,
                next=state.status == env.Status.OPEN and s.signer == state.next,
                declined=s.signer == state.declined_by,
                never=never,
                why=None if never is None else plan.reasons[s.signer],
            )
        )
    return Report(found.id, state, tuple(rows), _step(found.created.at), declined, voided, completed, others)


@command(
    app,
    "status",
    globals_used=("rpc", "data_dir", "timeout"),
    examples_=["docchain envelope status contract.pdf", "docchain envelope status contract.pdf --id 0x4f… --json"],
)
def status(
    ctx: typer.Context,
    target: Target,
    envelope_id: IdOpt = None,
    envelopes: EnvelopesOpt = None,
) -> None:
    """Show FILE's envelope: who signed (time, block, transaction), who is next, who is pending, a
    decline or void, and the block that completed it. Reads only; no key needed.

    Without --id, the document's open envelope, else its latest; --json's "status" is open,
    completed, declined, voided or expired.
    """
    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    wanted = None if envelope_id is None else parse_hash32(envelope_id, "--id")
    chain = _connect(c, envelopes)
    found = _find(chain, doc_hash, wanted, "any")
    others: tuple[bytes, ...] = ()
    if envelope_id is None:
        others = tuple(e.envelope_id for e in chain.envelopes.created_for(doc_hash, chain.from_block))
        others = tuple(i for i in others if i != found.id)
    shown = report(chain, found, others)
    c.out.emit(shown.to_json())
    _show(c, shown)


def _show(c: CliContext, shown: Report) -> None:
    from docchain.chain import envelopes as env

    state = shown.state
    c.out.table(
        f"envelope {short(to_hex(shown.id), 6)} of {short(to_hex(state.doc_hash), 6)}"
        + (" (ordered)" if state.ordered else ""),
        ["#", "signer", "state", "signed (UTC)", "block", "tx"],
        [
            (r.position, r.signer, r.state, when_short(r.signed_at), r.block_number or "-", short(r.tx_hash, 4))
            for r in shown.signers
        ],
    )
    c.out.say(f"requested by {state.requester} in block {shown.created.block_number}")
    if state.deadline:
        c.out.say(f"deadline: {when(state.deadline)}")
    if shown.completed is not None:
        c.out.say(f"[bold green]complete[/] in block {shown.completed.block_number} ({shown.completed.tx_hash})")
    elif shown.declined is not None:
        c.out.say(f"[bold red]declined[/] by {shown.declined.by} in block {shown.declined.block_number}")
    elif shown.voided is not None:
        c.out.say(f"[bold red]voided[/] by the requester in block {shown.voided.block_number}")
    elif state.status == env.Status.EXPIRED:
        c.out.say(f"[bold red]expired[/]: {len(state.pending)} signer(s) did not sign by the deadline")
    else:
        nxt = f"; next: {state.next}" if state.ordered and state.next else ""
        c.out.say(f"open: {len(state.pending)} of {len(state.signers)} still to sign{nxt}")
    countable = [r for r in shown.signers if r.registered and r.never is None]
    if state.status in (env.Status.OPEN, env.Status.EXPIRED):  # a record made by the deadline counts after it
        order = " (in this order)" if state.ordered and len(countable) > 1 else ""
        for row in countable:
            c.out.say(
                f"{row.signer} registered it, not counted yet{order}: "
                f"`docchain envelope count FILE --signer {row.signer}`"
            )
    for row in shown.signers:
        if row.why is not None:
            c.out.say(f"{row.signer}'s registration never counts ({row.never}): {row.why}")
    if shown.others:
        c.out.say(
            f"{len(shown.others)} other envelope(s) of this document: " + ", ".join(to_hex(i) for i in shown.others)
        )
