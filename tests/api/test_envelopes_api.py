"""Envelopes over REST (docs/protocol.md, "Envelopes over REST"), on one real stack: anvil with the registry and
its envelopes contract, the API as a process on SQLite. Every signer here holds no ether: each step is relayed.

The refusals are read in the problem's ``rule`` (the contract's custom error by name), before anything is sent;
the envelope's state in GET /v1/envelopes/{id} is read back from the chain once the worker has sent the step."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from web3 import HTTPProvider, Web3

from docchain.api.service import plan_counts
from docchain.chain import artifacts
from docchain.chain import envelopes as env_mod
from docchain.chain.envelopes import EnvelopeState
from docchain.chain.envelopes_contract import Envelopes
from docchain.chain.hashing import keccak256
from docchain.chain.receipt import parse_receipt
from docchain.chain.registry import Record, Registry, SignedRegistration
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Domain, Registration, address_of, sign
from docchain.chain.values import ZERO32, to_hex
from tests.api.api_support import Api, Env, sqlite_only
from tests.support import poll

pytestmark = [sqlite_only]

REASON = "clause 4 is not what we agreed"


@dataclass(frozen=True)
class Key:
    key: bytes

    @property
    def address(self) -> str:
        return address_of(self.key)


def _key() -> Key:
    return Key(os.urandom(32))


def _doc() -> bytes:
    return os.urandom(32)


@dataclass
class Stack:
    env: Env
    api: Api
    domain: Domain  # the envelopes'

    def registry_domain(self) -> Domain:
        return self.env.domain

    def create(self, requester: Key, doc: bytes, signers: list[Key], *, ordered: bool, deadline: int = 0) -> str:
        r = self.post_create(requester, doc, signers, ordered=ordered, deadline=deadline)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def request(
        self, requester: Key, doc: bytes, signers: list[Key], *, ordered: bool, deadline: int = 0
    ) -> tuple[env_mod.EnvelopeRequest, dict[str, Any]]:
        request = env_mod.EnvelopeRequest(
            doc_hash=doc,
            requester=requester.address,
            signers=tuple(s.address for s in signers),
            ordered=ordered,
            deadline=deadline,
            salt=env_mod.new_salt(),
            request_deadline=int(time.time()) + 3600,
        )
        body = {"request": request.to_json(), "signature": "0x" + sign(self.domain, request, requester.key).hex()}
        return request, body

    def create_for(self, requester: Key, doc: bytes, signers: list[str]) -> str:
        """An unordered envelope naming the addresses ``signers`` (contract wallets, say)."""
        request = env_mod.EnvelopeRequest(
            doc_hash=doc,
            requester=requester.address,
            signers=tuple(signers),
            ordered=False,
            deadline=0,
            salt=env_mod.new_salt(),
            request_deadline=int(time.time()) + 3600,
        )
        body = {"request": request.to_json(), "signature": "0x" + sign(self.domain, request, requester.key).hex()}
        r = self.api.post("/v1/envelopes", json=body)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def post_create(self, requester: Key, doc: bytes, signers: list[Key], **kw: Any) -> Any:
        _, body = self.request(requester, doc, signers, **kw)
        return self.api.post("/v1/envelopes", json=body)

    def sign_body(self, signer: Key, doc: bytes, *, wallet: str | None = None) -> dict[str, Any]:
        """``signer``'s registration of ``doc``; for the contract ``wallet`` ``signer`` owns, when given."""
        reg = Registration(doc_hash=doc, signer=wallet or signer.address, deadline=int(time.time()) + 3600)
        return {"registration": reg.to_json(), "signature": "0x" + sign(self.registry_domain(), reg, signer.key).hex()}

    def sign(self, eid: str, signer: Key, doc: bytes) -> Any:
        return self.api.post(f"/v1/envelopes/{eid}/sign", json=self.sign_body(signer, doc))

    def decline(self, eid: str, signer: Key, reason: str | None = REASON) -> Any:
        decline = env_mod.Decline(
            bytes.fromhex(eid[2:]), signer.address, int(time.time()) + 600, env_mod.reason_hash(reason)
        )
        body = {"decline": decline.to_json(), "signature": "0x" + sign(self.domain, decline, signer.key).hex()}
        if reason is not None:
            body["reason"] = reason
        return self.api.post(f"/v1/envelopes/{eid}/decline", json=body)

    def void(self, eid: str, requester: Key) -> Any:
        void = env_mod.Void(bytes.fromhex(eid[2:]), int(time.time()) + 600)
        body = {"void": void.to_json(), "signature": "0x" + sign(self.domain, void, requester.key).hex()}
        return self.api.post(f"/v1/envelopes/{eid}/void", json=body)

    def envelope(self, eid: str) -> dict[str, Any]:
        r = self.api.get(f"/v1/envelopes/{eid}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def until(self, eid: str, what: str, check: Any, timeout: float = 20) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.envelope(eid)
            return body if check(body) else None

        return poll(reached, timeout, interval=0.05, what=f"envelope {eid}: {what}")

    def signer_state(self, eid: str, who: Key, state: str) -> dict[str, Any]:
        return self.until(
            eid,
            f"{who.address} {state}",
            lambda b: any(s["address"] == who.address and s["state"] == state for s in b["signers"]),
        )


@pytest.fixture(scope="module")
def stack(env: Env, api: Api) -> Iterator[Stack]:
    r = api.get("/v1/envelopes/domain")
    assert r.status_code == 200, r.text
    d = r.json()
    yield Stack(env, api, env_mod.domain(d["chainId"], d["verifyingContract"]))


def _refused(r: Any, status: int, rule: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = dict(r.json())
    assert body["rule"] == rule, body
    assert body["type"].endswith(f"/envelope/{rule}") and rule in body["title"], body
    return body


def _balance(stack: Stack, who: Key) -> int:
    return int(Web3(HTTPProvider(stack.env.anvil.url)).eth.get_balance(who.address))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- the happy path


def test_the_domain_is_the_deployed_envelopes_contract(stack: Stack) -> None:
    recorded = stack.env.deployment.envelopes
    assert recorded is not None
    assert stack.domain.verifying_contract == recorded.address
    assert (stack.domain.name, stack.domain.version, stack.domain.chain_id) == ("docchain envelopes", "1", 31337)


def test_a_two_signer_ordered_envelope_is_created_and_completed_gasless(stack: Stack) -> None:
    requester, alice, bob = _key(), _key(), _key()
    doc = _doc()
    request, body = stack.request(requester, doc, [alice, bob], ordered=True)
    r = stack.api.post("/v1/envelopes", json=body)
    assert r.status_code == 202, r.text
    eid = r.json()["id"]
    assert eid == "0x" + env_mod.envelope_id(stack.domain, request).hex()
    assert r.headers["location"] == f"/v1/envelopes/{eid}"
    assert r.json()["status"] in ("pending", "open") and r.json()["links"]["page"].endswith(f"/#/envelope/{eid}")
    again = stack.api.post("/v1/envelopes", json=body)
    assert again.status_code == 200 and again.json()["id"] == eid
    # bob is second: refused before anything is sent, naming who signs first
    refused = _refused(stack.sign(eid, bob, doc), 409, "OutOfOrder")
    assert refused["next"] == alice.address
    a = stack.sign(eid, alice, doc)
    assert a.status_code == 202, a.text
    opened = stack.signer_state(eid, alice, "signed")
    assert opened["status"] == "open" and opened["next"] == bob.address
    assert [s["state"] for s in opened["signers"]] == ["signed", "next"]
    b = stack.sign(eid, bob, doc)
    assert b.status_code == 202, b.text
    done = stack.until(eid, "completed", lambda x: x["status"] == "completed")
    assert [s["state"] for s in done["signers"]] == ["signed", "signed"]
    assert [s["submission"] for s in done["signers"]] == [a.json()["id"], b.json()["id"]]
    assert done["created"]["blockNumber"] <= done["signers"][0]["blockNumber"] <= done["completed"]["blockNumber"]
    assert done["completed"]["transactionHash"] == done["signers"][1]["transactionHash"]
    assert done["next"] is None and done["requester"] == requester.address and done["docHash"] == "0x" + doc.hex()
    assert {(x["kind"], x["state"]) for x in done["actions"]} == {("create", "done"), ("sign", "done")}
    # each signature is a registry record with a receipt, as any submission
    stack.api.wait_state(b.json()["id"], ("anchored", "confirmed"))
    receipt = stack.api.get(f"/v1/documents/0x{doc.hex()}/receipts/{bob.address}")
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["anchor"]["transactionHash"] == done["signers"][1]["transactionHash"]
    assert _balance(stack, requester) == _balance(stack, alice) == _balance(stack, bob) == 0
    # the same signature again is the same submission; a complete envelope refuses what comes after
    same = stack.sign(eid, alice, doc)
    assert same.status_code == 200 and same.json()["id"] == a.json()["id"], same.text
    _refused(stack.decline(eid, alice), 409, "AlreadySigned")
    _refused(stack.void(eid, requester), 409, "CompletedEnvelope")


def test_a_plain_submission_by_a_named_signer_counts(stack: Stack) -> None:
    requester, alice, bob = _key(), _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice, bob], ordered=False)
    stack.until(eid, "on chain", lambda x: x["status"] == "open")
    r = stack.api.post("/v1/documents", json=stack.sign_body(bob, doc))
    assert r.status_code == 202, r.text
    counted = stack.signer_state(eid, bob, "signed")
    assert counted["signers"][1]["submission"] == r.json()["id"]
    assert ("count", "done", bob.address) in {(x["kind"], x["state"], x["signer"]) for x in counted["actions"]}


