"""Invariants of the registry contract, explored by hypothesis against a real anvil: sequences of register,
registerBatch, revoke and revokeBySig from several keys (valid, signed by another key, high-s, tampered,
expired; nonces right and wrong), with time jumping ahead between them. After every step the chain must equal
a model in which:

* a record, once written, keeps its registeredAt and blockNumber forever (a second registration is a no-op);
* a revoked record stays revoked, with its first revokedAt;
* a signer's nonce only grows, by one per revokeBySig that succeeded;
* an invalid or expired signature never writes anything, and reverts with the custom error the interface
  names (InvalidSignature, ExpiredSignature, InvalidAccountNonce, NotRegistered, AlreadyRevoked).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from eth_abi import decode as abi_decode
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from web3 import HTTPProvider, Web3

from docchain.chain.errors import ChainError, ContractRevert
from docchain.chain.node import DEV_MNEMONIC
from docchain.chain.registry import Registry, SignedRegistration, encode_call
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Registration, Revocation, address_of, sign
from tests.reliability.conftest import Scale
from tests.reliability.harness import Chain
from tests.reliability.report import Entry

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
INVALID = ("another key", "high-s", "tampered", "expired")
KINDS = ("valid",) * 6 + INVALID  # a single call: invalid 40% of the time
BATCH_KINDS = ("valid",) * 16 + INVALID  # a batch entry: one in five batches of five holds none
Key = tuple[bytes, str]


def _dev_key(i: int) -> bytes:
    Account.enable_unaudited_hdwallet_features()
    return bytes(Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key)


@dataclass
class World:
    """The chain, the keys, and the model the chain must equal: kept across hypothesis's runs, as the chain is."""

    w3: Web3
    url: str
    registry: Registry  # the relayer (dev account #0) sends
    own: dict[str, Registry]  # each funded signer's own binding, for revoke()
    keys: dict[str, bytes]  # signer address -> key (four funded dev accounts, one key that holds no ether)
    records: dict[Key, tuple[int, int, int]] = field(default_factory=dict)  # (registeredAt, blockNumber, revokedAt)
    nonces: Counter[str] = field(default_factory=Counter)
    tried: Counter[str] = field(default_factory=Counter)
    steps: int = 0
    runs: int = 0

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def read(self, keys: list[Key], signers: list[str]) -> tuple[list[tuple[int, int, int]], list[int]]:
        """recordOf every key and nonces of every signer, in one JSON-RPC batch at one block."""
        head = hex(self.w3.eth.block_number)
        calls = [encode_call("recordOf", doc, signer) for doc, signer in keys]
        calls += [encode_call("nonces", signer) for signer in signers]
        batch = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [{"to": self.registry.address, "data": "0x" + c.hex()}, head],
            }
            for i, c in enumerate(calls)
        ]
        answers = sorted(httpx.post(self.url, json=batch, timeout=30).json(), key=lambda a: a["id"])
        words = [bytes.fromhex(a["result"][2:]) for a in answers]
        records = [tuple(abi_decode(["uint48", "uint48", "uint48"], w)) for w in words[: len(keys)]]
        nonces = [int(abi_decode(["uint256"], w)[0]) for w in words[len(keys) :]]
        return records, nonces  # type: ignore[return-value]

    def mined(self, receipt: dict) -> tuple[int, int]:  # type: ignore[type-arg]
        block = self.w3.eth.get_block(receipt["blockNumber"])
        return int(block["timestamp"]), int(receipt["blockNumber"])


@pytest.fixture(scope="module")
def world(chain: Chain) -> Iterator[World]:
    w3 = Web3(HTTPProvider(chain.node.url, request_kwargs={"timeout": 30}))
    relayer = TxSender(w3, _dev_key(0))
    keys = {address_of(k): k for k in [_dev_key(i) for i in (1, 2, 3, 4)] + [os.urandom(32)]}
    own = {a: Registry(w3, chain.deployment.address, TxSender(w3, k)) for a, k in list(keys.items())[:4]}
    yield World(w3, chain.node.url, Registry(w3, chain.deployment.address, relayer), own, keys)


