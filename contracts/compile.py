"""Compile the registry with the solc pinned in package.json and write the committed artifacts.

Run ``python -m docchain.contracts.compile`` (or ``--check`` to prove the committed artifacts are
byte-identical to a fresh compile). solc comes from npm (solcjs) because no native compiler can be
downloaded on the machines docchain builds on; it is driven through its standard-JSON interface.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
SOLCJS = ROOT / "node_modules" / ".bin" / "solcjs"

# Source units compiled, relative to contracts/; their import closure is resolved by solc's callback.
SOURCES = (
    "DocumentRegistry.sol",
    "IDocumentRegistry.sol",
    "DocumentEnvelopes.sol",
    "IDocumentEnvelopes.sol",
    "test/MockERC1271Wallet.sol",
    "test/LookAlikeRegistry.sol",
)
CONTRACTS = {
    "DocumentRegistry.sol": "DocumentRegistry",
    "DocumentEnvelopes.sol": "DocumentEnvelopes",
    "test/MockERC1271Wallet.sol": "MockERC1271Wallet",
    "test/LookAlikeRegistry.sol": "LookAlikeRegistry",
}

# ganache 7.9 stops at shanghai; anvil runs it too. OpenZeppelin is pinned to 5.3.0 for the same reason:
# from 5.4 on, SignatureChecker pulls in code using cancun's MCOPY.
SETTINGS: dict[str, Any] = {
    "evmVersion": "shanghai",
    "optimizer": {"enabled": True, "runs": 1_000_000},
    "viaIR": True,
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "evm.deployedBytecode.immutableReferences",
                "metadata",
            ]
        }
    },
}


def solc(sources: dict[str, str], settings: dict[str, Any] = SETTINGS) -> dict[str, Any]:
    """Run solcjs's standard-JSON mode on ``sources`` ({unit name: source text}); imports resolve against
    contracts/ and node_modules/. Returns solc's ``contracts`` output."""
    if not SOLCJS.exists():
        raise SystemExit(f"solcjs not found at {SOLCJS}: run `npm ci` first")
    request = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": settings,
    }
    # solcjs exits before a pipe drains (output above 64 KiB arrives truncated), so it writes to a file.
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            [
                str(SOLCJS),
                "--standard-json",
                "--base-path",
                str(HERE),
                "--include-path",
                str(ROOT / "node_modules"),
            ],
            input=json.dumps(request),
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        out.seek(0)
        text = out.read()
    # solcjs may print warnings before the JSON document.
    output = json.loads(text[text.index("{") :])
    errors = [e for e in output.get("errors", []) if e["severity"] == "error"]
    if proc.returncode != 0 or errors:
        detail = "\n".join(e["formattedMessage"] for e in errors) or proc.stderr
        raise SystemExit(f"solc failed:\n{detail}")
    return dict(output["contracts"])


def compile_artifacts() -> dict[str, str]:
    """Compile and return {artifact file name: JSON text}."""
    output = solc({name: (HERE / name).read_text() for name in SOURCES})
    version = subprocess.run([str(SOLCJS), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    artifacts = {}
    for source, name in CONTRACTS.items():
        out = output[source][name]
        artifact = {
            "contractName": name,
            "sourceName": source,
            "compiler": version,
            "settings": {k: v for k, v in SETTINGS.items() if k != "outputSelection"},
            "abi": out["abi"],
            "bytecode": "0x" + out["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + out["evm"]["deployedBytecode"]["object"],
            # Where the runtime code holds values filled in at deployment (EIP-712's cached domain, ...):
            # a verifier masks these bytes before comparing deployed code with the artifact.
            "immutableReferences": sorted(
                [r["start"], r["length"]]
                for refs in out["evm"]["deployedBytecode"]["immutableReferences"].values()
                for r in refs
            ),
            "metadata": out["metadata"],
        }
        artifacts[f"{name}.json"] = json.dumps(artifact, indent=2, sort_keys=True) + "\n"
    return artifacts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed artifacts differ")
    args = parser.parse_args(argv)
    artifacts = compile_artifacts()
    if args.check:
        stale = [n for n, text in artifacts.items() if not (BUILD / n).exists() or (BUILD / n).read_text() != text]
        if stale:
            print(
                f"stale artifacts: {', '.join(stale)}; run python -m docchain.contracts.compile",
                file=sys.stderr,
            )
            return 1
        print("artifacts are up to date")
        return 0
    BUILD.mkdir(exist_ok=True)
    for name, text in artifacts.items():
        _write_atomically(BUILD / name, text)
        print(f"wrote {BUILD / name}")
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one rename: tests deploying the registry meanwhile read the old or the new
    artifact, never a half-written one."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as out:
        out.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out.name, 0o666 & ~umask)  # a temporary file is private; the artifact is not
    os.replace(out.name, path)


if __name__ == "__main__":
    raise SystemExit(main())
