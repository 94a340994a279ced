"""What each of the service's processes imports at start: every API start (and each of its restarts) pays it, in
both processes. The HTTP side never signs, so it must not import eth_account (through eth_keyfile it computes
py_ecc's BLS pairing tables, about half a second of CPU) nor web3 (which imports eth_account); the anchoring
process never answers HTTP, so it must not import FastAPI; it signs only once it has something to send."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY_FOR_HTTP = ("eth_account", "eth_keyfile", "py_ecc.bls", "web3")
HEAVY_FOR_PIPELINE = ("fastapi", "starlette", "eth_account", "eth_keyfile", "py_ecc.bls", "web3")


def _imported(module: str, names: tuple[str, ...]) -> list[str]:
    code = f"import json, sys, {module}\nprint(json.dumps([n for n in {list(names)!r} if n in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return list(json.loads(out.stdout))


@pytest.mark.parametrize(
    ("module", "names"),
    [("docchain.api.app", HEAVY_FOR_HTTP), ("docchain.api.pipeline", HEAVY_FOR_PIPELINE)],
    ids=["http", "pipeline"],
)
def test_a_process_imports_only_what_its_role_needs(module: str, names: tuple[str, ...]) -> None:
    assert _imported(module, names) == []


def test_the_first_signature_imports_eth_account_and_signs_as_before() -> None:
    code = """
import sys
from docchain.chain.sender import LocalKey
key = LocalKey(bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
assert "eth_account" not in sys.modules, "imported before the first signature"
assert key.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", key.address
tx = {"to": key.address, "value": 0, "data": b"", "gasPrice": 1, "chainId": 31337}
prepared = key.sign(tx, nonce=0, gas=21000)
from eth_account import Account
expected = Account.from_key(bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
signed = expected.sign_transaction({**tx, "gas": 21000, "nonce": 0})
assert prepared.raw == bytes(signed.raw_transaction) and prepared.tx_hash == bytes(signed.hash)
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
