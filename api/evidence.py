"""The evidence store: the evidence bundles the indexer captures, and what the receipt route joins into receipts.

Once a record reaches its confirmations, the indexer (api/indexing.py) captures the head block's header and the
registry's account proof once, and each record's storage proofs, in one ``eth_getProof`` (chain/capture.py).
``evidence_blocks`` keeps the first (one row per capture), ``evidence`` the second (one row per direct record or
Merkle leaf); migration 0009. The indexer walks records by block: its meta key ``evidence.cursor`` is the last
block whose records all have their evidence, so a capture the node refuses is asked again at the next block,
and a reorg's rollback moves the cursor back under what it removed.

Direct records come from the indexed ``Registered`` events (whoever sent them: their receipts are served too),
Merkle leaves from the submissions in the trees of indexed ``RootAnchored`` events (the chain shows no leaf).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, Table, Text, delete, func, insert, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from docchain.api.db import ADDRESS, HASH, Base, Database, Meta
from docchain.api.store import set_meta_in
from docchain.chain.bundle import Evidence, parse_evidence
from docchain.chain.values import to_hex

CURSOR = "evidence.cursor"


class EvidenceBlockRow(Base):
    """The block a capture proved, and the registry's account and code in it: shared by the records captured."""

    __tablename__ = "evidence_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HASH)
    header: Mapped[str] = mapped_column(Text)  # RLP, hex
    registry_address: Mapped[str] = mapped_column("registry", ADDRESS)  # (``registry`` is Declarative's own)
    account_proof: Mapped[str] = mapped_column(Text)  # JSON list of hex nodes
    code: Mapped[str] = mapped_column(Text)  # hex


