"""Issue 22's one benchmark run: docchain beside the Ethereum Attestation Service (EAS), the EVM's price floor
and the bare ceilings, every figure measured in this run, printed as one table of ratios and targets.

    python bench/compare.py [--quick] [--json] [--hash-size MiB] [--docs N] [--modes direct,merkle] [--no-browser]

1. Gas per signed document, on one anvil: docchain's registry (bench/gas.py: relayed single, batch of 100,
   Merkle roots of 100 / 1,000 / 10,000 leaves) and EAS 1.9.0 deployed beside it from the npm package's
   compiled artifacts (SchemaRegistry, then EAS), with the schema ``bytes32 docHash,bytes32 metadataHash,
   bytes32 supersedes`` (no resolver, revocable: docchain's registration, whose signer is EAS's attester; the
   targets are against it) and, for reference, ``bytes32 docHash`` alone (the least an attestation of a
   document holds): ``attest``, ``multiAttest`` of 100, ``attestByDelegation`` (an EIP-712 attestation signed
   by one key and sent by a relayer, the match for docchain's relayed registration). Beside them the physical
   floor from the EVM's prices, its parts printed.
2. Documents per second anchored end to end through the API at 50 clients (bench/api.py), once per
   anchoring mode, each beside the bare signed-POST ceiling measured in the same run.
3. SHA-256 MB/s of one file (bench/hashing.py): the CLI, ``openssl dgst -sha256``, ``sha256sum``, the page.
4. Verify requests per second and p99 (receipts: version 1 in direct mode, version 2 in Merkle mode) beside
   the bare-FastAPI ceiling, for both modes.

Nothing is installed at run time: EAS comes from node_modules (package.json's development dependencies).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: the sibling benchmarks are imported as bench.*

import httpx  # noqa: E402
from coincurve import PrivateKey  # noqa: E402
from eth_abi import encode  # noqa: E402
from web3 import Web3  # noqa: E402
from web3.contract import Contract  # noqa: E402

from bench import api as api_bench  # noqa: E402
from bench import gas, hashing  # noqa: E402
from docchain.chain import typed_data as td  # noqa: E402
from docchain.chain.hashing import keccak256  # noqa: E402
from docchain.chain.node import LocalNode, NodeConfig  # noqa: E402
from docchain.chain.sender import TxSender  # noqa: E402

EAS_ARTIFACTS = ROOT / "node_modules/@ethereum-attestation-service/eas-contracts/artifacts/contracts"
ZERO32 = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
MiB = 1 << 20
VERIFY_CHECKED = 20
Mode = Literal["direct", "merkle"]

# ---- the EVM's prices (Yellow Paper, EIP-2028 calldata, EIP-2929 cold access), for the physical floor ---------
TX_BASE = 21_000
SSTORE_SET = 20_000  # a zero slot made non-zero
COLD_SLOAD = 2_100  # the first touch of a slot in a transaction (EIP-2929)
CALLDATA_NONZERO, CALLDATA_ZERO = 16, 4  # per byte (EIP-2028)
ECRECOVER = 3_000
LOG_BASE, LOG_TOPIC, LOG_DATA_BYTE = 375, 375, 8


# ---- figures --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloorPart:
    name: str
    gas: float
    why: str


@dataclass(frozen=True)
class Floor:
    """What any registry that checks a signature on chain and keeps one record per signed document must pay per
    document: the parts every such document costs, and the transaction's base fee spread over its batch."""

    parts: tuple[FloorPart, ...]

    def per_document(self, batch: int) -> float:
        return sum(p.gas for p in self.parts) + TX_BASE / batch


@dataclass(frozen=True)
class GasFigures:
    """Gas per signed document (a batch's or a root's gas divided by its documents), but ``root*``: the gas of
    the whole ``anchorRoot`` transaction."""

    single: float
    batch100: float
    merkle100: float
    merkle1000: float
    merkle10000: float
    root100: float
    root1000: float
    root10000: float
    minimal_registry: float  # bench/baseline/MinimalRegistry.sol, as bench/gas.py measures it
    eas: EasGas  # the schema equivalent to docchain's registration
    eas_smallest: EasGas  # a schema of the document hash alone
    floor_single: float
    floor_batch100: float
    floor_parts: tuple[FloorPart, ...]


