"""chain/verify.py on both nodes (anvil and ganache): honest records verify with and without a receipt,
and the verdicts that are not failures — revoked, not registered, signed by others — say who and when."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import threading
from typing import Any

import httpx
import pytest
from hexbytes import HexBytes
from web3 import Web3

from docchain.chain import envelopes as env
from docchain.chain import envelopes_contract
from docchain.chain.envelopes_contract import Envelopes
from docchain.chain.errors import RegistrationNotFound
from docchain.chain.hashing import sha256_bytes
from docchain.chain.receipt import Receipt
from docchain.chain.registry import (
    Registry,
    RegistryEvent,
    RegistryReader,
    SignedRegistration,
    encode_call,
    signed_registration_in_envelope_call,
)
from docchain.chain.rpc import ChainReader, JsonRpc
from docchain.chain.sender import TxSender
from docchain.chain.trust import Pin
from docchain.chain.typed_data import Domain, Registration, address_of, sign
from docchain.chain.values import utc_text
from docchain.chain.verify import Outcome, Question, Step, SupersedeClaim, Verdict, Via, superseders, verify
from tests.forwarder import deploy_forwarder, forward

ALICE = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
BOB = bytes.fromhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")


def _run(url: str, question: Question, **kwargs: Any) -> Verdict:
    async def go() -> Verdict:
        async with JsonRpc(url) as rpc:
            return await verify(ChainReader(rpc), question, **kwargs)

    return asyncio.run(go())


def _register(registry: Registry, key: bytes, doc: bytes) -> Receipt:
    reg = Registration(doc_hash=sha256_bytes(doc), signer=address_of(key), deadline=2**40)
    signed = SignedRegistration(reg, sign(registry.domain, reg, key))
    return registry.receipt_for(signed, registry.register(signed))


def _url(w3: Web3) -> str:
    return str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]


def _pin(registry: Registry) -> Pin:
    return Pin(registry.chain_id, registry.address, "the test's deployment")


def test_an_honest_receipt_verifies_and_says_who_when_where(registry: Registry, w3: Web3) -> None:
    doc = b"honest " + w3.eth.get_block("latest")["hash"]
    receipt = _register(registry, ALICE, doc)
    verdict = _run(_url(w3), Question(sha256_bytes(doc), receipt=receipt))
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert [c.name for c in verdict.steps] == [
        Step.FILE,
        Step.CHAIN,
        Step.REGISTRY,
        Step.SIGNATURE,
        Step.RECORD,
        Step.ANCHOR,
        Step.CONFIRMATIONS,
        Step.REVOCATION,
    ]
    assert verdict.anchor is not None and verdict.trust is not None
    assert (verdict.anchor.tx_hash, verdict.anchor.block_number, verdict.anchor.timestamp) == (
        receipt.tx_hash,
        receipt.block_number,
        receipt.timestamp,
    )
    assert verdict.trust.sources == ("code",)
    assert verdict.summary == (
        f"Signed by {receipt.signer} on {utc_text(receipt.timestamp)} (block {receipt.block_number}, transaction "
        f"0x{receipt.tx_hash.hex()}, chain {registry.chain_id}, registry {registry.address})."
    )


def test_without_a_receipt_the_pinned_registry_and_the_chain_answer(registry: Registry, w3: Web3) -> None:
    doc = b"no receipt " + w3.eth.get_block("latest")["hash"]
    receipt = _register(registry, ALICE, doc)
    verdict = _run(_url(w3), Question(sha256_bytes(doc)), pin=_pin(registry))
    assert verdict.outcome is Outcome.VALID and verdict.signer == receipt.signer
    assert verdict.anchor is not None and verdict.anchor.tx_hash == receipt.tx_hash
    assert verdict.trust is not None and verdict.trust.sources == ("code", "pin")


def test_signed_by_others_names_them_and_when(registry: Registry, w3: Web3) -> None:
    doc = b"bob's " + w3.eth.get_block("latest")["hash"]
    bobs = _register(registry, BOB, doc)
    verdict = _run(_url(w3), Question(sha256_bytes(doc), signer=address_of(ALICE)), pin=_pin(registry))
    assert (verdict.outcome, verdict.failed_step) == (Outcome.OTHER_SIGNERS, Step.RECORD)
    assert [(o.signer, o.block_number, o.timestamp) for o in verdict.other_signers] == [
        (bobs.signer, bobs.block_number, bobs.timestamp)
    ]
    assert verdict.summary == (
        f"{address_of(ALICE)} has not signed this file; it was signed by {bobs.signer} on "
        f"{utc_text(bobs.timestamp)} (block {bobs.block_number})."
    )


def test_not_registered(registry: Registry, w3: Web3) -> None:
    verdict = _run(_url(w3), Question(sha256_bytes(b"never signed")), pin=_pin(registry))
    assert (verdict.outcome, verdict.failed_step) == (Outcome.NOT_REGISTERED, Step.RECORD)
    assert verdict.summary == (
        f"No signature of this file is recorded on chain in {registry.address}; "
        "a Merkle-anchored or private signature is verified with its receipt."
    )


def test_revoked_says_by_whom_in_which_block_and_when(registry: Registry, w3: Web3) -> None:
    doc = b"revoked " + w3.eth.get_block("latest")["hash"]
    receipt = _register(registry, ALICE, doc)
    Registry(w3, registry.address, TxSender(w3, ALICE)).revoke(receipt.doc_hash)  # dev account #1: funded
    verdict = _run(_url(w3), Question(sha256_bytes(doc), receipt=receipt))
    assert (verdict.outcome, verdict.failed_step) == (Outcome.REVOKED, Step.REVOCATION)
    assert verdict.revocation is not None and verdict.revocation.by == receipt.signer
    assert verdict.revocation.block_number is not None and verdict.revocation.block_number > receipt.block_number
    revoked_at = w3.eth.get_block(verdict.revocation.block_number)["timestamp"]
    assert verdict.revocation.timestamp == revoked_at


def test_confirmations_are_counted_from_the_head_never_read(registry: Registry, w3: Web3) -> None:
    doc = b"young " + w3.eth.get_block("latest")["hash"]
    receipt = _register(registry, ALICE, doc)
    verdict = _run(_url(w3), Question(sha256_bytes(doc), receipt=receipt, confirmations=10_000))
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.CONFIRMATIONS)


def test_a_question_without_receipt_or_pin_is_bad_input(w3: Web3) -> None:
    from docchain.chain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="which registry"):
        _run(_url(w3), Question(sha256_bytes(b"x")))


def test_another_expected_signer_than_the_receipts_gets_the_verdict_it_gets_without_the_receipt(
    registry: Registry, w3: Web3
) -> None:
    """One question, one verdict: "did Alice sign this file?" is answered "signed by others", naming Bob and
    when he signed, whether or not Bob's receipt comes with the file (it once said "invalid at signature")."""
    doc = b"bob's, asked of alice " + w3.eth.get_block("latest")["hash"]
    bobs = _register(registry, BOB, doc)
    alice = address_of(ALICE)
    with_receipt = _run(_url(w3), Question(sha256_bytes(doc), signer=alice, receipt=bobs))
    without = _run(_url(w3), Question(sha256_bytes(doc), signer=alice), pin=_pin(registry))
    for verdict in (with_receipt, without):
        assert (verdict.outcome, verdict.failed_step, verdict.signer) == (Outcome.OTHER_SIGNERS, Step.RECORD, alice)
        assert [(o.signer, o.block_number, o.timestamp) for o in verdict.other_signers] == [
            (bobs.signer, bobs.block_number, bobs.timestamp)
        ]
    assert with_receipt.summary == without.summary
    assert with_receipt.trust is not None and with_receipt.trust.sources == ("code",)
    assert with_receipt.reason is not None and f"is {bobs.signer}'s" in with_receipt.reason


