// The receipt reader of the web page: the same rules, in the same order and with the same messages, as
// chain/receipt.py's parse_receipt (tests/vectors/receipts.json holds both to one corpus). No DOM here, so
// node runs it in the tests.
//
// JSON.parse keeps the last of two equal keys and turns 1.0 into 1, so the text is read by the small exact
// parser below: objects keep every key as written, and numbers with a fraction or an exponent stay
// non-integers whatever their value.

import { toChecksumAddress } from "./keccak.js";

export const MAX_BYTES = 64 * 1024;  // as chain/receipt.py: a receipt is ~2 KB
const MAX_DEPTH = 16;                // the deepest legitimate value (eip712.types.Registration[i]) is at level 5
const PARSE_DEPTH = 512;             // nesting the parser follows before refusing (its stack); see walk
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const UINT256 = 1n << 256n;

const TOP = ["docchainReceipt", "document", "signer", "eip712", "signature", "chainId", "contract", "anchor"];
const DOCUMENT = ["sha256", "name", "size"];
const EIP712 = ["types", "primaryType", "domain", "message"];
const DOMAIN = ["name", "version", "chainId", "verifyingContract"];
const MESSAGE = ["docHash", "signer", "metadataHash", "supersedes", "deadline"];
const ANCHOR = ["transactionHash", "blockNumber", "blockHash", "timestamp", "merkle"];
const MERKLE = ["root", "leafIndex", "leafCount", "proof"];
const MAX_LEAVES = 2 ** 32;  // chain/merkle.py's bound on a tree, which bounds a proof at MAX_PROOF hashes
const MAX_PROOF = 32;
const VERSIONS = [1, 2];
const TOP_OPTIONAL = ["storage", "evidence", "private"];
const PRIVATE = ["salt"];
const STORAGE = ["backends", "ipfs"];
const IPFS = ["cid", "sealed", "key"];
const MAX_BACKENDS = 8;
const BACKEND = /^[a-z][a-z0-9-]{0,31}$/;
const CID = /^b[a-z2-7]{58,200}$/;
const DOC_KEY = /^[A-Za-z0-9_-]{43}$/;
// An evidence bundle's section, bounded as chain/bundle.py bounds it
const EVIDENCE = ["block", "account", "storage"];
const EVIDENCE_BLOCK = ["number", "hash", "header"];
const EVIDENCE_ACCOUNT = ["address", "proof", "code"];
const EVIDENCE_STORAGE = ["slot", "proof"];
const MAX_HEADER = 2048;
const MAX_NODE = 1024;
const MAX_NODES = 64;
const MAX_CODE = 24576;
const MAX_SLOTS = 2;
const HEX_BYTES = /^0x(?:[0-9a-fA-F]{2})+$/;
const TYPES = {
  EIP712Domain: [
    { name: "name", type: "string" },
    { name: "version", type: "string" },
    { name: "chainId", type: "uint256" },
    { name: "verifyingContract", type: "address" },
  ],
  Registration: [
    { name: "docHash", type: "bytes32" },
    { name: "signer", type: "address" },
    { name: "metadataHash", type: "bytes32" },
    { name: "supersedes", type: "bytes32" },
    { name: "deadline", type: "uint256" },
  ],
};

const HASH32 = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const SIGNATURE = /^0x(?:[0-9a-fA-F]{2})+$/;
const UINT256_TEXT = /^(?:0|[1-9][0-9]{0,77}|0[xX][0-9a-fA-F]{1,64})$/;
const PLAIN_KEY = /^[A-Za-z0-9_$-]{1,64}$/;

class JsonObject { constructor(pairs) { this.pairs = pairs; } }  // every [key, value], repeats included
class JsonFraction { constructor(text) { this.text = text; } }   // a number written with . or e

const fail = message => { throw new Error(message); };

// ---- the JSON text, exactly as RFC 8259 has it ----

const WS = /[ \t\n\r]*/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