@dataclass(frozen=True)
class ApiFigures:
    """One bench/api.py run in one anchoring mode."""

    mode: Mode
    documents: int
    anchored: int
    accept_rps: float
    accept_cpu_us: float  # CPU per accepted submission of the HTTP processes (the pipeline runs in its own)
    ceiling_submit_cpu_us: float
    end_to_end_docs_per_s: float
    ceiling_submit_rps: float
    verify_rps: float
    verify_p50_ms: float
    verify_p99_ms: float
    verify_statuses: dict[str, int]
    ceiling_verify_rps: float
    ceiling_verify_p99_ms: float
    # CPU per request of the HTTP processes (us): a busy neighbour moves it far less than throughput
    verify_cpu_us: float
    ceiling_verify_cpu_us: float
    receipt_versions: dict[str, int]  # docchainReceipt of the verify bodies: 1 direct, 2 Merkle
    verify_outcomes: dict[str, int]  # of the first VERIFY_CHECKED bodies, verified once before the timed load


@dataclass(frozen=True)
class VerifyBodies:
    receipt_versions: dict[str, int]
    outcomes: dict[str, int]


@dataclass(frozen=True)
class HashFigures:
    size: int  # bytes
    openssl_mbps: float
    openssl_memory: int  # the command's whole peak RSS, bytes
    sha256sum_mbps: float
    sha256sum_memory: int  # the command's whole peak RSS, bytes
    cli_mbps: float
    cli_memory: int  # peak RSS growth, bytes
    page_mbps: float | None  # None: no browser row
    page_memory: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """``value`` (or ``value / baseline`` when ``of_ratio``) must be ``op`` ``bound``."""

    op: Literal["<=", ">="]
    bound: float
    of_ratio: bool = True

    def met(self, value: float, ratio: float | None) -> bool:
        x = ratio if self.of_ratio else value
        assert x is not None
        return x <= self.bound if self.op == "<=" else x >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}" + ("x" if self.of_ratio else "")


@dataclass(frozen=True)
class Row:
    section: str
    measure: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    target: Target | None = None
    note: str = ""
    ratio: float | None = field(init=False)
    met: bool | None = field(init=False)

    def __post_init__(self) -> None:
        ratio = self.value / self.baseline if self.baseline else None
        object.__setattr__(self, "ratio", ratio)
        object.__setattr__(self, "met", self.target.met(self.value, ratio) if self.target else None)


@dataclass(frozen=True)
class Machine:
    date: str
    nproc: int
    cpu: str
    load_average: tuple[float, float, float]  # at the start of the run
    load_average_end: tuple[float, float, float] | None  # at its end
    python: str


Section = Literal["gas", "api", "hashing"]
SECTIONS: tuple[Section, ...] = ("gas", "api", "hashing")
MODES: tuple[Mode, ...] = ("direct", "merkle")


@dataclass(frozen=True)
class Options:
    json: bool
    quick: bool
    hash_size_mib: int
    hash_runs: int
    browser: bool
    docs: int  # per mode
    clients: int
    seconds: float  # each verify and ceiling load
    merkle_wait_ms: int
    modes: tuple[Mode, ...]
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Report:
    machine: Machine
    options: Options
    gas: GasFigures | None
    api: tuple[ApiFigures, ...]
    hashing: HashFigures | None
    rows: tuple[Row, ...]
    notes: tuple[str, ...]


# ---- 1. gas ---------------------------------------------------------------------------------------------------


def _artifact(name: str) -> tuple[list[dict[str, Any]], bytes]:
    path = EAS_ARTIFACTS / f"{name}.sol" / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"no EAS artifact at {path}: install the node tools first (npm ci)")
    data = json.loads(path.read_text())
    return data["abi"], bytes.fromhex(data["bytecode"].removeprefix("0x"))


def _deploy(sender: TxSender, name: str, constructor_args: Sequence[Any] = ()) -> Contract:
    abi, bytecode = _artifact(name)
    factory = sender.w3.eth.contract(abi=abi, bytecode=bytecode)
    data = bytes.fromhex(factory.constructor(*constructor_args).data_in_transaction.removeprefix("0x"))
    address = sender.transact(None, data)["contractAddress"]
    if address is None:
        raise SystemExit(f"EAS: deploying {name} created no contract")
    return sender.w3.eth.contract(address=address, abi=abi)


def _call(sender: TxSender, contract: Contract, fn: str, *args: Any) -> int:
    """Gas of one transaction calling ``fn``."""
    data = bytes.fromhex(contract.encode_abi(fn, args=list(args)).removeprefix("0x"))
    return int(sender.transact(contract.address, data)["gasUsed"])