def test_another_expected_signer_with_a_receipt_that_fails_gets_the_receipts_failure(
    registry: Registry, w3: Web3
) -> None:
    """The receipt is verified first, as its own signer's: a tampered one is the verdict, at its step, and
    its registry is never asked about the expected signer."""
    doc = b"bob's, tampered " + w3.eth.get_block("latest")["hash"]
    bobs = _register(registry, BOB, doc)
    tampered = dataclasses.replace(bobs, tx_hash=bytes(32))
    verdict = _run(_url(w3), Question(sha256_bytes(doc), signer=address_of(ALICE), receipt=tampered))
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.ANCHOR), verdict.summary


class _CappingProxy:
    """A JSON-RPC proxy on 127.0.0.1 in front of the test's real node that refuses eth_getLogs over more than
    ``cap`` blocks, as public providers do (``cap`` 0: over any range), and passes everything else on."""

    def __init__(self, upstream: str, cap: int) -> None:
        self.upstream, self.cap, self.refused = upstream, cap, 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                call = json.loads(body)
                single = isinstance(call, dict)  # a batch passes on as it is: verification sends none of these
                params = call.get("params") or [{}] if single else [{}]
                if single and call["method"] == "eth_getLogs" and "fromBlock" in params[0]:
                    span = int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1
                    if span > proxy.cap:
                        proxy.refused += 1
                        error = {"code": -32005, "message": f"query exceeds max block range {proxy.cap}"}
                        return self._answer(json.dumps({"jsonrpc": "2.0", "id": call["id"], "error": error}).encode())
                return self._answer(httpx.post(proxy.upstream, content=body, headers=JSON, timeout=30).content)

            def _answer(self, content: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _CappingProxy:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()


JSON = {"Content-Type": "application/json"}


def test_signed_by_others_is_found_through_a_node_that_caps_the_log_range(registry: Registry, w3: Web3) -> None:
    """No deploy block known (a stranger's --registry pin): the search from block 0 is refused, narrowed and
    run back from the head in windows the node accepts."""
    doc = b"bob's, capped " + w3.eth.get_block("latest")["hash"]
    bobs = _register(registry, BOB, doc)
    head = w3.eth.block_number
    with _CappingProxy(_url(w3), cap=max(2, head // 3)) as proxy:
        verdict = _run(proxy.url, Question(sha256_bytes(doc), signer=address_of(ALICE)), pin=_pin(registry))
        anyone = _run(proxy.url, Question(sha256_bytes(doc)), pin=_pin(registry))
    assert proxy.refused >= 2  # the wide searches were refused, and the verdicts found their way all the same
    assert verdict.outcome is Outcome.OTHER_SIGNERS, verdict.summary
    assert [o.signer for o in verdict.other_signers] == [bobs.signer]
    assert anyone.outcome is Outcome.VALID and anyone.signer == bobs.signer


def test_a_node_that_refuses_the_log_search_gets_a_verdict_with_the_reason_not_a_network_error(
    registry: Registry, w3: Web3
) -> None:
    doc = b"bob's, refused " + w3.eth.get_block("latest")["hash"]
    _register(registry, BOB, doc)
    with _CappingProxy(_url(w3), cap=0) as proxy:
        expected = _run(proxy.url, Question(sha256_bytes(doc), signer=address_of(ALICE)), pin=_pin(registry))
        anyone = _run(proxy.url, Question(sha256_bytes(doc)), pin=_pin(registry))
    # Alice has no record, which the node says; who else signed it, it would not search
    assert (expected.outcome, expected.failed_step) == (Outcome.NOT_REGISTERED, Step.RECORD)
    assert expected.reason is not None
    assert expected.reason.endswith(
        "whether others signed it is not known: the node refuses eth_getLogs (query exceeds max block range 0)"
    )
    assert (anyone.outcome, anyone.failed_step) == (Outcome.INVALID, Step.RECORD)
    assert anyone.reason == (
        f"who signed {'0x' + sha256_bytes(doc).hex()} cannot be told: the node refuses eth_getLogs (query exceeds "
        "max block range 0); name the expected signer or give the receipt"
    )


# ---------------------------------------------------------------------------- a transaction sent to another contract


@dataclasses.dataclass(frozen=True)
class _Relayed:
    """A registration registered through another contract: its receipt and the transaction's Registered event."""

    receipt: Receipt
    event: RegistryEvent


@pytest.fixture(scope="module")
def envelopes(registry: Registry, relayer: TxSender) -> Envelopes:
    return Envelopes(registry.w3, envelopes_contract.deploy(relayer, registry.address), relayer)


def _sign_in_envelope(registry: Registry, envelopes: Envelopes, key: bytes, doc: bytes) -> _Relayed:
    """``key`` signs ``doc`` in a one-signer envelope of its own: the transaction goes to the envelopes contract,
    which calls the registry's register."""
    signer, now = address_of(key), registry.w3.eth.get_block("latest")["timestamp"]
    request = env.EnvelopeRequest(sha256_bytes(doc), signer, (signer,), False, 0, env.new_salt(), now + 3600)
    envelopes.create(request, env.sign(envelopes.domain, request, key))
    reg = Registration(doc_hash=sha256_bytes(doc), signer=signer, deadline=2**40, metadata_hash=b"\x07" * 32)
    signed = SignedRegistration(reg, sign(registry.domain, reg, key))
    mined = envelopes.sign(env.envelope_id(envelopes.domain, request), signed)
    (event,) = registry.events_in(mined)
    return _Relayed(registry.receipt_for(signed, mined), event)


def test_a_registration_signed_through_an_envelope_verifies_with_its_receipt(
    registry: Registry, envelopes: Envelopes, w3: Web3
) -> None:
    """The transaction went to the envelopes contract: the registry's Registered log in it proves the record."""
    doc = b"enveloped " + w3.eth.get_block("latest")["hash"]
    relayed = _sign_in_envelope(registry, envelopes, ALICE, doc)
    assert w3.eth.get_transaction(HexBytes(relayed.receipt.tx_hash))["to"] == envelopes.address
    verdict = _run(_url(w3), Question(sha256_bytes(doc), receipt=relayed.receipt), pin=_pin(registry))
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert verdict.anchor is not None and verdict.anchor.tx_hash == relayed.receipt.tx_hash
    # the envelopes contract it went through is said, with its release (contracts/releases.json's envelopes)
    through = Via(envelopes.address, "DocumentEnvelopes 1 (multi-party envelopes)")
    assert verdict.anchor.via == through
    assert verdict.to_json()["anchor"]["via"] == {"address": through.address, "release": through.release}
    assert f"sent through {through.release} at {through.address}" in verdict.steps[-3].detail


def test_a_transaction_to_another_contract_without_the_records_log_fails_at_anchor(
    registry: Registry, envelopes: Envelopes, w3: Web3
) -> None:
    """An honest receipt of ALICE's given the transaction (and block) of BOB's envelope signature: a successful
    transaction to a contract that called the registry, but whose Registered log is of another (doc, signer)."""
    doc = b"elsewhere " + w3.eth.get_block("latest")["hash"]
    honest = _register(registry, ALICE, doc)
    other = _sign_in_envelope(registry, envelopes, BOB, doc + b" (bob's)").receipt
    forged = dataclasses.replace(
        honest,
        tx_hash=other.tx_hash,
        block_number=other.block_number,
        block_hash=other.block_hash,
        timestamp=other.timestamp,
    )
    verdict = _run(_url(w3), Question(sha256_bytes(doc), receipt=forged), pin=_pin(registry))
    assert (verdict.outcome, verdict.failed_step) == (Outcome.INVALID, Step.ANCHOR)
    assert verdict.reason == (
        f"transaction 0x{other.tx_hash.hex()} did not record 0x{sha256_bytes(doc).hex()} by {address_of(ALICE)}"
    )


def test_a_registration_relayed_by_a_forwarder_verifies_with_its_receipt(
    registry: Registry, relayer: TxSender, w3: Web3
) -> None:
    """Any contract may relay register (a multisig, a forwarder): the record is the registry's log, not the
    calldata, so a receipt naming that transaction verifies; only the receipt's making needs calldata it reads."""
    doc = b"forwarded " + w3.eth.get_block("latest")["hash"]
    reg = Registration(doc_hash=sha256_bytes(doc), signer=address_of(BOB), deadline=2**40)
    signed = SignedRegistration(reg, sign(registry.domain, reg, BOB))
    forwarder = deploy_forwarder(relayer, registry.address)
    tx_hash = forward(relayer, forwarder, encode_call("register", reg.as_tuple(), signed.signature))
    receipt = registry.receipt_for(signed, w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
    verdict = _run(_url(w3), Question(sha256_bytes(doc), receipt=receipt), pin=_pin(registry))
    assert verdict.outcome is Outcome.VALID, verdict.summary
    assert verdict.anchor is not None and verdict.anchor.via is None  # a forwarder is no released contract


def test_the_calldata_reader_reads_an_envelopes_sign(registry: Registry, envelopes: Envelopes, w3: Web3) -> None:
    """The API's receipts of envelope-signed records: the registration and signature read back from sign(id, reg,
    signature), by the web3 binding and the asynchronous reader alike, as the receipt that verifies has them."""
    doc = b"read back " + w3.eth.get_block("latest")["hash"]
    relayed = _sign_in_envelope(registry, envelopes, BOB, doc)
    expected = SignedRegistration(relayed.receipt.registration, relayed.receipt.signature)
    assert registry.signed_registration_of(relayed.event) == expected

    async def read() -> SignedRegistration:
        async with JsonRpc(_url(w3)) as rpc:
            return await RegistryReader(rpc, registry.address, registry.chain_id).signed_registration_of(relayed.event)

    assert asyncio.run(read()) == expected


def _envelope_event(signed: SignedRegistration) -> RegistryEvent:
    reg = signed.registration
    return RegistryEvent(
        "Registered", reg.doc_hash, reg.signer, 1, bytes(32), bytes(32), 0, reg.metadata_hash, reg.supersedes
    )


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("another signature", "envelope sign signature of .* does not recover the signer"),
        ("another metadataHash", "differs from the recorded event"),
        ("another document", "carries no registration of"),
        ("truncated", "sign calldata does not decode"),
    ],
)
def test_envelope_sign_calldata_that_is_not_the_records_is_a_typed_not_found(change: str, said: str) -> None:
    """No node: the decoder alone. Any contract may share sign's selector, so only a signature that recovers the
    signer is taken (a contract wallet's through an envelope is not read back)."""
    domain = Domain(chain_id=31337, verifying_contract=Web3.to_checksum_address("0x" + "ab" * 20))
    reg = Registration(doc_hash=b"\x01" * 32, signer=address_of(ALICE), deadline=2**40, metadata_hash=b"\x02" * 32)
    signed = SignedRegistration(reg, sign(domain, reg, ALICE))
    event = _envelope_event(signed)
    assert signed_registration_in_envelope_call(
        env.encode_sign(b"\x09" * 32, reg, signed.signature), event, domain
    ) == (signed)
    signature, sent = signed.signature, reg
    if change == "another signature":
        signature = sign(domain, reg, BOB)
    elif change == "another metadataHash":
        sent = dataclasses.replace(reg, metadata_hash=b"\x03" * 32)
    elif change == "another document":
        sent = dataclasses.replace(reg, doc_hash=b"\x04" * 32)
    calldata = env.encode_sign(b"\x09" * 32, sent, signature)
    if change == "truncated":
        calldata = calldata[:40]
    with pytest.raises(RegistrationNotFound, match=said):
        signed_registration_in_envelope_call(calldata, event, domain)


# ---------------------------------------------------------------------------------------------- superseding

_OLD, _NEW, _OTHER = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32
_A, _B, _M = address_of(ALICE), address_of(BOB), "0x000000000000000000000000000000000000dEaD"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ([SupersedeClaim(_NEW, _A, _OLD, False)], [(_NEW, (_A,))]),
        ([SupersedeClaim(_NEW, _A.lower(), _OLD, False)], [(_NEW, (_A.lower(),))]),  # addresses in any case
        ([SupersedeClaim(_NEW, _M, _OLD, False)], []),  # a stranger to the old document
        ([SupersedeClaim(_NEW, _A, _OLD, True)], []),  # revoked
        ([SupersedeClaim(_NEW, _A, _OTHER, False)], []),  # it replaces another document
        ([SupersedeClaim(_OLD, _A, _OLD, False)], []),  # a document naming itself
        (
            [
                SupersedeClaim(_OTHER, _B, _OLD, False),
                SupersedeClaim(_NEW, _A, _OLD, False),
                SupersedeClaim(_OTHER, _A, _OLD, False),
                SupersedeClaim(_OTHER, _B, _OLD, False),
                SupersedeClaim(_NEW, _M, _OLD, False),
            ],
            [(_OTHER, (_B, _A)), (_NEW, (_A,))],  # in the chain's order, each signer once, the stranger left out
        ),
    ],
)
def test_a_supersede_counts_by_a_signer_of_the_old_document_not_revoked(
    claims: list[SupersedeClaim], expected: list[tuple[bytes, tuple[str, ...]]]
) -> None:
    found = superseders(_OLD, [_A, _B], claims)
    assert [(s.doc_hash, s.signers) for s in found] == expected
