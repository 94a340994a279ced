// Verify: drop a file (hashed here, never uploaded), optionally a receipt or an expected signer; the API
// checks the chain and answers one typed verdict, which this page shows as the CLI says it: the title, the
// summary sentence (the same words everywhere), the steps, where and when the record is, and who revoked or
// who else signed.
//
// A receipt that carries an evidence bundle is verified here instead, by offline.js, with no call to the API:
// the proofs lead from one block hash down to the record, and that block hash is checked only if the person
// gives one they trust, or names a node (any JSON-RPC URL) to ask for it.

import { api } from "./api.js";
import { hashFile } from "./sha256.js";
import { parseReceipt, MAX_BYTES } from "./receipt.js";
import {
  h, clear, dropZone, progressBar, errorBox, table, badge, timeCell, addrLink, txLink, blockLink, docLink,
  hashText, fmtBytes, isHash, isAddress, loading, metaHashCell, facts, fmtTime, short,
} from "./ui.js";

export async function verifyView(root, _params, { signal }) {
  // refused: the strict reader's message for a dropped receipt it refused, which stays the question asked
  // trusted: the block hash an offline verification is held to, and trustedFrom where it came from
  const state = { file: null, hash: null, receipt: null, receiptName: null, refused: null, signer: "",
                  trusted: null, trustedFrom: null };
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

  const offline = offlinePanel(() => checkBlock());

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
        h("label", { class: "field", for: "verify-hash" }, h("span", {}, "…or check a SHA-256 directly"), hashInput),
        offline.panel)),
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
    state.receiptName = file.name;
    try {
      // the same strict reader as the CLI's, so a receipt the page accepts is one the API accepts
      if (file.size > MAX_BYTES) throw new Error(`receipt is larger than ${MAX_BYTES} bytes`);
      state.receipt = parseReceipt(new Uint8Array(await file.arrayBuffer()));
      state.refused = null;
      state.trusted = null; state.trustedFrom = null;
      offline.show(state.receipt.evidence);
    } catch (err) {
      // A refused receipt is still the question: the file is judged against it, and fails at the receipt
      // step, as the CLI and the API judge the same pair; it is not dropped in favour of a question without it.
      state.receipt = null; state.refused = err.message;
      offline.show(null);
    }
    if (state.hash) check();
    else if (state.refused) clear(result, errorBox({ title: "Not a receipt", detail: state.refused }));
    else clear(result, h("p", { class: "muted" }, `Receipt ${file.name} loaded for ${state.receipt.signer}; now drop the document.`));
  }

  async function check() {
    const mine = ++run;
    if (state.signer && !isAddress(state.signer)) {
      clear(result, errorBox({ title: "Not an address", detail: "the expected signer must be 0x followed by 40 hex digits" }));
      return;
    }
    if (state.refused) { showResult(receiptRefused(state.hash, state.refused)); return; }
    if (state.receipt && state.receipt.evidence) { await checkOffline(mine); return; }
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

  async function checkOffline(mine) {
    clear(result, loading("Checking the evidence bundle…"));
    try {
      const { verifyOffline } = await import("./offline.js");
      const verdict = await verifyOffline(state.hash, state.receipt, state.trusted);
      if (mine === run) showResult(verdict);
    } catch (err) {
      if (mine === run) clear(result, errorBox({ title: "Could not verify the bundle", detail: err.message }));
    }
  }

  /** The block hash to hold the bundle to: the one a node the person names answers for the bundle's block,
   *  else the one they typed, else none (the verdict then names the hash to check). */
  async function checkBlock() {
    if (!state.receipt || !state.receipt.evidence) return;
    const { number } = state.receipt.evidence.block;
    const { rpc, trusted } = offline.values();
    offline.note(null);
    if (rpc && trusted) { offline.note("Give the block hash you trust or a node to ask for it, not both."); return; }
    if (rpc) {
      if (!/^https?:\/\/\S+$/.test(rpc)) { offline.note("The node must be an http:// or https:// URL."); return; }
      try {
        const { blockHashAt } = await import("./offline.js");
        state.trusted = await blockHashAt(rpc, number, { signal });
        state.trustedFrom = `block ${number}'s hash as the node at ${rpc} answers it`;
      } catch (err) {
        if (err.name === "AbortError") return;
        offline.note(`Could not ask the node: ${err.message}.`);
        return;
      }
    } else if (trusted) {
      if (!isHash(trusted)) { offline.note("A block hash is 0x followed by 64 hex digits."); return; }
      state.trusted = trusted.toLowerCase();
      state.trustedFrom = "the block hash you gave";
    } else {
      state.trusted = null; state.trustedFrom = null;
    }
    if (state.hash) await check();
  }

  function showResult(r) {
    const signers = r.signers || [];
    const bundle = state.receipt && state.receipt.evidence;
    // a bundle checked with no block hash to hold it to: proven down to its header, which only a hash from
    // elsewhere ties to the chain. Not a forgery found: the panel above asks for that hash (or a node to ask)
    const unanchored = bundle && !state.trusted && r.outcome === "invalid" && r.failedStep === "chain";
    const shown = unanchored ? "unanchored" : r.outcome;
    clear(result,
      h("div", { class: `verdict verdict-${shown}`, id: "verdict", dataset: { verdict: shown } },
        h("span", { class: "verdict-icon", "aria-hidden": "true" }, r.outcome === "valid" ? "✓" : unanchored ? "?" : "✗"),
        h("div", {},
          h("h2", {}, unanchored ? "Give the block hash to check" : r.title),
          h("p", { class: "summary" }, r.summary),
          bundle ? h("p", { class: "small", id: "offline-source" },
            `Checked against receipt ${state.receiptName}: its evidence bundle, in this browser, with no call to docchain`,
            state.trustedFrom ? `; the trusted block hash is ${state.trustedFrom}.` : ".")
            : state.receipt || state.refused ? h("p", { class: "small" }, `Checked against receipt ${state.receiptName}.`) : null)),
      supersededSection(r.superseded_by),
      r.steps && r.steps.length ? h("section", {},
        h("h3", {}, "Steps"),
        h("ul", { class: "checks", id: "verdict-steps" }, r.steps.map(c => h("li", { class: c.ok ? "ok" : unanchored ? "pending" : "bad", dataset: { check: c.name } },
          h("span", { class: "check-mark", "aria-hidden": "true" }, c.ok ? "✓" : unanchored ? "?" : "✗"),
          h("strong", {}, c.name), " ", h("span", { class: "detail" }, c.detail))))) : null,
      recordSection(r, state.receipt),
      r.revocation ? h("section", { id: "verify-revocation" },
        h("h3", {}, "Revoked"),
        facts([
          ["By", addrLink(r.revocation.by, { full: true })],
          ["Block", blockLink(r.revocation.blockNumber)],
          ["Time", fmtTime(r.revocation.timestamp)],
        ])) : null,
      r.otherSigners && r.otherSigners.length ? h("section", { id: "verify-other-signers" },
        h("h3", {}, "Who signed it ", h("span", { class: "muted" }, `(${r.otherSigners.length})`)),
        table(["Signer", "Signed at", "Block"], r.otherSigners.map(o => [
          addrLink(o.signer, { full: true }), fmtTime(o.timestamp), blockLink(o.blockNumber),
        ]), { cls: "other-signers" })) : null,
      signers.length ? h("section", {},
        h("h3", {}, "Signers on record ", h("span", { class: "muted" }, `(${signers.length})`)),
        signersTable(signers),
        h("p", { class: "small" }, "Document page: ", docLink(r.docHash, { full: true }))) : null);
    if (result.getBoundingClientRect().top > innerHeight * 0.6) result.scrollIntoView({ block: "start" });
  }

  return () => { run++; };
}

