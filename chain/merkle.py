"""Merkle anchoring's permanent format: the leaf of a signed registration, the tree over many leaves and the
inclusion proof a receipt carries.

Byte-compatible with OpenZeppelin's ``StandardMerkleTree`` (``@openzeppelin/merkle-tree``) built with the leaf
encoding ``["bytes32", "address", "bytes32", "bytes32"]``, so that its ``MerkleProof.verify`` and
``multiProofVerify`` accept the proofs on chain:

- leaf = ``keccak256(keccak256(abi.encode(docHash, signer, metadataHash, keccak256(signature))))``. The double
  hash makes a leaf's outer preimage 32 bytes long and an inner node's 64, so no leaf can be taken for an inner
  node (nor an inner node passed off as a leaf);
- inner node = ``keccak256`` of its two children in ascending byte order, so a proof needs no left/right flags;
- the tree is the one ``StandardMerkleTree.of`` builds: leaves sorted by hash, laid out as a complete binary tree
  in an array (root at 0, children of ``i`` at ``2i+1`` and ``2i+2``, the smallest leaf last).

docs/protocol.md ("Merkle anchoring: leaves, trees and proofs") states the same rules with vectors, and
tests/vectors/merkle/ holds trees that the npm package built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from docchain.chain.errors import InvalidInput
from docchain.chain.hashing import keccak256
from docchain.chain.typed_data import Registration
from docchain.chain.values import to_hex

LEAF_ENCODING = ("bytes32", "address", "bytes32", "bytes32")
"""The ``leafEncoding`` a ``StandardMerkleTree`` of docchain leaves is built with."""

MAX_LEAVES = 1 << 32
"""Bounds a proof at 32 hashes, and so the size of a receipt that carries one."""

JSON_KEYS = ("root", "leafIndex", "leafCount", "proof")
_HASH32 = re.compile(r"0x[0-9a-fA-F]{64}")


def leaf_hash(doc_hash: bytes, signer: str, metadata_hash: bytes, signature_hash: bytes) -> bytes:
    """The leaf of the four values the tree commits to; ``signer`` is a 0x-prefixed address."""
    if not len(doc_hash) == len(metadata_hash) == len(signature_hash) == 32:
        raise InvalidInput("a Merkle leaf's docHash, metadataHash and signatureHash must be 32 bytes each")
    try:
        # fromhex skips spaces between bytes: the length of the text is checked too
        address = bytes.fromhex(signer[2:]) if len(signer) == 42 and signer[:2] == "0x" else b""
    except ValueError:
        address = b""
    if len(address) != 20:
        raise InvalidInput(f"a Merkle leaf's signer must be a 20-byte address, got {signer!r:.50}")
    # abi.encode of four static values: four 32-byte words, the address left-padded with zeros
    encoded = doc_hash + bytes(12) + address + metadata_hash + signature_hash
    return keccak256(keccak256(encoded))


def leaf(registration: Registration, signature: bytes) -> bytes:
    """The leaf of a signed registration. ``supersedes`` and ``deadline`` are not in it: the signature covers
    them, and whoever checks the signature against the leaf's ``signatureHash`` must be given them."""
    return leaf_hash(registration.doc_hash, registration.signer, registration.metadata_hash, keccak256(signature))


