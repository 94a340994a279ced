"""chain/merkle.py builds the same trees, proofs and multiproofs as OpenZeppelin's StandardMerkleTree (golden
vectors made by @openzeppelin/merkle-tree, read here without node), every proof it gives verifies, and no altered
leaf, proof, root or proof of another tree does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docchain.chain import merkle
from docchain.chain.errors import InvalidInput
from docchain.chain.hashing import keccak256
from docchain.chain.merkle import InclusionProof, MerkleTree, MultiProof
from docchain.chain.typed_data import Registration

VECTORS = Path(__file__).parents[1] / "vectors" / "merkle"
GOLDEN: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text())
TREES = {tree["count"]: tree for tree in GOLDEN["trees"]}


def b(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def hexes(values: tuple[bytes, ...] | list[bytes]) -> list[str]:
    return ["0x" + v.hex() for v in values]


# --- golden vectors: the npm package's trees, compared without node ---------------------------------------------


def test_the_vectors_cover_the_sizes_the_format_promises() -> None:
    assert sorted(TREES) == [1, 2, 3, 7, 100]
    assert tuple(GOLDEN["leafEncoding"]) == merkle.LEAF_ENCODING


@pytest.mark.parametrize("count", sorted(TREES))
def test_leaves_are_openzeppelins(count: int) -> None:
    for entry in TREES[count]["entries"]:
        assert b(entry["signatureHash"]) == keccak256(b(entry["signature"]))
        from_values = merkle.leaf_hash(
            b(entry["docHash"]), entry["signer"], b(entry["metadataHash"]), b(entry["signatureHash"])
        )
        registration = Registration(b(entry["docHash"]), entry["signer"], 0, b(entry["metadataHash"]), b"\x01" * 32)
        # supersedes and deadline are bound by the signature, not by the leaf
        assert from_values == merkle.leaf(registration, b(entry["signature"])) == b(entry["leaf"])


@pytest.mark.parametrize("count", sorted(TREES))
def test_tree_and_every_proof_are_openzeppelins(count: int) -> None:
    golden = TREES[count]
    leaves = [b(e["leaf"]) for e in golden["entries"]]
    tree = MerkleTree.of(leaves)
    assert len(tree) == count
    assert "0x" + tree.root.hex() == golden["root"]
    assert hexes(tree.nodes) == golden["tree"]  # the same array, node for node
    ranks = sorted(range(count), key=leaves.__getitem__)
    for i, entry in enumerate(golden["entries"]):
        proof = tree.proof(i)
        assert hexes(proof.proof) == entry["proof"]
        assert (proof.root, proof.count, proof.index) == (tree.root, count, ranks.index(i))
        assert tree.nodes[2 * count - 2 - proof.index] == leaves[i] == tree.leaf_at(i)
        assert tree.proof_for(leaves[i]) == proof
        assert proof.verifies(leaves[i])


@pytest.mark.parametrize("count", sorted(TREES))
def test_multiproof_is_openzeppelins(count: int) -> None:
    golden = TREES[count]
    tree = MerkleTree.of([b(e["leaf"]) for e in golden["entries"]])
    multiproof = tree.multiproof(golden["multiproof"]["indices"])
    assert hexes(multiproof.leaves) == golden["multiproof"]["leaves"]
    assert hexes(multiproof.proof) == golden["multiproof"]["proof"]
    assert list(multiproof.flags) == golden["multiproof"]["proofFlags"]
    assert merkle.verify_multiproof(tree.root, multiproof)


def test_the_vectors_are_what_the_npm_package_writes() -> None:
    node = shutil.which("node")
    assert node, "node is installed with the repository's tools (package.json)"
    done = subprocess.run(
        [node, str(VECTORS / "make_vectors.mjs")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == (VECTORS / "vectors.json").read_text(), "run tests/vectors/merkle/make_vectors.mjs"


# --- properties --------------------------------------------------------------------------------------------------

hashes = st.binary(min_size=32, max_size=32)
leaf_sets = st.lists(hashes, min_size=1, max_size=40, unique=True)


def flip(value: bytes, bit: int) -> bytes:
    return (int.from_bytes(value, "big") ^ (1 << (bit % 256))).to_bytes(32, "big")


@settings(max_examples=150, deadline=None)
@given(leaf_sets, st.randoms(use_true_random=False))
def test_the_tree_does_not_depend_on_the_order_of_its_leaves(leaves: list[bytes], rng: Any) -> None:
    shuffled = list(leaves)
    rng.shuffle(shuffled)
    assert MerkleTree.of(shuffled).nodes == MerkleTree.of(leaves).nodes


@settings(max_examples=150, deadline=None)
@given(leaf_sets)
def test_every_proof_verifies(leaves: list[bytes]) -> None:
    tree = MerkleTree.of(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert merkle.verify(tree.root, leaf, proof.proof)
        assert InclusionProof.from_json(json.loads(json.dumps(proof.to_json()))) == proof


@settings(max_examples=150, deadline=None)
@given(leaf_sets, st.data())
def test_no_altered_leaf_proof_or_root_verifies(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.of(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1), label="leaf")
    bit = data.draw(st.integers(0, 255), label="bit")
    proof = tree.proof(i).proof
    assert not merkle.verify(tree.root, flip(leaves[i], bit), proof)
    assert not merkle.verify(flip(tree.root, bit), leaves[i], proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="element")
        altered = proof[:k] + (flip(proof[k], bit),) + proof[k + 1 :]
        assert not merkle.verify(tree.root, leaves[i], altered)
        assert not merkle.verify(tree.root, leaves[i], proof[:-1])  # a shortened proof ends at an inner node
    assert not merkle.verify(tree.root, leaves[i], (*proof, tree.root))  # nor does a lengthened one


@settings(max_examples=100, deadline=None)
@given(leaf_sets, leaf_sets)
def test_a_proof_of_another_tree_does_not_verify(leaves: list[bytes], others: list[bytes]) -> None:
    others = [o for o in others if o not in leaves]
    if not others:
        return
    tree, other = MerkleTree.of(leaves), MerkleTree.of(others)
    for i, leaf in enumerate(others):
        assert not merkle.verify(tree.root, leaf, other.proof(i).proof)
    for i, leaf in enumerate(leaves):
        # a leaf of this tree with the other tree's proof of the same place (unless it happens to be this tree's:
        # two trees of one leaf each have the same empty proof)
        if i < len(others) and other.proof(i).proof != tree.proof(i).proof:
            assert not merkle.verify(tree.root, leaf, other.proof(i).proof)


@settings(max_examples=100, deadline=None)
@given(leaf_sets)
def test_no_leaf_is_an_inner_node(leaves: list[bytes]) -> None:
    """The leaf rule hashes twice, and its outer hash takes 32 bytes where an inner node's takes 64: an inner node's
    children, offered as the preimage a leaf is made of, give another hash, so no registration stands for a
    subtree."""
    tree = MerkleTree.of(leaves)
    inner = tree.nodes[: len(leaves) - 1]
    assert not set(inner) & set(leaves)
    for i, node in enumerate(inner):
        left, right = tree.nodes[2 * i + 1], tree.nodes[2 * i + 2]
        pair = min(left, right) + max(left, right)
        assert merkle.node_hash(left, right) == keccak256(pair) == node
        assert keccak256(keccak256(pair)) != node


@settings(max_examples=100, deadline=None)
@given(leaf_sets, st.data())
def test_every_multiproof_verifies_and_an_altered_one_does_not(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree.of(leaves)
    indices = data.draw(st.lists(st.integers(0, len(leaves) - 1), unique=True), label="indices")
    multiproof = tree.multiproof(indices)
    assert sorted(multiproof.leaves) == sorted(leaves[i] for i in indices)
    assert merkle.verify_multiproof(tree.root, multiproof)
    if multiproof.leaves:
        bad = MultiProof((flip(multiproof.leaves[0], 7), *multiproof.leaves[1:]), multiproof.proof, multiproof.flags)
        assert not merkle.verify_multiproof(tree.root, bad)
    if multiproof.proof:
        bad = MultiProof(multiproof.leaves, (flip(multiproof.proof[0], 7), *multiproof.proof[1:]), multiproof.flags)
        assert not merkle.verify_multiproof(tree.root, bad)
    assert not merkle.verify_multiproof(flip(tree.root, 7), multiproof)


def test_a_malformed_multiproof_is_refused_not_raised() -> None:
    tree = MerkleTree.of([bytes([n]) * 32 for n in range(5)])
    good = tree.multiproof([0, 3])
    assert not merkle.verify_multiproof(tree.root, MultiProof(good.leaves, good.proof, (*good.flags, True)))
    assert not merkle.verify_multiproof(tree.root, MultiProof(good.leaves, good.proof[:-1], good.flags))
    assert not merkle.verify_multiproof(tree.root, MultiProof((), (), ()))
    # the counts agree, but the walk would hash a node it has not made yet
    assert merkle.process_multiproof(MultiProof(good.leaves[:1], good.proof[:1], (True,))) is None


# --- input errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaves", "message"),
    [
        ([], "at least one leaf"),
        ([bytes(32), bytes(31)], "32 bytes"),
        ([bytes(32), b"\x01" * 32, bytes(32)], "the same leaf twice"),
    ],
)
def test_tree_input_errors(leaves: list[bytes], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        MerkleTree.of(leaves)


def test_proof_lookup_errors() -> None:
    tree = MerkleTree.of([bytes(32), b"\x01" * 32])
    with pytest.raises(InvalidInput, match="out of range"):
        tree.proof(2)
    with pytest.raises(InvalidInput, match="out of range"):
        tree.proof(-1)
    with pytest.raises(InvalidInput, match="is not in this tree"):
        tree.proof_for(b"\x02" * 32)
    with pytest.raises(InvalidInput, match="same leaf twice"):
        tree.multiproof([1, 1])


@pytest.mark.parametrize(
    "signer", ["0x1234", "0x" + "zz" * 20, "0x" + "11" * 21, "", "11" * 21, "0x" + "11 " * 13 + "11"]
)
def test_a_leaf_needs_a_20_byte_signer(signer: str) -> None:
    with pytest.raises(InvalidInput, match="20-byte address"):
        merkle.leaf_hash(bytes(32), signer, bytes(32), bytes(32))


def test_a_leaf_needs_32_byte_hashes() -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        merkle.leaf_hash(bytes(31), "0x" + "11" * 20, bytes(32), bytes(32))


# --- the inclusion proof a receipt carries -----------------------------------------------------------------------

SEVEN = MerkleTree.of([b(e["leaf"]) for e in TREES[7]["entries"]])
GOOD = SEVEN.proof(3).to_json()


def test_inclusion_proof_json_round_trip() -> None:
    assert set(GOOD) == {"root", "leafIndex", "leafCount", "proof"}
    assert InclusionProof.from_json(GOOD) == SEVEN.proof(3)
    # proof lengths in a tree of 7: the deepest leaves need 3 hashes, the shallower ones 2
    assert [len(SEVEN.proof(i).proof) for i in range(7)] == [len(e["proof"]) for e in TREES[7]["entries"]]


def altered(**changes: Any) -> dict[str, Any]:
    data = dict(GOOD)
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "merkle must be an object"),
        (altered(extra=1), "merkle: unknown field extra"),
        (altered(root=...), "merkle: missing field root"),
        (altered(leafIndex=True), r"merkle\.leafIndex must be an integer"),
        (altered(leafCount=7.0), r"merkle\.leafCount must be an integer"),
        (altered(leafCount=0), "leafCount must be between 1"),
        (altered(leafIndex=7), r"leafIndex must be below leafCount \(7\)"),
        (altered(leafIndex=-1), "leafIndex must be below"),
        (altered(leafCount=100), "proof must hold 7 hashes for leaf"),
        (altered(proof=GOOD["proof"][:-1]), "proof must hold"),
        (altered(proof=GOOD["proof"] + GOOD["proof"][:1]), "proof must hold"),
        (altered(proof="0x00"), r"merkle\.proof must be a list"),
        (altered(proof=GOOD["proof"] * 11), "at most 32 hashes"),
        (altered(proof=[GOOD["proof"][0][:-2], *GOOD["proof"][1:]]), r"merkle\.proof\[0\] must be 0x followed by 64"),
        (altered(proof=[1, *GOOD["proof"][1:]]), r"merkle\.proof\[0\] must be 0x"),
        (altered(root=GOOD["root"][2:]), r"merkle\.root must be 0x followed by 64 hex digits"),
        (altered(root=GOOD["root"] + "00"), r"merkle\.root must be 0x"),
        (altered(root=" " + GOOD["root"]), r"merkle\.root must be 0x"),
    ],
)
def test_inclusion_proof_json_is_strict(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        InclusionProof.from_json(data)


def test_inclusion_proof_names_where_it_sits() -> None:
    with pytest.raises(InvalidInput, match=r"anchor\.merkle\.root must be"):
        InclusionProof.from_json(altered(root="0x"), path="anchor.merkle")


def test_the_protocol_documents_the_format_with_a_vector() -> None:
    """docs/protocol.md's worked example is the three-leaf golden tree, and the code computes it from the
    example's own values."""
    markdown = (Path(__file__).parents[2] / "docs" / "protocol.md").read_text()
    match = re.search(r"<!--\s*merkle-example\s*-->\s*\n```json\n(.*?)\n```", markdown, re.S)
    assert match, "docs/protocol.md has no <!-- merkle-example --> block"
    example = json.loads(match.group(1))
    golden = TREES[3]
    assert example["root"] == golden["root"]
    assert example["tree"] == golden["tree"]
    leaves = []
    for shown, entry in zip(example["entries"], golden["entries"], strict=True):
        assert shown == {k: entry[k] for k in shown}
        leaf = merkle.leaf_hash(
            b(shown["docHash"]), shown["signer"], b(shown["metadataHash"]), keccak256(b(shown["signature"]))
        )
        assert "0x" + leaf.hex() == shown["leaf"]
        leaves.append(leaf)
    tree = MerkleTree.of(leaves)
    assert hexes(tree.nodes) == example["tree"]
    assert [hexes(tree.proof(i).proof) for i in range(3)] == [e["proof"] for e in example["entries"]]
