// Runs the web page's offline verifier (api/web/js/offline.js, after its receipt reader api/web/js/receipt.js)
// over every case of the golden bundle corpus and prints one JSON list, a result per case in the corpus's order:
// {outcome, failedStep, reason, summary, steps, asOfBlock}, a receipt the reader refuses being invalid at step receipt with its
// message (as tests/vectors/bundles/corpus.py says). Used by tests/chain/test_bundle_vectors.py; by hand:
// node tests/vectors/bundles/run_js_offline.mjs [bundles.json]
import { readFileSync } from "node:fs";
import { parseReceipt } from "../../../api/web/js/receipt.js";
import { verifyOffline } from "../../../api/web/js/offline.js";

const file = process.argv[2] ?? new URL("./bundles.json", import.meta.url);
const corpus = JSON.parse(readFileSync(file, "utf8"));

const tokens = pointer => pointer.slice(1).split("/").map(t => t.replaceAll("~1", "/").replaceAll("~0", "~"));

/** A copy of `receipt` with a case's changes made, in order (corpus.py's apply). */
function apply(receipt, changes) {
  const out = structuredClone(receipt);
  for (const change of changes) {
    const path = tokens(change.path);
    const last = path.pop();
    let target = out;
    for (const token of path) target = Array.isArray(target) ? target[Number(token)] : target[token];
    const key = Array.isArray(target) ? Number(last) : last;
    if (change.op === "remove") {
      if (Array.isArray(target)) target.splice(key, 1);
      else delete target[key];
    } else if (change.op === "splice") {
      const old = target[key], bytes = change.value.slice(2), at = 2 + 2 * change.at;
      target[key] = old.slice(0, at) + bytes + old.slice(at + bytes.length);
    } else {
      target[key] = structuredClone(change.value);
    }
  }
  return out;
}

async function verdict(bundle, c) {
  let receipt;
  try {
    receipt = parseReceipt(JSON.stringify(apply(bundle.receipt, c.changes)));
  } catch (err) {
    const summary = `Verification failed at step receipt: ${err.message}`;
    return { outcome: "invalid", failedStep: "receipt", reason: err.message, summary, steps: [{ name: "receipt", ok: false, detail: err.message }], asOfBlock: null };
  }
  const v = await verifyOffline(c.fileSha256, receipt, c.trustedBlockHash);
  return { outcome: v.outcome, failedStep: v.failedStep, reason: v.reason, summary: v.summary, steps: v.steps, asOfBlock: v.asOfBlock ?? null };
}

const results = [];
for (const bundle of corpus.bundles) for (const c of bundle.cases) results.push(await verdict(bundle, c));
process.stdout.write(JSON.stringify(results) + "\n");