@dataclass(frozen=True)
class EasSchema:
    text: str
    fields: int  # bytes32 words

    @property
    def uid(self) -> bytes:
        """SchemaRegistry's UID: keccak256(abi.encodePacked(schema, resolver (none), revocable (true)))."""
        return keccak256(self.text.encode() + bytes(20) + b"\x01")

    def data(self) -> tuple[str, int, bool, bytes, bytes, int]:
        """An AttestationRequestData for one document: no recipient, no expiry, revocable, no reference, no
        value; the document hash, then a metadata hash and no superseded document (a zero word, as bench/gas.py
        signs)."""
        words = [os.urandom(32), os.urandom(32), ZERO32][: self.fields]
        return (ZERO_ADDRESS, 0, True, ZERO32, encode(["bytes32"] * self.fields, words), 0)


# docchain's registration; EAS's attester is its signer
EQUIVALENT = EasSchema("bytes32 docHash,bytes32 metadataHash,bytes32 supersedes", 3)
# the least an EAS attestation of a document can hold: its hash
SMALLEST = EasSchema("bytes32 docHash", 1)


@dataclass(frozen=True)
class EasGas:
    schema: str
    attest: float
    multi_attest100: float  # per attestation
    delegated: float


# keccak256("Attest(address attester,bytes32 schema,address recipient,uint64 expirationTime,bool revocable,
# bytes32 refUID,bytes data,uint256 value,uint256 nonce,uint64 deadline)"), EAS's EIP1271Verifier
ATTEST_TYPEHASH = keccak256(
    b"Attest(address attester,bytes32 schema,address recipient,uint64 expirationTime,bool revocable,"
    b"bytes32 refUID,bytes data,uint256 value,uint256 nonce,uint64 deadline)"
)


def _delegated(eas: Contract, schema: EasSchema, key: bytes) -> tuple[Any, ...]:
    """A DelegatedAttestationRequest signed (EIP-712, EAS's domain read from the contract) by ``key``."""
    attester = td.address_of(key)
    data = schema.data()
    deadline = int(time.time()) + 3600
    nonce = eas.functions.getNonce(attester).call()
    struct = keccak256(
        encode(
            ["bytes32", "address", "bytes32", "address", "uint64", "bool", "bytes32", "bytes32", "uint256"]
            + ["uint256", "uint64"],
            [ATTEST_TYPEHASH, attester, schema.uid, data[0], data[1], data[2], data[3], keccak256(data[4]), data[5]]
            + [nonce, deadline],
        )
    )
    separator = bytes(eas.functions.getDomainSeparator().call())
    sig = PrivateKey(key).sign_recoverable(keccak256(b"\x19\x01" + separator + struct), hasher=None)
    return (schema.uid, data, (sig[64] + 27, sig[:32], sig[32:64]), attester, deadline)


def eas_gas(sender: TxSender, schemas: Sequence[EasSchema] = (EQUIVALENT,)) -> list[EasGas]:
    """EAS ``attest``, ``multiAttest`` (100 in one request) and ``attestByDelegation`` per schema, on the node
    ``sender`` sends to. Each is measured after one call of its kind: the contract's first attestation and a
    delegating attester's first nonce are one-off writes (0 to non-zero) that a steady stream does not pay."""
    registry = _deploy(sender, "SchemaRegistry")
    eas = _deploy(sender, "EAS", [registry.address])
    figures = []
    for schema in schemas:
        _call(sender, registry, "register", schema.text, ZERO_ADDRESS, True)
        if registry.functions.getSchema(schema.uid).call()[0] != schema.uid:
            raise SystemExit(f"EAS: {schema.text!r} is not registered under the UID computed here")
        _call(sender, eas, "attest", (schema.uid, schema.data()))
        attest = _call(sender, eas, "attest", (schema.uid, schema.data()))
        multi = _call(sender, eas, "multiAttest", [(schema.uid, [schema.data() for _ in range(100)])]) / 100
        key = os.urandom(32)
        _call(sender, eas, "attestByDelegation", _delegated(eas, schema, key))
        delegated = _call(sender, eas, "attestByDelegation", _delegated(eas, schema, key))
        figures.append(EasGas(schema.text, attest, multi, delegated))
    return figures


