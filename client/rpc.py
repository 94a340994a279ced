"""Direct use of an Ethereum node, with no docchain server: independent verification, direct
submission (the signer pays gas), deployment and the terminal explorer (``inspect``)."""

from __future__ import annotations

from pathlib import Path

import requests
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from docchain.chain import deploy as deployments
from docchain.chain.errors import NodeError
from docchain.chain.receipt import Receipt
from docchain.chain.registry import Registry, SignedRegistration
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Registration
from docchain.chain.values import parse_address
from docchain.client.errors import UsageError


def connect(url: str, timeout: float) -> Web3:
    """A web3 connection checked with one call, so an unreachable node is reported plainly, once."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id  # noqa: B018 - the probe itself
    except requests.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
        raise NodeError(f"cannot reach the Ethereum node at {url}: {reason}") from exc
    except requests.Timeout as exc:
        raise NodeError(f"the Ethereum node at {url} did not answer within {timeout:g}s") from exc
    except (Web3RPCError, ValueError) as exc:
        raise NodeError(f"{url} does not answer as an Ethereum JSON-RPC node: {exc}") from exc
    return w3


def registry_address(w3: Web3, flag: str | None, data_dir: Path) -> str:
    """The registry: ``--registry`` if given, else the one recorded for this chain in the data dir."""
    if flag:
        return parse_address(flag, "--registry")
    return deployments.lookup(data_dir, int(w3.eth.chain_id)).address


def submit_direct(
    w3: Web3,
    registry_addr: str,
    key: bytes,
    registration: Registration,
    signature: bytes,
    *,
    file_name: str | None,
    file_size: int | None,
    timeout: float = 120.0,
) -> Receipt:
    """Send ``register`` from the signer's own account and build the receipt from the mined block."""
    sender = TxSender(w3, key, receipt_timeout=timeout)
    registry = Registry(w3, registry_addr, sender)
    balance = w3.eth.get_balance(Web3.to_checksum_address(sender.address))
    if balance == 0:
        raise UsageError(
            f"{sender.address} has no ether on chain {registry.chain_id} to pay gas; "
            "submit through the API instead (the relayer pays)"
        )
    existing = registry.record(registration.doc_hash, registration.signer)
    if existing.exists:
        # Re-registering is a no-op on chain: its block would not be the record's, so no receipt from it.
        raise UsageError(
            f"{registration.signer} already registered this document on chain (block "
            f"{existing.block_number}); keep the receipt written then, or fetch it from the API"
        )
    signed = SignedRegistration(registration, signature)
    return registry.receipt_for(signed, registry.register(signed), file_name=file_name, file_size=file_size)


def get_tx(w3: Web3, tx_hash: bytes) -> tuple[dict, dict]:
    try:
        return dict(w3.eth.get_transaction(HexBytes(tx_hash))), dict(w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
    except TransactionNotFound:
        raise UsageError(f"no mined transaction 0x{tx_hash.hex()} on this node") from None


def get_block(w3: Web3, number: int) -> dict:
    try:
        return dict(w3.eth.get_block(number, full_transactions=True))
    except BlockNotFound:
        raise UsageError(f"block {number} does not exist yet (latest is {w3.eth.block_number})") from None
