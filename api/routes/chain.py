"""Chain info, nonces, the explorer (blocks and registry transactions, decoded) and health routes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from docchain.api import metrics
from docchain.api.deps import ChainDep, LifecycleDep, RegistryDep, SettingsDep
from docchain.api.inputs import MAX_INT64
from docchain.api.openapi import CHAIN, problems_for
from docchain.api.problems import not_found, problem_response
from docchain.api.schemas import (
    MAX_TREE_DOCUMENTS,
    AnchoredRoot,
    BlockDetail,
    BlockSummary,
    ChainInfo,
    ExplorerTx,
    NonceOut,
    PendingDocument,
    SignedDocument,
    SignerDocuments,
    TreeDocument,
)
from docchain.api.store import TreeLeaf
from docchain.chain import envelopes
from docchain.chain.registry import decode_call, decode_rpc_log, decode_rpc_root_anchored
from docchain.chain.typed_data import EIP712_DOMAIN_TYPE, Domain, Registration, Revocation
from docchain.chain.values import parse_address, parse_hash32, to_checksum_address, to_hex

router = APIRouter(prefix="/v1", tags=["chain"])
health = APIRouter(tags=["health"])


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return to_hex(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int) and abs(value) >= 2**53:
        return str(value)
    return value


def describe_call(data: bytes) -> dict[str, Any] | None:
    call = decode_call(data)
    if call is None:
        return None
    name, args = call
    return {"function": name, "args": None if args is None else {k: _jsonable(v) for k, v in args.items()}}


def eip712_info(domain: Domain, envelopes_at: str | None) -> dict[str, Any]:
    """The domain and each action's types apart (built from chain/typed_data.py's and chain/envelopes.py's one
    definition): ethers' ``signTypedData(domain, types, value)`` refuses a ``types`` holding ``EIP712Domain``,
    while a wallet's ``eth_signTypedData_v4`` and eth_account want the full form. Served apart, each is built
    without editing. The envelope actions carry their own domain, the envelopes contract's at ``envelopes_at``
    (None: no envelopes contract, and they are null)."""
    actions: dict[str, Any] = {
        action: {"primaryType": message.PRIMARY_TYPE, "types": {message.PRIMARY_TYPE: message.TYPE}}
        for action, message in (("registration", Registration), ("revocation", Revocation))
    }
    theirs = None if envelopes_at is None else envelopes.domain(domain.chain_id, envelopes_at).to_json()
    for action, envelope_message in (
        ("envelopeRequest", envelopes.EnvelopeRequest),
        ("decline", envelopes.Decline),
        ("void", envelopes.Void),
    ):
        primary = envelope_message.PRIMARY_TYPE
        actions[action] = (
            None
            if theirs is None
            else {"primaryType": primary, "types": {primary: envelope_message.TYPE}, "domain": theirs}
        )
    return {"domain": domain.to_json(), "domainType": EIP712_DOMAIN_TYPE, "actions": actions}


@router.get(
    "/chain",
    response_model=ChainInfo,
    responses=problems_for(*CHAIN),
    summary="Chain id, contract, latest block, relayer and the EIP-712 domain and types a signer signs",
)
async def chain_info(
    chain: RegistryDep, chainctx: ChainDep, settings: SettingsDep, lifecycle: LifecycleDep
) -> ChainInfo:
    latest, balance = await chainctx.rpc.batch(
        [("eth_blockNumber", []), ("eth_getBalance", [chain.sender.address, "latest"])]
    )
    return ChainInfo.model_validate(
        {
            "chainId": chain.domain.chain_id,
            "contract": chain.registry.address,
            "deploymentBlock": chain.deployment_block,
            "latestBlock": int(latest, 16),
            "indexedHead": await lifecycle.store.head(),
            "confirmations": settings.confirmations,
            "relayer": chain.sender.address,
            "relayerBalanceWei": str(int(balance, 16)),
            "eip712": eip712_info(chain.domain, chain.envelopes),
        }
    )


@router.get(
    "/nonces/{signer}",
    response_model=NonceOut,
    responses=problems_for(422, *CHAIN),
    summary="The signer's current revocation nonce",
)
async def nonce(signer: str, chain: RegistryDep) -> NonceOut:
    who = parse_address(signer, "signer")
    return NonceOut(signer=who, nonce=await chain.registry.nonce(who))


@router.get(
    "/explorer/blocks",
    response_model=list[BlockSummary],
    responses=problems_for(422, *CHAIN),
    summary="Latest blocks, with how many registry transactions each holds",
)
async def blocks(
    chain: RegistryDep, chainctx: ChainDep, lifecycle: LifecycleDep, limit: int = Query(10, ge=1, le=50)
) -> list[BlockSummary]:
    head = int(await chainctx.rpc.call("eth_blockNumber", []), 16)
    numbers = list(range(head, max(-1, head - limit), -1))
    headers = await chainctx.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
    counts = await lifecycle.store.registry_txs_per_block(numbers)
    return [
        BlockSummary(
            number=int(b["number"], 16),
            hash=_hash(b["hash"]),
            timestamp=int(b["timestamp"], 16),
            txCount=len(b["transactions"]),
            registryTxs=int(counts.get(int(b["number"], 16), 0)),
        )
        for b in headers
        if b is not None  # the chain shortened since its head was read (a reorg)
    ]


def _hash(raw: str) -> str:
    return to_hex(bytes.fromhex(raw[2:]))


def _address(raw: str | None) -> str | None:
    """An address in EIP-55 form, as the API shows every address; a node answers lower case, and null for the
    recipient of a contract creation."""
    return None if not raw else to_checksum_address(bytes.fromhex(raw[2:]))


def _int(raw: str | None) -> int | None:
    return None if raw is None else int(raw, 16)


def _registry_logs(receipt: dict[str, Any] | None, registry_address: str) -> list[dict[str, Any]]:
    if receipt is None:
        return []
    return [log for log in receipt["logs"] if _address(log["address"]) == registry_address]


def _roots_of(receipts: list[dict[str, Any] | None], registry_address: str) -> list[str]:
    return [
        to_hex(root.root)
        for receipt in receipts
        for log in _registry_logs(receipt, registry_address)
        if (root := decode_rpc_root_anchored(log)) is not None
    ]


def _tx_json(
    tx: dict[str, Any],
    receipt: dict[str, Any] | None,
    registry_address: str,
    leaves: dict[str, list[TreeLeaf]],
) -> ExplorerTx:
    """A transaction and its receipt (None while pending) as the node answers them, for the explorer, with the
    leaves this service put in the trees whose roots it anchored (``leaves``, by root: the chain lists none)."""
    to = _address(tx.get("to"))
    logs = _registry_logs(receipt, registry_address)
    events = [e.to_json() for log in logs if (e := decode_rpc_log(log)) is not None]
    roots = [
        AnchoredRoot(
            root=to_hex(r.root),
            leafCount=r.leaf_count,
            sender=r.sender,
            logIndex=r.log_index,
            documents=[
                TreeDocument(docHash=leaf.doc_hash, signer=leaf.signer, state=leaf.state, leafIndex=leaf.leaf_index)
                for leaf in leaves.get(to_hex(r.root), [])
            ],
        )
        for log in logs
        if (r := decode_rpc_root_anchored(log)) is not None
    ]
    return ExplorerTx.model_validate(
        {
            "hash": _hash(tx["hash"]),
            "blockNumber": _int(tx.get("blockNumber")),
            "from": _address(tx["from"]),
            "to": to,
            "nonce": int(tx["nonce"], 16),
            "status": None if receipt is None else _int(receipt["status"]),
            "gasUsed": None if receipt is None else _int(receipt["gasUsed"]),
            "call": describe_call(bytes.fromhex(tx["input"][2:])) if to == registry_address else None,
            "events": events,
            "roots": roots,
        }
    )


@router.get(
    "/explorer/blocks/{number}",
    response_model=BlockDetail,
    responses=problems_for(404, 422, *CHAIN),
    summary="A block with its registry transactions and decoded events",
)
async def block(
    chain: RegistryDep,
    chainctx: ChainDep,
    lifecycle: LifecycleDep,
    number: int = Path(ge=0, le=MAX_INT64, description="block number"),
) -> BlockDetail:
    b = await chainctx.rpc.call("eth_getBlockByNumber", [hex(number), True])
    if b is None:
        raise not_found(f"no block {number}")
    txs = [t for t in b["transactions"] if _address(t.get("to")) == chain.registry.address]
    receipts = await chainctx.rpc.batch([("eth_getTransactionReceipt", [t["hash"]]) for t in txs])
    leaves = await lifecycle.store.tree_leaves(_roots_of(receipts, chain.registry.address), MAX_TREE_DOCUMENTS)
    return BlockDetail.model_validate(
        {
            "number": int(b["number"], 16),
            "hash": _hash(b["hash"]),
            "parentHash": _hash(b["parentHash"]),
            "timestamp": int(b["timestamp"], 16),
            "txCount": len(b["transactions"]),
            "gasUsed": int(b["gasUsed"], 16),
            "transactions": [
                _tx_json(t, r, chain.registry.address, leaves) for t, r in zip(txs, receipts, strict=True)
            ],
        }
    )


@router.get(
    "/explorer/tx/{tx_hash}",
    response_model=ExplorerTx,
    responses=problems_for(404, 422, *CHAIN),
    summary="A transaction: decoded registry call, gas, status, events",
)
async def transaction(tx_hash: str, chain: RegistryDep, chainctx: ChainDep, lifecycle: LifecycleDep) -> ExplorerTx:
    wanted = to_hex(parse_hash32(tx_hash, "transaction hash"))
    tx, receipt = await chainctx.rpc.batch(
        [("eth_getTransactionByHash", [wanted]), ("eth_getTransactionReceipt", [wanted])]
    )
    if tx is None:
        raise not_found(f"no transaction {wanted}")
    leaves = await lifecycle.store.tree_leaves(_roots_of([receipt], chain.registry.address), MAX_TREE_DOCUMENTS)
    return _tx_json(tx, receipt, chain.registry.address, leaves)


@router.get(
    "/explorer/signers/{address}",
    response_model=SignerDocuments,
    responses=problems_for(422, 503),
    summary="Every document an address signed (from the index: direct and Merkle-anchored records, newest first)",
)
async def signer_documents(
    address: str, lifecycle: LifecycleDep, limit: int = Query(500, ge=1, le=5000)
) -> SignerDocuments:
    who = parse_address(address, "address")
    page = await lifecycle.store.records_page(who, None, None, None, limit)
    pending = await lifecycle.store.unanchored_of(who)
    documents = []
    for r in page.records:
        status, confirmations = lifecycle.record_status(r.revoked_at is not None, r.block_number, page.head)
        documents.append(
            SignedDocument(
                docHash=r.doc_hash,
                state=status.value,
                txHash=r.tx_hash,
                blockNumber=r.block_number,
                timestamp=r.timestamp,
                confirmations=confirmations,
                revokedAt=r.revoked_at,
                metadataHash=r.metadata_hash,
                anchoring=r.anchoring.value,
                merkleRoot=r.merkle_root,
            )
        )
    return SignerDocuments(
        signer=who,
        documents=documents,
        pending=[PendingDocument(docHash=doc, state=state.value, submissionId=sid) for doc, state, sid in pending],
    )


# ------------------------------------------------------------------ health


@health.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get(
    "/readyz",
    responses=problems_for(
        503, why={503: "not ready: checks says which of the node, the database and the first storage backend is not"}
    ),
    summary="Readiness: the node, the database and the first storage backend answer",
)
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, Any] = {}
    try:
        await asyncio.wait_for(state.db.ping(), timeout=2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {exc.__class__.__name__}"
    try:
        chain = state.chain
        await asyncio.wait_for(chain.bound(), timeout=3)
        head = int(await chain.rpc.call("eth_blockNumber", [], timeout=2), 16)
        checks["node"] = "ok"
        checks["latestBlock"] = head
    except Exception as exc:
        checks["node"] = f"unreachable: {exc.__class__.__name__}"
    checks.update(state.pipeline.health())
    backends = await state.storage.states()
    checks["storage"] = {b.backend: b.state for b in backends}
    first = backends[0]  # it takes every upload before the submission is accepted: readiness follows it
    # below its floor the relayer refuses every relayed write (503): not ready for the traffic a load
    # balancer sends; the balance is read at most every few seconds (api/limits.py)
    relayer = state.limits.balance
    balance = await relayer.current() if checks["node"] == "ok" else relayer.balance  # (no wait on a node away)
    short = relayer.shortfall()
    checks["relayer"] = short or ("ok" if balance is not None else f"balance unknown: {relayer.error}")
    checks["relayerBalanceWei"] = None if balance is None else str(balance)
    checks["relayerMinBalanceWei"] = str(relayer.floor)
    if checks["database"] != "ok" or checks["node"] != "ok" or short is not None or not first.ok:
        return problem_response(
            request,
            503,
            "not-ready",
            "Not ready",
            f"database: {checks['database']}; node: {checks['node']}; relayer: {checks['relayer']}; "
            f"storage {first.backend}: {first.state}",
            checks=checks,
        )
    return JSONResponse({"status": "ready", **checks})


@health.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus(request: Request) -> Response:
    if metrics.MULTIPROCESS:  # --workers: any worker answers for all of them
        text = metrics.every_process()
    else:  # this process's metrics, then its pipeline child's
        text = generate_latest(metrics.REGISTRY) + await request.app.state.pipeline.metrics_text()
    # the relayer's spending per client: kept in the database, the same figures from every replica
    with contextlib.suppress(Exception):  # the database down: the rest of the scrape still answers
        text += metrics.spending_text(await request.app.state.lifecycle.store.spending_by_client())
    return Response(text, media_type=CONTENT_TYPE_LATEST)