def floor_parts() -> tuple[FloorPart, ...]:
    """The floor's per-document parts, the calldata priced on one fixed signed registration (zero bytes cost
    less, so a random one would move the floor by a few gas from run to run)."""
    key = keccak256(b"bench/compare.py floor signer")
    reg = td.Registration(
        keccak256(b"document"), td.address_of(key), 2_000_000_000, metadata_hash=keccak256(b"metadata")
    )
    # the signed fields at their types' widths (abi.encodePacked), then the 65-byte signature
    payload = reg.doc_hash + bytes.fromhex(reg.signer[2:]) + reg.metadata_hash + reg.supersedes
    payload += reg.deadline.to_bytes(32, "big") + td.sign(gas_domain(), reg, key)
    zeros = payload.count(0)
    calldata = CALLDATA_ZERO * zeros + CALLDATA_NONZERO * (len(payload) - zeros)
    event_data = 64  # Registered(docHash, signer) carries metadataHash and supersedes
    return (
        FloorPart("new storage slot", SSTORE_SET + COLD_SLOAD, "20,000 zero to non-zero + 2,100 cold slot (EIP-2929)"),
        FloorPart(
            "calldata",
            calldata,
            f"{len(payload)} B signed payload (the registration packed + 65 B signature):"
            f" {len(payload) - zeros} x 16 + {zeros} zero x 4",
        ),
        FloorPart("ecrecover", ECRECOVER, "precompile 0x01"),
        FloorPart(
            "event",
            LOG_BASE + 3 * LOG_TOPIC + LOG_DATA_BYTE * event_data,
            f"LOG3 (signature, docHash, signer) + {event_data} B data: 375 + 3 x 375 + {event_data} x 8",
        ),
    )


def gas_domain() -> td.Domain:
    """Any domain: the floor prices a signature's bytes, not what it signs."""
    return td.Domain(chain_id=1, verifying_contract="0x" + "11" * 20)


def measure_gas() -> GasFigures:
    with (
        tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp,
        LocalNode(NodeConfig(kind="anvil", data_dir=Path(tmp))) as node,
    ):
        sender = TxSender(Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 120})), gas.DEV_KEY)
        docchain = gas.measure_on(sender, Path(tmp))
        eas, smallest = eas_gas(sender, (EQUIVALENT, SMALLEST))
    parts = floor_parts()
    floor = Floor(parts)
    return GasFigures(
        single=docchain["single"],
        batch100=docchain["batch100"],
        merkle100=docchain["merkle100"],
        merkle1000=docchain["merkle1000"],
        merkle10000=docchain["merkle10000"],
        root100=docchain["root100"],
        root1000=docchain["root1000"],
        root10000=docchain["root10000"],
        minimal_registry=docchain["baseline"],
        eas=eas,
        eas_smallest=smallest,
        floor_single=floor.per_document(1),
        floor_batch100=floor.per_document(100),
        floor_parts=parts,
    )


# ---- 2 and 4. the API, per anchoring mode ------------------------------------------------------------------------


def measure_api(mode: Mode, docs: int, clients: int, seconds: float, merkle_wait_ms: int) -> ApiFigures:
    settings: dict[str, str] = {"DOCCHAIN_ANCHORING": mode}
    if mode == "merkle":
        # a tree closes at the deployment's 1,024 leaves, or after this wait for the last partial one
        settings["DOCCHAIN_MERKLE_MAX_WAIT_MS"] = str(merkle_wait_ms)
    checked = VerifyBodies({}, {})

    def inspect(url: str, bodies: list[bytes]) -> None:
        """What the timed verify requests carry and answer: a rate of refusals would be no verify rate."""
        for body in bodies:
            receipt = json.loads(body)["receipt"]  # the API's answer, a problem document if it had no receipt
            version = str(receipt.get("docchainReceipt", "none: not a receipt"))
            checked.receipt_versions[version] = checked.receipt_versions.get(version, 0) + 1
        with httpx.Client(base_url=url, timeout=30) as client:
            for body in bodies[:VERIFY_CHECKED]:
                answer = client.post("/v1/verify", content=body, headers={"Content-Type": "application/json"})
                outcome = str(answer.json().get("outcome")) if answer.status_code == 200 else str(answer.status_code)
                checked.outcomes[outcome] = checked.outcomes.get(outcome, 0) + 1

    result = api_bench.run(docs, clients, 1, seconds, settings=settings, inspect=inspect)
    submit, verify = result["submit"], result["verify"]
    return ApiFigures(
        mode=mode,
        documents=int(submit["documents"]),
        anchored=int(submit["anchored"]),
        accept_rps=float(submit["accept_rps"]),
        accept_cpu_us=float(submit["cpu_us"]),
        ceiling_submit_cpu_us=float(submit["ceiling_cpu_us"]),
        end_to_end_docs_per_s=float(submit["end_to_end_docs_per_s"]),
        ceiling_submit_rps=float(submit["ceiling_rps"]),
        verify_rps=float(verify["rps"]),
        verify_p50_ms=float(verify["p50_ms"]),
        verify_p99_ms=float(verify["p99_ms"]),
        verify_statuses={str(k): int(v) for k, v in verify["statuses"].items()},
        ceiling_verify_rps=float(verify["ceiling_rps"]),
        ceiling_verify_p99_ms=float(verify["ceiling_p99_ms"]),
        verify_cpu_us=float(verify["cpu_us"]),
        ceiling_verify_cpu_us=float(verify["ceiling_cpu_us"]),
        receipt_versions=checked.receipt_versions,
        verify_outcomes=checked.outcomes,
    )


