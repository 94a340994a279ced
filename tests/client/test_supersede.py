"""``docchain submit NEW --supersedes OLD`` and what ``docchain verify OLD --via rpc`` says of it, on a real anvil.

One module node: alice and bob sign the old version; alice signs a new version naming it (shown); mallory, who never
signed the old version, names it from a document of her own (not shown); bob names it from a third document and
then revokes that registration (not shown). The old version stays VALID with exit 0: the supersede is news beside
the verdict. Input is refused with exit 2 before anything is signed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from docchain.chain import deploy
from docchain.chain.hashing import sha256_file
from docchain.chain.registry import encode_call
from docchain.chain.values import to_hex
from docchain.client.errors import ExitCode
from tests.client.cli_stack import FundedCli, funded_cli

PASSWORD = "supersede password"


@dataclass(frozen=True)
class Versions:
    old: str  # the old version's path
    new: str  # alice's new version, which supersedes it
    strangers: str  # mallory's document naming the old one
    withdrawn: str  # bob's document naming the old one, revoked
    verified: dict[str, Any]  # verify OLD --via rpc --json
    text: str  # verify OLD --via rpc, as people read it


def _hash(path: str) -> str:
    return to_hex(sha256_file(Path(path)))


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FundedCli]:
    with funded_cli(tmp_path_factory.mktemp("supersede"), PASSWORD, ("alice", "bob", "mallory")) as c:
        yield c


def _revoke_directly(cli: FundedCli, signer: str, doc_hash: str) -> None:
    """``signer`` calls the registry's revoke(docHash) itself (anvil lets the test send as that account)."""
    registry = deploy.read_all(cli.data_dir)[31337].address
    w3 = Web3(Web3.HTTPProvider(cli.node.rpc_url))
    cli.node.rpc("anvil_impersonateAccount", [signer])
    tx = w3.eth.send_transaction(
        {"from": signer, "to": registry, "data": to_hex(encode_call("revoke", bytes.fromhex(doc_hash[2:])))}
    )
    assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    cli.node.rpc("anvil_stopImpersonatingAccount", [signer])


@pytest.fixture(scope="module")
def versions(cli: FundedCli) -> Versions:
    old, new = cli.doc("contract-v1.txt"), cli.doc("contract-v2.txt")
    strangers, withdrawn = cli.doc("mallory.txt"), cli.doc("bob-v2.txt")
    cli.json("submit", old, "--direct", "--key", "alice")
    cli.json("submit", old, "--direct", "--key", "bob", "--force")  # alice's receipt is beside it
    cli.json("submit", new, "--direct", "--key", "alice", "--supersedes", old)
    cli.json("submit", strangers, "--direct", "--key", "mallory", "--supersedes", _hash(old))
    cli.json("submit", withdrawn, "--direct", "--key", "bob", "--supersedes", old)
    _revoke_directly(cli, cli.addresses["bob"], _hash(withdrawn))
    verified = cli.json("verify", old, "--via", "rpc")
    text = cli.run("verify", old, "--via", "rpc").stdout
    return Versions(old, new, strangers, withdrawn, verified, text)


def test_the_supersedes_is_signed_and_on_chain(cli: FundedCli, versions: Versions) -> None:
    """Each naming registration carries the old hash (the registry's event data), the stranger's too."""
    from docchain.chain.registry import Registry

    registry = Registry(Web3(Web3.HTTPProvider(cli.node.rpc_url)), deploy.read_all(cli.data_dir)[31337].address)
    named = {to_hex(e.doc_hash): e.supersedes for e in registry.events(0) if e.kind == "Registered"}
    old = bytes.fromhex(_hash(versions.old)[2:])
    assert {doc: named[doc] for doc in map(_hash, (versions.new, versions.strangers, versions.withdrawn))} == {
        _hash(versions.new): old,
        _hash(versions.strangers): old,
        _hash(versions.withdrawn): old,
    }
    assert named[_hash(versions.old)] == bytes(32)


def test_a_supersede_by_a_signer_of_the_old_document_is_shown(cli: FundedCli, versions: Versions) -> None:
    """Only alice's: mallory never signed the old version, bob revoked his new registration."""
    assert versions.verified["outcome"] == "valid"  # the old version was signed, and that stays so
    assert versions.verified["superseded_by"] == [{"docHash": _hash(versions.new), "signers": [cli.addresses["alice"]]}]
    assert f"superseded by {_hash(versions.new)} (signed by {cli.addresses['alice']})" in versions.text
    assert "VALID" in versions.text
    for hidden in (versions.strangers, versions.withdrawn):
        assert _hash(hidden) not in versions.text


def test_the_new_version_is_superseded_by_nothing(cli: FundedCli, versions: Versions) -> None:
    assert cli.json("verify", versions.new, "--via", "rpc")["superseded_by"] == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--supersedes", "0x12"), "--supersedes: document hash must be 32 bytes"),
        (("--supersedes", "missing.pdf"), "--supersedes: 'missing.pdf' is neither an existing file nor"),
        (("--supersedes", "0x" + "00" * 32), "the zero hash names no document"),
        (("--supersedes", "SELF"), "cannot supersede itself"),
        (("EXTRA", "--supersedes", "0x" + "11" * 32), "a single FILE"),
    ],
)
def test_bad_supersedes_is_refused_before_anything_is_signed(
    cli: FundedCli, versions: Versions, args: tuple[str, ...], said: str
) -> None:
    doc = cli.doc("refused.txt")
    given = [doc if a == "SELF" else cli.doc("other.txt") if a == "EXTRA" else a for a in args]
    result = cli.run("submit", doc, *given, "--direct", "--key", "alice", code=ExitCode.USAGE)
    assert said in result.stderr


def test_a_supersede_that_will_not_count_is_warned_and_still_submitted(cli: FundedCli, versions: Versions) -> None:
    """mallory has no registration of the old version: one line on stderr says her supersede will be ignored, and
    the registration is made all the same; bob, a signer of the old version, is not warned."""
    old = _hash(versions.old)
    result = cli.run("submit", cli.doc("mallory-v3.txt"), "--direct", "--key", "mallory", "--supersedes", old, "--json")
    assert result.stderr.strip().splitlines() == [
        f"warning: {cli.addresses['mallory']} has no registration of {old}: verifiers ignore this supersede (only a "
        "signer of the old version can supersede it); submitting anyway"
    ]
    [row] = json.loads(result.stdout)
    assert row["state"] == "anchored" and row["signer"] == cli.addresses["mallory"]
    signer = cli.run("submit", cli.doc("bob-v3.txt"), "--direct", "--key", "bob", "--supersedes", old, "--json")
    assert signer.stderr.strip() == ""
