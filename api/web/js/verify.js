// Verify: drop a file (hashed here, never uploaded), optionally a receipt or an expected signer; the API
// checks the chain and answers a verdict with its checks and every signer.

import { api } from "./api.js";
import { hashFile } from "./sha256.js";
import {
  h, clear, dropZone, progressBar, errorBox, table, badge, timeCell, addrLink, txLink, blockLink, docLink,
  hashText, fmtBytes, isHash, isAddress, loading, metaHashCell, fmtTime,
} from "./ui.js";
import { toChecksumAddress, sameAddress } from "./keccak.js";

const VERDICT = {
  valid: ["✓", "Valid", "The file is unchanged and its signature is recorded on chain."],
  invalid: ["✗", "Not valid", "A check failed: see below."],
  revoked: ["✗", "Revoked", "The signer withdrew this signature with a signed revocation recorded on chain."],
  unknown: ["✗", "No record of this file", "No one has signed a document with this SHA-256 on this chain. If you expected a record, the file has been changed or was never signed."],
};

export async function verifyView(root, _params, { signal }) {
  const state = { file: null, hash: null, receipt: null, receiptName: null, signer: "" };
  const result = h("section", { class: "result", "aria-live": "polite" });
  const progress = progressBar();
  const hashOut = h("div", { class: "hash-out" });
  let run = 0;

  const fileZone = dropZone({
    id: "verify-file", title: "Drop a file to verify", hint: "or click to choose one — it stays on this computer",
    onFile: file => takeFile(file),
  });
  const receiptZone = dropZone({
    id: "verify-receipt", small: true, title: "Receipt (optional)", hint: "a .docchain.json file",
    accept: ".json,application/json", onFile: file => takeReceipt(file),
  });
  const signerInput = h("input", { id: "verify-signer", type: "text", placeholder: "0x… (optional)", spellcheck: "false",
                                   autocomplete: "off", inputmode: "text" });
  const hashInput = h("input", { id: "verify-hash", type: "text", placeholder: "0x + 64 hex digits", spellcheck: "false",
                                 autocomplete: "off" });

  signerInput.addEventListener("change", () => { state.signer = signerInput.value.trim(); if (state.hash) check(); });
  hashInput.addEventListener("change", () => {
    const value = hashInput.value.trim().toLowerCase();
    if (!value) return;
    if (!isHash(value)) { clear(result, errorBox({ title: "Not a SHA-256 hash", detail: "expected 0x followed by 64 hex digits" })); return; }
    state.file = null; state.hash = value; fileZone.reset();
    showHash(null);
    check();
  });

  clear(root,
    h("h1", {}, "Verify a document"),
    h("p", { class: "lead" }, "Who signed it, when, and is it unchanged? The file is hashed (SHA-256) in your browser and never uploaded; only its hash is checked against the Ethereum registry."),
    h("div", { class: "verify-grid" },
      h("div", { class: "verify-main" }, fileZone, progress, hashOut),
      h("div", { class: "verify-side card" },
        receiptZone,
        h("label", { class: "field", for: "verify-signer" }, h("span", {}, "Expected signer"), signerInput),
        h("label", { class: "field", for: "verify-hash" }, h("span", {}, "…or check a SHA-256 directly"), hashInput))),
    result);

  async function takeFile(file) {
    const mine = ++run;
    state.file = file; state.hash = null;
    hashInput.value = "";
    clear(result);
    clear(hashOut);
    try {
      const { hash, method, ms } = await hashFile(file, {
        signal,
        onProgress: progress.forFile(file),
      });
      if (mine !== run) return;
      progress.hide();
      state.hash = hash;
      showHash({ method, ms });
      await check();
    } catch (err) {
      if (err.name === "AbortError") return;
      progress.hide();
      clear(result, errorBox({ title: "Could not read the file", detail: err.message }));
    }
  }

  function showHash(info) {
    clear(hashOut,
      h("div", { class: "kv" }, h("span", { class: "k" }, "SHA-256"), hashText(state.hash)),
      info ? h("p", { class: "muted small" }, `${state.file.name} · ${fmtBytes(state.file.size)} · hashed in your browser with ${info.method} in ${Math.max(1, Math.round(info.ms))} ms`) : null);
  }

  async function takeReceipt(file) {
    try {
      if (file.size > 1024 * 1024) throw new Error("a receipt is a small JSON file; this one is over 1 MB");
      const data = JSON.parse(await file.text());
      if (!data || typeof data !== "object" || !("docchainReceipt" in data)) throw new Error("this JSON is not a docchain receipt (no docchainReceipt field)");
      state.receipt = data; state.receiptName = file.name;
      if (state.hash) check();
      else clear(result, h("p", { class: "muted" }, `Receipt ${file.name} loaded for ${toChecksumAddress(data.signer) || "?"}; now drop the document.`));
    } catch (err) {
      state.receipt = null;
      receiptZone.reset();
      clear(result, errorBox({ title: "Not a receipt", detail: err.message }));
    }
  }

  async function check() {
    const mine = ++run;
    if (state.signer && !isAddress(state.signer)) {
      clear(result, errorBox({ title: "Not an address", detail: "the expected signer must be 0x followed by 40 hex digits" }));
      return;
    }
    clear(result, loading("Checking the chain…"));
    const body = { docHash: state.hash, signers: true };  // the page shows every signer beside the verdict
    if (state.signer) body.signer = state.signer;
    if (state.receipt) body.receipt = state.receipt;
    try {
      const answer = await api("/v1/verify", { method: "POST", json: body, signal });
      if (mine !== run) return;
      showResult(answer);
    } catch (err) {
      if (err.name === "AbortError" || mine !== run) return;
      clear(result, errorBox(err, err.status === 503 ? "The node is down: verification needs the chain." : null));
    }
  }

  function showResult(r) {
    const failed = (r.checks || []).find(c => !c.ok);
    // a withdrawn signature is the one failure a person must be told by name, not as a failed check
    const [icon, title, text] = failed && failed.name === "revocation" ? VERDICT.revoked : VERDICT[r.verdict] || VERDICT.invalid;
    const signers = r.signers || [];
    const active = signers.filter(s => s.state === "confirmed" || s.state === "anchored");
    const subtitle = r.verdict === "valid"
      ? (state.receipt || state.signer
          ? `Signed by ${toChecksumAddress(r.signer)}.`
          : `Signed by ${active.length} signer${active.length === 1 ? "" : "s"}. ${text}`)
      : failed && failed.name === "revocation" ? revokedText(r, signers, text)
      : r.verdict === "invalid" && failed ? failed.detail : text;
    clear(result,
      h("div", { class: `verdict verdict-${r.verdict}`, id: "verdict", dataset: { verdict: r.verdict } },
        h("span", { class: "verdict-icon", "aria-hidden": "true" }, icon),
        h("div", {},
          h("h2", {}, title),
          h("p", {}, subtitle),
          state.receipt ? h("p", { class: "small" }, `Checked against receipt ${state.receiptName}.`) : null)),
      r.checks && r.checks.length ? h("section", {},
        h("h3", {}, "Checks"),
        h("ul", { class: "checks" }, r.checks.map(c => h("li", { class: c.ok ? "ok" : "bad", dataset: { check: c.name } },
          h("span", { class: "check-mark", "aria-hidden": "true" }, c.ok ? "✓" : "✗"),
          h("strong", {}, c.name), " ", h("span", { class: "detail" }, c.detail))))) : null,
      signers.length ? h("section", {},
        h("h3", {}, "Signers ", h("span", { class: "muted" }, `(${signers.length})`)),
        signersTable(signers),
        h("p", { class: "small" }, "Document page: ", docLink(r.docHash, { full: true }))) : null);
    if (result.getBoundingClientRect().top > innerHeight * 0.6) result.scrollIntoView({ block: "start" });
  }

  return () => { run++; };
}