# ---- 3. hashing -------------------------------------------------------------------------------------------------


def measure_hashing(size_mib: int, runs: int, browser: bool) -> HashFigures:
    rows, notes = hashing.measure(size_mib, runs, browser)
    by_name = {r.name: r for r in rows}
    cli, page = by_name["docchain CLI (submit/verify)"], by_name.get("browser page")
    return HashFigures(
        size=size_mib * MiB,
        openssl_mbps=by_name["openssl dgst -sha256"].mbps,
        openssl_memory=by_name["openssl dgst -sha256"].memory,
        sha256sum_mbps=by_name["sha256sum"].mbps,
        sha256sum_memory=by_name["sha256sum"].memory,
        cli_mbps=cli.mbps,
        cli_memory=cli.memory,
        page_mbps=page.mbps if page else None,
        page_memory=page.memory if page else None,
        notes=tuple(notes),
    )


# ---- the table --------------------------------------------------------------------------------------------------


def rows_of(g: GasFigures | None, apis: Sequence[ApiFigures], h: HashFigures | None, clients: int) -> list[Row]:
    rows: list[Row] = []
    if g is not None:
        section = "gas per document"
        delegated, multi = "EAS attestByDelegation", "EAS multiAttest x100"
        floor_single, floor_batch = "physical floor, single", "physical floor, batch of 100"
        smallest = g.eas_smallest
        rows += [
            Row(section, "relayed single", g.single, "gas", delegated, g.eas.delegated, Target("<=", 0.31)),
            Row(section, "batch of 100", g.batch100, "gas", multi, g.eas.multi_attest100, Target("<=", 0.22)),
            Row(section, "relayed single", g.single, "gas", f"{delegated}, hash only", smallest.delegated),
            Row(section, "batch of 100", g.batch100, "gas", f"{multi}, hash only", smallest.multi_attest100),
            Row(
                section, "Merkle, tree of 100", g.merkle100, "gas", note=f"the root's transaction: {g.root100:,.0f} gas"
            ),
            Row(
                section,
                "Merkle, tree of 1,000",
                g.merkle1000,
                "gas",
                target=Target("<=", 100, of_ratio=False),
                note=f"the root's transaction: {g.root1000:,.0f} gas",
            ),
            Row(
                section,
                "Merkle, tree of 10,000",
                g.merkle10000,
                "gas",
                note=f"the root's transaction: {g.root10000:,.0f} gas",
            ),
            Row(section, "relayed single", g.single, "gas", floor_single, g.floor_single),
            Row(section, "batch of 100", g.batch100, "gas", floor_batch, g.floor_batch100),
            Row(section, "EAS attest (sent by the attester)", g.eas.attest, "gas", floor_single, g.floor_single),
        ]
    section = f"API, {clients} clients"
    for a in apis:
        rows.append(
            Row(
                section,
                f"anchored end to end, {a.mode} mode",
                a.end_to_end_docs_per_s,
                "docs/s",
                "bare signed POST",
                a.ceiling_submit_rps,
                Target(">=", 0.8) if a.mode == "merkle" else None,
                f"{a.anchored:,}/{a.documents:,} anchored; accepted at {a.accept_rps:,.0f} req/s"
                f" ({a.accept_rps / a.ceiling_submit_rps:.2f} x the ceiling), CPU per acceptance"
                f" {a.accept_cpu_us:,.0f} us (ceiling's {a.ceiling_submit_cpu_us:,.0f})",
            )
        )
    for a in apis:
        rows.append(
            Row(
                section,
                f"verify, {a.mode} mode",
                a.verify_rps,
                "req/s",
                "bare FastAPI verify",
                a.ceiling_verify_rps,
                Target(">=", 0.7),
                f"p50 {a.verify_p50_ms:.1f} ms, p99 {a.verify_p99_ms:.1f} ms (ceiling's p99"
                f" {a.ceiling_verify_p99_ms:.1f} ms); CPU per request {a.verify_cpu_us:,.0f} us (ceiling's"
                f" {a.ceiling_verify_cpu_us:,.0f}); statuses {a.verify_statuses}; receipt versions"
                f" {a.receipt_versions}, outcomes of {VERIFY_CHECKED} checked {a.verify_outcomes}",
            )
        )
    if h is not None:
        section = f"SHA-256 of {h.size / MiB:,.0f} MiB"
        openssl = "openssl dgst -sha256"
        rows += [
            Row(
                section,
                "docchain CLI",
                h.cli_mbps,
                "MB/s",
                openssl,
                h.openssl_mbps,
                Target(">=", 0.9),
                f"openssl's peak RSS (whole process) {h.openssl_memory / MiB:.1f} MiB",
            ),
            Row(
                section,
                "docchain CLI, peak RSS growth",
                h.cli_memory / MiB,
                "MiB",
                target=Target("<=", 16, of_ratio=False),
            ),
            Row(
                section,
                "sha256sum",
                h.sha256sum_mbps,
                "MB/s",
                openssl,
                h.openssl_mbps,
                note=f"peak RSS (whole process) {h.sha256sum_memory / MiB:.1f} MiB",
            ),
        ]
        if h.page_mbps is not None and h.page_memory is not None:
            rows += [
                Row(section, "browser page", h.page_mbps, "MB/s", "docchain CLI", h.cli_mbps, Target(">=", 0.4)),
                Row(
                    section, "browser page, peak RSS growth", h.page_memory / MiB, "MiB", note="of one Chromium process"
                ),
            ]
    return rows


