"""DocumentEnvelopes on real nodes: the specification of the envelope rules the chain enforces.

One node per kind for the module (anvil for every case, ganache for the main path), each with its own registry
and envelope contract; the deadline cases move the node's clock, which is why the nodes are this module's own.
Refusals are asserted by the custom error's name and arguments, and by the absence of any record they would
have left.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3

from docchain.chain import artifacts, deploy, envelopes_contract
from docchain.chain import envelopes as env
from docchain.chain import typed_data as td
from docchain.chain.envelopes_contract import Envelopes, EnvelopesReader
from docchain.chain.errors import ContractRevert, InvalidInput
from docchain.chain.node import LocalNode, NodeConfig
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.rpc import JsonRpc, Log
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain
from tests.conftest import DEV_KEYS

HOUR = 3600


@dataclass
class Stack:
    """A node with a registry and an envelope contract over it, relayed by one dev account."""

    kind: str
    rpc_url: str
    w3: Web3
    sender: TxSender
    registry: Registry
    envelopes: Envelopes

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def advance(self, seconds: int) -> None:
        """Move the node's clock forward and mine a block at the new time."""
        self.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _stack(kind: str, data_dir: Path) -> Iterator[Stack]:
    with LocalNode(NodeConfig(kind=kind, data_dir=data_dir, state_interval=None)) as node:  # type: ignore[arg-type]
        w3 = Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 30}))
        sender = TxSender(w3, DEV_KEYS[0])
        registry = Registry(w3, deploy.deploy(sender).address, sender)
        envelopes = Envelopes(w3, envelopes_contract.deploy(sender, registry.address), sender)
        yield Stack(kind, node.rpc_url, w3, sender, registry, envelopes)


@pytest.fixture(scope="module")
def anvil_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from _stack("anvil", tmp_path_factory.mktemp("envelopes-anvil"))


@pytest.fixture(scope="module")
def ganache_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from _stack("ganache", tmp_path_factory.mktemp("envelopes-ganache"))


@pytest.fixture(params=["anvil", pytest.param("ganache", marks=pytest.mark.ganache)])
def stack(request: pytest.FixtureRequest) -> Stack:
    """The main path runs on both nodes."""
    return request.getfixturevalue(f"{request.param}_stack")  # type: ignore[no-any-return]


@pytest.fixture
def chain(anvil_stack: Stack) -> Stack:
    """Every other case: anvil."""
    return anvil_stack


@dataclass(frozen=True)
class Party:
    key: bytes

    @property
    def address(self) -> str:
        return td.address_of(self.key)


def parties(n: int) -> list[Party]:
    return [Party(os.urandom(32)) for _ in range(n)]


def new_request(
    stack: Stack,
    requester: Party,
    signers: list[str],
    *,
    ordered: bool = True,
    deadline: int = 0,
    doc_hash: bytes | None = None,
    request_deadline: int | None = None,
) -> env.EnvelopeRequest:
    return env.EnvelopeRequest(
        doc_hash=doc_hash or os.urandom(32),
        requester=requester.address,
        signers=tuple(signers),
        ordered=ordered,
        deadline=deadline,
        salt=env.new_salt(),
        request_deadline=stack.now() + HOUR if request_deadline is None else request_deadline,
    )


def create(stack: Stack, requester: Party, signers: list[Party], **fields: Any) -> env.EnvelopeRequest:
    request = new_request(stack, requester, [s.address for s in signers], **fields)
    stack.envelopes.create(request, env.sign(stack.envelopes.domain, request, requester.key))
    return request


def id_of(stack: Stack, request: env.EnvelopeRequest) -> bytes:
    return env.envelope_id(stack.envelopes.domain, request)


def registration(stack: Stack, signer: Party, doc_hash: bytes) -> SignedRegistration:
    reg = td.Registration(doc_hash=doc_hash, signer=signer.address, deadline=stack.now() + HOUR)
    return SignedRegistration(reg, td.sign(stack.registry.domain, reg, signer.key))