def _counts(body: dict[str, Any], who: Key) -> list[str]:
    """The states of the envelope's count actions for ``who``."""
    return [x["state"] for x in body["actions"] if x["kind"] == "count" and x["signer"] == who.address]


def test_an_envelope_never_blocks_a_plain_submission_and_counts_it_only_in_turn(stack: Stack) -> None:
    """Anyone may create an envelope naming anyone: mallory's ordered [mallory, bob] for bob's document does not
    make the service refuse bob's own registration, and the count its early record could never get (the contract
    orders records by block) is not queued. A second envelope naming bob, unordered, counts the same record in the
    same pass of the worker, which shows the first was judged. Asked to sign, the ordered one refuses up front."""
    mallory, bob, requester = _key(), _key(), _key()
    doc = _doc()
    trap = stack.create(mallory, doc, [mallory, bob], ordered=True)
    stack.until(trap, "on chain", lambda x: x["status"] == "open")
    plain = stack.api.post("/v1/documents", json=stack.sign_body(bob, doc))
    assert plain.status_code == 202, plain.text
    stack.api.wait_state(plain.json()["id"], ("anchored", "confirmed"))
    fair = stack.create(requester, doc, [bob], ordered=False)
    stack.until(fair, "bob's record counted", lambda x: x["status"] == "completed")
    trapped = stack.envelope(trap)
    assert _counts(trapped, bob) == [] and trapped["status"] == "open" and trapped["next"] == mallory.address
    refused = _refused(stack.sign(trap, bob, doc), 409, "OutOfOrder")
    assert "new envelope" in refused["detail"] and mallory.address in refused["detail"], refused