def verify_warnings(apis: Sequence[ApiFigures]) -> list[str]:
    """A verify rate counts only if it verified the mode's receipts to valid."""
    warnings = []
    for a in apis:
        version = "1" if a.mode == "direct" else "2"
        if set(a.receipt_versions) != {version}:
            warnings.append(f"WARNING: {a.mode} mode verified receipts of versions {a.receipt_versions}")
        if set(a.verify_outcomes) != {"valid"}:
            warnings.append(f"WARNING: {a.mode} mode's receipts verified to {a.verify_outcomes}, not all valid")
    return warnings


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}"


def print_table(report: Report) -> None:
    m = report.machine
    print(
        f"docchain vs EAS and the ceilings, {m.date}: {m.nproc} CPUs ({m.cpu}), load average at start"
        f" {' '.join(f'{x:.2f}' for x in m.load_average)}"
        + (f", at end {' '.join(f'{x:.2f}' for x in m.load_average_end)}" if m.load_average_end else "")
    )
    header = f"{'measure':<40}{'docchain':>12}  {'unit':<7}{'baseline':<34}{'value':>11}{'ratio':>8}{'target':>10}  met"
    section = ""
    for row in report.rows:
        if row.section != section:
            section = row.section
            print(f"\n{section}\n{header}")
        met = "-" if row.met is None else ("yes" if row.met else "NO")
        baseline = f"{_number(row.baseline):>11}" if row.baseline is not None else f"{'':>11}"
        ratio = f"{row.ratio:>8.3f}" if row.ratio is not None else f"{'':>8}"
        print(
            f"{row.measure:<40}{_number(row.value):>12}  {row.unit:<7}{row.baseline_name:<34}{baseline}{ratio}"
            f"{str(row.target) if row.target else '':>10}  {met}"
        )
        if row.note:
            print(f"{'':<4}{row.note}")
    g = report.gas
    if g is not None:
        print("\nphysical floor per signed document (EVM prices):")
        for part in g.floor_parts:
            print(f"  {part.name:<18}{part.gas:>8,.0f}  {part.why}")
        print(f"  {'tx base fee':<18}{TX_BASE:>8,}  spread over the batch: 21,000 single, 210 per document of 100")
        print(f"  {'= single':<18}{g.floor_single:>8,.0f}\n  {'= batch of 100':<18}{g.floor_batch100:>8,.0f}")
        for eas in (g.eas, g.eas_smallest):
            print(
                f"EAS, schema '{eas.schema}': attest {eas.attest:,.0f}, multiAttest {eas.multi_attest100:,.0f} per"
                f" attestation, attestByDelegation {eas.delegated:,.0f}"
            )
        print(f"minimal registry (bench/baseline/MinimalRegistry.sol): {g.minimal_registry:,.0f}")
    missed = [f"{r.section}: {r.measure}" for r in report.rows if r.met is False]
    for note in report.notes:
        print(note)
    print("\ntargets not met: " + ("; ".join(missed) if missed else "none"))


