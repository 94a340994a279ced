// Document metadata: the canonical JSON whose keccak256 a Registration signs as metadataHash.
//
// The API recomputes the hash with chain/typed_data.py::metadata_hash from the metadata it receives:
//   keccak256(json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
// and rejects the submission unless it equals the signed metadataHash. So this module reproduces what
// Python prints for the value it parses out of our JSON.stringify, byte for byte:
//   - keys sorted by Unicode code point at every level (JS's default sort compares UTF-16 units, which
//     differs for characters beyond U+FFFF);
//   - strings escaped as JSON.stringify does (", \, \b \f \n \r \t, other controls as \u00xx, everything
//     else raw UTF-8), which is exactly Python's escaping with ensure_ascii=False;
//   - numbers as Python prints them after parsing: "5" stays an int; "1.5e-7" becomes a float whose repr
//     is "1.5e-07", and 1e-5 is "1e-05" (see pyNumber).

import { keccak256Hex } from "./keccak.js";
import { ZERO32 } from "./ui.js";

const byCodePoint = (a, b) => {
  const x = Array.from(a), y = Array.from(b);  // iterating a string yields code points
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
};

/** The number as Python's json.dumps prints it once json.loads has read JSON.stringify's text. */
function pyNumber(n) {
  const text = JSON.stringify(n);  // "null" for NaN and ±Infinity: Python then reads None
  if (!/[.eE]/.test(text)) return text;  // read as an int: printed with the same digits
  // Read as a float and printed with repr(): the same shortest round-trip digits as JS, but in exponent
  // form below 1e-4 or from 1e16 on, with at least two exponent digits, and always a fraction otherwise.
  const [mantissa, exp] = Math.abs(n).toExponential().split("e");
  const digits = mantissa.replace(".", ""), e = Number(exp), sign = n < 0 ? "-" : "";
  if (e < -4 || e >= 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : "";
    return `${sign}${digits[0]}${frac}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (e < 0) return `${sign}0.${"0".repeat(-e - 1)}${digits}`;
  return `${sign}${digits.slice(0, e + 1).padEnd(e + 1, "0")}.${digits.slice(e + 1) || "0"}`;
}

/** Canonical JSON text of a JSON value, as the API's metadata_hash serialises it. */
export function canonicalJson(value) {
  if (typeof value === "number") return pyNumber(value);
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const keys = Object.keys(value).sort(byCodePoint);
  return `{${keys.map(k => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
}

/** metadataHash for a Registration: keccak256 of the canonical JSON, or zero for no metadata. */
export function metadataHash(metadata) {
  if (!metadata || !Object.keys(metadata).length) return ZERO32;
  return keccak256Hex(canonicalJson(metadata));
}

/** Throws an Error naming the problem if the value cannot be hashed the same way on both sides. */
export function checkMetadata(value, path = "metadata") {
  if (typeof value === "string") {
    // a lone surrogate has no UTF-8 encoding: Python's .encode() would fail where JS escapes it
    if (/[\uD800-\uDFFF]/u.test(value)) throw new Error(`${path} holds an unpaired surrogate character`);
  } else if (typeof value === "number") {
    // beyond 2^53 the browser already rounded what was typed: the hash would cover another number
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) throw new Error(`${path}: ${value} is too large to keep exactly; write it as a string`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkMetadata(v, `${path}[${i}]`));
  } else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) { checkMetadata(k, `${path} key`); checkMetadata(v, `${path}.${k}`); }
  }
}