def reverts(name: str, *args: object) -> pytest.RaisesExc[ContractRevert]:
    """Expect the contract's custom error ``name`` with exactly these arguments."""

    def check(error: ContractRevert) -> bool:
        assert (error.name, error.args_) == (name, args), f"expected {name}{args}, got {error}"
        return True

    return pytest.raises(ContractRevert, check=check)


def not_recorded(stack: Stack, doc_hash: bytes, signer: Party) -> bool:
    return not stack.registry.record(doc_hash, signer.address).exists


# ---------------------------------------------------------------------------------------------- typed data


def test_typehashes_domain_and_digests_equal_the_contracts(chain: Stack) -> None:
    contract = chain.envelopes
    assert contract.getter("ENVELOPE_REQUEST_TYPEHASH") == env.EnvelopeRequest.TYPEHASH
    assert contract.getter("DECLINE_TYPEHASH") == env.Decline.TYPEHASH
    assert contract.getter("VOID_TYPEHASH") == env.Void.TYPEHASH
    assert contract.getter("DOMAIN_SEPARATOR") == contract.domain.separator
    assert contract.registry() == chain.registry.address

    a, b, requester = parties(3)
    request = new_request(chain, requester, [a.address, b.address], deadline=chain.now() + 99)
    decline = env.Decline(os.urandom(32), a.address, deadline=123, reason_hash=os.urandom(32))
    void = env.Void(os.urandom(32), deadline=456, reason_hash=os.urandom(32))
    assert contract.envelope_id(request) == env.envelope_id(contract.domain, request)
    assert contract.digest(decline) == env.digest(contract.domain, decline)
    assert contract.digest(void) == env.digest(contract.domain, void)
    # and eth-account's generic EIP-712 encoder agrees (the array member above all)
    for message in (request, decline, void):
        signable = encode_typed_data(full_message=env.typed_data(contract.domain, message))
        generic = Web3.keccak(b"\x19" + signable.version + signable.header + signable.body)
        assert generic == env.digest(contract.domain, message)


def test_the_nodes_eth_sign_typed_data_v4_of_a_request_is_what_python_signs(chain: Stack) -> None:
    """The node signs the JSON a wallet gets, address[] member included: our typed data is standard EIP-712."""
    requester = Account.from_key(DEV_KEYS[1]).address  # an unlocked dev account
    request = new_request(chain, Party(DEV_KEYS[1]), [p.address for p in parties(3)])
    typed = json.dumps(env.typed_data(chain.envelopes.domain, request))
    response = chain.w3.provider.make_request("eth_signTypedData_v4", [requester, typed])  # type: ignore[arg-type]
    assert "error" not in response, response
    signature = bytes.fromhex(response["result"][2:])
    assert signature == env.sign(chain.envelopes.domain, request, DEV_KEYS[1])
    chain.envelopes.create(request, signature)
    assert chain.envelopes.state(id_of(chain, request)).status == env.Status.OPEN


# ---------------------------------------------------------------------------------------------- main path