def test_in_an_ordered_envelope_plain_registrations_made_in_turn_count_in_order(stack: Stack) -> None:
    requester, alice, bob = _key(), _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice, bob], ordered=True)
    stack.until(eid, "on chain", lambda x: x["status"] == "open")
    a = stack.api.post("/v1/documents", json=stack.sign_body(alice, doc))
    assert a.status_code == 202, a.text
    stack.api.wait_state(a.json()["id"], ("anchored", "confirmed"))
    b = stack.api.post("/v1/documents", json=stack.sign_body(bob, doc))
    assert b.status_code == 202, b.text
    done = stack.until(eid, "completed", lambda x: x["status"] == "completed")
    assert [s["submission"] for s in done["signers"]] == [a.json()["id"], b.json()["id"]]
    assert _counts(done, alice) == _counts(done, bob) == ["done"]


def test_a_plain_submission_after_the_deadline_queues_no_count(stack: Stack) -> None:
    """The record is made after the deadline: its count would revert (ExpiredEnvelope), so none is queued and
    nothing shows failed. A second envelope without a deadline counts it in the same pass of the worker."""
    requester, alice = _key(), _key()
    doc = _doc()
    # the creation must be mined within the 2 s: on a stack just started, the worker is still starting (~2.5 s)
    poll(lambda: stack.api.get("/readyz").json().get("worker") == "ok", 20, what="the worker to start")
    # the contract reads block time, which runs ahead of this clock after a burst of mined blocks, or behind it after
    # an evm_revert (test_envelope_notifications' reorg): the deadline is counted from both, and once this clock has
    # passed it, a node still behind is brought to this clock (never ahead of it: later tests count on that), so the
    # plain record is made after the deadline whatever the clocks said
    w3 = Web3(HTTPProvider(stack.env.anvil.url))
    deadline = max(int(time.time()), int(w3.eth.get_block("latest")["timestamp"])) + 2
    late = stack.create(requester, doc, [alice], ordered=False, deadline=deadline)
    stack.until(late, "on chain", lambda x: x["status"] in ("open", "expired"))
    poll(lambda: time.time() >= deadline + 1.1, 30, what="the deadline to pass")
    if int(w3.eth.get_block("latest")["timestamp"]) <= deadline:
        stack.env.anvil.rpc("evm_setNextBlockTimestamp", [int(time.time())])
        stack.env.anvil.mine()
    plain = stack.api.post("/v1/documents", json=stack.sign_body(alice, doc))
    assert plain.status_code == 202, plain.text
    stack.api.wait_state(plain.json()["id"], ("anchored", "confirmed"))
    fair = stack.create(requester, doc, [alice], ordered=False)
    stack.until(fair, "alice's record counted", lambda x: x["status"] == "completed")
    expired = stack.envelope(late)
    assert expired["status"] == "expired" and _counts(expired, alice) == [], expired["actions"]
    assert all(x["state"] != "failed" for x in expired["actions"]), expired["actions"]


