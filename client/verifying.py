"""``docchain verify``'s two paths and how a verdict is shown.

Independent verification (``--rpc``) needs a registry the verifier trusts for reasons of its own, never
the receipt's say-so: the code check of chain/verify.py always applies, and a pin narrows it to one
address — ``--registry`` / ``DOCCHAIN_REGISTRY``, else the deployments the local stack recorded in the
config directory, else the deployments shipped with docchain.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rich.markup import escape

from docchain.chain import deploy
from docchain.chain.rpc import ChainReader, JsonRpc
from docchain.chain.trust import Pin, pin_from_deployments, shipped_deployments
from docchain.chain.values import parse_address
from docchain.chain.verify import Question, Verdict, superseded_by, verify
from docchain.client.output import Output


def record_trusted(deployment: deploy.Deployment, path: Path) -> None:
    """Remember a registry this user deployed (or their local stack did) as the one to trust on its chain,
    in ``path`` (``deployments.json`` of the config dir)."""
    deploy.record_in(path, deployment)


def resolve_pin(chain_id: int, registry: str | None, registry_source: str, path: Path) -> Pin | None:
    """The registry this verifier trusts on ``chain_id``, and where that trust comes from; ``path`` holds
    the deployments the local stack recorded."""
    if registry:
        return Pin(None, parse_address(registry, "--registry"), registry_source)
    return pin_from_deployments(
        chain_id,
        (f"the local stack's deployments ({path})", deploy.read_file(path)),
        ("the deployments shipped with docchain", shipped_deployments()),
    )


def verify_with_node(
    url: str, timeout: float, question: Question, registry: str | None, registry_source: str, deployments: Path
) -> Verdict:
    async def run() -> Verdict:
        async with JsonRpc(url, timeout=timeout) as rpc:
            reader = ChainReader(rpc)
            pin = resolve_pin(await reader.chain_id(), registry, registry_source, deployments)
            return await superseded_by(reader, await verify(reader, question, pin=pin), pin)

    return asyncio.run(run())


def show(out: Output, result: dict[str, Any]) -> None:
    """A verdict as people read it: every step with its tick or cross, then the title and the sentence the
    API and the web page say for it."""
    if out.json_mode:
        return
    for step in result.get("steps", []):
        mark = "[green]✔[/]" if step.get("ok") else "[red]✘[/]"
        out.out.print(f"{mark} {step.get('name', '?'):<14} {escape(str(step.get('detail', '')))}", markup=True)
    colour = "green" if result.get("outcome") == "valid" else "red"
    title, summary = str(result.get("title", "?")).upper(), escape(str(result.get("summary", "")))
    out.out.print(f"[bold {colour}]{title}[/]: {summary}", markup=True)
    trust = result.get("trust")
    if trust:
        out.say(f"registry trusted by: {trust.get('detail')}")
    anchor = result.get("anchor") or {}
    if anchor.get("merkleRoot"):
        out.say(f"anchored in a Merkle tree: root {anchor['merkleRoot']}")
    if anchor.get("via"):
        out.say(f"sent through {anchor['via']['release']} at {anchor['via']['address']}")
    # a newer version is news beside the verdict: the old document was signed all the same (exit 0)
    for newer in result.get("superseded_by") or ():
        signers = ", ".join(newer.get("signers", ()))
        out.out.print(
            f"[bold yellow]superseded by[/] {newer.get('docHash')} (signed by {escape(signers)})", markup=True
        )
    if result.get("superseded_by_unsearched"):
        out.warn(f"whether a newer version supersedes it is not fully known: {result['superseded_by_unsearched']}")