/** The newer documents that replace this one, each signed by a signer of this one (docs/protocol.md, "Superseding
 *  a document"): news beside the verdict, which stands. */
function supersededSection(superseders) {
  if (!superseders || !superseders.length) return null;
  return h("section", { id: "verify-superseded" },
    h("h3", {}, "Superseded"),
    h("ul", {}, superseders.map(s => h("li", { dataset: { superseder: s.docHash } },
      "Superseded by ", docLink(s.docHash, { full: true }), " (signed by ",
      s.signers.map((a, i) => [i ? ", " : null, addrLink(a, { full: true })]), ")"))),
    h("p", { class: "small muted" }, "A signer of this document signed a newer version naming it as the one it replaces; this signature stays as shown."));
}

/** The inputs of an offline verification, shown while the receipt carries an evidence bundle: a block hash the
 *  person trusts, or a node to ask for it; `onCheck` runs when they ask. */
function offlinePanel(onCheck) {
  const trusted = h("input", { id: "offline-trusted", type: "text", placeholder: "0x + 64 hex digits (optional)",
                               spellcheck: "false", autocomplete: "off" });
  const rpc = h("input", { id: "offline-rpc", type: "text", inputmode: "url", placeholder: "https://… JSON-RPC (optional)",
                           spellcheck: "false", autocomplete: "off" });
  const block = h("span", {});
  const note = h("p", { class: "small bad-text", id: "offline-note", hidden: true });
  const button = h("button", { id: "offline-check", type: "button", class: "btn" }, "Check the block");
  button.addEventListener("click", onCheck);
  const panel = h("div", { id: "offline-mode", class: "offline", hidden: true },
    h("h3", {}, "Evidence bundle"),
    h("p", { class: "small muted" }, "This receipt carries its proofs: it is verified in your browser, nothing is sent to docchain. The proofs hold if ",
      block, " is on the chain: give its hash, or a node to ask."),
    h("label", { class: "field", for: "offline-trusted" }, h("span", {}, "Trusted block hash"), trusted),
    h("label", { class: "field", for: "offline-rpc" }, h("span", {}, "…or ask a node"), rpc),
    button, note);
  return {
    panel,
    show(evidence) {
      panel.hidden = !evidence;
      trusted.value = ""; rpc.value = "";
      note.hidden = true;
      if (evidence) clear(block, `block ${evidence.block.number}`);
    },
    values: () => ({ trusted: trusted.value.trim(), rpc: rpc.value.trim() }),
    note(text) { note.hidden = !text; clear(note, text || ""); },
  };
}

