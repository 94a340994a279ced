// A receipt written as a W3C Verifiable Credential (`docchain receipt export --vc`), read back by the web page:
// chain/vc.py's parse_credential and receipt_of, in the same order and with the same messages. The credential
// is accepted only if every member is the one its evidence bundle makes (its receipt, read by receipt.js's strict
// reader), so nothing in it can be edited apart from the bundle, which the offline verification then checks.
// No DOM here, so node runs it in the tests.

import {
  MAX_BYTES, parseReceipt, parseJsonText, receiptOfValue, isJsonObject, memberOf, lastValues, isFraction,
} from "./receipt.js";
import { Sha256 } from "./sha256.js";

export const CONTEXTS = ["https://www.w3.org/ns/credentials/v2", "https://w3id.org/security/suites/eip712sig-2021/v1"];
export const CREDENTIAL_TYPE = ["VerifiableCredential", "DocchainSignatureCredential"];
export const PROOF_TYPE = "EthereumEip712Signature2021";
export const BUNDLE_TYPE = "DocchainEvidenceBundle";
// The receipt, the claims that repeat it and the JSON-LD around them: twice a receipt's bound is ample
export const MAX_CREDENTIAL_BYTES = 2 * MAX_BYTES;
const SHOWN = 80;  // characters of the expected value a refusal quotes

const fail = message => { throw new Error(message); };
const toHex = bytes => "0x" + Array.from(bytes, b => b.toString(16).padStart(2, "0")).join("");

/** An Ethereum account as a DID (the did:pkh method, CAIP-10 account id). */
export const didPkh = (chainId, address) => `did:pkh:eip155:${chainId}:${address}`;

/** A block time as XML Schema's dateTimeStamp in UTC, as validFrom takes it. */
const instant = timestamp => new Date(timestamp * 1000).toISOString().replace(/\.\d+Z$/, "Z");

/** A deadline beyond 2^53, which the receipt reader gives as its decimal string, as the integer Python writes. */
const exact = receipt => {
  const { deadline } = receipt.eip712.message;
  if (typeof deadline !== "string") return receipt;
  const copy = structuredClone(receipt);
  copy.eip712.message.deadline = BigInt(deadline);
  return copy;
};

/**
 * A JSON value as Python's json.dumps writes it (ASCII only; `indent` as json.dumps's), so that the bundle's
 * digest is that of the receipt's own text and a refusal quotes the same characters.
 */