function revokedText(r, signers, text) {
  const who = signers.find(s => sameAddress(s.signer, r.signer));
  const when = who && who.revokedAt ? ` on ${fmtTime(who.revokedAt)}` : "";
  return `${toChecksumAddress(r.signer)} signed it, then revoked the signature${when}. ${text}`;
}

export function signersTable(signers, { receipts = false, metadata = false, docHash = null } = {}) {
  const columns = ["Signer", "State", "Signed at", "Block", "Transaction", "Confirmations", "Revoked"];
  if (metadata) columns.push("Metadata");
  if (receipts) columns.push("Receipt");
  return table(columns, signers.map(s => {
    const row = [
      addrLink(s.signer),
      badge(s.state),
      timeCell(s.timestamp),
      blockLink(s.blockNumber),
      txLink(s.txHash),
      s.blockNumber ? String(s.confirmations ?? 0) : h("span", { class: "muted" }, "—"),
      s.revokedAt ? h("span", { class: "bad-text" }, timeCell(s.revokedAt)) : h("span", { class: "muted" }, "no"),
    ];
    if (metadata) row.push(metaHashCell(s.metadataHash));
    if (receipts) {
      row.push(s.submissionId && ["anchored", "confirmed", "revoked"].includes(s.state)
        ? h("a", { href: `/v1/documents/${docHash}/receipts/${s.signer}`, download: "", class: "receipt-link" }, "download")
        : h("span", { class: "muted" }, s.submissionId ? "after anchoring" : "not held here"));
    }
    return row;
  }), { cls: "signers" });
}
