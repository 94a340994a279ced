"""Follows the registry's events, and those of the envelopes contract beside it: decoded events plus the block
headers needed to persist them and to detect reorganisations by block-hash continuity. No storage here — the
caller (the API) keeps the cursor and the known block hashes, and asks :meth:`Indexer.common_ancestor` when
continuity breaks.

One step::

    step = await indexer.poll(cursor)  # cursor: the last block the caller has indexed, or None
    if step.reorg:                      # the chain no longer contains cursor.hash
        n = await indexer.common_ancestor(known_blocks)   # newest (number, hash) the chain still holds
        ... drop everything above n, poll again from there
    else:
        ... persist step.events, step.roots, step.envelope_events and step.blocks, cursor = step.tip

Both contracts' logs come from one ``eth_getLogs`` (an address list), so an envelope's events and the registry
records they count are read, checked against the same headers and persisted in the same step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from docchain.chain import envelopes as env
from docchain.chain.registry import (
    REGISTERED_TOPIC,
    REVOKED_TOPIC,
    ROOT_ANCHORED_TOPIC,
    RegistryEvent,
    RootAnchored,
    decode_rpc_log,
    decode_rpc_root_anchored,
)
from docchain.chain.rpc import JsonRpc, Log
from docchain.chain.values import to_checksum_address

TOPICS = (REGISTERED_TOPIC, REVOKED_TOPIC, ROOT_ANCHORED_TOPIC)
_ROOT_ANCHORED = "0x" + ROOT_ANCHORED_TOPIC.hex()  # as a node spells a log's topic
ANCESTOR_BATCH = 16  # headers asked for in one request while looking for the common ancestor


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
    events: list[RegistryEvent] = field(default_factory=list)  # Registered and Revoked
    roots: list[RootAnchored] = field(default_factory=list)  # Merkle roots anchored
    envelope_events: list[env.EnvelopeEvent] = field(default_factory=list)  # the envelopes contract's, log order
    blocks: dict[int, BlockRef] = field(default_factory=dict)  # headers of the event blocks and of tip
    reorg: bool = False  # the cursor's block is no longer on the chain
    complete: bool = True  # False when the range was capped (poll again at once to catch up)


class Indexer:
    """Reads registry events in bounded block ranges, over the asynchronous JSON-RPC transport (raw results:
    web3's formatters cost more than everything else the indexer does with what they format). Reads that
    belong together go in one JSON-RPC batch, one round trip."""

    def __init__(
        self, rpc: JsonRpc, address: str, start_block: int, *, envelopes: str | None = None, max_range: int = 2_000
    ) -> None:
        self.rpc = rpc
        self.address = address
        self.envelopes = envelopes  # the envelopes contract, whose events come in the same eth_getLogs
        self.start_block = start_block
        self.max_range = max_range

    async def head(self) -> int:
        return int(await self.rpc.call("eth_blockNumber", []), 16)

    async def block(self, number: int) -> BlockRef | None:
        """The header at ``number``; None when the chain does not (or no longer) reach that height."""
        return _block_ref(await self.rpc.call("eth_getBlockByNumber", [hex(number), False]))

    async def blocks(self, numbers: Iterable[int]) -> dict[int, BlockRef | None]:
        wanted = list(numbers)
        raws = await self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted])
        return {n: _block_ref(raw) for n, raw in zip(wanted, raws, strict=True)}

    async def poll(self, cursor: BlockRef | None) -> IndexStep:
        if cursor is None:
            head = await self.head()
        else:
            raw_head, raw_cursor = await self.rpc.batch(
                [("eth_blockNumber", []), ("eth_getBlockByNumber", [hex(cursor.number), False])]
            )
            head = int(raw_head, 16)
            current = _block_ref(raw_cursor)
            if current is None or current.hash != cursor.hash:
                return IndexStep(head=head, tip=None, reorg=True)
        start = self.start_block if cursor is None else cursor.number + 1
        if start > head:
            return IndexStep(head=head, tip=None)
        end = min(head, start + self.max_range - 1)
        found = await self.events(start, end)
        headers = await self.blocks(sorted({end, *(_block_of(e) for e in found)}))
        if any(ref is None for ref in headers.values()):  # the chain shrank meanwhile: a reorg under way
            return IndexStep(head=head, tip=None)
        blocks = {n: ref for n, ref in headers.items() if ref is not None}
        # A reorg between get_logs and the header reads shows as an event whose block hash is not the
        # header's: skip this round rather than persist a mix of two forks.
        if any(blocks[_block_of(e)].hash != _hash_of(e) for e in found):
            return IndexStep(head=head, tip=None)
        return IndexStep(
            head=head,
            tip=blocks[end],
            events=[e for e in found if isinstance(e, RegistryEvent)],
            roots=[e for e in found if isinstance(e, RootAnchored)],
            envelope_events=[e for e in found if not isinstance(e, RegistryEvent | RootAnchored)],
            blocks=blocks,
            complete=end == head,
        )

    async def events(self, start: int, end: int) -> list[Found]:
        """The registry's events in ``[start, end]``, in log order: Registered, Revoked and RootAnchored; and the
        envelopes contract's, when there is one."""
        topics = [to_hex(t) for t in TOPICS]
        addresses: str | list[str] = self.address
        if self.envelopes is not None:
            addresses = [self.address, self.envelopes]
            topics += [to_hex(t) for t in env.TOPICS]
        params = {"address": addresses, "fromBlock": hex(start), "toBlock": hex(end), "topics": [topics]}
        logs = await self.rpc.call("eth_getLogs", [params])
        return [event for raw in logs if (event := self._decode(raw)) is not None]

    def _decode(self, raw: dict[str, Any]) -> Found | None:
        if self.envelopes is not None and _address(raw) == self.envelopes:
            return env.decode_log(_log(raw))
        return _decode(raw)

    async def common_ancestor(self, known: Iterable[tuple[int, bytes]]) -> int | None:
        """The highest known (number, hash) pair the chain still contains; None if none does.

        ``known`` is newest first. The caller then discards what it indexed above that block.
        """
        pairs = list(known)
        for first in range(0, len(pairs), ANCESTOR_BATCH):
            chunk = pairs[first : first + ANCESTOR_BATCH]
            refs = await self.blocks(n for n, _ in chunk)
            for number, block_hash in chunk:
                ref = refs[number]
                if ref is not None and ref.hash == block_hash:
                    return number
        return None


Found = RegistryEvent | RootAnchored | env.EnvelopeEvent


def _block_of(event: Found) -> int:
    return event.block_number if isinstance(event, RegistryEvent | RootAnchored) else event.at.block_number


def _hash_of(event: Found) -> bytes:
    return event.block_hash if isinstance(event, RegistryEvent | RootAnchored) else event.at.block_hash


def _address(raw: dict[str, Any]) -> str:
    return to_checksum_address(bytes.fromhex(str(raw["address"])[2:]))


def _log(raw: dict[str, Any]) -> Log:
    return Log(
        address=_address(raw),
        topics=tuple(bytes.fromhex(str(t)[2:]) for t in raw.get("topics") or ()),
        data=bytes.fromhex(str(raw["data"])[2:]),
        block_number=int(raw["blockNumber"], 16),
        block_hash=bytes.fromhex(raw["blockHash"][2:]),
        tx_hash=bytes.fromhex(raw["transactionHash"][2:]),
        log_index=int(raw["logIndex"], 16),
    )


def _decode(raw: dict[str, Any]) -> RegistryEvent | RootAnchored | None:
    topics = raw.get("topics") or ()
    if topics and str(topics[0]).lower() == _ROOT_ANCHORED:
        return decode_rpc_root_anchored(raw)
    return decode_rpc_log(raw)


def _block_ref(raw: dict[str, Any] | None) -> BlockRef | None:
    if raw is None:  # the node answers null past its head (a chain shortened by a reorg)
        return None
    return BlockRef(
        int(raw["number"], 16),
        bytes.fromhex(raw["hash"][2:]),
        bytes.fromhex(raw["parentHash"][2:]),
        int(raw["timestamp"], 16),
    )