function pyDumps(value, indent = null, level = 0) {
  const pad = indent === null ? "" : "\n" + " ".repeat(indent * (level + 1));
  const end = indent === null ? "" : "\n" + " ".repeat(indent * level);
  const sep = indent === null ? ", " : ",";
  if (value === null) return "null";
  if (value === true || value === false) return String(value);
  if (typeof value === "string") {
    return JSON.stringify(value).replace(/[\u0080-\uffff]/g, c => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
  }
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (Array.isArray(value)) {
    if (!value.length) return "[]";
    return "[" + value.map(v => pad + pyDumps(v, indent, level + 1)).join(sep) + end + "]";
  }
  const entries = Object.entries(value);
  if (!entries.length) return "{}";
  return "{" + entries.map(([k, v]) => pad + pyDumps(k) + ": " + pyDumps(v, indent, level + 1)).join(sep) + end + "}";
}

/** SHA-256 of the bundle as the credential carries it: the receipt's own text (chain/receipt.py's dumps). */
function bundleDigest(receipt) {
  const text = pyDumps(exact(receipt), 2) + "\n";
  return toHex(new Sha256().update(new TextEncoder().encode(text)).digest());
}

/** The credential of `receipt` (the receipt reader's result), member for member as chain/vc.py's to_json. */
export function credentialOf(receipt) {
  const r = exact(receipt), { domain } = r.eip712;
  const issuer = didPkh(domain.chainId, r.signer), validFrom = instant(r.anchor.timestamp);
  const subject = { sha256: r.document.sha256 };
  if (r.document.name !== null) subject.name = r.document.name;
  return {
    "@context": [...CONTEXTS],
    type: [...CREDENTIAL_TYPE],
    issuer,
    validFrom,
    credentialSubject: subject,
    evidence: [{ type: [BUNDLE_TYPE], receipt: r }],
    proof: {
      type: PROOF_TYPE,
      created: validFrom,
      proofPurpose: "assertionMethod",
      verificationMethod: issuer + "#blockchainAccountId",
      proofValue: r.signature,
      eip712: r.eip712,
      anchor: {
        chainId: domain.chainId,
        registry: domain.verifyingContract,
        blockNumber: r.anchor.blockNumber,
        blockHash: r.anchor.blockHash,
        txHash: r.anchor.transactionHash,
        merkleRoot: r.anchor.merkle ? r.anchor.merkle.root : null,
        provenBlock: r.evidence ? { number: r.evidence.block.number, hash: r.evidence.block.hash } : null,
        bundleDigest: "sha256:" + bundleDigest(r),
      },
    },
  };
}

/** Whether a parsed JSON document is meant as a credential (it has an @context), not a receipt. */
export const isCredential = data => isJsonObject(data) && lastValues(data).has("@context");

/**
 * Read a credential made by `docchain receipt export --vc` (parsed by receipt.js's parseJsonText): its bundle
 * read as strictly as any receipt, then every other member compared with what that bundle makes of it. Returns
 * the receipt; throws an Error naming the first member that differs.
 */
export function parseCredential(data) {
  if (!isJsonObject(data)) fail("credential: not a JSON object");
  const evidence = memberOf(data, "evidence");
  if (!Array.isArray(evidence) || evidence.length !== 1 || !isJsonObject(evidence[0])) {
    fail("credential: evidence must be a list of one docchain evidence bundle");
  }
  const entry = lastValues(evidence[0]);
  const type = entry.get("type");
  if (!(Array.isArray(type) && type.length === 1 && type[0] === BUNDLE_TYPE) || !entry.has("receipt")) {
    fail(`credential: evidence[0] is not a ${BUNDLE_TYPE} with its receipt`);
  }
  let receipt;
  try {
    receipt = receiptOfValue(entry.get("receipt"));
  } catch (err) {
    fail(`credential: evidence[0].${err.message}`);
  }
  same(credentialOf(receipt), data, "");
  return receipt;
}

const isPlainObject = v => v !== null && typeof v === "object" && !Array.isArray(v);
const isInteger = v => (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";

// The receipt member each claim is made from (chain/vc.py's _MADE_FROM): a claim that differs may as well be an
// honest claim beside an edited receipt, so a refusal names both. Under proof.eip712 the paths are the receipt's own.
const MADE_FROM = {
  "issuer": "chainId and signer",
  "validFrom": "anchor.timestamp",
  "credentialSubject.sha256": "document.sha256",
  "credentialSubject.name": "document.name",
  "proof.created": "anchor.timestamp",
  "proof.verificationMethod": "chainId and signer",
  "proof.proofValue": "signature",
  "proof.anchor.chainId": "chainId",
  "proof.anchor.registry": "contract",
  "proof.anchor.blockNumber": "anchor.blockNumber",
  "proof.anchor.blockHash": "anchor.blockHash",
  "proof.anchor.txHash": "anchor.transactionHash",
  "proof.anchor.merkleRoot": "anchor.merkle.root",
  "proof.anchor.provenBlock": "evidence.block",
  "proof.anchor.provenBlock.number": "evidence.block.number",
  "proof.anchor.provenBlock.hash": "evidence.block.hash",
  "proof.anchor.bundleDigest": "text as a whole",
};
const EIP712 = "proof.eip712";

/** Refuse the first member of `given` (parsed) that is not `expected`'s, named by its path (chain/vc.py's _same). */
function same(expected, given, path) {
  if (isPlainObject(expected) && isJsonObject(given)) {
    const members = lastValues(given);
    for (const key of members.keys()) if (!Object.hasOwn(expected, key)) fail(`credential: unknown member ${path}${key}`);
    for (const [key, value] of Object.entries(expected)) {
      if (!members.has(key)) fail(`credential: missing member ${path}${key}`);
      same(value, members.get(key), `${path}${key}.`);
    }
    return;
  }
  if (Array.isArray(expected) && Array.isArray(given) && expected.length === given.length) {
    expected.forEach((e, i) => same(e, given[i], `${path.replace(/\.$/, "")}[${i}].`));
    return;
  }
  // a number written with a fraction is no integer, whatever its value, as Python's type check has it
  const equal = isInteger(expected) ? isInteger(given) && BigInt(expected) === BigInt(given)
    : !isFraction(given) && expected === given;
  if (!equal) {
    const said = pyDumps(expected);
    const shown = said.length <= SHOWN ? said : said.slice(0, SHOWN) + "...";
    const where = path.replace(/\.$/, "");
    const source = where.startsWith(EIP712) ? "eip712" + where.slice(EIP712.length) : Object.hasOwn(MADE_FROM, where) ? MADE_FROM[where] : null;
    const made = source === null ? "" : ` (made from evidence[0].receipt's ${source}: the one or the other was changed)`;
    fail(`credential: ${where} is not what its evidence bundle says: ${shown}${made}`);
  }
}

/**
 * The receipt a dropped file holds, as a verifier takes one (chain/vc.py's receipt_of): a receipt, or a
 * credential read back by parseCredential. Bytes that are not JSON or beyond a credential's bound, and any
 * JSON without an @context, are judged as a receipt, in the receipt reader's words. Returns
 * {receipt, credential: whether the file was a credential}.
 */
export function receiptOf(bytes) {
  if (bytes.length <= MAX_CREDENTIAL_BYTES) {
    let parsed = null;
    try {
      parsed = parseJsonText(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes));
    } catch {
      parsed = null;
    }
    if (isCredential(parsed)) return { receipt: parseCredential(parsed), credential: true };
  }
  return { receipt: parseReceipt(bytes), credential: false };
}