def test_two_signer_ordered_envelope_completes_with_an_event_naming_its_block(stack: Stack) -> None:
    a, b, requester = parties(3)
    request = create(stack, requester, [a, b])
    envelope = id_of(stack, request)
    created_in = stack.w3.eth.block_number

    state = stack.envelopes.state(envelope)
    assert (state.status, state.next, state.pending, state.requester) == (
        env.Status.OPEN,
        a.address,
        (a.address, b.address),
        requester.address,
    )

    first = stack.envelopes.sign(envelope, registration(stack, a, request.doc_hash))
    state = stack.envelopes.state(envelope)
    record = stack.registry.record(request.doc_hash, a.address)
    assert (state.status, state.next) == (env.Status.OPEN, b.address)
    assert state.signers[0] == env.SignerState(a.address, True, record.registered_at, first["blockNumber"], 0)

    last = stack.envelopes.sign(envelope, registration(stack, b, request.doc_hash))
    events = stack.envelopes.events_in(last)
    assert [type(e) for e in events] == [env.EnvelopeSigned, env.EnvelopeCompleted]
    completed = events[1]
    assert isinstance(completed, env.EnvelopeCompleted)
    assert (completed.envelope_id, completed.doc_hash, completed.block_number) == (
        envelope,
        request.doc_hash,
        last["blockNumber"],
    )
    state = stack.envelopes.state(envelope)
    assert (state.status, state.next, state.pending) == (env.Status.COMPLETED, None, ())
    assert [s.block_number for s in state.signers] == [first["blockNumber"], last["blockNumber"]]
    # each signature is an ordinary registration in the registry
    assert stack.registry.record(request.doc_hash, b.address).block_number == last["blockNumber"]

    history = stack.envelopes.events(created_in, envelope=envelope)
    assert [type(e).__name__ for e in history] == [
        "EnvelopeCreated",
        "EnvelopeSigned",
        "EnvelopeSigned",
        "EnvelopeCompleted",
    ]
    created = history[0]
    assert isinstance(created, env.EnvelopeCreated)
    assert (created.doc_hash, created.requester, created.signers, created.ordered, created.at.block_number) == (
        request.doc_hash,
        requester.address,
        (a.address, b.address),
        True,
        created_in,
    )
    with reverts("CompletedEnvelope", envelope):
        stack.envelopes.sign(envelope, registration(stack, a, request.doc_hash))


# ---------------------------------------------------------------------------------------------- rules


def test_out_of_order_signature_is_refused_before_anything_is_recorded(chain: Stack) -> None:
    a, b, requester = parties(3)
    request = create(chain, requester, [a, b])
    envelope = id_of(chain, request)
    with reverts("OutOfOrder", envelope, b.address, a.address):
        chain.envelopes.sign(envelope, registration(chain, b, request.doc_hash))
    assert not_recorded(chain, request.doc_hash, b)
    assert chain.envelopes.state(envelope).pending == (a.address, b.address)


def test_signature_after_the_deadline_is_refused(chain: Stack) -> None:
    a, requester = parties(2)
    deadline = chain.now() + 60
    request = create(chain, requester, [a], deadline=deadline)
    envelope = id_of(chain, request)
    chain.advance(120)
    with reverts("ExpiredEnvelope", envelope, deadline):
        chain.envelopes.sign(envelope, registration(chain, a, request.doc_hash))
    assert not_recorded(chain, request.doc_hash, a)
    state = chain.envelopes.state(envelope)
    assert (state.status, state.next, state.deadline) == (env.Status.EXPIRED, None, deadline)


def test_unnamed_signer_and_another_document_are_refused(chain: Stack) -> None:
    a, stranger, requester = parties(3)
    request = create(chain, requester, [a], ordered=False)
    envelope = id_of(chain, request)
    with reverts("NotASigner", envelope, stranger.address):
        chain.envelopes.sign(envelope, registration(chain, stranger, request.doc_hash))
    other = os.urandom(32)
    with reverts("WrongDocument", envelope, other):
        chain.envelopes.sign(envelope, registration(chain, a, other))
    assert not_recorded(chain, request.doc_hash, stranger) and not_recorded(chain, other, a)
    with reverts("UnknownEnvelope", other):
        chain.envelopes.sign(other, registration(chain, a, request.doc_hash))


def test_unordered_envelope_takes_signatures_in_any_order_once_each(chain: Stack) -> None:
    a, b, c, requester = parties(4)
    request = create(chain, requester, [a, b, c], ordered=False)
    envelope = id_of(chain, request)
    chain.envelopes.sign(envelope, registration(chain, c, request.doc_hash))
    with reverts("AlreadySigned", envelope, c.address):
        chain.envelopes.sign(envelope, registration(chain, c, request.doc_hash))
    state = chain.envelopes.state(envelope)
    assert (state.status, state.next, state.pending) == (env.Status.OPEN, None, (a.address, b.address))
    chain.envelopes.sign(envelope, registration(chain, a, request.doc_hash))
    receipt = chain.envelopes.sign(envelope, registration(chain, b, request.doc_hash))
    signed = [e for e in chain.envelopes.events_in(receipt) if isinstance(e, env.EnvelopeSigned)]
    assert [(e.signer, e.position) for e in signed] == [(b.address, 1)]
    assert chain.envelopes.state(envelope).status == env.Status.COMPLETED


