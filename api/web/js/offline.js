// Offline verification of an evidence bundle in the browser: chain/offline.py's verify_offline in JavaScript,
// step for step and word for word (docs/protocol.md, "Verifying a bundle offline"). It reads nothing but the
// receipt parseReceipt returned, the file's SHA-256 and an optional trusted block hash: no call to the docchain
// API, and none to a node but blockHashAt(), which the person asks for with an RPC URL of their choice.
//
// The verdict has the shape of chain/verify.py's Verdict.to_json(), which the page already shows for an online
// verdict. No DOM here, so the tests run it in Chromium and in node alike.
//
// The trie walk and RLP are ethereumjs's and the ECDSA recovery noble's (vendor/proofs.js); keccak256 is the
// page's own keccak.js, given to the trie too, so that one Keccak hashes everything this verifier hashes. Where
// a reason quotes a library's own error (a malformed RLP node), the words after the colon are that library's,
// not pyrlp's: only such a tail can differ from Python's.

import { RLP, Trie, secp256k1 } from "./vendor/proofs.js";
import { keccak256, toChecksumAddress } from "./keccak.js";
import { RELEASES, MERKLE_RELEASE } from "./releases.js";

const TITLES = {
  valid: "Valid", revoked: "Revoked", not_registered: "Not registered", other_signers: "Signed by others",
  file_mismatch: "File mismatch", invalid: "Invalid",
};
const WALLET = " (a contract wallet's ERC-1271 signature is checked by its code, which needs a node: verify online)";
// secp256k1's group order: a signature with s above half of it is refused, as OpenZeppelin's ECDSA refuses it
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
// DocumentRegistry's mappings in solc's storage layout (chain/evidence.py's RECORDS_SLOT and ANCHORS_SLOT)
const RECORDS_SLOT = 3n;
const ANCHORS_SLOT = 4n;
// header fields in RLP order (chain/evidence.py's table): a quantity has no size, extraData any size
const BASE_FIELDS = [
  ["parentHash", 32], ["sha3Uncles", 32], ["miner", 20], ["stateRoot", 32], ["transactionsRoot", 32],
  ["receiptsRoot", 32], ["logsBloom", 256], ["difficulty", null], ["number", null], ["gasLimit", null],
  ["gasUsed", null], ["timestamp", null], ["extraData", -1], ["mixHash", 32], ["nonce", 8],
];
const FORK_FIELDS = [
  ["frontier", []],
  ["london", [["baseFeePerGas", null]]],
  ["shanghai", [["withdrawalsRoot", 32]]],
  ["cancun", [["blobGasUsed", null], ["excessBlobGas", null], ["parentBeaconBlockRoot", 32]]],
  ["prague", [["requestsHash", 32]]],
];
const LAYOUTS = (() => {
  let fields = BASE_FIELDS;
  return FORK_FIELDS.map(([fork, added]) => { fields = [...fields, ...added]; return [fork, fields]; });
})();

const DOMAIN_TYPEHASH = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
const REGISTRATION_TYPEHASH = keccak256("Registration(bytes32 docHash,address signer,bytes32 metadataHash,bytes32 supersedes,uint256 deadline)");

// ------------------------------------------------------------------------------------------------ bytes

export const toHex = bytes => "0x" + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");
const NIBBLE = Object.fromEntries([..."0123456789abcdef"].map((c, i) => [c, i]).concat([..."ABCDEF"].map((c, i) => [c, 10 + i])));
/** 0x-hex (the receipt's reader has checked its digits) as bytes. */
export const fromHex = hex => {
  const out = new Uint8Array((hex.length - 2) / 2);
  for (let i = 0, j = 2; i < out.length; i++, j += 2) out[i] = (NIBBLE[hex[j]] << 4) | NIBBLE[hex[j + 1]];
  return out;
};
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const word = n => fromHex("0x" + BigInt(n).toString(16).padStart(64, "0"));
const addressWord = address => concat(new Uint8Array(12), fromHex(address));
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const bigOf = bytes => bytes.length ? BigInt(toHex(bytes)) : 0n;
const compare = (a, b) => { for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; };

