// Writes to stdout the golden vectors of docchain's Merkle format (tests/vectors/merkle/vectors.json), built by
// OpenZeppelin's own StandardMerkleTree so that chain/merkle.py is checked against the package, not against
// itself. Run from the repository root: `node tests/vectors/merkle/make_vectors.mjs > tests/vectors/merkle/vectors.json`.
// tests/chain/test_merkle.py reads the file without node, and one test runs this script to show it still writes
// the same file.
import { createHash } from "node:crypto";
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { getAddress, hexlify, keccak256 } from "ethers";

const LEAF_ENCODING = ["bytes32", "address", "bytes32", "bytes32"];
const COUNTS = [1, 2, 3, 7, 100];

// Fixed, reproducible inputs: SHA-256 of a label, stretched where more than 32 bytes are needed.
const sha = (label) => createHash("sha256").update(label).digest();
const hex = (bytes) => hexlify(bytes);

function entry(count, i) {
  const tag = `docchain merkle vector ${count}/${i}`;
  // a signature is 65 bytes (r, s, v) for ordinary keys; any bytes do here, only their keccak256 is in the leaf
  const signature = hex(Buffer.concat([sha(`${tag} r`), sha(`${tag} s`), Buffer.from([27 + (i % 2)])]));
  return {
    docHash: hex(sha(`${tag} document`)),
    signer: getAddress(hex(sha(`${tag} signer`).subarray(12))),
    metadataHash: i % 3 === 0 ? hex(Buffer.alloc(32)) : hex(sha(`${tag} metadata`)),
    signature,
    signatureHash: keccak256(signature),
  };
}

function multiproofIndices(count) {
  if (count === 1) return [0];
  if (count === 2) return [1, 0];
  return [0, Math.floor(count / 2), count - 1];
}

const trees = COUNTS.map((count) => {
  const entries = Array.from({ length: count }, (_, i) => entry(count, i));
  const values = entries.map((e) => [e.docHash, e.signer, e.metadataHash, e.signatureHash]);
  const tree = StandardMerkleTree.of(values, LEAF_ENCODING);
  const indices = multiproofIndices(count);
  const multi = tree.getMultiProof(indices);
  return {
    count,
    entries: entries.map((e, i) => ({ ...e, leaf: tree.leafHash(values[i]), proof: tree.getProof(i) })),
    root: tree.root,
    tree: tree.dump().tree,
    multiproof: {
      indices,
      leaves: multi.leaves.map((v) => tree.leafHash(v)),
      proof: multi.proof,
      proofFlags: multi.proofFlags,
    },
  };
});

const out = {
  description:
    "docchain Merkle anchoring vectors: OpenZeppelin StandardMerkleTree (@openzeppelin/merkle-tree) over leaves " +
    "(docHash, signer, metadataHash, signatureHash = keccak256(signature)); proofs indexed by entry order",
  generator: "tests/vectors/merkle/make_vectors.mjs",
  leafEncoding: LEAF_ENCODING,
  trees,
};
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