def test_a_signer_declines_with_a_reason_and_the_envelope_closes(chain: Stack) -> None:
    a, b, stranger, requester = parties(4)
    request = create(chain, requester, [a, b])
    envelope = id_of(chain, request)
    domain = chain.envelopes.domain
    reason = os.urandom(32)

    refusal = env.Decline(envelope, stranger.address, deadline=chain.now() + HOUR)
    with reverts("NotASigner", envelope, stranger.address):
        chain.envelopes.decline(refusal, env.sign(domain, refusal, stranger.key))
    decline = env.Decline(envelope, b.address, deadline=chain.now() + HOUR, reason_hash=reason)
    with reverts("InvalidEnvelopeSignature", envelope, b.address):
        chain.envelopes.decline(decline, env.sign(domain, decline, a.key))

    receipt = chain.envelopes.decline(decline, env.sign(domain, decline, b.key))
    (event,) = chain.envelopes.events_in(receipt)
    assert isinstance(event, env.EnvelopeDeclined)
    assert (event.envelope_id, event.signer, event.reason_hash) == (envelope, b.address, reason)
    state = chain.envelopes.state(envelope)
    assert (state.status, state.declined_by, state.next) == (env.Status.DECLINED, b.address, None)
    with reverts("DeclinedEnvelope", envelope, b.address):
        chain.envelopes.sign(envelope, registration(chain, a, request.doc_hash))
    assert not_recorded(chain, request.doc_hash, a)


def test_the_requester_voids_and_no_one_else_can(chain: Stack) -> None:
    a, requester = parties(2)
    request = create(chain, requester, [a])
    envelope = id_of(chain, request)
    domain = chain.envelopes.domain
    void = env.Void(envelope, deadline=chain.now() + HOUR, reason_hash=os.urandom(32))
    with reverts("InvalidEnvelopeSignature", envelope, requester.address):
        chain.envelopes.void(void, env.sign(domain, void, a.key))
    late = env.Void(envelope, deadline=chain.now() - 1)
    with reverts("ExpiredSignature", late.deadline):
        chain.envelopes.void(late, env.sign(domain, late, requester.key))

    receipt = chain.envelopes.void(void, env.sign(domain, void, requester.key))
    (event,) = chain.envelopes.events_in(receipt)
    assert event == env.EnvelopeVoided(envelope, void.reason_hash, event.at)
    assert chain.envelopes.state(envelope).status == env.Status.VOIDED
    with reverts("VoidedEnvelope", envelope):
        chain.envelopes.sign(envelope, registration(chain, a, request.doc_hash))
    with reverts("VoidedEnvelope", envelope):
        chain.envelopes.void(void, env.sign(domain, void, requester.key))
    with reverts("EnvelopeExists", envelope):  # its request cannot bring it back
        chain.envelopes.create(request, env.sign(domain, request, requester.key))
    assert not_recorded(chain, request.doc_hash, a)


def test_a_request_signature_works_once_on_its_own_chain_and_contract(chain: Stack) -> None:
    a, requester = parties(2)
    request = new_request(chain, requester, [a.address])
    signature = env.sign(chain.envelopes.domain, request, requester.key)
    other = Envelopes(chain.w3, envelopes_contract.deploy(chain.sender, chain.registry.address), chain.sender)
    with reverts("InvalidEnvelopeSignature", env.envelope_id(other.domain, request), requester.address):
        other.create(request, signature)

    foreign = Domain(chain_id=1, verifying_contract=chain.envelopes.address, name=env.NAME, version=env.VERSION)
    with reverts("InvalidEnvelopeSignature", id_of(chain, request), requester.address):
        chain.envelopes.create(request, env.sign(foreign, request, requester.key))

    receipt = chain.envelopes.create(request, signature)
    (created,) = chain.envelopes.events_in(receipt)
    assert isinstance(created, env.EnvelopeCreated) and created.envelope_id == id_of(chain, request)
    with reverts("EnvelopeExists", id_of(chain, request)):
        chain.envelopes.create(request, signature)


