"""Gas of the envelope operations on anvil, beside a plain relayed registration measured in the same run.

Each figure is the ``gasUsed`` of one relayed transaction: creating an envelope of 2, 5 and 16 signers, signing
through the envelope (which includes the registration itself: the first signer of two, then the last, which
completes it, and one signer of an unordered five), counting a direct registration, declining and voiding. The
ratio is against the plain registration; for ``sign`` the envelope's own share is the difference from it.

    python bench/envelopes.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3
from web3.types import TxReceipt

from docchain.chain import deploy, envelopes_contract
from docchain.chain import envelopes as env
from docchain.chain import typed_data as td
from docchain.chain.envelopes_contract import Envelopes
from docchain.chain.node import LocalNode, NodeConfig
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.sender import TxSender

DEV_KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
HOUR = 3600


@dataclass(frozen=True)
class Row:
    case: str
    label: str
    gas: int


def keys(n: int) -> list[bytes]:
    return [os.urandom(32) for _ in range(n)]


class Bench:
    def __init__(self, registry: Registry, envelopes: Envelopes) -> None:
        self.registry = registry
        self.envelopes = envelopes

    def registration(self, key: bytes, doc_hash: bytes) -> SignedRegistration:
        reg = td.Registration(doc_hash, td.address_of(key), int(time.time()) + HOUR, metadata_hash=os.urandom(32))
        return SignedRegistration(reg, td.sign(self.registry.domain, reg, key))

    def create(self, requester: bytes, signers: list[bytes], *, ordered: bool = True) -> tuple[bytes, bytes, int]:
        """A new envelope's id, document and creation gas."""
        address = td.address_of(requester)
        request = env.EnvelopeRequest(
            doc_hash=os.urandom(32),
            requester=address,
            signers=tuple(td.address_of(k) for k in signers),
            ordered=ordered,
            deadline=int(time.time()) + HOUR,
            salt=env.new_salt(),
            request_deadline=int(time.time()) + HOUR,
        )
        receipt = self.envelopes.create(request, env.sign(self.envelopes.domain, request, requester))
        return env.envelope_id(self.envelopes.domain, request), request.doc_hash, int(receipt["gasUsed"])

    def run(self) -> list[Row]:
        # the first write to each contract's storage pays extra: warm both up once
        self.registry.register(self.registration(os.urandom(32), os.urandom(32)))
        self.create(os.urandom(32), keys(1))
        rows = [Row("register", "plain registration (relayed)", self._gas_register())]

        requester = os.urandom(32)
        for n in (2, 5, 16):
            rows.append(Row(f"create{n}", f"create, {n} signers", self.create(requester, keys(n))[2]))

        a, b = keys(2)
        envelope, doc, _ = self.create(requester, [a, b])
        rows.append(
            Row(
                "sign_first",
                "sign (1st of 2, ordered)",
                self._gas(self.envelopes.sign(envelope, self.registration(a, doc))),
            )
        )
        rows.append(
            Row(
                "sign_last",
                "sign (2nd of 2, completes)",
                self._gas(self.envelopes.sign(envelope, self.registration(b, doc))),
            )
        )

        signers = keys(5)
        envelope, doc, _ = self.create(requester, signers, ordered=False)
        gas = self._gas(self.envelopes.sign(envelope, self.registration(signers[4], doc)))
        rows.append(Row("sign_unordered5", "sign (5th named of 5, unordered)", gas))

        a, b = keys(2)
        envelope, doc, _ = self.create(requester, [a, b])
        self.registry.register(self.registration(a, doc))
        gas = self._gas(self.envelopes.count_registration(envelope, td.address_of(a)))
        rows.append(Row("count", "countRegistration (1st of 2)", gas))

        a, b = keys(2)
        envelope, _, _ = self.create(requester, [a, b])
        decline = env.Decline(envelope, td.address_of(b), int(time.time()) + HOUR, reason_hash=os.urandom(32))
        rows.append(
            Row(
                "decline",
                "decline",
                self._gas(self.envelopes.decline(decline, env.sign(self.envelopes.domain, decline, b))),
            )
        )

        envelope, _, _ = self.create(requester, keys(2))
        void = env.Void(envelope, int(time.time()) + HOUR, reason_hash=os.urandom(32))
        rows.append(
            Row("void", "void", self._gas(self.envelopes.void(void, env.sign(self.envelopes.domain, void, requester))))
        )
        return rows

    def _gas_register(self) -> int:
        return self._gas(self.registry.register(self.registration(os.urandom(32), os.urandom(32))))

    @staticmethod
    def _gas(receipt: TxReceipt) -> int:
        return int(receipt["gasUsed"])


def measure() -> list[Row]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalNode(NodeConfig(kind="anvil", data_dir=Path(tmp), state_interval=None)) as node,
    ):
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        sender = TxSender(w3, DEV_KEY)
        registry = Registry(w3, deploy.deploy(sender).address, sender)
        envelopes = Envelopes(w3, envelopes_contract.deploy(sender, registry.address), sender)
        return Bench(registry, envelopes).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    rows = measure()
    if args.json:
        print(json.dumps({r.case: r.gas for r in rows}))
        return 0
    base = rows[0].gas
    print(f"{'operation':<36}{'gas':>10}{'vs registration':>17}")
    for row in rows:
        print(f"{row.label:<36}{row.gas:>10,}{row.gas / base:>16.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