function parseJson(text) {
  let at = 0;
  const bad = what => fail(`receipt is not valid JSON: ${what} at character ${at}`);
  const skip = () => { WS.lastIndex = at; WS.exec(text); at = WS.lastIndex; };
  const token = re => { re.lastIndex = at; const m = re.exec(text); if (m) at = re.lastIndex; return m; };
  const string = () => { const m = token(STRING); return m ? JSON.parse(m[0]) : bad("unterminated or malformed string"); };

  function value(depth) {
    if (depth > PARSE_DEPTH) fail(`receipt: values nest deeper than ${MAX_DEPTH} levels`);
    skip();
    const c = text[at];
    if (c === "{") {
      at++; skip();
      const pairs = [];
      if (text[at] === "}") { at++; return new JsonObject(pairs); }
      for (;;) {
        skip();
        if (text[at] !== '"') bad("expected a key");
        const key = string();
        skip();
        if (text[at++] !== ":") { at--; bad("expected ':'"); }
        pairs.push([key, value(depth + 1)]);
        skip();
        if (text[at] === ",") { at++; continue; }
        if (text[at] === "}") { at++; return new JsonObject(pairs); }
        bad("expected ',' or '}'");
      }
    }
    if (c === "[") {
      at++; skip();
      const items = [];
      if (text[at] === "]") { at++; return items; }
      for (;;) {
        items.push(value(depth + 1));
        skip();
        if (text[at] === ",") { at++; continue; }
        if (text[at] === "]") { at++; return items; }
        bad("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, result] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, at)) { at += word.length; return result; }
    }
    const m = token(NUMBER);
    if (!m) bad("expected a value");
    if (m[1] || m[2]) return new JsonFraction(m[0]);
    // small integers as numbers, any other as BigInt: exact either way (15 digits stay below 2^53)
    return m[0].replace("-", "").length <= 15 ? Number(m[0]) : BigInt(m[0]);
  }

  const result = value(0);
  skip();
  if (at !== text.length) bad("extra data after the value");
  return result;
}

// ---- the checks, in chain/receipt.py's order ----

const show = key => PLAIN_KEY.test(key) ? key : pyJsonString([...key].slice(0, 40).join(""));

/** A string as Python's json.dumps writes it (ASCII only), so that both readers name a key alike. */
function pyJsonString(s) {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, c => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

const SHOWN = 40;  // as chain/receipt.py: the characters of an offending value a message quotes

/** The offending value as a message quotes it: chain/receipt.py's got, the same text for the same input. */
export function got(value) {
  if (value === true || value === false || value === null) return String(value);
  if (isObject(value)) return "an object";
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (typeof value === "string") {
    const chars = [...value];
    return pyJsonString(chars.slice(0, SHOWN).join("")) + (chars.length > SHOWN ? "..." : "");
  }
  const text = value instanceof JsonFraction ? value.text : String(value);
  return text.length <= SHOWN ? text : text.slice(0, SHOWN) + "...";
}

function walk(value, path, depth) {
  if (depth > MAX_DEPTH) fail(`receipt: values nest deeper than ${MAX_DEPTH} levels`);
  if (value instanceof JsonObject) {
    const seen = new Set();
    for (const [key] of value.pairs) {
      if (seen.has(key)) fail(`receipt: duplicate field ${path}${show(key)}`);
      seen.add(key);
    }
    for (const [key, item] of value.pairs) walk(item, `${path}${show(key)}.`, depth + 1);
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, `${path.replace(/\.$/, "")}[${i}].`, depth + 1));
  }
}

const isObject = v => v instanceof JsonObject;
const keysOf = v => v.pairs.map(([k]) => k);
const has = (v, key) => v.pairs.some(([k]) => k === key);
const get = (v, key) => v.pairs.find(([k]) => k === key)[1];

function object(value, path, keys, optional = []) {
  if (!isObject(value)) fail(`receipt: ${path} must be an object, got ${got(value)}`);
  const prefix = path ? `${path}.` : "";
  const unknown = keysOf(value).filter(k => !keys.includes(k) && !optional.includes(k)).map(k => prefix + show(k));
  if (unknown.length) fail(`receipt: unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}`);
  const missing = keys.filter(k => !has(value, k)).map(k => prefix + k);
  if (missing.length) fail(`receipt: missing field${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
  return Object.fromEntries(value.pairs);
}

const isInt = v => (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";

function uint(value, path) {
  if (!isInt(value) || value < 0 || BigInt(value) > MAX_SAFE) fail(`receipt: ${path} must be a non-negative integer below 2^53, got ${got(value)}`);
  return Number(value) + 0;  // + 0 writes -0 as 0
}

/** A uint256 as the signed message holds it; beyond 2^53 as its decimal string, which JSON and the API
 *  read as the same number (a JavaScript number would round it). */
function uint256(value, path) {
  const number = typeof value === "string" && UINT256_TEXT.test(value) ? BigInt(value.replace(/^0X/, "0x")) : value;
  if (!isInt(number) || number < 0 || BigInt(number) >= UINT256) {
    fail(`receipt: ${path} must be a uint256: a non-negative integer below 2^256, or its decimal or 0x-hex string, got ${got(value)}`);
  }
  const n = BigInt(number);
  return n <= MAX_SAFE ? Number(n) : n.toString();
}

function hash32(value, path) {
  if (typeof value !== "string" || !HASH32.test(value)) fail(`receipt: ${path} must be 0x followed by 64 hex digits, got ${got(value)}`);
  return value.toLowerCase();  // the one form docchain writes
}

function address(value, path) {
  if (typeof value !== "string" || !ADDRESS.test(value)) fail(`receipt: ${path} must be 0x followed by 40 hex digits, got ${got(value)}`);
  const digits = value.slice(2);
  const checksummed = toChecksumAddress(value);
  if (digits !== digits.toLowerCase() && digits !== digits.toUpperCase() && value !== checksummed) {
    fail(`receipt: ${path} has an invalid EIP-55 checksum: ${value}, checksummed ${checksummed}`);
  }
  return checksummed;
}

function constant(value, path, expected) {
  if (value !== expected) fail(`receipt: ${path} must be "${expected}", got ${got(value)}`);
}

function sameJson(a, b) {
  if (isObject(a)) {
    if (!b || typeof b !== "object" || Array.isArray(b)) return false;
    const keys = Object.keys(b);
    return a.pairs.length === keys.length && a.pairs.every(([k, v]) => Object.hasOwn(b, k) && sameJson(v, b[k]));
  }
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  return a === b;
}

/** Where eip712.types first departs from docchain's, quoted: chain/receipt.py's _types_difference. */
function typesDifference(types) {
  if (!isObject(types)) return `, got ${got(types)}`;
  const names = keysOf(types);
  if (names.length !== Object.keys(TYPES).length || !Object.keys(TYPES).every(k => names.includes(k))) {
    return `, got the types ${names.slice(0, 4).map(show).join(", ")}` + (names.length > 4 ? "..." : "");
  }
  for (const [name, fields] of Object.entries(TYPES)) {
    const given = get(types, name);
    if (!Array.isArray(given) || given.length !== fields.length) return `, got ${name} as ${got(given)}`;
    for (const [i, want] of fields.entries()) {
      if (!sameJson(given[i], want)) return `, got ${name}[${i}] as ${member(given[i])}`;
    }
  }
  return "";
}

function member(m) {
  const keys = isObject(m) ? keysOf(m) : [];
  if (keys.length === 2 && keys.includes("name") && keys.includes("type")) return `${got(get(m, "type"))} ${got(get(m, "name"))}`;
  return got(m);
}

function utf8Length(text) {
  return new TextEncoder().encode(text).length;  // a lone surrogate counts 3 bytes, as in Python
}

/**
 * Parse and cross-check a receipt: its text, or its bytes (UTF-8; a byte-order mark is refused, as in
 * Python). Returns the receipt as a plain JSON object, as chain/receipt.py would write it again (hex in
 * lower case, addresses EIP-55 checksummed), but for a deadline beyond 2^53: its decimal string. Throws an
 * Error whose one-line message names the field at fault.
 */
export function parseReceipt(input) {
  let text = input;
  if (typeof input !== "string") {
    const bytes = input instanceof ArrayBuffer ? new Uint8Array(input) : input;
    if (bytes.length > MAX_BYTES) fail(`receipt is larger than ${MAX_BYTES} bytes`);
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      fail("receipt is not valid JSON: not UTF-8");
    }
  } else if (utf8Length(text) > MAX_BYTES) {
    fail(`receipt is larger than ${MAX_BYTES} bytes`);
  }
  return readReceipt(parseJson(text));
}

/**
 * JSON text as the receipt reader reads it (every key of an object kept as written, repeats included, and
 * numbers as written): for a document that holds a receipt, such as a credential (vc.js), whose receipt
 * receiptOfValue then reads as a receipt file is read. Throws the reader's Error for text that is not JSON.
 */
export function parseJsonText(text) {
  return parseJson(text);
}

/** Whether a value parseJsonText returned is a JSON object, and the value of its `key` (the last one written,
 *  as Python's json module keeps it), for readers of a document around a receipt. */
export const isJsonObject = value => value instanceof JsonObject;
export const memberOf = (value, key) => lastValues(value).get(key);
/** An object's keys with their last value, in the order each key was first written (a Python dict's). */
export function lastValues(value) {
  const out = new Map();
  for (const [key, item] of value.pairs) out.set(key, item);
  return out;
}
export const isFraction = value => value instanceof JsonFraction;

/**
 * A receipt inside a larger JSON document, already parsed (parseJsonText): chain/receipt.py's parse_receipt of
 * a parsed object, which measures it by its compact JSON (it has no text of its own), and reads a string as a
 * receipt's text.
 */
export function receiptOfValue(value) {
  if (typeof value === "string") return parseReceipt(value);
  if (isObject(value) && utf8Length(compactJson(value)) > MAX_BYTES) fail(`receipt is larger than ${MAX_BYTES} bytes`);
  return readReceipt(value);
}

/** A parsed value as Python's json.dumps(separators=(",", ":"), ensure_ascii=False) writes it. */
function compactJson(value) {
  if (isObject(value)) return `{${[...lastValues(value)].map(([k, v]) => `${JSON.stringify(k)}:${compactJson(v)}`).join(",")}}`;
  if (Array.isArray(value)) return `[${value.map(compactJson).join(",")}]`;
  if (value instanceof JsonFraction) return value.text;
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

function readReceipt(data) {
  walk(data, "", 0);
  if (!isObject(data)) fail("receipt must be a JSON object");
  if (!has(data, "docchainReceipt")) fail("receipt: missing field docchainReceipt");
  const version = get(data, "docchainReceipt");
  if (!VERSIONS.includes(version)) fail(`receipt: docchainReceipt must be 1 or 2 (the format versions this docchain reads), got ${got(version)}`);
  const top = object(data, "", TOP, TOP_OPTIONAL);

  const document = object(top.document, "document", DOCUMENT);
  const docHash = hash32(document.sha256, "document.sha256");
  const { name } = document;
  let { size } = document;
  if (name !== null && (typeof name !== "string" || [...name].length > 1024)) {
    fail(`receipt: document.name must be null or a string of at most 1024 characters, got ${typeof name === "string" ? `${[...name].length} characters` : got(name)}`);
  }
  if (size !== null) size = uint(size, "document.size");
  const signer = address(top.signer, "signer");

  const signed = object(top.eip712, "eip712", EIP712);
  if (!sameJson(signed.types, TYPES)) fail(`receipt: eip712.types must be docchain's EIP712Domain and Registration types${typesDifference(signed.types)}`);
  constant(signed.primaryType, "eip712.primaryType", "Registration");
  const domainJson = object(signed.domain, "eip712.domain", DOMAIN);
  constant(domainJson.name, "eip712.domain.name", "docchain");
  constant(domainJson.version, "eip712.domain.version", "1");
  const domain = {
    name: "docchain",
    version: "1",
    chainId: uint(domainJson.chainId, "eip712.domain.chainId"),
    verifyingContract: address(domainJson.verifyingContract, "eip712.domain.verifyingContract"),
  };
  const messageJson = object(signed.message, "eip712.message", MESSAGE);
  const message = {
    docHash: hash32(messageJson.docHash, "eip712.message.docHash"),
    signer: address(messageJson.signer, "eip712.message.signer"),
    metadataHash: hash32(messageJson.metadataHash, "eip712.message.metadataHash"),
    supersedes: hash32(messageJson.supersedes, "eip712.message.supersedes"),
    deadline: uint256(messageJson.deadline, "eip712.message.deadline"),
  };

  const { signature } = top;
  if (typeof signature !== "string" || !SIGNATURE.test(signature)) {
    fail(`receipt: signature must be 0x followed by hex digits, two per byte, at least one byte, got ${got(signature)}`);
  }
  const chainId = uint(top.chainId, "chainId");
  const contract = address(top.contract, "contract");

  const anchorJson = object(top.anchor, "anchor", ANCHOR);
  const anchor = {
    transactionHash: hash32(anchorJson.transactionHash, "anchor.transactionHash"),
    blockNumber: uint(anchorJson.blockNumber, "anchor.blockNumber"),
    blockHash: hash32(anchorJson.blockHash, "anchor.blockHash"),
    timestamp: uint(anchorJson.timestamp, "anchor.timestamp"),
    merkle: null,
  };
  if (version === 1 && anchorJson.merkle !== null) {
    fail("receipt: anchor.merkle must be null: Merkle anchors are not in format version 1");
  }
  if (version === 2) {
    if (anchorJson.merkle === null) {
      fail("receipt: anchor.merkle must be an object in format version 2 (a direct anchor is version 1)");
    }
    anchor.merkle = merkleSection(anchorJson.merkle);
  }

  // the copies must agree, so that the receipt says one thing only
  let privateSection;
  if ("private" in top) {
    // a private registration signs a salted commitment as its docHash: whether the salt opens it is
    // verification's commitment step (chain/verify.py), not a reading rule
    const section = object(top.private, "private", PRIVATE);
    privateSection = { salt: hash32(section.salt, "private.salt") };
    if (docHash === message.docHash) fail("receipt: a private receipt's eip712.message.docHash is the commitment, not document.sha256");
  } else if (docHash !== message.docHash) {
    fail("receipt: document.sha256 differs from eip712.message.docHash");
  }
  if (signer !== message.signer) fail("receipt: signer differs from eip712.message.signer");
  if (chainId !== domain.chainId) fail("receipt: chainId differs from eip712.domain.chainId");
  if (contract !== domain.verifyingContract) fail("receipt: contract differs from eip712.domain.verifyingContract");
  const storage = "storage" in top ? storageSection(top.storage) : undefined;
  const evidence = "evidence" in top ? evidenceSection(top.evidence) : undefined;

  return {
    docchainReceipt: version,
    document: { sha256: docHash, name, size },
    signer,
    eip712: { types: structuredClone(TYPES), primaryType: "Registration", domain, message },
    signature: signature.toLowerCase(),
    chainId,
    contract,
    anchor,
    ...(storage === undefined ? {} : { storage }),
    ...(evidence === undefined ? {} : { evidence }),
    ...(privateSection === undefined ? {} : { private: privateSection }),
  };
}

/** A version 2 anchor's inclusion proof: chain/receipt.py's _merkle. */
function merkleSection(value) {
  const section = object(value, "anchor.merkle", MERKLE);
  const root = hash32(section.root, "anchor.merkle.root");
  const leafIndex = uint(section.leafIndex, "anchor.merkle.leafIndex");
  const count = section.leafCount;
  if (!isInt(count) || count < 1 || BigInt(count) > BigInt(MAX_LEAVES)) {
    fail(`receipt: anchor.merkle.leafCount must be an integer from 1 to 2^32, got ${got(count)}`);
  }
  const leafCount = Number(count);
  if (leafIndex >= leafCount) fail(`receipt: anchor.merkle.leafIndex must be below anchor.merkle.leafCount, got ${leafIndex} of ${leafCount}`);
  const { proof } = section;
  if (!Array.isArray(proof) || proof.length > MAX_PROOF) {
    fail(`receipt: anchor.merkle.proof must be a list of at most ${MAX_PROOF} hashes, got ${got(proof)}`);
  }
  const hashes = proof.map((h, i) => hash32(h, `anchor.merkle.proof[${i}]`));
  // StandardMerkleTree keeps leaf leafIndex at array position 2*leafCount-2-leafIndex, at depth
  // floor(log2(position + 1)): one proof hash per level
  const depth = (2 * leafCount - 1 - leafIndex).toString(2).length - 1;
  if (hashes.length !== depth) {
    fail(`receipt: anchor.merkle.proof must hold ${depth} hashes for leaf ${leafIndex} of ${leafCount}, got ${hashes.length}`);
  }
  return { root, leafIndex, leafCount, proof: hashes };
}

/** The optional storage section (informative, not signed): chain/receipt.py's _storage. */
function storageSection(value) {
  const section = object(value, "storage", STORAGE);
  const { backends } = section;
  if (!Array.isArray(backends) || backends.length < 1 || backends.length > MAX_BACKENDS) {
    fail(`receipt: storage.backends must be a list of 1 to ${MAX_BACKENDS} backend names, got ${got(backends)}`);
  }
  backends.forEach((name, i) => {
    if (typeof name !== "string" || !BACKEND.test(name)) {
      fail(`receipt: storage.backends[${i}] must be a backend name: a-z, 0-9 and -, at most 32 characters, got ${got(name)}`);
    }
  });
  if (new Set(backends).size !== backends.length) fail("receipt: storage.backends names a backend twice");
  let ipfs = null;
  if (section.ipfs !== null) {
    const copy = object(section.ipfs, "storage.ipfs", IPFS);
    const { cid, sealed, key } = copy;
    if (typeof cid !== "string" || !CID.test(cid)) fail(`receipt: storage.ipfs.cid must be a CIDv1 in base32 (b followed by a-z and 2-7), got ${got(cid)}`);
    if (typeof sealed !== "boolean") fail(`receipt: storage.ipfs.sealed must be true or false, got ${got(sealed)}`);
    if (key !== null && (typeof key !== "string" || !DOC_KEY.test(key))) {
      fail("receipt: storage.ipfs.key must be null or 43 base64url characters (a 32-byte key)");
    }
    if (key !== null && !sealed) fail("receipt: storage.ipfs.key must be null when storage.ipfs.sealed is false");
    ipfs = { cid, sealed, key };
  }
  return { backends: [...backends], ipfs };
}

/** The optional evidence section (an evidence bundle's proofs): chain/bundle.py's parse_evidence, checked for form
 * only, in the order it is written. */
function evidenceSection(value) {
  const section = object(value, "evidence", EVIDENCE);
  const blockJson = object(section.block, "evidence.block", EVIDENCE_BLOCK);
  const block = {
    number: uint(blockJson.number, "evidence.block.number"),
    hash: hash32(blockJson.hash, "evidence.block.hash"),
    header: hexBytes(blockJson.header, "evidence.block.header", MAX_HEADER),
  };
  const accountJson = object(section.account, "evidence.account", EVIDENCE_ACCOUNT);
  const account = {
    address: address(accountJson.address, "evidence.account.address"),
    proof: trieProof(accountJson.proof, "evidence.account.proof"),
    code: hexBytes(accountJson.code, "evidence.account.code", MAX_CODE),
  };
  const { storage } = section;
  if (!Array.isArray(storage) || storage.length < 1 || storage.length > MAX_SLOTS) {
    fail(`receipt: evidence.storage must be a list of 1 to ${MAX_SLOTS} slot proofs, got ${got(storage)}`);
  }
  const slots = storage.map((entry, i) => {
    const proven = object(entry, `evidence.storage[${i}]`, EVIDENCE_STORAGE);
    return {
      slot: hash32(proven.slot, `evidence.storage[${i}].slot`),
      proof: trieProof(proven.proof, `evidence.storage[${i}].proof`),
    };
  });
  if (new Set(slots.map(s => s.slot)).size !== slots.length) fail("receipt: evidence.storage proves a slot twice");
  return { block, account, storage: slots };
}

function hexBytes(value, path, limit) {
  if (typeof value !== "string" || value.length > 2 + 2 * limit || !HEX_BYTES.test(value)) {
    fail(`receipt: ${path} must be 0x followed by hex digits, two per byte, 1 to ${limit} bytes, got ${got(value)}`);
  }
  return value.toLowerCase();
}

function trieProof(value, path) {
  if (!Array.isArray(value) || value.length > MAX_NODES) {
    fail(`receipt: ${path} must be a list of at most ${MAX_NODES} trie nodes, got ${got(value)}`);
  }
  return value.map((node, i) => hexBytes(node, `${path}[${i}]`, MAX_NODE));
}