def node_hash(a: bytes, b: bytes) -> bytes:
    """An inner node: OpenZeppelin's commutative ``Hashes.commutativeKeccak256``."""
    return keccak256(a + b if a <= b else b + a)


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``leaf`` and ``proof`` lead to (``MerkleProof.processProof``)."""
    computed = leaf
    for sibling in proof:
        computed = keccak256(computed + sibling if computed <= sibling else sibling + computed)
    return computed


def verify(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """``MerkleProof.verify``: whether ``proof`` shows ``leaf`` to be in the tree whose root is ``root``."""
    return len(leaf) == 32 and all(len(p) == 32 for p in proof) and process_proof(leaf, proof) == root


@dataclass(frozen=True)
class MultiProof:
    """Several leaves proven at once, as ``getMultiProof`` gives them and ``MerkleProof.multiProofVerify``
    takes them: ``leaves`` in the order the verifier consumes them, ``flags[k]`` true where step ``k`` hashes
    two already known nodes rather than one with the next of ``proof``."""

    leaves: tuple[bytes, ...]
    proof: tuple[bytes, ...]
    flags: tuple[bool, ...]


def process_multiproof(multiproof: MultiProof) -> bytes | None:
    """The root a multiproof leads to (``MerkleProof.processMultiProof``), or None for a malformed one."""
    leaves, proof, flags = multiproof.leaves, multiproof.proof, multiproof.flags
    if len(leaves) + len(proof) != len(flags) + 1 or len(proof) < flags.count(False):
        return None
    # A queue as in the contract: node k of the walk is leaves[k] first, then the hashes made along the way.
    queue = list(leaves)
    taken = used = 0
    for flag in flags:
        if taken + (2 if flag else 1) > len(queue):
            return None  # it would hash a node before making it: no tree gives such a multiproof
        a = queue[taken]
        if flag:
            b = queue[taken + 1]
            taken += 2
        else:
            b = proof[used]
            used += 1
            taken += 1
        queue.append(node_hash(a, b))
    if flags:
        # MerkleProof also refuses a multiproof that leaves part of its proof unused
        return queue[-1] if used == len(proof) else None
    return leaves[0] if leaves else proof[0]


def verify_multiproof(root: bytes, multiproof: MultiProof) -> bool:
    """``MerkleProof.multiProofVerify``."""
    return process_multiproof(multiproof) == root


def _proof_length(index: int, count: int) -> int:
    """How many hashes prove the leaf of sorted position ``index`` among ``count``: its depth in the tree."""
    return (2 * count - 1 - index).bit_length() - 1


@dataclass(frozen=True)
class InclusionProof:
    """What a receipt carries to show its registration's leaf is under an anchored root.

    ``index`` is the leaf's position among the tree's leaves sorted by hash (OpenZeppelin's tree array holds it
    at ``2 * count - 2 - index``); with ``count`` it fixes how many hashes ``proof`` must hold. Verification needs
    neither (the hashing is commutative); they tell which tree and which place the proof claims, and bound it.
    """

    index: int
    count: int
    proof: tuple[bytes, ...]
    root: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_LEAVES:
            raise InvalidInput(f"leafCount must be between 1 and {MAX_LEAVES}, got {self.count}")
        if not 0 <= self.index < self.count:
            raise InvalidInput(f"leafIndex must be below leafCount ({self.count}), got {self.index}")
        expected = _proof_length(self.index, self.count)
        if len(self.proof) != expected:
            raise InvalidInput(
                f"proof must hold {expected} hashes for leaf {self.index} of {self.count}, got {len(self.proof)}"
            )
        if len(self.root) != 32 or any(len(p) != 32 for p in self.proof):
            raise InvalidInput("root and proof hashes must be 32 bytes each")

    def verifies(self, leaf: bytes) -> bool:
        """Whether ``leaf`` (computed by the verifier from the registration and signature) is under ``root``."""
        return verify(self.root, leaf, self.proof)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": to_hex(self.root),
            "leafIndex": self.index,
            "leafCount": self.count,
            "proof": [to_hex(p) for p in self.proof],
        }

    @classmethod
    def from_json(cls, data: Any, path: str = "merkle") -> InclusionProof:
        """Read the object :meth:`to_json` writes; anything else (a missing or unknown key, a bool or float for
        an integer, a hash of another length, a proof of the wrong length) is :class:`InvalidInput` naming the
        field at ``path``."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{path} must be an object")
        unknown = sorted(str(k) for k in data if k not in JSON_KEYS)
        if unknown:
            raise InvalidInput(f"{path}: unknown field {unknown[0]}")
        missing = [k for k in JSON_KEYS if k not in data]
        if missing:
            raise InvalidInput(f"{path}: missing field {missing[0]}")
        index, count, proof = data["leafIndex"], data["leafCount"], data["proof"]
        for name, value in (("leafIndex", index), ("leafCount", count)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"{path}.{name} must be an integer")
        if not isinstance(proof, list) or len(proof) > 32:
            raise InvalidInput(f"{path}.proof must be a list of at most 32 hashes")
        try:
            return cls(
                index=index,
                count=count,
                proof=tuple(_hash(h, f"{path}.proof[{k}]") for k, h in enumerate(proof)),
                root=_hash(data["root"], f"{path}.root"),
            )
        except InvalidInput as exc:
            message = str(exc)
            raise InvalidInput(message if message.startswith(path) else f"{path}: {message}") from None


def _hash(value: Any, what: str) -> bytes:
    # exactly the form to_json writes, as receipts' hashes are read: no bare hex, no whitespace
    if not isinstance(value, str) or not _HASH32.fullmatch(value):
        raise InvalidInput(f"{what} must be 0x followed by 64 hex digits")
    return bytes.fromhex(value[2:])