/** A block timestamp as people read it: chain/values.py's utc_text, `2026-11-23 18:37:34 UTC`. */
export function utcText(timestamp) {
  return new Date(timestamp * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

// ------------------------------------------------------------------------------------------------ the verdict

/** A verification under way: chain/verify.py's Checks. */
class Run {
  constructor(receipt, nodes = []) {
    this.receipt = receipt;
    this.nodes = nodes;  // the nodes' answers for the bundle's block, when they are what the verifier trusts
    this.steps = [];
    this.trust = null;
    this.asOfBlock = null;
    this.anchor = null;
    this.revocation = null;
  }

  ok(name, detail) { this.steps.push({ name, ok: true, detail }); }

  fail(name, reason, outcome = "invalid") {
    this.steps.push({ name, ok: false, detail: reason });
    return new Stop(outcome, name, reason);
  }

  verdict(stop = null) {
    const outcome = stop ? stop.outcome : "valid";
    const verdict = {
      outcome, title: TITLES[outcome], summary: null, docHash: this.receipt.document.sha256,
      signer: this.receipt.signer, failedStep: stop ? stop.step : null, reason: stop ? stop.reason : null,
      steps: this.steps, trust: this.trust, anchor: this.anchor, revocation: this.revocation, otherSigners: [],
      superseded_by: [],  // newer versions are found by searching the chain's logs, which a bundle does not carry
    };
    if (this.asOfBlock !== null) verdict.asOfBlock = this.asOfBlock;
    verdict.summary = summary(verdict);
    return verdict;
  }
}

class Stop extends Error {
  constructor(outcome, step, reason) { super(reason); this.outcome = outcome; this.step = step; this.reason = reason; }
}

/** chain/verify.py's Verdict.summary: the one sentence every interface says. */
function summary(v) {
  const a = v.anchor, who = v.signer;
  if (v.outcome === "valid" && a) {
    const tx = a.transactionHash !== null ? `, transaction ${a.transactionHash}` : "";
    const signed = `Signed by ${who} on ${utcText(a.timestamp)} (block ${a.blockNumber}${tx}, chain ${a.chainId}, registry ${a.registry})`;
    if (v.asOfBlock === undefined) return `${signed}.`;
    return `${signed}, valid as of block ${v.asOfBlock}: a revocation after that block is not in the bundle.`;
  }
  if (v.outcome === "revoked" && v.revocation) {
    const r = v.revocation;
    const where = r.blockNumber !== null ? `in block ${r.blockNumber}` : "on chain";
    return `${who} revoked this signature ${where} on ${utcText(r.timestamp)}.`;
  }
  if (v.outcome === "not_registered") {
    const registry = v.trust ? v.trust.registry : "the registry";
    return `No signature of this file${who ? ` by ${who}` : ""} is recorded on chain in ${registry}.`;
  }
  return `Verification failed at step ${v.failedStep}: ${v.reason}`;
}

/** A step of the evidence (header, account or storage) that does not prove what it should:
 *  chain/evidence.py's EvidenceError. */
class EvidenceError extends Error {}

/** A signature that is not an ECDSA signature of anyone: chain/typed_data.py's InvalidInput. */
class SignatureError extends Error {}

// ------------------------------------------------------------------------------------------------ the steps

/**
 * Verify `receipt`'s evidence bundle with no I/O: `fileHash` is the file's SHA-256 as 0x-hex (null: the
 * receipt's document is taken as the file), `trustedBlockHash` the 0x-hex hash of a block the verifier knows
 * to be canonical (null: the verdict names the block hash to check). `nodes`: instead of a trusted hash, what
 * the nodes the person asked answer for the bundle's block, each {rpc, blockNumber, blockHash} (null: no such
 * block) as blockHashAt() gives it; the hash they all give is the trusted one (chain/offline.py's NodeAnswer).
 */
export async function verifyOffline(fileHash, receipt, trustedBlockHash = null, { nodes = [] } = {}) {
  if (nodes.length && trustedBlockHash !== null) throw new Error("a trusted block hash or the nodes' answers, not both");
  const run = new Run(receipt, nodes);
  try {
    await steps(run, fileHash && fileHash.toLowerCase(), trustedBlockHash && trustedBlockHash.toLowerCase());
  } catch (err) {
    if (err instanceof Stop) return run.verdict(err);
    throw err;
  }
  return run.verdict();
}

async function steps(run, fileHash, trusted) {
  const { receipt } = run;
  const doc = receipt.document.sha256;
  if (fileHash && fileHash !== doc) {
    throw run.fail("file", `the file's SHA-256 is ${fileHash}, the receipt is for ${doc}`, "file_mismatch");
  }
  run.ok("file", fileHash ? `the file matches the receipt (SHA-256 ${doc})` : `document SHA-256 is ${doc}`);
  if (receipt.private) commitment(run);
  const { evidence } = receipt;
  if (!evidence) throw run.fail("receipt", "the receipt carries no evidence bundle yet: the service adds one once the record has its confirmations (docchain receipt FILE --force fetches it), docchain receipt upgrade adds one from a node; or verify online");
  signature(run);
  const header = anchorStep(run, evidence);
  const storageRoot = await registryStep(run, evidence, header);
  const record = await recordStep(run, evidence, header, storageRoot);
  const depth = header.number - record.blockNumber + 1;
  run.ok("confirmations", `block ${header.number} is ${depth} block${depth === 1 ? "" : "s"} deep from block ${record.blockNumber} (counting both)`);
  // before revocation: a revocation is said only of a block the verifier trusts
  chainStep(run, header, trusted);
  // the bundle says nothing of the blocks after its own: a revocation there is unseen, and the verdict says so
  run.asOfBlock = header.number;
  if (record.revokedAt) {
    run.revocation = { by: receipt.signer, blockNumber: null, timestamp: record.revokedAt };
    throw run.fail("revocation", `revoked by ${receipt.signer} at ${utcText(record.revokedAt)}, as of block ${header.number}`, "revoked");
  }
  run.ok("revocation", `not revoked as of block ${header.number}`);
}

/** A private registration signs keccak256(sha256(file) ‖ salt) as its docHash: the receipt's salt must open it
 *  (chain/verify.py's check_commitment). */
function commitment(run) {
  const { receipt } = run, signed = receipt.eip712.message.docHash;
  const opened = toHex(keccak256(concat(fromHex(receipt.document.sha256), fromHex(receipt.private.salt))));
  if (opened !== signed) {
    throw run.fail("commitment", `keccak256(sha256 || salt) is ${opened}, not the signed docHash ${signed}: the receipt's salt does not open this registration's commitment`);
  }
  run.ok("commitment", `keccak256(sha256 || salt) is the signed docHash ${signed} (a private registration: the chain holds this commitment, not the file's SHA-256)`);
}

/** EIP-712's domain separator of a receipt's domain (chain/typed_data.py's Domain.separator). */
function separator(domain) {
  return keccak256(concat(DOMAIN_TYPEHASH, keccak256(domain.name), keccak256(domain.version), word(domain.chainId),
                          addressWord(domain.verifyingContract)));
}

/** What the signer signed: keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(registration)). */
function digest(receipt) {
  const m = receipt.eip712.message;
  const struct = keccak256(concat(REGISTRATION_TYPEHASH, fromHex(m.docHash), addressWord(m.signer),
                                  fromHex(m.metadataHash), fromHex(m.supersedes), word(m.deadline)));
  return keccak256(concat(Uint8Array.of(0x19, 0x01), separator(receipt.eip712.domain), struct));
}

/** The address whose key made `sig` over `hash` (chain/typed_data.py's recover_digest, the same refusals). */
function recoverDigest(hash, sig) {
  if (sig.length !== 65) throw new SignatureError(`an ECDSA signature is 65 bytes, got ${sig.length}`);
  const v = sig[64], s = bigOf(sig.subarray(32, 64));
  if ((v !== 27 && v !== 28) || !(s > 0n && s <= N / 2n)) {
    throw new SignatureError("signature is not in canonical form (v must be 27/28, s in the lower half)");
  }
  let point;
  try {
    point = secp256k1.Signature.fromCompact(sig.subarray(0, 64)).addRecoveryBit(v - 27).recoverPublicKey(hash);
  } catch {
    throw new SignatureError("signature does not recover to any key");
  }
  return toChecksumAddress(toHex(keccak256(point.toRawBytes(false).subarray(1)).subarray(12)));
}

function signature(run) {
  const { receipt } = run;
  let recovered;
  try {
    recovered = recoverDigest(digest(receipt), fromHex(receipt.signature));
  } catch (err) {
    if (!(err instanceof SignatureError)) throw err;
    throw run.fail("signature", `not an ECDSA signature of ${receipt.signer}: ${err.message}${WALLET}`);
  }
  if (recovered !== receipt.signer) {
    throw run.fail("signature", `the signature recovers ${recovered}, not the signer ${receipt.signer}${WALLET}`);
  }
  run.ok("signature", `EIP-712 signature recovers ${receipt.signer} (ECDSA, low s)`);
}

// ---- anchor: the header

function anchorStep(run, evidence) {
  const { block } = evidence;
  const actual = toHex(keccak256(fromHex(block.header)));
  if (actual !== block.hash) throw run.fail("anchor", `keccak256 of the header is ${actual}, not the block hash ${block.hash}`);
  let header;
  try {
    header = decodeHeader(fromHex(block.header));
  } catch (err) {
    if (!(err instanceof EvidenceError)) throw err;
    throw run.fail("anchor", `the header: ${err.message}`);
  }
  // a quantity of the header is a BigInt; the bundle's block number is below 2^53 (the receipt's reader)
  if (header.number !== BigInt(block.number)) throw run.fail("anchor", `the header is block ${header.number}'s, not block ${block.number}'s`);
  run.ok("anchor", `the ${header.fork} header hashes to block ${block.number}'s hash ${block.hash}`);
  return { ...header, number: block.number, hash: block.hash };
}

/** The fields of a header's RLP that the verifier needs, once it is a header of one fork (chain/evidence.py's
 *  decode_header: 15, 16, 17, 20 or 21 byte strings, each of its field's length, integers without leading
 *  zeros, nothing after the list). */
function decodeHeader(data) {
  let items;
  try {
    items = RLP.decode(data);
  } catch (err) {
    throw new EvidenceError(`not an RLP encoding: ${err.message}`);
  }
  if (!Array.isArray(items) || !items.every(item => item instanceof Uint8Array)) {
    throw new EvidenceError("not an RLP list of byte strings");
  }
  const layout = LAYOUTS.find(([, fields]) => fields.length === items.length);
  if (!layout) {
    const lengths = LAYOUTS.map(([fork, fields]) => `${fields.length} (${fork})`).join(", ");
    throw new EvidenceError(`a header has ${lengths} fields, not ${items.length}`);
  }
  const [fork, fields] = layout;
  // a field that is not of its form is refused in pyrlp's words, which chain/evidence.py quotes
  const values = {};
  fields.forEach(([key, size], i) => {
    const item = items[i];
    if (size === null) {
      if (item.length && item[0] === 0) throw new EvidenceError(`${key}: Invalid serialization (not minimal length)`);
      values[key] = bigOf(item);
    } else {
      if (size !== -1 && item.length !== size) throw new EvidenceError(`${key}: <class 'bytes'> has invalid length`);
      values[key] = item;
    }
  });
  return { fork, number: values.number, stateRoot: values.stateRoot };
}

// ---- registry: released code under the account proof

/** The release whose code `code` is, immutables aside (chain/trust.py's release_of). */
function releaseOf(code) {
  return RELEASES.find(release => {
    if (code.length !== release.codeLength) return false;
    const masked = Uint8Array.from(code);
    for (const [start, length] of release.immutables) masked.fill(0, start, start + length);
    return toHex(keccak256(masked)) === release.maskedCodeHash;
  }) || null;
}

async function registryStep(run, evidence, header) {
  const { receipt } = run, registry = receipt.eip712.domain.verifyingContract;
  const { account } = evidence;
  if (account.address !== registry) throw run.fail("registry", `the account proof is of ${account.address}, not the registry ${registry}`);
  const code = fromHex(account.code);
  const release = releaseOf(code);
  if (!release) throw run.fail("registry", "the bundle's code is not a released docchain registry's");
  if (receipt.anchor.merkle && release.number < MERKLE_RELEASE) throw run.fail("registry", `${release.name} anchors no Merkle roots`);
  // The immutables of a registry hold its own EIP-712 domain separator (OpenZeppelin's EIP712 caches it at
  // deployment): released code built for another chain or address is not this receipt's registry.
  const domain = separator(receipt.eip712.domain);
  if (!release.immutables.some(([start, length]) => equal(code.subarray(start, start + length), domain))) {
    throw run.fail("registry", `the code's cached EIP-712 domain is not the receipt's (${registry})`);
  }
  let proven;
  try {
    proven = await verifyAccountProof(header.stateRoot, registry, account.proof);
  } catch (err) {
    if (!(err instanceof EvidenceError)) throw err;
    throw run.fail("registry", `the account proof: ${err.message}`);
  }
  if (!proven) throw run.fail("registry", `the account proof shows no account at ${registry} in block ${header.number}`);
  const codeHash = toHex(keccak256(code));
  if (proven.codeHash !== codeHash) {
    throw run.fail("registry", `the account's codeHash is ${proven.codeHash}, not keccak256 of the bundle's code ${codeHash}`);
  }
  run.trust = { registry, sources: ["released code"], detail: `${release.name}, proven at ${registry} in block ${header.number} by its account proof` };
  run.ok("registry", `${registry} runs ${release.name} (account proof under block ${header.number}'s stateRoot)`);
  return proven.storageRoot;
}

/** The account at `address` under `stateRoot`, or null where the proof shows none. */
async function verifyAccountProof(stateRoot, address, proof) {
  const value = await provenValue(stateRoot, keccak256(fromHex(address)), proof);
  if (!value.length) return null;
  let fields;
  try {
    fields = RLP.decode(value);
  } catch (err) {
    throw new EvidenceError(`the proven value is not RLP([nonce, balance, storageRoot, codeHash]): ${err.message}`);
  }
  const [nonce, balance, storageRoot, codeHash] = Array.isArray(fields) ? fields : [];
  const quantity = q => q instanceof Uint8Array && !(q.length && q[0] === 0);
  if (fields.length !== 4 || !quantity(nonce) || !quantity(balance) || !(storageRoot instanceof Uint8Array)
      || storageRoot.length !== 32 || !(codeHash instanceof Uint8Array) || codeHash.length !== 32) {
    throw new EvidenceError("the proven value is not RLP([nonce, balance, storageRoot, codeHash])");
  }
  return { storageRoot: fromHex(toHex(storageRoot)), codeHash: toHex(codeHash) };
}

/** The 32-byte word in `slot` under `storageRoot`; an absent slot holds zero. */
async function verifyStorageProof(storageRoot, slot, proof) {
  const value = await provenValue(storageRoot, keccak256(fromHex(slot)), proof);
  if (!value.length) return 0n;
  let item;
  try {
    item = RLP.decode(value);
  } catch (err) {
    throw new EvidenceError(`the proven value is not an RLP integer: ${err.message}`);
  }
  if (!(item instanceof Uint8Array)) throw new EvidenceError("the proven value is not an RLP integer: a list");
  if (item.length && item[0] === 0) throw new EvidenceError("the proven value is not an RLP integer: Invalid serialization (not minimal length)");
  if (item.length > 32) throw new EvidenceError(`the proven value ${toHex(value)} is longer than a word`);
  return bigOf(item);
}

/** A proof's nodes by their keccak256, as the trie reads them: the one it asked for last and did not find is
 *  where the proof's chain of hashes breaks. */
class ProofNodes {
  constructor() { this.nodes = new Map(); this.missing = null; }
  async get(key) {
    const value = this.nodes.get(key);
    if (value === undefined) this.missing = key;
    return value;
  }
  async put(key, value) { this.nodes.set(key, value); }
  async del(key) { this.nodes.delete(key); }
  async batch(ops) { for (const op of ops) await (op.type === "put" ? this.put(op.key, op.value) : this.del(op.key)); }
  shallowCopy() { return this; }
  open() { return Promise.resolve(); }
}

/** Whether a decoded node is a trie node: a branch (17 items), an extension or a leaf (2), or blank
 *  (trie's validate_is_node, which chain/evidence.py runs on every node given, reachable or not). */
function isNode(node) {
  if (node instanceof Uint8Array) return node.length === 0;
  if (!Array.isArray(node)) return false;
  if (node.length === 2) return node[0] instanceof Uint8Array && (Array.isArray(node[1]) ? isNode(node[1]) : true);
  if (node.length !== 17 || !(node[16] instanceof Uint8Array)) return false;
  return node.slice(0, 16).every(sub => (sub instanceof Uint8Array ? sub.length === 0 || sub.length === 32 : isNode(sub)));
}

/** The value under `key` in the trie whose root is `root`, as `proof` (hex RLP nodes, root first) proves it;
 *  empty where the proof shows the key absent. */
async function provenValue(root, key, proof) {
  const encoded = [];
  proof.forEach((hex, index) => {
    encoded.push(fromHex(hex));
    let node;
    try {
      node = RLP.decode(encoded[index]);
    } catch (err) {
      throw new EvidenceError(`proof node ${index} is not RLP: ${err.message}`);
    }
    if (!isNode(node)) throw new EvidenceError(`proof node ${index} is not a trie node (branch, extension or leaf)`);
  });
  const db = new ProofNodes();
  const trie = new Trie({ root, db, useKeyHashingFunction: keccak256 });
  try {
    await trie.updateFromProof(encoded);
    const value = await trie.get(key, true);
    return value || new Uint8Array(0);
  } catch (err) {
    if (db.missing !== null) throw new EvidenceError(missingNode(root, fromHex("0x" + db.missing), encoded));
    throw new EvidenceError(`the proof is not a trie path: ${err.message}`);
  }
}

/** Which node of a proof breaks the chain of hashes to `missing` (chain/evidence.py's _missing_node). */
function missingNode(root, missing, encoded) {
  if (equal(missing, root)) {
    if (!encoded.length) return `the proof is empty, but the root ${toHex(root)} is not the empty trie's`;
    return `proof node 0 hashes to ${toHex(keccak256(encoded[0]))}, not to the root ${toHex(root)}`;
  }
  const parent = encoded.findIndex(node => contains(node, missing));
  if (parent === -1 || parent + 1 >= encoded.length) return `the proof ends before node ${toHex(missing)} on the key's path`;
  const child = parent + 1;
  return `proof node ${child} hashes to ${toHex(keccak256(encoded[child]))}, not to ${toHex(missing)} which node ${parent} names on the key's path`;
}

function contains(haystack, needle) {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

// ---- record: the storage proofs

/** The registry slots the evidence of `receipt` proves, in order (chain/offline.py's proven_slots). */
export function provenSlots(receipt) {
  const m = receipt.eip712.message;
  const outer = keccak256(concat(fromHex(m.docHash), word(RECORDS_SLOT)));
  const record = toHex(keccak256(concat(addressWord(m.signer), outer)));
  const merkle = receipt.anchor.merkle;
  return merkle ? [toHex(keccak256(concat(fromHex(merkle.root), word(ANCHORS_SLOT)))), record] : [record];
}

/** The uint48 fields packed in a storage word from its low-order end (chain/evidence.py's _uint48s). */
function uint48s(value, count, what) {
  if (value >> BigInt(48 * count)) {
    throw new EvidenceError(`${toHex(word(value))} is not a packed ${what}: bits above ${48 * count} are set`);
  }
  return Array.from({ length: count }, (_, i) => Number((value >> BigInt(48 * i)) & 0xffffffffffffn));
}

/** The leaf of the registration (chain/merkle.py's leaf) and whether the inclusion proof leads to the root. */
function leafUnderRoot(receipt) {
  const m = receipt.eip712.message, merkle = receipt.anchor.merkle;
  const encoded = concat(fromHex(m.docHash), addressWord(m.signer), fromHex(m.metadataHash), keccak256(fromHex(receipt.signature)));
  let computed = keccak256(keccak256(encoded));
  for (const hex of merkle.proof) {
    const sibling = fromHex(hex);
    computed = keccak256(compare(computed, sibling) <= 0 ? concat(computed, sibling) : concat(sibling, computed));
  }
  return toHex(computed) === merkle.root;
}

async function recordStep(run, evidence, header, storageRoot) {
  const { receipt } = run, inclusion = receipt.anchor.merkle;
  const slots = provenSlots(receipt);
  const given = evidence.storage.map(s => s.slot);
  if (given.length !== slots.length || given.some((slot, i) => slot !== slots[i])) {
    const wanted = inclusion ? "the root's anchor slot, then the leaf's record slot" : "the record's slot";
    throw run.fail("record", `the storage proofs are of ${given.join(", ")}, not of ${wanted} (${slots.join(", ")})`);
  }
  let record;
  try {
    const words = [];
    for (const s of evidence.storage) words.push(await verifyStorageProof(storageRoot, s.slot, s.proof));
    const [registeredAt, blockNumber, revokedAt] = uint48s(words[words.length - 1], 3, "Record");
    record = { registeredAt, blockNumber, revokedAt };
    if (inclusion) {
      // a leaf's record slot holds its revocation only; its time and block are its root's
      const [anchoredAt, anchorBlock] = uint48s(words[0], 2, "Anchor");
      record = { registeredAt: anchoredAt, blockNumber: anchorBlock, revokedAt };
    }
  } catch (err) {
    if (!(err instanceof EvidenceError)) throw err;
    throw run.fail("record", `the storage proof: ${err.message}`);
  }
  if (record.registeredAt === 0) {
    const what = inclusion ? `anchor of root ${inclusion.root}` : `record of ${receipt.signer}`;
    throw run.fail("record", `the storage proof shows no ${what} in block ${header.number}`, "not_registered");
  }
  if (inclusion && !leafUnderRoot(receipt)) throw run.fail("record", `the registration's leaf is not under root ${inclusion.root}`);
  const anchor = receipt.anchor;
  if (record.blockNumber !== anchor.blockNumber || record.registeredAt !== anchor.timestamp) {
    throw run.fail("record", `the chain holds block ${record.blockNumber} at ${record.registeredAt}, the receipt says block ${anchor.blockNumber} at ${anchor.timestamp}`);
  }
  if (record.blockNumber > header.number) throw run.fail("record", `block ${header.number} is before its own record's block ${record.blockNumber}`);
  run.anchor = {
    chainId: receipt.eip712.domain.chainId,
    registry: receipt.eip712.domain.verifyingContract,
    blockNumber: record.blockNumber,
    blockHash: null, // the bundle proves the record's block number and time, not that block's hash
    transactionHash: null, // nor which transaction wrote it
    timestamp: record.registeredAt,
    confirmations: header.number - record.blockNumber + 1,
    merkleRoot: inclusion ? inclusion.root : null,
    via: null, // a released envelopes contract the transaction was sent to: the bundle does not name the transaction
  };
  // the chain stores a root's time and block only: the leaf count is the receipt's word (the RootAnchored event,
  // which online verification reads, is not in a bundle); the leaf's index is not needed by the proof
  const place = inclusion ? ` (its leaf is under that root; leafIndex ${inclusion.leafIndex} and leafCount ${inclusion.leafCount} are the receipt's, not proven offline)` : "";
  run.ok("record", `recorded in block ${record.blockNumber} at ${utcText(record.registeredAt)}${place}`);
  return record;
}

// ---- chain: the block the verifier trusts

function chainStep(run, header, trusted) {
  const base = run.trust, chainId = run.receipt.eip712.domain.chainId;
  let said = "";
  if (run.nodes.length) {
    trusted = agreed(run, header);
    said = ` (${run.nodes.map(nodeSaid).join("; ")})`;
  }
  if (trusted === null) {
    // a bundle proves itself only down to its own header: anyone can make a consistent one on a node of their own
    throw run.fail("chain", `no trusted block hash: the bundle holds only if block ${header.number} of chain ${chainId} has hash ${header.hash}; check that hash with a source you trust (a node, a block explorer) and give it`);
  }
  if (trusted !== header.hash) throw run.fail("chain", `the bundle proves block ${header.number} ${header.hash}, not the trusted ${trusted}${said}`);
  run.trust = { registry: base.registry, sources: [...base.sources, "trusted block hash"], detail: `${base.detail}, the block you trust` };
  run.ok("chain", `block ${header.number}'s hash ${header.hash} is the one you trust`);
}

const nodeSaid = answer => `${answer.rpc} says ${answer.blockHash === null ? "no such block" : answer.blockHash}`;

/** The block hash every node asked gives for the bundle's block; nodes that disagree or lack the block leave
 *  nothing to trust, and verification fails at chain naming each answer (chain/offline.py's _agreed). */
function agreed(run, header) {
  const { nodes } = run;
  const hashes = new Set(nodes.map(answer => answer.blockHash));
  if (hashes.size > 1 || hashes.has(null)) {
    const what = hashes.size > 1 ? "the nodes disagree on" : nodes.length > 1 ? "the nodes do not hold" : "the node does not hold";
    throw run.fail("chain", `${what} block ${header.number}, which the bundle proves: ${nodes.map(nodeSaid).join("; ")}`);
  }
  return [...hashes][0];
}

// ------------------------------------------------------------------------------------------------ canonicity

/**
 * Ask the node at `rpcUrl` (the person's choice, never docchain's API) for block `number`'s hash: one
 * eth_getBlockByNumber. Resolves to the 0x-hex hash, or null when the node has no such block (an answer,
 * which verifyOffline judges); throws an Error whose message says what the node answered instead of a block.
 */
export async function blockHashAt(rpcUrl, number, { signal } = {}) {
  let response;
  try {
    response = await fetch(rpcUrl, {
      method: "POST", headers: { "content-type": "application/json" }, signal,
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_getBlockByNumber", params: ["0x" + number.toString(16), false] }),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new Error(`the node at ${rpcUrl} could not be reached`);
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok || !answer) throw new Error(`the node at ${rpcUrl} answered HTTP ${response.status}`);
  if (answer.error) throw new Error(`the node at ${rpcUrl} refused: ${answer.error.message}`);
  if (answer.result === null) return null;
  const hash = String((answer.result && answer.result.hash) || "").toLowerCase();
  if (!/^0x[0-9a-f]{64}$/.test(hash)) throw new Error(`the node at ${rpcUrl} answered no block hash for block ${number}`);
  return hash;
}