def test_a_plain_submission_counts_toward_an_envelope_created_on_chain(stack: Stack) -> None:
    """An envelope created straight on the node (as the CLI does), never through this API: the service learns of
    it from the indexed events, and a named signer's plain registration counts toward it."""
    outsider_key = os.urandom(32)
    stack.env.anvil.rpc("anvil_setBalance", [address_of(outsider_key), hex(10**20)])
    w3 = Web3(HTTPProvider(stack.env.anvil.url))
    envelopes = Envelopes(w3, stack.domain.verifying_contract, TxSender(w3, outsider_key))
    requester, alice, bob = _key(), _key(), _key()
    doc = _doc()
    request, _ = stack.request(requester, doc, [alice, bob], ordered=False)
    envelopes.create(request, sign(stack.domain, request, requester.key))
    eid = "0x" + env_mod.envelope_id(stack.domain, request).hex()

    def indexed() -> bool:
        r = stack.api.get(f"/v1/documents/0x{doc.hex()}/envelopes")
        return r.status_code == 200 and eid in r.json()["envelopes"]

    poll(indexed, 20, interval=0.05, what="the indexer to see the envelope")
    r = stack.api.post("/v1/documents", json=stack.sign_body(bob, doc))
    assert r.status_code == 202, r.text
    counted = stack.signer_state(eid, bob, "signed")
    assert counted["signers"][1]["submission"] == r.json()["id"] and counted["status"] == "open"
    assert _counts(counted, bob) == ["done"]


# ---------------------------------------------------------------------------------------------- decline, void


def test_a_decline_ends_the_envelope(stack: Stack) -> None:
    requester, alice, bob = _key(), _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice, bob], ordered=False)
    r = stack.decline(eid, alice)
    assert r.status_code == 202, r.text
    assert stack.decline(eid, alice).status_code == 200  # the same decline again
    _refused(stack.sign(eid, bob, doc), 409, "DeclinedEnvelope")
    declined = stack.until(eid, "declined", lambda x: x["status"] == "declined")
    assert declined["declinedBy"] == alice.address
    assert [s["state"] for s in declined["signers"]] == ["declined", "pending"]
    # by whom, when and why: the event's block and transaction, and the reason's text beside its hash on chain
    said = declined["declined"]
    assert (said["by"], said["reasonHash"], said["reason"]) == (
        alice.address,
        to_hex(keccak256(REASON.encode())),
        REASON,
    )
    block = Web3(HTTPProvider(stack.env.anvil.url)).eth.get_block(said["blockNumber"])
    assert said["timestamp"] == block["timestamp"] and said["blockNumber"] >= declined["created"]["blockNumber"]
    assert declined["completed"] is None and declined["voided"] is None
    _refused(stack.sign(eid, bob, doc), 409, "DeclinedEnvelope")


def test_a_void_ends_the_envelope(stack: Stack) -> None:
    requester, alice = _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice], ordered=False)
    stranger = _key()
    _refused(stack.void(eid, stranger), 422, "InvalidEnvelopeSignature")
    assert stack.void(eid, requester).status_code == 202
    voided = stack.until(eid, "voided", lambda x: x["status"] == "voided")["voided"]
    assert (voided["by"], voided["reasonHash"], voided["reason"]) == (requester.address, to_hex(ZERO32), None)
    _refused(stack.sign(eid, alice, doc), 409, "VoidedEnvelope")
    _refused(stack.decline(eid, alice), 409, "VoidedEnvelope")


