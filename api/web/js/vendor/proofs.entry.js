// The entry of the page's proof libraries (api/web/js/vendor/proofs.js is esbuild's bundle of it): the
// Merkle-Patricia trie and RLP of ethereumjs, and noble's secp256k1 for ECDSA recovery, all pinned in
// package.json.
export { Trie } from "@ethereumjs/trie";
export { RLP } from "@ethereumjs/rlp";
export { secp256k1 } from "@noble/curves/secp256k1";
