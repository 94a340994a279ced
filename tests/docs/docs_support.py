"""Reading the documentation the way its readers do: fenced blocks after a marker, `key = value` lines."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def block_after(markdown: str, marker: str) -> str:
    """The body of the first fenced code block following ``<!-- marker ... -->``."""
    match = re.search(r"<!--\s*" + re.escape(marker) + r"\b[^>]*-->\s*\n```[a-z]*\n(.*?)\n```", markdown, re.S)
    assert match, f"no fenced block after <!-- {marker} -->"
    return match.group(1)


def key_values(block: str) -> dict[str, str]:
    values = {}
    for line in block.splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values