def test_the_envelopes_need_a_deployed_registry(chain: Stack) -> None:
    nowhere = Party(os.urandom(32)).address
    with reverts("NotARegistry", nowhere):
        envelopes_contract.deploy(chain.sender, nowhere)


def test_direct_registrations_are_counted_by_their_own_time(chain: Stack) -> None:
    a, b, requester = parties(3)
    request = create(chain, requester, [a, b])
    envelope = id_of(chain, request)
    with reverts("NoRegistration", envelope, a.address):
        chain.envelopes.count_registration(envelope, a.address)

    # b registered (a plain submission) before a: b's signature predates a's turn
    chain.registry.register(registration(chain, b, request.doc_hash))
    chain.advance(10)
    with reverts("OutOfOrder", envelope, b.address, a.address):
        chain.envelopes.count_registration(envelope, b.address)
    chain.registry.register(registration(chain, a, request.doc_hash))
    receipt = chain.envelopes.count_registration(envelope, a.address)
    (signed,) = chain.envelopes.events_in(receipt)
    assert isinstance(signed, env.EnvelopeSigned)
    assert signed.signed_at == chain.registry.record(request.doc_hash, a.address).registered_at
    with reverts("OutOfOrder", envelope, b.address, a.address):
        chain.envelopes.count_registration(envelope, b.address)
    with reverts("AlreadySigned", envelope, a.address):
        chain.envelopes.count_registration(envelope, a.address)
    assert chain.envelopes.state(envelope).next == b.address  # for good: the requester can only void it


def test_registration_through_sign_of_an_existing_record_counts_that_record(chain: Stack) -> None:
    a, requester = parties(2)
    request = create(chain, requester, [a])
    envelope = id_of(chain, request)
    direct = chain.registry.register(registration(chain, a, request.doc_hash))
    chain.advance(10)
    receipt = chain.envelopes.sign(envelope, registration(chain, a, request.doc_hash))
    signed = chain.envelopes.events_in(receipt)[0]
    assert isinstance(signed, env.EnvelopeSigned)
    assert signed.signed_at == chain.w3.eth.get_block(direct["blockNumber"])["timestamp"]
    assert chain.envelopes.state(envelope).signers[0].block_number == direct["blockNumber"]


def test_deadline_applies_to_the_registrations_time_and_revoked_ones_never_count(chain: Stack) -> None:
    a, b, requester = parties(3)
    deadline = chain.now() + 60
    request = create(chain, requester, [a, b], ordered=False, deadline=deadline)
    envelope = id_of(chain, request)
    chain.registry.register(registration(chain, a, request.doc_hash))
    revocation = td.Revocation(request.doc_hash, a.address, chain.registry.nonce(a.address), chain.now() + HOUR)
    chain.registry.revoke_by_sig(revocation, td.sign(chain.registry.domain, revocation, a.key))
    with reverts("RevokedRegistration", envelope, a.address):
        chain.envelopes.count_registration(envelope, a.address)

    chain.registry.register(registration(chain, b, request.doc_hash))
    chain.advance(120)
    chain.envelopes.count_registration(envelope, b.address)  # made in time, counted late: it counts
    assert chain.envelopes.state(envelope).signers[1].signed

    late = create(chain, requester, [a, b], ordered=False, deadline=chain.now() + 60)
    chain.advance(120)
    chain.registry.register(registration(chain, b, late.doc_hash))
    with reverts("ExpiredEnvelope", id_of(chain, late), late.deadline):
        chain.envelopes.count_registration(id_of(chain, late), b.address)