def signed(world: World, doc: bytes, signer: str, kind: str) -> SignedRegistration:
    now = world.now()
    deadline = now - 60 if kind == "expired" else now + 3600
    reg = Registration(doc_hash=doc, signer=signer, deadline=deadline)
    key = world.keys[signer]
    if kind == "another key":
        key = next(k for a, k in world.keys.items() if a != signer)
    signature = sign(world.registry.domain, reg, key)
    if kind == "high-s":
        s = int.from_bytes(signature[32:64], "big")
        signature = signature[:32] + (N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    if kind == "tampered":  # the signed message said no metadata; the one sent says otherwise
        reg = Registration(doc_hash=doc, signer=signer, deadline=deadline, metadata_hash=b"\x01" * 32)
    return SignedRegistration(reg, signature)


def expected_error(world: World, key: Key, kind: str, pending: set[Key] = frozenset()) -> str | None:  # type: ignore[assignment]
    """What register (or one batch entry) must do: None to write, "skip" when already recorded, else the error."""
    if key in world.records or key in pending:
        return "skip"  # an existing record makes it a no-op, whatever the signature
    if kind == "expired":
        return "ExpiredSignature"
    if kind != "valid":
        return "InvalidSignature"
    return None


def attempt(world: World, action: str, call: object) -> tuple[dict | None, str | None]:  # type: ignore[type-arg]
    world.tried[action] += 1
    try:
        return call(), None  # type: ignore[operator]
    except ContractRevert as exc:
        return None, exc.name
    except ChainError as exc:
        return None, f"ChainError: {exc}"


def machine(world: World) -> type[RuleBasedStateMachine]:
    signers = list(world.keys)
    funded = signers[:4]

    class Registry_(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            world.runs += 1
            # a few documents per run, so registrations collide; records of earlier runs stay checked
            self.docs = [hashlib.sha256(os.urandom(16)).digest() for _ in range(3)]
            self.keys: set[Key] = set()

        def key(self, d: int, signer: str) -> Key:
            k = (self.docs[d], signer)
            self.keys.add(k)
            return k

        @rule(d=st.integers(0, 2), signer=st.sampled_from(signers), kind=st.sampled_from(KINDS))
        def register(self, d: int, signer: str, kind: str) -> None:
            key = self.key(d, signer)
            want = expected_error(world, key, kind)
            receipt, error = attempt(world, "register", lambda: world.registry.register(signed(world, *key, kind)))
            if want in (None, "skip"):
                assert error is None, f"register ({kind}) reverted with {error}"
                if want is None:
                    at, block = world.mined(receipt)  # type: ignore[arg-type]
                    world.records[key] = (at, block, 0)
            else:
                assert error == want, f"register ({kind}): expected {want}, got {error}"

        @rule(
            entries=st.lists(
                st.tuples(st.integers(0, 2), st.sampled_from(signers), st.sampled_from(BATCH_KINDS)),
                min_size=1,
                max_size=5,
            )
        )
        def register_batch(self, entries: list[tuple[int, str, str]]) -> None:
            items, pending, want = [], set(), None
            for d, signer, kind in entries:
                key = self.key(d, signer)
                items.append(signed(world, *key, kind))
                outcome = expected_error(world, key, kind, pending)
                if outcome is None:
                    pending.add(key)
                elif outcome != "skip" and want is None:
                    want = outcome  # the first bad entry reverts the whole batch
            receipt, error = attempt(world, "registerBatch", lambda: world.registry.register_batch(items))
            assert error == want, f"registerBatch {[k for _, _, k in entries]}: expected {want}, got {error}"
            if want is None:
                at, block = world.mined(receipt)  # type: ignore[arg-type]
                for key in pending:
                    world.records[key] = (at, block, 0)

        @rule(d=st.integers(0, 2), signer=st.sampled_from(funded))
        def revoke(self, d: int, signer: str) -> None:
            key = self.key(d, signer)
            record = world.records.get(key)
            want = "NotRegistered" if record is None else "AlreadyRevoked" if record[2] else None
            receipt, error = attempt(world, "revoke", lambda: world.own[signer].revoke(key[0]))
            assert error == want, f"revoke: expected {want}, got {error}"
            if want is None and record is not None:
                at, _ = world.mined(receipt)  # type: ignore[arg-type]
                world.records[key] = (record[0], record[1], at)

        @rule(
            d=st.integers(0, 2),
            signer=st.sampled_from(signers),
            nonce_off=st.sampled_from([0, 0, 0, 1, -1]),
            kind=st.sampled_from(["valid", "valid", "another key", "expired"]),
        )
        def revoke_by_sig(self, d: int, signer: str, nonce_off: int, kind: str) -> None:
            key = self.key(d, signer)
            current = world.nonces[signer]
            nonce = current + nonce_off if current + nonce_off >= 0 else current + 1
            now = world.now()
            rev = Revocation(
                doc_hash=key[0], signer=signer, nonce=nonce, deadline=now - 60 if kind == "expired" else now + 3600
            )
            signing_key = world.keys[signer]
            if kind == "another key":
                signing_key = next(k for a, k in world.keys.items() if a != signer)
            signature = sign(world.registry.domain, rev, signing_key)
            record = world.records.get(key)
            if kind == "expired":
                want: str | None = "ExpiredSignature"
            elif nonce != current:
                want = "InvalidAccountNonce"
            elif kind != "valid":
                want = "InvalidSignature"
            elif record is None:
                want = "NotRegistered"
            elif record[2]:
                want = "AlreadyRevoked"
            else:
                want = None
            receipt, error = attempt(world, "revokeBySig", lambda: world.registry.revoke_by_sig(rev, signature))
            assert error == want, f"revokeBySig ({kind}, nonce {nonce} of {current}): expected {want}, got {error}"
            if want is None and record is not None:
                at, _ = world.mined(receipt)  # type: ignore[arg-type]
                world.records[key] = (record[0], record[1], at)
                world.nonces[signer] += 1

        @rule(seconds=st.integers(1, 4000))
        def time_passes(self, seconds: int) -> None:
            world.w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
            world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

        @rule(pick=st.integers(0, 10**6), signed_off=st.booleans())
        def revoke_a_record(self, pick: int, signed_off: bool) -> None:
            """Revoke a record of this run (direct or by signature), so revocations meet records often."""
            mine = sorted(k for k in self.keys if k in world.records)
            if not mine:
                return
            doc, signer = mine[pick % len(mine)]
            if signed_off or signer not in funded:
                self.revoke_by_sig(self.docs.index(doc), signer, 0, "valid")
            else:
                self.revoke(self.docs.index(doc), signer)

        @invariant()
        def chain_equals_model(self) -> None:
            world.steps += 1
            keys = sorted(self.keys)
            records, nonces = world.read(keys, signers)
            for key, seen in zip(keys, records, strict=True):
                assert seen == world.records.get(key, (0, 0, 0)), f"record {key[0].hex()[:12]}/{key[1]}: {seen}"
            for signer, nonce in zip(signers, nonces, strict=True):
                assert nonce == world.nonces[signer], f"nonce of {signer}: {nonce}, expected {world.nonces[signer]}"

        def teardown(self) -> None:
            # every record of every run so far: nothing written earlier has changed since
            keys = list(world.records)
            for start in range(0, len(keys), 200):
                chunk = keys[start : start + 200]
                records, _ = world.read(chunk, [])
                for key, seen in zip(chunk, records, strict=True):
                    assert seen == world.records[key], f"an earlier record changed: {key[0].hex()[:12]}/{key[1]}"

    return Registry_


def test_registry_invariants(world: World, scale: Scale, entry: Entry) -> None:
    """Contract invariants: hypothesis drives register, registerBatch, revoke and revokeBySig on anvil"""
    config = settings(
        max_examples=scale.invariant_examples,
        stateful_step_count=scale.invariant_steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    try:
        run_state_machine_as_test(machine(world), settings=config)
    finally:
        entry.inputs["contract calls (hypothesis)"] += sum(world.tried.values())
        revoked = sum(1 for r in world.records.values() if r[2])
        entry.held.append(
            f"{world.runs} state-machine runs, {world.steps} checked steps, {len(world.records)} records written, "
            f"{revoked} revoked, nonces up to {max(world.nonces.values(), default=0)}"
        )
        entry.table("Calls tried:", ["call", "count"], [[k, str(n)] for k, n in sorted(world.tried.items())])
    assert world.records, "no record was ever written: the exploration tested nothing"