class EvidenceRow(Base):
    """One record's storage proofs (the JSON list of a bundle's ``storage``), against its capture's block."""

    __tablename__ = "evidence"
    __table_args__ = (
        Index("ix_evidence_doc_signer", "doc_hash", "signer"),
        Index("ix_evidence_block", "block_number"),
        Index("ix_evidence_record_block", "record_block"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_hash: Mapped[str] = mapped_column(HASH)
    signer: Mapped[str] = mapped_column(ADDRESS)
    merkle_root: Mapped[str | None] = mapped_column(HASH)
    record_block: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger, ForeignKey("evidence_blocks.number"))
    storage: Mapped[str] = mapped_column(Text)


_BLOCKS = cast(Table, EvidenceBlockRow.__table__)
_EVIDENCE = cast(Table, EvidenceRow.__table__)
_META = cast(Table, Meta.__table__)


@dataclass(frozen=True)
class Subject:
    """A record whose evidence is due: a direct record (``merkle_root`` None) or a Merkle leaf under its root."""

    doc_hash: bytes
    signer: str
    merkle_root: bytes | None
    record_block: int


@dataclass(frozen=True)
class Due:
    """The records to capture now, and the block through which that completes every record (``after``: the
    cursor they were read from)."""

    subjects: tuple[Subject, ...]
    after: int
    through: int


# Both read by block, on the events' and roots' block indexes; the pair's order within a block is the events'.
_DIRECT = (
    "SELECT doc_hash, signer, block_number FROM events WHERE kind = 'Registered' "
    "AND block_number > :after AND block_number <= :upto ORDER BY block_number, id LIMIT :n"
)
_MERKLE = (
    "SELECT s.doc_hash, s.signer, r.root, r.block_number FROM roots r JOIN submissions s ON s.merkle_root = r.root "
    "WHERE r.block_number > :after AND r.block_number <= :upto AND s.merkle_root IS NOT NULL "  # its partial index
    "ORDER BY r.block_number, s.id LIMIT :n"
)
_CURSOR = "SELECT value FROM meta WHERE key = :key"


class EvidenceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def cursor(self) -> int:
        """The last block whose records all have their evidence (-1 before the first capture)."""
        rows = await self.db.query(_CURSOR, {"key": CURSOR})
        return int(rows[0][0]) if rows else -1

    async def due(self, confirmed_to: int, limit: int) -> Due:
        """The records after the cursor, at or below ``confirmed_to`` (they have their confirmations), at most
        ``limit`` of them (a block's records are never split: a block holding more is taken whole)."""
        after = await self.cursor()
        if confirmed_to <= after:
            return Due((), after, after)
        window = {"after": after, "upto": confirmed_to, "n": limit + 1}
        subjects = await self._subjects(window)
        if len(subjects) <= limit:
            return Due(tuple(subjects), after, confirmed_to)
        last = subjects[-1].record_block
        whole = [s for s in subjects if s.record_block < last]
        if whole:
            return Due(tuple(whole), after, last - 1)
        block = await self._subjects({"after": last - 1, "upto": last, "n": 2**31 - 1})
        return Due(tuple(block), after, last)

    async def _subjects(self, window: dict[str, int]) -> list[Subject]:
        direct = [Subject(_raw(d), s, None, int(b)) for d, s, b in await self.db.query(_DIRECT, window)]
        leaves = [Subject(_raw(d), s, _raw(r), int(b)) for d, s, r, b in await self.db.query(_MERKLE, window)]
        merged = sorted(direct + leaves, key=lambda s: s.record_block)  # stable: each list keeps its order
        return merged[: window["n"]]

    async def save(self, subjects: tuple[Subject, ...], captured: list[Evidence], through: int) -> None:
        """Keep the evidence captured for ``subjects`` (in their order) and move the cursor to ``through``. A
        record captured again (after a rollback) keeps its newest evidence only."""

        def write(s: Session) -> None:
            # one capture is of one block; a block of that number kept already is that block (a reorg's rollback
            # drops the blocks it removes), proven by the same header and account
            for e in {c.block.number: c for c in captured}.values():
                if s.execute(select(_BLOCKS.c.number).where(_BLOCKS.c.number == e.block.number)).first() is None:
                    s.execute(
                        insert(_BLOCKS).values(
                            number=e.block.number,
                            hash=to_hex(e.block.hash),
                            header=to_hex(e.block.header),
                            registry=e.registry,
                            account_proof=json.dumps(list(e.account_proof.nodes)),
                            code=to_hex(e.code),
                        )
                    )
            for subject, evidence in zip(subjects, captured, strict=True):
                keys = _keys(subject)
                s.execute(delete(_EVIDENCE).where(*keys))
                s.execute(
                    insert(_EVIDENCE).values(
                        doc_hash=to_hex(subject.doc_hash),
                        signer=subject.signer,
                        merkle_root=None if subject.merkle_root is None else to_hex(subject.merkle_root),
                        record_block=subject.record_block,
                        block_number=evidence.block.number,
                        storage=json.dumps(evidence.to_json()["storage"]),
                    )
                )
            set_meta_in(s, CURSOR, str(through))

        await self.db.transaction(write)

    async def skip_to(self, through: int) -> None:
        """No record is due up to ``through``: the cursor moves there."""
        await self.db.transaction(lambda s: set_meta_in(s, CURSOR, str(through)))

    async def of(self, doc: str, signer: str, merkle_root: str | None) -> Evidence | None:
        """The evidence kept for the record of (``doc``, ``signer``), directly or as a leaf of ``merkle_root``."""
        root = _EVIDENCE.c.merkle_root
        query = (
            select(_EVIDENCE.c.storage, _BLOCKS)
            .join(_BLOCKS, _BLOCKS.c.number == _EVIDENCE.c.block_number)
            .where(
                _EVIDENCE.c.doc_hash == doc,
                _EVIDENCE.c.signer == signer,
                root.is_(None) if merkle_root is None else root == merkle_root,
            )
            .order_by(_EVIDENCE.c.id.desc())
            .limit(1)
        )
        async with self.db.read() as s:
            row = (await s.execute(query)).first()
        if row is None:
            return None
        return parse_evidence(_section(row._mapping))

    async def roll_back(self, floor: int) -> None:
        """A reorg removed the blocks above ``floor``: evidence of a record in them, or proven in one of them, is
        dropped, and the cursor goes back under the earliest record dropped so that it is captured again."""

        def roll_back(s: Session) -> None:
            gone = or_(_EVIDENCE.c.block_number > floor, _EVIDENCE.c.record_block > floor)
            earliest = s.execute(select(func.min(_EVIDENCE.c.record_block)).where(gone)).scalar()
            s.execute(delete(_EVIDENCE).where(gone))
            s.execute(delete(_BLOCKS).where(_BLOCKS.c.number > floor))
            cursor = s.execute(select(_META.c.value).where(_META.c.key == CURSOR)).scalar()
            if cursor is None:
                return
            back = min(int(cursor), floor, floor if earliest is None else int(earliest) - 1)
            set_meta_in(s, CURSOR, str(back))

        await self.db.transaction(roll_back)


def _raw(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _keys(subject: Subject) -> tuple[Any, ...]:
    root = _EVIDENCE.c.merkle_root
    return (
        _EVIDENCE.c.doc_hash == to_hex(subject.doc_hash),
        _EVIDENCE.c.signer == subject.signer,
        root.is_(None) if subject.merkle_root is None else root == to_hex(subject.merkle_root),
    )


def _section(row: Any) -> dict[str, Any]:
    return {
        "block": {"number": int(row["number"]), "hash": row["hash"], "header": row["header"]},
        "account": {"address": row["registry"], "proof": json.loads(row["account_proof"]), "code": row["code"]},
        "storage": json.loads(row["storage"]),
    }