@dataclass(frozen=True)
class BadRequest:
    name: str
    signers: Callable[[list[str]], list[str]]
    error: str
    args: Callable[[Stack, env.EnvelopeRequest], tuple[object, ...]]
    deadline: Callable[[int], int] = lambda now: 0
    request_deadline: Callable[[int], int] = lambda now: now + HOUR


BAD_REQUESTS = [
    BadRequest("no signers", lambda s: [], "BadSignerCount", lambda _, r: (0, 16)),
    BadRequest("17 signers", lambda s: s, "BadSignerCount", lambda _, r: (17, 16)),
    BadRequest("zero signer", lambda s: [s[0], "0x" + "00" * 20], "ZeroAddressSigner", lambda _, r: (1,)),
    BadRequest("duplicate", lambda s: [s[0], s[1], s[0]], "DuplicateSigner", lambda _, r: (r.signers[0],)),
    BadRequest(
        "request expired",
        lambda s: s[:2],
        "ExpiredSignature",
        lambda _, r: (r.request_deadline,),
        request_deadline=lambda now: now - 10,
    ),
    BadRequest(
        "deadline past",
        lambda s: s[:2],
        "ExpiredEnvelope",
        lambda st, r: (id_of(st, r), r.deadline),
        deadline=lambda now: now - 10,
    ),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=lambda c: c.name)
def test_malformed_requests_are_refused_by_the_contract_and_by_check_request(chain: Stack, case: BadRequest) -> None:
    requester = Party(os.urandom(32))
    now = chain.now()
    request = new_request(
        chain,
        requester,
        case.signers([p.address for p in parties(17)]),
        deadline=case.deadline(now),
        request_deadline=case.request_deadline(now),
    )
    with pytest.raises(InvalidInput):
        env.check_request(request, now)
    with reverts(case.error, *case.args(chain, request)):
        chain.envelopes.create(request, env.sign(chain.envelopes.domain, request, requester.key))


def test_check_request_accepts_what_the_contract_accepts() -> None:
    signers = tuple(td.address_of(os.urandom(32)) for _ in range(16))
    request = env.EnvelopeRequest(os.urandom(32), signers[0], signers, True, 0, env.new_salt(), int(time.time()) + HOUR)
    env.check_request(request, int(time.time()))
    with pytest.raises(InvalidInput, match="salt"):
        env.check_request(replace(request, salt=bytes(31)), int(time.time()))


def test_decoders_ignore_what_is_not_the_contracts() -> None:
    assert env.decode_revert(bytes.fromhex("08c379a0") + bytes(64)) is None  # Error(string)
    assert env.decode_revert(Web3.keccak(text="OutOfOrder(bytes32,address,address)")[:4] + bytes(40)) is None
    foreign = Log("0x" + "11" * 20, (os.urandom(32),), b"", 1, bytes(32), bytes(32), 0)
    assert env.decode_log(foreign) is None
    truncated = Log("0x" + "11" * 20, (env.SIGNED_TOPIC, bytes(32), bytes(32)), b"\x01", 1, bytes(32), bytes(32), 0)
    assert env.decode_log(truncated) is None


def test_contract_wallets_request_sign_and_void_through_erc1271(chain: Stack) -> None:
    owner, a = parties(2)
    code = artifacts.load("MockERC1271Wallet").bytecode + bytes(12) + bytes.fromhex(owner.address[2:])
    wallet = Web3.to_checksum_address(chain.sender.transact(None, code)["contractAddress"])
    domain = chain.envelopes.domain
    request = replace(new_request(chain, owner, [wallet, a.address]), requester=wallet)
    chain.envelopes.create(request, env.sign(domain, request, owner.key))  # the owner's key approves for it
    envelope = id_of(chain, request)
    reg = td.Registration(request.doc_hash, wallet, chain.now() + HOUR)
    chain.envelopes.sign(envelope, SignedRegistration(reg, td.sign(chain.registry.domain, reg, owner.key)))
    assert chain.envelopes.state(envelope).signers[0].signed

    void = env.Void(envelope, chain.now() + HOUR)
    with reverts("InvalidEnvelopeSignature", envelope, wallet):
        chain.envelopes.void(void, env.sign(domain, void, a.key))
    chain.envelopes.void(void, env.sign(domain, void, owner.key))
    assert chain.envelopes.state(envelope).status == env.Status.VOIDED