# ---------------------------------------------------------------------------------------------- refusals


def test_a_signer_not_named_is_refused(stack: Stack) -> None:
    requester, alice, mallory = _key(), _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice], ordered=False)
    _refused(stack.sign(eid, mallory, doc), 422, "NotASigner")
    _refused(stack.decline(eid, mallory), 422, "NotASigner")
    _refused(stack.sign(eid, alice, _doc()), 422, "WrongDocument")


def test_a_signature_after_the_deadline_is_refused(stack: Stack) -> None:
    requester, alice = _key(), _key()
    doc = _doc()
    deadline = int(time.time()) + 2
    eid = stack.create(requester, doc, [alice], ordered=False, deadline=deadline)
    stack.until(eid, "on chain", lambda x: x["status"] in ("open", "expired"))
    # (the contract refuses from the second after the deadline)
    poll(lambda: time.time() >= deadline + 1.1, 5, what="the deadline to pass")
    _refused(stack.sign(eid, alice, doc), 409, "ExpiredEnvelope")
    _refused(stack.decline(eid, alice), 409, "ExpiredEnvelope")


@pytest.mark.parametrize(
    ("change", "status", "slug"),
    [
        (lambda b: b["request"].update(signers=[]), 422, "validation"),
        (lambda b: b["request"].update(signers=[b["request"]["requester"]] * 2), 422, "invalid-input"),
        (lambda b: b["request"].update(signers=["0x" + "11" * 20] * 17), 422, "validation"),
        (lambda b: b["request"].update(deadline=1), 422, "invalid-input"),
        (lambda b: b["request"].update(salt="0x12"), 422, "invalid-input"),
        (lambda b: b.update(signature="0x" + "00" * 65), 422, "envelope/InvalidEnvelopeSignature"),
        (lambda b: b["request"].update(ordered="yes"), 422, "validation"),
    ],
    ids=["no-signers", "twice", "17-signers", "deadline-past", "salt", "signature", "ordered-type"],
)
def test_a_malformed_request_is_a_4xx(stack: Stack, change: Any, status: int, slug: str) -> None:
    _, body = stack.request(_key(), _doc(), [_key()], ordered=False)
    change(body)
    r = stack.api.post("/v1/envelopes", json=body)
    assert r.status_code == status, r.text
    assert r.json()["type"].endswith("/" + slug), r.json()


def test_unknown_envelopes_and_bad_ids(stack: Stack) -> None:
    unknown = "0x" + os.urandom(32).hex()
    assert stack.api.get(f"/v1/envelopes/{unknown}").status_code == 404
    assert stack.sign(unknown, _key(), _doc()).status_code == 404
    assert stack.api.get("/v1/envelopes/0x12").status_code == 422


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("x" * 1025, 413),  # 1,025 bytes of ASCII
        ("é" * 513, 413),  # 513 characters, 1,026 bytes
        ("€" * 342, 413),  # 342 characters, 1,026 bytes
        ("not the hashed one", 422),
        ("\ud800", 422),  # a lone surrogate: no UTF-8, so no keccak256
    ],
    ids=["ascii-1025", "2-byte", "3-byte", "not-hashed", "surrogate"],
)
@pytest.mark.parametrize("action", ["decline", "void"])
def test_a_reason_over_1_kib_of_utf8_or_not_hashed_is_refused(
    stack: Stack, refusals: tuple[str, Key, Key], action: str, reason: str, status: int
) -> None:
    eid, requester, alice = refusals
    if action == "decline":
        message: env_mod.Decline | env_mod.Void = env_mod.Decline(
            bytes.fromhex(eid[2:]), alice.address, int(time.time()) + 600
        )
        signed_by = alice
    else:
        message = env_mod.Void(bytes.fromhex(eid[2:]), int(time.time()) + 600)
        signed_by = requester
    body = {action: message.to_json(), "signature": "0x" + sign(stack.domain, message, signed_by.key).hex()}
    # sent as escaped JSON: the lone surrogate has no UTF-8 for the client to encode either
    sent = json.dumps({**body, "reason": reason})
    r = stack.api.post(f"/v1/envelopes/{eid}/{action}", content=sent, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    if status == 413:
        assert r.json()["limit"] == 1024 and "1024 bytes" in r.json()["detail"], r.json()
    else:
        assert r.json()["type"].endswith("/invalid-input"), r.json()


def test_a_reason_of_1_kib_of_utf8_is_kept(stack: Stack) -> None:
    requester, alice = _key(), _key()
    eid = stack.create(requester, _doc(), [alice], ordered=False)
    assert stack.decline(eid, alice, reason="é" * 512).status_code == 202  # 1,024 bytes


@pytest.fixture(scope="module")
def refusals(stack: Stack) -> tuple[str, Key, Key]:
    """An envelope every refused decline and void is sent to: none of them changes it."""
    requester, alice = _key(), _key()
    return stack.create(requester, _doc(), [alice], ordered=False), requester, alice


def test_a_merkle_signature_of_an_envelope_is_refused(stack: Stack) -> None:
    requester, alice = _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice], ordered=False)
    r = stack.api.post(f"/v1/envelopes/{eid}/sign", json={**stack.sign_body(alice, doc), "anchoring": "merkle"})
    assert r.status_code == 422 and "merkle" in r.json()["detail"].lower(), r.text


