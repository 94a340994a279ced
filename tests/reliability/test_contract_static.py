"""Static analysis of the registry and the envelopes with slither, compiled by the project's own solc.

The project's solc is solcjs from npm (contracts/compile.py): it does not take native solc's command line,
which crytic-compile drives, and no native compiler can be downloaded here (solc-select fetches binaries from
the internet). So solcjs compiles the registry through its standard-JSON interface, with the settings of the
committed build (evmVersion, optimizer, viaIR) and an output selection of the ASTs and ABIs only (slither's
detectors read the AST; skipping code generation takes the compile from ~13 s to ~3 s), and crytic-compile
is handed that standard-JSON output as a compilation unit.

Every high- or medium-impact finding must be explained in contracts/slither-accepted.toml (check, where, why),
and every explanation there must still match a finding, so the file neither lags nor outlives the code.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from typing import Any

from tests.reliability.report import ROOT, Entry

ACCEPTED = ROOT / "contracts" / "slither-accepted.toml"
SOLCJS = ROOT / "node_modules" / ".bin" / "solcjs"
# What is deployed for users: the registry, the envelopes and their interfaces. The test contracts (a mock
# wallet, a look-alike registry) are never deployed outside the tests.
SOURCES = (
    "contracts/DocumentRegistry.sol",
    "contracts/IDocumentRegistry.sol",
    "contracts/DocumentEnvelopes.sol",
    "contracts/IDocumentEnvelopes.sol",
)
SERIOUS = ("High", "Medium")


@dataclass(frozen=True)
class Finding:
    check: str
    impact: str
    confidence: str
    where: str  # the function (or contract) the finding is about: "Contract.function(types)"
    file: str
    summary: str


def _standard_json() -> tuple[dict[str, Any], str]:
    """solcjs's standard-JSON output for the released sources, and its version."""
    from docchain.contracts.compile import SETTINGS

    settings = {k: v for k, v in SETTINGS.items() if k != "outputSelection"}
    settings["outputSelection"] = {"*": {"*": ["abi", "devdoc", "userdoc"], "": ["ast"]}}
    request = {
        "language": "Solidity",
        "sources": {name: {"content": (ROOT / name).read_text()} for name in SOURCES},
        "settings": settings,
    }
    command = [str(SOLCJS), "--standard-json", "--base-path", str(ROOT), "--include-path", str(ROOT / "node_modules")]
    with tempfile.TemporaryFile("w+") as out:  # solcjs cuts output to a pipe short (see contracts/compile.py)
        subprocess.run(command, input=json.dumps(request), stdout=out, stderr=subprocess.PIPE, text=True, check=True)
        out.seek(0)
        text = out.read()
    output = json.loads(text[text.index("{") :])
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e["severity"] == "error"]
    assert not errors, "\n".join(errors)
    for unit in output["contracts"].values():  # no code generated: crytic-compile still reads these keys
        for contract in unit.values():
            contract["evm"] = {
                "bytecode": {"object": "", "sourceMap": ""},
                "deployedBytecode": {"object": "", "sourceMap": ""},
            }
    version = subprocess.run([str(SOLCJS), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return output, version


def run_slither() -> tuple[list[Finding], str]:
    import inspect

    from crytic_compile import CryticCompile
    from crytic_compile.compilation_unit import CompilationUnit
    from crytic_compile.compiler.compiler import CompilerVersion
    from crytic_compile.platform.solc_standard_json import SolcStandardJson, parse_standard_json_output
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    output, version = _standard_json()
    number = version.split("+", 1)[0]

    class Compiled(SolcStandardJson):  # type: ignore[misc]
        """solcjs's output, already made: crytic-compile parses it instead of running a native solc."""

        def compile(self, crytic_compile: CryticCompile, **kwargs: Any) -> None:
            unit = CompilationUnit(crytic_compile, "docchain")
            unit.compiler_version = CompilerVersion(compiler="solc", version=number, optimized=True)
            parse_standard_json_output(output, unit, solc_working_dir=str(ROOT))

    cwd = os.getcwd()
    os.chdir(ROOT)  # crytic-compile names files relative to the working directory
    try:
        slither = Slither(CryticCompile(Compiled({})))
        for detector in vars(all_detectors).values():
            if inspect.isclass(detector) and issubclass(detector, AbstractDetector):
                slither.register_detector(detector)
        results = [r for per_detector in slither.run_detectors() for r in per_detector]
    finally:
        os.chdir(cwd)
    findings = []
    for r in results:
        first = r["elements"][0] if r["elements"] else {}
        fields = first.get("type_specific_fields", {})
        if first.get("type") == "function":
            where = f"{fields.get('parent', {}).get('name')}.{fields.get('signature')}"
        elif first.get("type") == "node":
            function = fields.get("parent", {})
            owner = function.get("type_specific_fields", {}).get("parent", {}).get("name")
            where = f"{owner}.{function.get('type_specific_fields', {}).get('signature')}"
        else:
            where = str(first.get("name", "?"))
        summary = r["description"].strip().splitlines()[0]
        file = first.get("source_mapping", {}).get("filename_relative", "?")
        findings.append(Finding(r["check"], r["impact"], r["confidence"], where, file, summary))
    return findings, version


def test_slither_findings_are_explained(entry: Entry) -> None:
    """Contract static analysis: slither, every high and medium finding explained"""
    findings, version = run_slither()  # slither-analyzer is in the test extras: a missing one fails, never skips
    accepted = tomllib.loads(ACCEPTED.read_text())["finding"]
    explained = {(a["check"], a["where"]): a["why"] for a in accepted}
    serious = sorted({(f.check, f.where, f.impact, f.file) for f in findings if f.impact in SERIOUS})
    by_impact: dict[str, int] = {}
    for f in findings:
        by_impact[f.impact] = by_impact.get(f.impact, 0) + 1
    entry.inputs["slither detectors' findings"] += len(findings)
    entry.held.append(
        f"slither over {', '.join(SOURCES)} and their OpenZeppelin imports, compiled by solcjs {version}: "
        + ", ".join(f"{n} {impact.lower()}" for impact, n in sorted(by_impact.items()))
    )
    entry.table(
        "High and medium findings, each with the explanation contracts/slither-accepted.toml gives:",
        ["impact", "check", "where", "file", "why it stays"],
        [
            [impact, check, where, file, explained.get((check, where), "**unexplained**")]
            for check, where, impact, file in serious
        ],
    )
    ours = sorted(
        {(f.impact, f.check, f.where) for f in findings if f.impact not in SERIOUS and f.file.startswith("contracts/")}
    )
    entry.table(
        "Low, informational and optimization findings in contracts/ (for the record):",
        ["impact", "check", "where"],
        [list(o) for o in ours],
    )
    unexplained = [
        f"{impact} {check} in {where} ({file})"
        for check, where, impact, file in serious
        if (check, where) not in explained
    ]
    stale = [f"{c} in {w}" for (c, w) in explained if not any((f.check, f.where) == (c, w) for f in findings)]
    empty = [f"{c} in {w}" for (c, w), why in explained.items() if len(why.strip()) < 40]
    assert not unexplained, (
        "high/medium findings without an explanation in contracts/slither-accepted.toml:\n" + "\n".join(unexplained)
    )
    assert not stale, "explanations that no longer match a finding (remove them):\n" + "\n".join(stale)
    assert not empty, f"explanations too short to explain anything: {empty}"
    # an analysis that did not parse the registry itself would pass vacuously
    assert any(f.file == "contracts/DocumentRegistry.sol" for f in findings), "slither saw nothing of the registry"
