"""bench/compare.py without its long measurements: its options, the table and JSON it prints from given figures,
the floor's arithmetic, and EAS deployed from the npm artifacts on a real anvil (a wrong artifact path, ABI
tuple or EIP-712 digest reverts there). No timing is asserted."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace

import pytest
from web3 import Web3

from bench import compare
from bench.compare import ApiFigures, EasGas, Floor, GasFigures, HashFigures, Machine, Report
from docchain.chain import typed_data as td
from docchain.chain.node import LocalNode
from docchain.chain.sender import TxSender


def test_help_names_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        compare.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--quick", "--json", "--hash-size", "--no-browser", "--docs", "--modes", "--only"):
        assert flag in out


@pytest.mark.parametrize("argv", [["--only", "gas,disk"], ["--modes", "batch"], ["--modes", ""]])
def test_an_unknown_section_or_mode_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        compare.parse_args(argv)
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_quick_shrinks_the_run_and_explicit_values_win() -> None:
    quick = compare.parse_args(["--quick", "--docs", "50", "--only", "hashing,gas"])
    assert (quick.hash_size_mib, quick.hash_runs, quick.docs, quick.seconds) == (64, 1, 50, 2.0)
    assert quick.sections == ("gas", "hashing")  # the run's order, whatever the option's
    full = compare.parse_args([])
    assert (full.hash_size_mib, full.docs, full.modes) == (1024, 5000, ("direct", "merkle"))


def test_the_floor_adds_its_parts_and_spreads_the_base_fee() -> None:
    parts = compare.floor_parts()
    by_name = {p.name: p.gas for p in parts}
    assert by_name["new storage slot"] == 22_100
    assert by_name["ecrecover"] == 3_000
    assert by_name["event"] == 375 + 3 * 375 + 64 * 8
    # 213 bytes, each priced 4 or 16
    assert 213 * 4 < by_name["calldata"] < 213 * 16
    floor = Floor(parts)
    assert floor.per_document(1) == sum(by_name.values()) + 21_000
    assert floor.per_document(100) == sum(by_name.values()) + 210
    assert compare.floor_parts() == parts  # fixed bytes: the same floor in every run


def _report(single: float, merkle_docs_per_s: float) -> Report:
    parts = compare.floor_parts()
    gas = GasFigures(
        single=single,
        batch100=31_760,
        merkle100=465.7,
        merkle1000=46.6,
        merkle10000=4.7,
        root100=46_575,
        root1000=46_587,
        root10000=46_587,
        minimal_registry=50_792,
        eas=EasGas(compare.EQUIVALENT.text, 209_770, 171_163, 226_000),
        eas_smallest=EasGas(compare.SMALLEST.text, 180_132, 145_783, 196_327),
        floor_single=Floor(parts).per_document(1),
        floor_batch100=Floor(parts).per_document(100),
        floor_parts=parts,
    )
    apis = tuple(
        ApiFigures(
            mode=mode,
            documents=600,
            anchored=600,
            accept_rps=900,
            accept_cpu_us=1_100,
            ceiling_submit_cpu_us=480,
            end_to_end_docs_per_s=rate,
            ceiling_submit_rps=1_000,
            verify_rps=700,
            verify_p50_ms=20,
            verify_p99_ms=60,
            verify_statuses={"200": 1400},
            ceiling_verify_rps=1_000,
            ceiling_verify_p99_ms=50,
            verify_cpu_us=900,
            ceiling_verify_cpu_us=500,
            receipt_versions={"1" if mode == "direct" else "2": 200},
            verify_outcomes={"valid": 20},
        )
        for mode, rate in (("direct", 300.0), ("merkle", merkle_docs_per_s))
    )
    hashing = HashFigures(
        size=64 << 20,
        openssl_mbps=1_400,
        openssl_memory=6 << 20,
        sha256sum_mbps=350,
        sha256sum_memory=2 << 20,
        cli_mbps=1_350,
        cli_memory=1 << 20,
        page_mbps=700,
        page_memory=30 << 20,
        notes=("a note",),
    )
    options = compare.parse_args(["--quick"])
    machine = Machine("2026-12-05 16:00 UTC", 2, "a CPU", (1.0, 1.0, 1.0), (2.0, 1.0, 1.0), "3.11")
    rows = compare.rows_of(gas, apis, hashing, options.clients)
    return Report(machine, options, gas, apis, hashing, tuple(rows), hashing.notes)


def test_the_table_shows_each_ratio_and_whether_its_target_is_met(capsys: pytest.CaptureFixture[str]) -> None:
    compare.print_table(_report(single=113_000, merkle_docs_per_s=850))
    lines = capsys.readouterr().out.splitlines()
    single = next(line for line in lines if "relayed single" in line and "attestByDelegation " in line)
    assert single.split()[-4:] == ["0.500", "<=", "0.31x", "NO"]
    merkle = next(line for line in lines if "anchored end to end, merkle mode" in line)
    assert merkle.split()[-4:] == ["0.850", ">=", "0.8x", "yes"]
    assert any(line.startswith("  calldata") for line in lines)  # the floor's parts
    last = lines[-1]
    assert last.startswith("targets not met: ") and "relayed single" in last and "merkle mode" not in last


def test_json_holds_the_same_rows(capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(single=53_700, merkle_docs_per_s=700)
    print(json.dumps(asdict(report)))
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"machine", "options", "gas", "api", "hashing", "rows", "notes"}
    rows = {(r["section"], r["measure"], r["baseline_name"]): r for r in data["rows"]}
    single = rows[("gas per document", "relayed single", "EAS attestByDelegation")]
    assert single["met"] is True and single["target"] == {"op": "<=", "bound": 0.31, "of_ratio": True}
    assert single["ratio"] == pytest.approx(53_700 / 226_000)
    merkle = rows[("API, 50 clients", "anchored end to end, merkle mode", "bare signed POST")]
    assert merkle["met"] is False and merkle["ratio"] == pytest.approx(0.7)
    assert rows[("API, 50 clients", "anchored end to end, direct mode", "bare signed POST")]["met"] is None
    assert len(data["rows"]) == len(report.rows)


def test_eas_deploys_from_its_npm_artifacts_and_takes_a_relayed_signed_attestation(anvil: LocalNode) -> None:
    key = os.urandom(32)  # its own relayer: no nonce shared with the session's other senders
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 60}))
    w3.provider.make_request("anvil_setBalance", [td.address_of(key), hex(10**20)])  # type: ignore[arg-type]
    equivalent, smallest = compare.eas_gas(TxSender(w3, key), (compare.EQUIVALENT, compare.SMALLEST))
    floor = Floor(compare.floor_parts())
    for eas in (equivalent, smallest):
        # EAS keeps the whole attestation in storage: several slots per document, over the one-slot floor
        assert floor.per_document(1) < eas.attest < eas.delegated
        assert floor.per_document(100) < eas.multi_attest100 < eas.attest
    # the metadata hash is one more stored word (the zero supersedes word costs little)
    assert equivalent.attest - smallest.attest > 20_000


def test_a_verify_rate_of_the_wrong_receipts_or_verdicts_is_flagged() -> None:
    direct, merkle = _report(single=53_700, merkle_docs_per_s=900).api
    assert compare.verify_warnings([direct, merkle]) == []
    wrong = replace(merkle, receipt_versions={"1": 200}, verify_outcomes={"valid": 19, "invalid": 1})
    warnings = compare.verify_warnings([direct, wrong])
    assert len(warnings) == 2 and all("merkle mode" in w for w in warnings)