# ---------------------------------------------------------------------------------------------- durability


def test_an_action_accepted_before_a_sigkill_is_sent_after_the_restart(stack: Stack) -> None:
    """Accepted by an API whose pipeline does not run here, which is then killed: the action is in the outbox,
    and the API started again sends it. That API counts envelope actions against the relayer's limits (one a
    day per signer here), and the fee of the transaction that carried the action is charged to its client."""
    stack.api.stop(signal.SIGKILL)  # (its pipeline child ends with it: its lease goes with it)
    accepting = stack.env.api(DOCCHAIN_PIPELINE="off", DOCCHAIN_SIGNER_DAILY_QUOTA="1").start()
    try:
        requester, alice = _key(), _key()
        doc = _doc()
        _, body = stack.request(requester, doc, [alice], ordered=False)
        r = accepting.post("/v1/envelopes", json=body)
        assert r.status_code == 202 and r.json()["status"] == "pending", r.text
        eid = r.json()["id"]
        assert accepting.post("/v1/envelopes", json=body).status_code == 200  # the same request: nothing spent
        _, second = stack.request(requester, _doc(), [alice], ordered=False)
        quota = accepting.post("/v1/envelopes", json=second)
        assert quota.status_code == 429 and quota.json()["limit"] == "signer-quota", quota.text
        assert accepting.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        accepting.stop(signal.SIGKILL)
        stack.api.start()
    opened = stack.until(eid, "sent after the restart", lambda x: x["actions"][0]["state"] == "done")
    assert opened["status"] == "open" and opened["created"] is not None

    def charged() -> tuple[Any, Any, Any] | None:
        # the envelope's view says "done" once the chain shows the creation; the worker records the transaction
        # mined, and charges its fee, when it next reads the receipt
        with sqlite3.connect(stack.env.database_url.split("///", 1)[1]) as db:
            client, fee = db.execute(
                "SELECT a.client_id, t.fee_wei FROM envelope_actions a JOIN transactions t ON t.id = a.tx_id "
                "WHERE a.envelope_id = ?",
                (eid,),
            ).fetchone()
            spent = db.execute("SELECT spent_wei FROM relayer_spending WHERE client_id = ?", (client,)).fetchone()
        return None if fee is None else (client, fee, spent)

    _, fee, spent = poll(charged, 30, what="the creation's fee charged")
    assert int(fee) > 0 and spent is not None and int(spent[0]) >= int(fee)


# ---------------------------------------------------------------------------------------------- contract wallets


