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


@cache
def load(name: str = "DocumentRegistry") -> Artifact:
    data = json.loads(files("docchain.contracts").joinpath("build", f"{name}.json").read_text())
    return Artifact(
        name=name,
        abi=data["abi"],
        bytecode=bytes.fromhex(data["bytecode"][2:]),
        deployed_bytecode=bytes.fromhex(data["deployedBytecode"][2:]),
    )