# ---- the run ----------------------------------------------------------------------------------------------------


def _load() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def machine() -> Machine:
    cpu = platform.processor() or "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    return Machine(
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        nproc=nproc,
        cpu=cpu,
        load_average=_load(),
        load_average_end=None,
        python=platform.python_version(),
    )


def _choices(parser: argparse.ArgumentParser, flag: str, value: str, allowed: Sequence[str]) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    if not chosen or not set(chosen) <= set(allowed):
        parser.error(f"{flag}: one or more of {', '.join(allowed)} (comma-separated), not {value!r}")
    return chosen


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="A full run takes about 4 minutes on 2 cores (--quick: about 1). It needs `make setup` (node_modules: "
        "anvil and EAS's artifacts) and, for the page's hashing row, Chromium at /usr/bin/chromium (--no-browser "
        "skips it). Results of a full run are kept in bench/RESULTS.md.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run: 64 MiB hashed once, 600 documents, 2 s loads"
    )
    parser.add_argument("--json", action="store_true", help="print the same figures as one JSON object")
    parser.add_argument("--hash-size", type=int, help="MiB hashed (default 1024, --quick 64)")
    parser.add_argument("--hash-runs", type=int, help="timings per hashing row, the best counts (default 3, --quick 1)")
    parser.add_argument("--no-browser", action="store_true", help="no browser row in the hashing section")
    parser.add_argument("--docs", type=int, help="documents submitted per mode (default 5000, --quick 600)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent API clients (default 50)")
    parser.add_argument("--seconds", type=float, help="each verify and ceiling load (default 6, --quick 2)")
    parser.add_argument(
        "--merkle-wait-ms", type=int, default=200, help="the Merkle API's DOCCHAIN_MERKLE_MAX_WAIT_MS (default 200)"
    )
    parser.add_argument(
        "--modes", default="direct,merkle", help="anchoring modes run through the API (default direct,merkle)"
    )
    parser.add_argument("--only", default="gas,api,hashing", help="sections to run (default all: gas,api,hashing)")
    args = parser.parse_args(argv)
    return Options(
        json=args.json,
        quick=args.quick,
        hash_size_mib=args.hash_size or (64 if args.quick else 1024),
        hash_runs=args.hash_runs or (1 if args.quick else 3),
        browser=not args.no_browser,
        docs=args.docs or (600 if args.quick else 5000),
        clients=args.clients,
        seconds=args.seconds or (2.0 if args.quick else 6.0),
        merkle_wait_ms=args.merkle_wait_ms,
        modes=tuple(m for m in MODES if m in _choices(parser, "--modes", args.modes, MODES)),
        sections=tuple(s for s in SECTIONS if s in _choices(parser, "--only", args.only, SECTIONS)),
    )


def run(options: Options) -> Report:
    host = machine()
    o = options
    gas_figures = measure_gas() if "gas" in o.sections else None
    hash_figures = measure_hashing(o.hash_size_mib, o.hash_runs, o.browser) if "hashing" in o.sections else None
    apis = (
        tuple(measure_api(m, o.docs, o.clients, o.seconds, o.merkle_wait_ms) for m in o.modes)
        if "api" in o.sections
        else ()
    )
    rows = rows_of(gas_figures, apis, hash_figures, o.clients)
    notes = (hash_figures.notes if hash_figures else ()) + tuple(verify_warnings(apis))
    host = replace(host, load_average_end=_load())
    return Report(host, options, gas_figures, apis, hash_figures, tuple(rows), notes)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    report = run(options)
    if options.json:
        print(json.dumps(asdict(report)))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