def test_receipts_of_contract_wallets_counted_through_the_envelope(stack: Stack) -> None:
    """An ERC-1271 wallet's signature counted through the envelope has a receipt: one relayed by the API's
    /sign (its submission), and one sent to the envelopes contract by someone else (read back from the sign
    call's calldata, whose signature only the wallet can check). A forged decline fails at sending."""
    outsider_key = os.urandom(32)
    stack.env.anvil.rpc("anvil_setBalance", [address_of(outsider_key), hex(10**20)])
    w3 = Web3(HTTPProvider(stack.env.anvil.url))
    sender = TxSender(w3, outsider_key)
    owner_one, owner_two, requester = _key(), _key(), _key()
    wallets = []
    for owner in (owner_one, owner_two):
        ctor = bytes(12) + bytes.fromhex(owner.address[2:])
        created = sender.transact(None, artifacts.load("MockERC1271Wallet").bytecode + ctor)
        wallets.append(Web3.to_checksum_address(str(created["contractAddress"])))
    doc = _doc()
    eid = stack.create_for(requester, doc, wallets)
    stack.until(eid, "on chain", lambda x: x["status"] == "open")
    # a wallet's signature is the wallet's to judge, on chain: a decline signed by a key that does not own it is
    # accepted, and the contract's refusal when it is sent fails it, by its rule's name, never sent again
    forged = env_mod.Decline(bytes.fromhex(eid[2:]), wallets[1], int(time.time()) + 600)
    body = {"decline": forged.to_json(), "signature": "0x" + sign(stack.domain, forged, _key().key).hex()}
    assert stack.api.post(f"/v1/envelopes/{eid}/decline", json=body).status_code == 202
    failed = stack.until(eid, "the decline refused", lambda x: x["actions"][-1]["state"] == "failed")
    assert failed["actions"][-1]["error"].startswith("InvalidEnvelopeSignature("), failed["actions"]
    assert failed["status"] == "open"
    relayed = stack.api.post(f"/v1/envelopes/{eid}/sign", json=stack.sign_body(owner_one, doc, wallet=wallets[0]))
    assert relayed.status_code == 202, relayed.text
    body = stack.sign_body(owner_two, doc, wallet=wallets[1])
    direct = Registration.from_json(body["registration"])
    envelopes = Envelopes(w3, stack.domain.verifying_contract, sender)
    envelopes.sign(bytes.fromhex(eid[2:]), SignedRegistration(direct, bytes.fromhex(body["signature"][2:])))
    done = stack.until(eid, "completed", lambda x: x["status"] == "completed")
    for wallet, signer in zip(wallets, done["signers"], strict=True):

        def receipt(wallet: str = wallet) -> dict[str, Any] | None:
            r = stack.api.get(f"/v1/documents/0x{doc.hex()}/receipts/{wallet}")
            return dict(r.json()) if r.status_code == 200 else None

        got = parse_receipt(poll(receipt, 20, interval=0.05, what=f"{wallet}'s receipt"))
        assert (got.registration.signer, got.registration.doc_hash) == (wallet, doc)
        assert "0x" + got.tx_hash.hex() == signer["transactionHash"]
    assert got.registration == direct and "0x" + got.signature.hex() == body["signature"]


def test_a_signature_through_the_api_counts_a_record_registered_elsewhere(stack: Stack) -> None:
    """The signer's record is on chain already (sent by someone else): the envelope's sign counts that record,
    the registry emits no Registered event, and the submission is anchored from the record the indexer holds."""
    outsider_key = os.urandom(32)
    stack.env.anvil.rpc("anvil_setBalance", [address_of(outsider_key), hex(10**20)])
    w3 = Web3(HTTPProvider(stack.env.anvil.url))
    requester, alice = _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice], ordered=False)
    stack.until(eid, "on chain", lambda x: x["status"] == "open")
    body = stack.sign_body(alice, doc)
    signed = SignedRegistration(Registration.from_json(body["registration"]), bytes.fromhex(body["signature"][2:]))
    registered = Registry(w3, stack.env.deployment.address, TxSender(w3, outsider_key)).register(signed)

    def indexed() -> bool:
        r = stack.api.get(f"/v1/documents/0x{doc.hex()}")
        return r.status_code == 200 and any(s["signer"] == alice.address for s in r.json()["signers"])

    poll(indexed, 20, interval=0.05, what="the indexer to see the record")
    r = stack.api.post(f"/v1/envelopes/{eid}/sign", json=body)
    assert r.status_code == 202, r.text
    done = stack.until(eid, "completed", lambda x: x["status"] == "completed")
    assert done["signers"][0]["blockNumber"] == registered["blockNumber"]
    anchored = stack.api.wait_state(r.json()["id"], ("anchored", "confirmed"))
    assert anchored["blockNumber"] == registered["blockNumber"]


