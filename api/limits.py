"""What the relayer may spend, and for whom: rate limits, daily quotas and the balance floor.

The relayer pays the gas of every relayed write (``POST /v1/documents``, ``POST /v1/revocations``), so
these writes are limited as hosted relayers (OpenZeppelin Defender, Gelato) limit them:

* **per client** — its API key, or where keys are off its address — a token bucket of
  ``DOCCHAIN_KEY_RATE_PER_MINUTE`` (burst ``DOCCHAIN_KEY_BURST``) over every relayed write it sends, and
  ``DOCCHAIN_KEY_DAILY_QUOTA`` new writes per UTC day;
* **per signer** — ``DOCCHAIN_SIGNER_RATE_PER_MINUTE`` / ``DOCCHAIN_SIGNER_BURST`` and
  ``DOCCHAIN_SIGNER_DAILY_QUOTA``, counted only for new writes with a valid signature: anyone can replay a
  signer's published signature, and a replay (a duplicate, answered 200) must not use up the signer's
  allowance, nor can a forged one reach it;
* **the relayer's balance** — below ``DOCCHAIN_RELAYER_MIN_BALANCE_WEI`` nothing is accepted (503), so no
  accepted write waits for a transaction that cannot be paid for.

Over a limit the answer is 429 problem+json with ``Retry-After``: the seconds until the bucket holds a
token again, or until the next UTC midnight for a daily quota. The daily counts live in the database
(``relayer_usage``), counted in one transaction for all the requests queued meanwhile, so replicas share
them and a restart forgets none; the buckets live in this process, so with N replicas (or ``--workers
N``) a client's burst is N times the setting. Clients are named by a short hash (``key-<12 hex>`` of the
API key, ``ip-<12 hex>`` of the address), never by the key itself: the same ids label the gas spent on
their behalf (``docchain_relayer_spent_wei_total{key=...}``, charged by the worker from the receipts).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from starlette.requests import Request

from docchain.api import metrics
from docchain.api.chainctx import ChainContext
from docchain.api.db import Database, release_usage, reserve_usage
from docchain.api.problems import Problem
from docchain.api.settings import Settings
from docchain.chain.errors import DocchainError
from docchain.chain.typed_data import address_of

log = logging.getLogger("docchain.api.limits")

DAY_S = 86_400
BALANCE_TTL_S = 3.0  # the relayer's balance is read at most this often (and never by a request once known)
BALANCE_TIMEOUT_S = 2.0
UNDERFUNDED_RETRY_S = 60  # an operator has to fund the relayer: no point asking again sooner
_PRUNE_FROM = 10_000  # buckets kept before the full ones are dropped


def presented_key(request: Request) -> str | None:
    """The API key a request presents: ``X-API-Key``, or ``Authorization: Bearer <key>``."""
    given = request.headers.get("x-api-key")
    if given is None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
    return given or None


def client_id(request: Request, keys_required: bool) -> str:
    """Who asks the relayer: ``key-<hash>`` of its API key (checked already), else ``ip-<hash>`` of its
    address. 48 bits of SHA-256: enough to tell clients apart in metrics, and the key never leaves."""
    key = presented_key(request) if keys_required else None
    if key is not None:
        return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    host = request.client.host if request.client else "unknown"
    return "ip-" + hashlib.sha256(host.encode()).hexdigest()[:12]


def utc_day(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // DAY_S)


def until_midnight(now: float | None = None) -> int:
    """Seconds until the next UTC day begins (at least 1)."""
    return max(1, DAY_S - int(time.time() if now is None else now) % DAY_S)


class TokenBuckets:
    """A token bucket per subject, in this process: ``burst`` tokens at most, refilled at ``per_minute``."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.burst = float(burst or per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}  # subject -> (tokens, when counted)
        self._prune_at = _PRUNE_FROM

    def take(self, subject: str, now: float) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there is (nothing is taken)."""
        if self.rate <= 0:
            return 0.0
        tokens, at = self._buckets.get(subject, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[subject] = (tokens - 1, now)
            if len(self._buckets) >= self._prune_at:
                self._prune(now)
            return 0.0
        self._buckets[subject] = (tokens, now)
        return (1 - tokens) / self.rate

    def give_back(self, subject: str) -> None:
        if subject in self._buckets:
            tokens, at = self._buckets[subject]
            self._buckets[subject] = (min(self.burst, tokens + 1), at)

    def _prune(self, now: float) -> None:
        """Forget the buckets that have refilled (a new one starts full): memory stays bounded by the
        subjects active in the last burst / rate seconds, however many fresh keys a client makes."""
        full = [s for s, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.burst]
        for subject in full:
            del self._buckets[subject]
        self._prune_at = max(_PRUNE_FROM, 2 * len(self._buckets))


class QuotaLedger:
    """Daily quotas, counted in the database: the requests queued while one transaction runs are counted
    in the next, together, as the outbox writes submissions (a commit per request would add one to every
    submission, on the same write lock)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[tuple[list[tuple[str, int]], asyncio.Future[tuple[tuple[str, int] | None, int]]]] = []
        self._task: asyncio.Task[None] | None = None
        self._forgotten_before: int | None = None  # older days' rows were deleted up to this day

    async def reserve(self, quotas: list[tuple[str, int]]) -> tuple[tuple[str, int] | None, int]:
        """Count one write against each ``(subject, limit)``, or against none when one is at its limit.
        Returns the ``(subject, limit)`` that refused it (None: counted) and the UTC day counted in."""
        future: asyncio.Future[tuple[tuple[str, int] | None, int]] = asyncio.get_running_loop().create_future()
        self._queue.append((quotas, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="quota-ledger")
        return await future

    async def release(self, day: int, subjects: Sequence[str]) -> None:
        await self.db.transaction(partial(release_usage, day=day, subjects=subjects))

    async def _drain(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # the requests handled in this turn of the event loop join
                batch, self._queue = self._queue, []
                day = utc_day()
                forget = day if self._forgotten_before != day else None
                try:
                    refusals = await self.db.transaction(
                        partial(reserve_usage, day=day, requests=[q for q, _ in batch], forget_before=forget)
                    )
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._forgotten_before = day
                for (_, future), refusal in zip(batch, refusals, strict=True):
                    if not future.done():
                        future.set_result((refusal, day))
        finally:
            self._task = None


class BalanceWatch:
    """The relayer's balance, read at most every :data:`BALANCE_TTL_S` seconds. Once a value is known, a
    request never waits for the node: a stale value is answered while a fresh one is read behind it."""

    def __init__(self, chain: ChainContext, floor_wei: int) -> None:
        self.chain = chain
        self.floor = floor_wei
        self.address = address_of(chain.relayer_key)
        self.balance: int | None = None
        self.error: str | None = None  # why the last read failed
        self._read_at = -math.inf
        self._reading: asyncio.Task[None] | None = None

    async def current(self) -> int | None:
        """The latest balance read (None: never read; the node may be down)."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._read_at >= BALANCE_TTL_S and self._reading is None:
            self._reading = asyncio.create_task(self._read(), name="relayer-balance")
        if self.balance is None and self._reading is not None:
            await asyncio.wait([self._reading])  # the first read; shared, and not cancelled with the request
        return self.balance

    async def _read(self) -> None:
        try:
            raw = await self.chain.rpc.call("eth_getBalance", [self.address, "latest"], timeout=BALANCE_TIMEOUT_S)
            self.balance, self.error = int(raw, 16), None
            metrics.RELAYER_BALANCE.set(self.balance)
        except (DocchainError, ValueError, TypeError) as exc:
            self.error = str(exc) or exc.__class__.__name__
            log.warning("relayer balance unknown", extra={"relayer": self.address, "error": self.error})
        finally:
            self._read_at = asyncio.get_running_loop().time()
            self._reading = None

    def shortfall(self) -> str | None:
        """Why relayed writes are refused (the balance known to be below the floor), else None. An unknown
        balance refuses nothing: the writes wait in the outbox like any other while the node is away."""
        if self.floor and self.balance is not None and self.balance < self.floor:
            return (
                f"the relayer {self.address} holds {self.balance} wei, below the floor of {self.floor} wei "
                "(DOCCHAIN_RELAYER_MIN_BALANCE_WEI)"
            )
        return None


@dataclass
class Charge:
    """What a new relayed write was counted against: given back when it turns out to be a duplicate."""

    limits: RelayerLimits | None = None
    signer: str | None = None
    day: int = 0
    subjects: list[str] = field(default_factory=list)

    async def refund(self) -> None:
        if self.limits is None:
            return
        if self.signer is not None:
            self.limits.signers.give_back(self.signer)
        if self.subjects:
            await self.limits.ledger.release(self.day, self.subjects)
        self.limits = None


NO_CHARGE = Charge()


@dataclass
class Admission:
    """A relayed write let in by :meth:`RelayerLimits.admit`, from ``client`` (a client id)."""

    limits: RelayerLimits
    client: str

    async def charge_submission(self, doc_hash: str, signer: str) -> Charge:
        """Count a submission with a valid signature, unless this service holds it already (then the
        answer is the existing one, 200, and nothing is spent)."""
        known = await self.limits.db.query(
            "SELECT 1 FROM submissions WHERE doc_hash = :doc AND signer = :signer", {"doc": doc_hash, "signer": signer}
        )
        return NO_CHARGE if known else await self.charge(signer)

    async def charge(self, signer: str) -> Charge:
        """Count a new write by ``signer``: its bucket, then both daily quotas; 429 when one is spent."""
        limits, settings = self.limits, self.limits.settings
        subject = "signer-" + signer
        wait = limits.signers.take(subject, time.monotonic())
        if wait:
            raise limits.throttled(
                "signer-rate",
                f"{signer} signed more than {settings.signer_rate_per_minute} relayed writes a minute "
                f"(burst {limits.signers.burst:.0f})",
                math.ceil(wait),
            )
        quotas = [(self.client, settings.key_daily_quota), (subject, settings.signer_daily_quota)]
        quotas = [(who, limit) for who, limit in quotas if limit > 0]
        if not quotas:
            return Charge(limits, subject)
        try:
            refused, day = await limits.ledger.reserve(quotas)
        except BaseException:
            limits.signers.give_back(subject)
            raise
        if refused is not None:
            limits.signers.give_back(subject)
            who, limit = refused
            whose = f"the signer {signer}" if who == subject else "this API key" if who[:4] == "key-" else "this client"
            raise limits.throttled(
                "signer-quota" if who == subject else "key-quota",
                f"{whose} has used its daily quota of {limit} relayed writes (UTC day)",
                until_midnight(),
            )
        return Charge(limits, subject, day, [who for who, _ in quotas])


class RelayerLimits:
    """The limits of one API process (``app.state.limits``)."""

    def __init__(self, settings: Settings, db: Database, chain: ChainContext) -> None:
        self.settings = settings
        self.db = db
        self.keys = TokenBuckets(settings.key_rate_per_minute, settings.key_burst)
        self.signers = TokenBuckets(settings.signer_rate_per_minute, settings.signer_burst)
        self.ledger = QuotaLedger(db)
        self.balance = BalanceWatch(chain, settings.relayer_min_balance_wei)

    async def admit(self, request: Request) -> Admission:
        """Let a relayed write in (call it once the API key is checked): 503 while the relayer's balance is
        below the floor, 429 once the client's bucket is empty."""
        if self.balance.floor:
            await self.balance.current()
            short = self.balance.shortfall()
            if short is not None:
                metrics.RELAYER_REFUSED.labels("balance").inc()
                raise Problem(
                    503,
                    "relayer-underfunded",
                    "Relayer balance too low",
                    f"{short}: relayed writes are refused until it is funded",
                    headers={"Retry-After": str(UNDERFUNDED_RETRY_S)},
                    balanceWei=str(self.balance.balance),
                    minBalanceWei=str(self.balance.floor),
                )
        client = client_id(request, bool(self.settings.api_keys))
        wait = self.keys.take(client, time.monotonic())
        if wait:
            raise self.throttled(
                "key-rate",
                f"more than {self.settings.key_rate_per_minute} relayed writes a minute from this "
                f"{'API key' if client[:4] == 'key-' else 'client'} (burst {self.keys.burst:.0f})",
                math.ceil(wait),
            )
        return Admission(self, client)

    @staticmethod
    def throttled(limit: str, detail: str, retry_after: int) -> Problem:
        metrics.RELAYER_REFUSED.labels(limit).inc()
        return Problem(
            429,
            "rate-limited" if limit.endswith("-rate") else "quota-exceeded",
            "Too many requests" if limit.endswith("-rate") else "Daily quota used",
            f"{detail}; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
            limit=limit,
            retryAfter=retry_after,
        )
