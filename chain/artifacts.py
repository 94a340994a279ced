"""The committed compiled contracts (ABI, bytecode), shipped as package data of ``docchain.contracts``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    # (start, length) of every immutable value in the runtime code: filled in by the constructor, so they
    # differ per deployment and are masked when deployed code is compared with the artifact.
    immutable_references: tuple[tuple[int, int], ...] = ()


@cache
def load(name: str = "DocumentRegistry") -> Artifact:
    data = json.loads(files("docchain.contracts").joinpath("build", f"{name}.json").read_text())
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"][2:]),
        deployed_bytecode=bytes.fromhex(data["deployedBytecode"][2:]),
        immutable_references=tuple((int(s), int(n)) for s, n in data.get("immutableReferences", [])),
    )
