"""Follows the registry's events: decoded events plus the block headers needed to persist them and to
detect reorganisations by block-hash continuity. No storage here — the caller (the API) keeps the cursor
and the known block hashes, and asks :meth:`Indexer.common_ancestor` when continuity breaks.

One step::

    step = indexer.poll(cursor)        # cursor: the last block the caller has indexed, or None
    if step.reorg:                      # the chain no longer contains cursor.hash
        n = indexer.common_ancestor(known_blocks)   # newest (number, hash) the chain still holds
        ... drop everything above n, poll again from there
    else:
        ... persist step.events / step.blocks, cursor = step.tip
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from web3.types import RPCEndpoint

from docchain.chain.errors import ChainError
from docchain.chain.registry import _ABI as _REGISTRY_ABI
from docchain.chain.registry import Registry, RegistryEvent, decode_log
from docchain.chain.sender import with_retries

TOPICS = (_REGISTRY_ABI.registered_topic, _REGISTRY_ABI.revoked_topic)


def to_hex(raw: bytes) -> str:
    return "0x" + raw.hex()


@dataclass(frozen=True)
class BlockRef:
    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int


@dataclass(frozen=True)
class IndexStep:
    """What changed since the cursor: events in ``(cursor, tip]`` with their blocks' headers."""

    head: int  # the node's latest block number
    tip: BlockRef | None  # the last block covered by this step (None: nothing new)
    events: list[RegistryEvent] = field(default_factory=list)
    blocks: dict[int, BlockRef] = field(default_factory=dict)  # headers of the event blocks and of tip
    reorg: bool = False  # the cursor's block is no longer on the chain
    complete: bool = True  # False when the range was capped (poll again at once to catch up)


class Indexer:
    """Reads registry events in bounded block ranges. Blocking (web3): run it in a worker thread."""

    def __init__(self, registry: Registry, start_block: int, *, max_range: int = 2_000) -> None:
        self.registry = registry
        self.w3 = registry.w3
        self.start_block = start_block
        self.max_range = max_range

    def _call(self, method: str, params: list[Any]) -> Any:
        """A JSON-RPC call straight through the provider: web3's result formatters (~0.1 ms per log, ~1 ms
        per block) cost more than everything else the indexer does with what they format."""
        reply = with_retries(lambda: self.w3.provider.make_request(RPCEndpoint(method), params), method)
        if reply.get("error"):
            raise ChainError(f"{method}: {reply['error']}")
        return reply.get("result")

    def head(self) -> int:
        return int(self._call("eth_blockNumber", []), 16)

    def block(self, number: int) -> BlockRef | None:
        """The header at ``number``; None when the chain does not (or no longer) reach that height."""
        raw = self._call("eth_getBlockByNumber", [hex(number), False])
        if raw is None:  # the node answers null past its head (a chain shortened by a reorg)
            return None
        return BlockRef(
            int(raw["number"], 16),
            bytes.fromhex(raw["hash"][2:]),
            bytes.fromhex(raw["parentHash"][2:]),
            int(raw["timestamp"], 16),
        )

    def poll(self, cursor: BlockRef | None) -> IndexStep:
        head = self.head()
        if cursor is not None:
            current = self.block(cursor.number)
            if current is None or current.hash != cursor.hash:
                return IndexStep(head=head, tip=None, reorg=True)
        start = self.start_block if cursor is None else cursor.number + 1
        if start > head:
            return IndexStep(head=head, tip=None)
        end = min(head, start + self.max_range - 1)
        tip = self.block(end)
        if tip is None:  # the chain shrank between the two calls: a reorg under way
            return IndexStep(head=head, tip=None)
        events = self.events(start, end)
        blocks: dict[int, BlockRef] = {end: tip}
        for number in sorted({e.block_number for e in events}):
            if number not in blocks:
                ref = self.block(number)
                if ref is None:
                    return IndexStep(head=head, tip=None)
                blocks[number] = ref
        # A reorg between get_logs and the header reads shows as an event whose block hash is not the
        # header's: skip this round rather than persist a mix of two forks.
        if any(blocks[e.block_number].hash != e.block_hash for e in events):
            return IndexStep(head=head, tip=None)
        return IndexStep(head=head, tip=tip, events=events, blocks=blocks, complete=end == head)

    def events(self, start: int, end: int) -> list[RegistryEvent]:
        """The registry's events in ``[start, end]``."""
        params = {
            "address": self.registry.address,
            "fromBlock": hex(start),
            "toBlock": hex(end),
            "topics": [[to_hex(TOPICS[0]), to_hex(TOPICS[1])]],
        }
        out = []
        for raw in self._call("eth_getLogs", [params]):
            log = {
                "topics": [bytes.fromhex(t[2:]) for t in raw["topics"]],
                "data": bytes.fromhex(raw["data"][2:]),
                "blockNumber": int(raw["blockNumber"], 16),
                "blockHash": bytes.fromhex(raw["blockHash"][2:]),
                "transactionHash": bytes.fromhex(raw["transactionHash"][2:]),
                "logIndex": int(raw["logIndex"], 16),
            }
            event = decode_log(log)  # type: ignore[arg-type]
            if event is not None:
                out.append(event)
        return out

    def common_ancestor(self, known: Iterable[tuple[int, bytes]]) -> int | None:
        """The highest known (number, hash) pair the chain still contains; None if none does.

        ``known`` is newest first. The caller then discards what it indexed above that block.
        """
        for number, block_hash in known:
            ref = self.block(number)
            if ref is not None and ref.hash == block_hash:
                return number
        return None