def test_the_registrys_own_refusal_passes_through_sign(chain: Stack) -> None:
    a, stranger, requester = parties(3)
    request = create(chain, requester, [a])
    envelope = id_of(chain, request)
    forged = registration(chain, a, request.doc_hash).registration
    with reverts("InvalidSignature", request.doc_hash, a.address):
        chain.envelopes.sign(envelope, SignedRegistration(forged, td.sign(chain.registry.domain, forged, stranger.key)))
    assert chain.envelopes.state(envelope).pending == (a.address,)


def test_the_async_reader_answers_as_the_web3_binding(chain: Stack) -> None:
    a, b, requester = parties(3)
    request = create(chain, requester, [a, b])
    envelope = id_of(chain, request)
    chain.envelopes.sign(envelope, registration(chain, a, request.doc_hash))

    async def read() -> tuple[env.EnvelopeState, ContractRevert]:
        async with JsonRpc(chain.rpc_url) as rpc:
            reader = EnvelopesReader(rpc, chain.envelopes.address, chain.envelopes.chain_id)
            assert reader.domain == chain.envelopes.domain
            with pytest.raises(ContractRevert) as refused:
                await reader.view(env.View(env.encode_count_registration(envelope, b.address), [], tuple))
            return await reader.state(envelope), refused.value

    state, refused = asyncio.run(read())
    assert state == chain.envelopes.state(envelope)
    assert (refused.name, refused.args_) == ("NoRegistration", (envelope, b.address))


# ---------------------------------------------------------------------------------------------- the protocol page

PROTOCOL = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()


def _canonical(item: dict[str, Any]) -> str:
    def typ(inp: dict[str, Any]) -> str:
        kind = str(inp["type"])
        return "(" + ",".join(typ(c) for c in inp["components"]) + ")" + kind[5:] if kind.startswith("tuple") else kind

    return f"{item['name']}({','.join(typ(i) for i in item['inputs'])})"


def _shown(item: dict[str, Any]) -> str:
    """How the page shows an ABI item: a function by its canonical signature, an event or error with its
    parameters' names (and ``indexed``)."""
    if item["type"] == "function":
        return _canonical(item)
    params = (f"{i['type']}{' indexed' if i.get('indexed') else ''} {i['name']}" for i in item["inputs"])
    return f"{item['name']}({', '.join(params)})"


def _table(marker: str) -> dict[str, str]:
    """{first code span of a row: its selector or topic} of the table after ``<!-- marker ... -->``."""
    match = re.search(r"<!--\s*" + re.escape(marker) + r"\b[^>]*-->\s*\n((?:\|.*\n?)+)", PROTOCOL)
    assert match, f"no table after <!-- {marker} --> in docs/protocol.md"
    rows = {}
    for line in match.group(1).strip().splitlines()[2:]:
        spans = re.findall(r"`([^`]+)`", line)
        rows[spans[0]] = next(s for s in spans if s.startswith("0x"))
    return rows


@pytest.mark.parametrize(
    ("marker", "kind", "length"),
    [
        ("envelope-abi-functions", "function", 4),
        ("envelope-abi-events", "event", 32),
        ("envelope-abi-errors", "error", 4),
    ],
)
def test_the_protocol_pages_tables_are_the_compiled_abi(marker: str, kind: str, length: int) -> None:
    abi = artifacts.load("DocumentEnvelopes").abi
    expected = {_shown(i): "0x" + Web3.keccak(text=_canonical(i))[:length].hex() for i in abi if i["type"] == kind}
    assert _table(marker) == expected
