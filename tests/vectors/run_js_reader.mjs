// Runs the web page's receipt reader (api/web/js/receipt.js) over the corpus and prints one JSON result
// per case, in order: {"text": R, "bytes": R}, the reader given the text and its UTF-8 bytes, where R is
// {"valid": true, "receipt": {...}} or {"valid": false, "message": "..."}. Used by
// tests/docs/test_receipt_vectors.py; by hand: node tests/vectors/run_js_reader.mjs [receipts.json]
import { readFileSync } from "node:fs";
import { parseReceipt } from "../../api/web/js/receipt.js";

const file = process.argv[2] ?? new URL("./receipts.json", import.meta.url);
const cases = JSON.parse(readFileSync(file, "utf8"));
const read = input => {
  try {
    return { valid: true, receipt: parseReceipt(input) };
  } catch (err) {
    return { valid: false, message: err.message };
  }
};
const results = cases.map(({ text }) => ({ text: read(text), bytes: read(new TextEncoder().encode(text)) }));
process.stdout.write(JSON.stringify(results) + "\n");