class MerkleTree:
    """A ``StandardMerkleTree`` over leaf hashes (see :func:`leaf`), given in any order.

    ``proof(i)`` and ``multiproof`` number leaves in the order given to :meth:`of`, as OpenZeppelin's value
    indices do. A leaf given twice is refused: it would have two places and two proofs, and a registration is
    anchored once.
    """

    __slots__ = ("_nodes", "_position", "_tree_index")

    def __init__(self, nodes: list[bytes], tree_index: list[int]) -> None:
        self._nodes = nodes
        self._tree_index = tree_index
        self._position = {nodes[t]: i for i, t in enumerate(tree_index)}

    @classmethod
    def of(cls, leaves: Sequence[bytes]) -> MerkleTree:
        if not leaves:
            raise InvalidInput("a Merkle tree needs at least one leaf")
        if len(leaves) > MAX_LEAVES:
            raise InvalidInput(f"a Merkle tree holds at most {MAX_LEAVES} leaves")
        if any(len(h) != 32 for h in leaves):
            raise InvalidInput("Merkle leaves must be 32 bytes each")
        order = sorted(range(len(leaves)), key=leaves.__getitem__)
        if any(leaves[a] == leaves[b] for a, b in zip(order, order[1:], strict=False)):
            raise InvalidInput("a Merkle tree cannot hold the same leaf twice")
        size = 2 * len(leaves) - 1
        nodes: list[bytes] = [b""] * size
        tree_index = [0] * len(leaves)
        for rank, value_index in enumerate(order):
            nodes[size - 1 - rank] = leaves[value_index]
            tree_index[value_index] = size - 1 - rank
        for i in range(size - 1 - len(leaves), -1, -1):
            a, b = nodes[2 * i + 1], nodes[2 * i + 2]
            nodes[i] = keccak256(a + b if a <= b else b + a)
        return cls(nodes, tree_index)

    @property
    def root(self) -> bytes:
        return self._nodes[0]

    def __len__(self) -> int:
        return len(self._tree_index)

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The whole array, as ``StandardMerkleTree.dump().tree`` lists it."""
        return tuple(self._nodes)

    def leaf_at(self, i: int) -> bytes:
        return self._nodes[self._tree_index[i]]

    def index_of(self, leaf: bytes) -> int:
        """The position in :meth:`of`'s input of ``leaf``; :class:`InvalidInput` if the tree does not hold it."""
        try:
            return self._position[leaf]
        except KeyError:
            raise InvalidInput(f"leaf {to_hex(leaf)} is not in this tree") from None

    def proof(self, i: int) -> InclusionProof:
        """The inclusion proof of the ``i``-th leaf given to :meth:`of` (``getProof(i)``)."""
        if not 0 <= i < len(self):
            raise InvalidInput(f"leaf index {i} is out of range for a tree of {len(self)} leaves")
        t = self._tree_index[i]
        hashes: list[bytes] = []
        while t > 0:
            hashes.append(self._nodes[t + 1 if t % 2 else t - 1])
            t = (t - 1) // 2
        return InclusionProof(len(self._nodes) - 1 - self._tree_index[i], len(self), tuple(hashes), self.root)

    def proof_for(self, leaf: bytes) -> InclusionProof:
        return self.proof(self.index_of(leaf))

    def multiproof(self, indices: Sequence[int]) -> MultiProof:
        """One proof of several leaves given to :meth:`of` (``getMultiProof``)."""
        if any(not 0 <= i < len(self) for i in indices):
            raise InvalidInput(f"a leaf index is out of range for a tree of {len(self)} leaves")
        if len(set(indices)) != len(indices):
            raise InvalidInput("a multiproof cannot prove the same leaf twice")
        stack = sorted((self._tree_index[i] for i in indices), reverse=True)
        leaves = tuple(self._nodes[t] for t in stack)
        proof: list[bytes] = []
        flags: list[bool] = []
        head = 0  # stack[head:] is the queue still to walk, deepest node first
        while head < len(stack) and stack[head] > 0:
            j = stack[head]
            head += 1
            sibling = j + 1 if j % 2 else j - 1
            if head < len(stack) and stack[head] == sibling:
                flags.append(True)
                head += 1
            else:
                flags.append(False)
                proof.append(self._nodes[sibling])
            stack.append((j - 1) // 2)
        if not indices:
            proof.append(self.root)
        return MultiProof(leaves, tuple(proof), tuple(flags))