def test_a_signer_registered_on_the_node_too_early_is_refused_up_front(stack: Stack) -> None:
    """bob's registration was sent straight to the registry (not through this service) before alice signed their
    ordered envelope: the contract's sign would judge that record and revert OutOfOrder at send time, so /sign
    refuses it with 409 and the rule, whether alice's signature is still on its way or mined."""
    outsider_key = os.urandom(32)
    stack.env.anvil.rpc("anvil_setBalance", [address_of(outsider_key), hex(10**20)])
    w3 = Web3(HTTPProvider(stack.env.anvil.url))
    requester, alice, bob = _key(), _key(), _key()
    doc = _doc()
    eid = stack.create(requester, doc, [alice, bob], ordered=True)
    stack.until(eid, "on chain", lambda x: x["status"] == "open")
    body = stack.sign_body(bob, doc)
    signed = SignedRegistration(Registration.from_json(body["registration"]), bytes.fromhex(body["signature"][2:]))
    early = Registry(w3, stack.env.deployment.address, TxSender(w3, outsider_key)).register(signed)
    first = stack.sign(eid, alice, doc)
    assert first.status_code == 202, first.text

    on_its_way = _refused(stack.api.post(f"/v1/envelopes/{eid}/sign", json=body), 409, "OutOfOrder")
    stack.signer_state(eid, alice, "signed")
    mined = _refused(stack.api.post(f"/v1/envelopes/{eid}/sign", json=body), 409, "OutOfOrder")
    for refused in (on_its_way, mined):
        assert (
            f"{bob.address}'s registration (block {early['blockNumber']}) was made before {alice.address}"
            in (refused["detail"])
        ), refused
        assert f"so envelope {eid} can never count it" in refused["detail"], refused
        assert "next" not in refused, refused  # bob is next himself: his record, not his turn, is refused
    after = stack.envelope(eid)
    assert all(a["signer"] != bob.address for a in after["actions"]), after["actions"]  # nothing was queued


# ---------------------------------------------------------------------------------------------- the count rule

A, B, C = ("0x" + c * 40 for c in "abc")
DEADLINE = 1_000


def _state(signers: dict[str, int], *, ordered: bool, status: env_mod.Status = env_mod.Status.OPEN) -> EnvelopeState:
    """An envelope of A, B, C in that order; ``signers``: the block of each one counted already."""
    rows = tuple(
        env_mod.SignerState(s, s in signers, 1 if s in signers else 0, signers.get(s, 0), 0) for s in (A, B, C)
    )
    return EnvelopeState(bytes(32), A, status, ordered, DEADLINE, rows, None, None)


def _record(block: int, *, at: int = 500, revoked: bool = False) -> Record:
    return Record(registered_at=at, block_number=block, revoked_at=at + 1 if revoked else 0)


@pytest.mark.parametrize(
    ("state", "records", "ready", "never"),
    [
        (_state({}, ordered=False), {C: _record(5), A: _record(9)}, (A, C), {}),
        (
            _state({}, ordered=False),
            {A: _record(5, revoked=True), B: _record(6, at=DEADLINE + 1), C: _record(7, at=DEADLINE)},
            (C,),
            {A: "RevokedRegistration", B: "ExpiredEnvelope"},
        ),
        (_state({A: 10}, ordered=True), {B: _record(12), C: _record(11)}, (B,), {C: "OutOfOrder"}),
        (_state({A: 10}, ordered=True), {B: _record(10), C: _record(10)}, (B, C), {}),
        (_state({}, ordered=True), {B: _record(3)}, (), {B: "OutOfOrder"}),
        (
            _state({}, ordered=True),
            {A: _record(4), B: _record(3), C: _record(9)},
            (A,),
            {B: "OutOfOrder", C: "OutOfOrder"},
        ),
        (_state({}, ordered=True, status=env_mod.Status.EXPIRED), {A: _record(4, at=DEADLINE)}, (A,), {}),
        (
            _state({A: 1}, ordered=False, status=env_mod.Status.VOIDED),
            {B: _record(4)},
            (),
            dict.fromkeys((B, C), "VoidedEnvelope"),
        ),
        (_state({}, ordered=False, status=env_mod.Status.NONE), {A: _record(4)}, (), {}),
    ],
    ids=[
        "unordered-any-order",
        "revoked-or-late",
        "ordered-before-previous",
        "ordered-same-block",
        "ordered-first-has-none",
        "ordered-held-behind",
        "counted-after-the-deadline",
        "voided",
        "no-envelope",
    ],
)
@pytest.mark.usefixtures("database_url")  # (the module's sqlite_only mark parametrises it; nothing is started)
def test_the_count_rule_is_the_contracts(
    state: EnvelopeState, records: dict[str, Record], ready: tuple[str, ...], never: dict[str, str]
) -> None:
    """plan_counts applies DocumentEnvelopes' _turn and _checkRecord: which records count now, in order, and
    which never can (a count queued for those would only revert)."""
    plan = plan_counts(state, records)
    assert (plan.ready, dict(plan.never)) == (ready, never)
