"""``docchain inspect tx|block|events``: the registry on chain, like an explorer, straight from a node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client.context import CliContext
from docchain.client.options import RegistryOpt, command, new_app
from docchain.client.output import short, when

if TYPE_CHECKING:
    from web3 import Web3

    from docchain.chain.registry import Registry, RootAnchored

app = new_app("Look at the registry on chain, like an explorer in the terminal (talks to the node directly).")
NODE_GLOBALS = ("rpc", "data_dir", "timeout")


def _registry_for(c: CliContext, registry: str | None) -> tuple[Web3, Registry]:
    from docchain.chain.registry import Registry
    from docchain.client import rpc as rpc_mod

    flag = parse_address(registry, "--registry") if registry else None
    w3 = rpc_mod.connect(c.rpc_url(), c.timeout_s())
    return w3, Registry(w3, rpc_mod.registry_address(w3, flag, c.data_path))


def _event_table(c: CliContext, events: list[dict[str, Any]], title: str | None = None) -> None:
    c.out.table(
        title,
        ["block", "event", "document", "signer", "tx"],
        [(e["blockNumber"], e["kind"], short(e["docHash"], 4), e["signer"], short(e["txHash"], 4)) for e in events],
    )


def _root_json(root: RootAnchored) -> dict[str, Any]:
    """A RootAnchored event as ``--json`` shows it: the chain holds the root and its leaf count, not the leaves
    (the API's explorer names the documents its own service put under it)."""
    return {
        "kind": "RootAnchored",
        "root": to_hex(root.root),
        "leafCount": root.leaf_count,
        "sender": root.sender,
        "blockNumber": root.block_number,
        "blockHash": to_hex(root.block_hash),
        "txHash": to_hex(root.tx_hash),
        "logIndex": root.log_index,
    }


def _root_table(c: CliContext, roots: list[dict[str, Any]]) -> None:
    if roots:  # most registry transactions anchor none: no empty table beside their events
        c.out.table(
            "Merkle roots anchored",
            ["block", "root", "leaves", "sender", "tx"],
            [(r["blockNumber"], r["root"], r["leafCount"], r["sender"], short(r["txHash"], 4)) for r in roots],
        )


@command(app, "tx", globals_used=NODE_GLOBALS, examples_=["docchain inspect tx 0x5c1e…90"])
def inspect_tx(
    ctx: typer.Context,
    tx_hash: Annotated[str, typer.Argument(metavar="HASH", help="Transaction hash.")],
    registry: RegistryOpt = None,
) -> None:
    """Show a transaction: status, gas, block, and the registry events it emitted."""
    from docchain.client import rpc as rpc_mod

    c: CliContext = ctx.obj
    raw = parse_hash32(tx_hash, "transaction hash")
    w3, reg = _registry_for(c, registry)
    tx, rcpt = rpc_mod.get_tx(w3, raw)
    events = [e.to_json() for e in reg.events_in(cast(Any, rcpt))]  # web3's TxReceipt, as a plain dict
    roots = [_root_json(r) for r in reg.roots_in(cast(Any, rcpt))]
    data = {
        "hash": to_hex(raw),
        "blockNumber": rcpt["blockNumber"],
        "from": tx["from"],
        "to": tx.get("to"),
        "status": "success" if rcpt["status"] == 1 else "reverted",
        "gasUsed": rcpt["gasUsed"],
        "toRegistry": tx.get("to") == reg.address,
        "events": events,
        "roots": roots,
    }
    c.out.emit(data)
    listed = ("events", "roots", "hash")
    c.out.fields(f"transaction {to_hex(raw)}", [(k, v) for k, v in data.items() if k not in listed])
    _event_table(c, events, "registry events")
    _root_table(c, roots)


@command(app, "block", globals_used=NODE_GLOBALS, examples_=["docchain inspect block 42"])
def inspect_block(
    ctx: typer.Context,
    number: Annotated[int, typer.Argument(metavar="N", min=0, help="Block number.")],
    registry: RegistryOpt = None,
) -> None:
    """Show a block: hash, time, transactions, and the registry events in it."""
    from docchain.client import rpc as rpc_mod

    c: CliContext = ctx.obj
    w3, reg = _registry_for(c, registry)
    block = rpc_mod.get_block(w3, number)
    events = [e.to_json() for e in reg.events(number, number)]
    roots = [_root_json(r) for r in reg.root_events(number, number)]
    data = {
        "number": number,
        "hash": to_hex(bytes(block["hash"])),
        "timestamp": block["timestamp"],
        "transactions": [to_hex(bytes(t["hash"])) for t in block["transactions"]],
        "events": events,
        "roots": roots,
    }
    c.out.emit(data)
    c.out.fields(
        f"block {number}",
        [
            ("hash", data["hash"]),
            ("time", when(block["timestamp"])),
            ("transactions", len(data["transactions"])),
        ],
    )
    _event_table(c, events, "registry events")
    _root_table(c, roots)


@command(
    app,
    "events",
    globals_used=NODE_GLOBALS,
    examples_=[
        "docchain inspect events --signer 0xAbC…",
        "docchain inspect events --doc 0x3a7b…e1 --rpc https://node.example \\",
        "    --registry 0x5Fb…",
    ],
)
def inspect_events(
    ctx: typer.Context,
    signer: Annotated[
        str | None,
        typer.Option("--signer", envvar="DOCCHAIN_SIGNER", metavar="ADDRESS", help="Only this signer's events."),
    ] = None,
    doc: Annotated[
        str | None,
        typer.Option("--doc", envvar="DOCCHAIN_DOC", metavar="HASH", help="Only this document's events."),
    ] = None,
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block",
            envvar="DOCCHAIN_FROM_BLOCK",
            min=0,
            metavar="N",
            help="First block to scan [default: the registry's deployment block, when deployments.json in "
            "the data dir records this registry; else 0].",
        ),
    ] = None,
    registry: RegistryOpt = None,
) -> None:
    """List the registry's Registered / Revoked events and, unfiltered, its RootAnchored ones (a Merkle
    tree's root: its leaves are not on chain), decoded (eth_getLogs on the node)."""
    c: CliContext = ctx.obj
    address = parse_address(signer, "--signer") if signer else None
    doc_hash = parse_hash32(doc, "--doc") if doc else None
    w3, reg = _registry_for(c, registry)
    title = None
    if from_block is None:
        # eth_getLogs from block 0 slows down with the chain's length; nothing of the registry predates it
        from docchain.chain.deploy import deployment_block

        from_block = deployment_block(c.data_path, reg.chain_id, reg.address)
        if from_block is not None and from_block > int(w3.eth.block_number):
            # a record from before the chain was reset (a dev node without its state): not this chain's history
            from_block = None
        if from_block is not None:
            title = f"registry events since block {from_block} (its deployment)"
    events = [e.to_json() for e in reg.events(from_block or 0, doc_hash=doc_hash, signer=address)]
    # a root names no document nor signer: a filter by either cannot select it
    filtered = doc_hash is not None or address is not None
    roots = [] if filtered else [_root_json(r) for r in reg.root_events(from_block or 0)]
    c.out.emit(sorted([*events, *roots], key=lambda e: (e["blockNumber"], e["logIndex"])))
    _event_table(c, events, title)
    _root_table(c, roots)