/** The verdict for a receipt the strict reader refused, as chain/verify.py's receipt_refused words it: it
 *  fails before any chain read, so the page needs no answer from the API to say it. */
function receiptRefused(docHash, reason) {
  return {
    outcome: "invalid", title: "Invalid", summary: `Verification failed at step receipt: ${reason}`, docHash,
    signer: null, failedStep: "receipt", reason, steps: [{ name: "receipt", ok: false, detail: reason }],
    trust: null, anchor: null, revocation: null, otherSigners: [],
  };
}

/** Where the record is (chain, registry and why it is trusted, block, transaction, time, and for a Merkle
 *  anchor the root its transaction anchored), as read from the chain; only the registry and its trust when
 *  there is no record. The leaf's place in the tree comes from the receipt, which the verdict held to it. */
function recordSection(r, receipt) {
  const a = r.anchor, t = r.trust;
  if (!a && !t) return null;
  const registry = (a && a.registry) || t.registry;
  const rows = [
    a ? ["Chain", String(a.chainId)] : null,
    ["Registry", h("span", {}, addrLink(registry, { full: true }),
      t ? h("span", { class: "muted small trust" }, ` — ${t.detail}`) : null)],
  ];
  if (a) {
    rows.push(
      // offline, a bundle proves the record's block number and time, not the block's hash nor the transaction
      ["Block", a.blockHash === null ? blockLink(a.blockNumber)
        : h("span", {}, blockLink(a.blockNumber), " ", h("code", { class: "muted small", title: a.blockHash }, short(a.blockHash)))],
      a.transactionHash === null ? null : ["Transaction", txLink(a.transactionHash, { full: true })],
      ["Time", fmtTime(a.timestamp)],
      ["Confirmations", String(a.confirmations)],
    );
    if (a.merkleRoot) {
      const proof = receipt && receipt.anchor.merkle && receipt.anchor.merkle.root === a.merkleRoot ? receipt.anchor.merkle : null;
      rows.push(["Merkle root", h("span", { id: "verify-merkle" },
        h("code", { class: "merkle-root", title: a.merkleRoot }, a.merkleRoot),
        proof ? h("span", { class: "muted small" }, ` — leafIndex ${proof.leafIndex} of ${proof.leafCount} leaves, ${proof.proof.length} proof hashes`) : null)]);
    }
  }
  return h("section", { id: "verify-record" }, h("h3", {}, a ? "On chain" : "Registry"), facts(rows));
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
      // a Merkle-anchored signature's transaction anchored its tree's root, which the cell names
      s.merkleRoot ? h("span", {}, txLink(s.txHash), " ", h("span", { class: "muted small merkle-root", title: `Merkle root ${s.merkleRoot}` }, `root ${short(s.merkleRoot)}`)) : txLink(s.txHash),
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
