// Verify: drop a file (hashed here, never uploaded), optionally a receipt or an expected signer; the API
// checks the chain and answers one typed verdict, which this page shows as the CLI says it: the title, the
// summary sentence (the same words everywhere), the steps, where and when the record is, and who revoked or
// who else signed.
//
// A receipt that carries an evidence bundle is verified here instead, by offline.js, with no call to the API:
// the proofs lead from one block hash down to the record, and that block hash is checked only if the person
// gives one they trust, or names nodes (any JSON-RPC URLs, up to MAX_NODES) to ask for it, which must agree.
// The receipt may also be a Verifiable Credential of `docchain receipt export --vc` (vc.js reads it back).

import { api } from "./api.js";
import { hashFile } from "./sha256.js";
import { MAX_BYTES } from "./receipt.js";
import { receiptOf, MAX_CREDENTIAL_BYTES } from "./vc.js";
import {
  h, clear, dropZone, progressBar, errorBox, table, badge, timeCell, addrLink, txLink, blockLink, docLink,
  hashText, fmtBytes, isHash, isAddress, loading, metaHashCell, facts, fmtTime, short,
} from "./ui.js";

export async function verifyView(root, _params, { signal }) {
  // refused: the strict reader's message for a dropped receipt it refused, which stays the question asked
  // trusted: the block hash an offline verification is held to, or nodes: what the nodes asked for it answered
  // (offline.js judges whether they agree); trustedFrom: where it came from. credential: the receipt was dropped
  // as a Verifiable Credential
  const state = { file: null, hash: null, receipt: null, receiptName: null, credential: false, refused: null,
                  signer: "", trusted: null, nodes: [], trustedFrom: null };
  const result = h("section", { class: "result", "aria-live": "polite" });
  const progress = progressBar();
  const hashOut = h("div", { class: "hash-out" });
  let run = 0;

  const fileZone = dropZone({
    id: "verify-file", title: "Drop a file to verify", hint: "or click to choose one — it stays on this computer",
    onFile: file => takeFile(file),
  });
  const receiptZone = dropZone({
    id: "verify-receipt", small: true, title: "Receipt (optional)", hint: "a .docchain.json file, or its credential (.vc.json)",
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
      // a credential is read back only if every member is what its bundle says (vc.js, as chain/vc.py)
      if (file.size > MAX_CREDENTIAL_BYTES) throw new Error(`receipt is larger than ${MAX_BYTES} bytes`);
      ({ receipt: state.receipt, credential: state.credential } = receiptOf(new Uint8Array(await file.arrayBuffer())));
      state.refused = null;
      state.trusted = null; state.nodes = []; state.trustedFrom = null;
      offline.show(state.receipt.evidence);
    } catch (err) {
      // A refused receipt is still the question: the file is judged against it, and fails at the receipt
      // step, as the CLI and the API judge the same pair; it is not dropped in favour of a question without it.
      state.receipt = null; state.credential = false; state.refused = err.message;
      offline.show(null);
    }
    if (state.hash) check();
    else if (state.refused) clear(result, errorBox({ title: "Not a receipt", detail: state.refused }));
    else clear(result, h("p", { class: "muted" }, `${state.credential ? "Credential" : "Receipt"} ${file.name} loaded for ${state.receipt.signer}; now drop the document.`));
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
      const verdict = await verifyOffline(state.hash, state.receipt, state.trusted, { nodes: state.nodes });
      if (mine === run) showResult(verdict);
    } catch (err) {
      if (mine === run) clear(result, errorBox({ title: "Could not verify the bundle", detail: err.message }));
    }
  }

  /** The block hash to hold the bundle to: what the nodes the person names answer for the bundle's block (each
   *  asked once; offline.js's chain step requires them to agree, as the CLI's --rpc URL --rpc URL does), else the
   *  one they typed, else none (the verdict then names the hash to check). */
  async function checkBlock() {
    if (!state.receipt || !state.receipt.evidence) return;
    const { number } = state.receipt.evidence.block;
    const { rpcs, trusted } = offline.values();
    offline.note(null);
    if (rpcs.length && trusted) { offline.note("Give the block hash you trust or nodes to ask for it, not both."); return; }
    if (rpcs.length > MAX_NODES) { offline.note(`Name at most ${MAX_NODES} nodes.`); return; }
    if (rpcs.length) {
      const bad = rpcs.find(rpc => !/^https?:\/\/\S+$/.test(rpc));
      if (bad) { offline.note(`Each node must be an http:// or https:// URL, not ${bad}.`); return; }
      try {
        const { blockHashAt } = await import("./offline.js");
        const hashes = await Promise.all(rpcs.map(rpc => blockHashAt(rpc, number, { signal })));
        state.nodes = rpcs.map((rpc, i) => ({ rpc, blockNumber: number, blockHash: hashes[i] }));
        state.trusted = null;
        state.trustedFrom = `block ${number}'s hash as ${rpcs.length === 1 ? "the node" : "the nodes"} at ${rpcs.join(", ")} answer${rpcs.length === 1 ? "s" : ""} it`;
      } catch (err) {
        if (err.name === "AbortError") return;
        offline.note(`Could not ask the node: ${err.message}.`);
        return;
      }
    } else if (trusted) {
      if (!isHash(trusted)) { offline.note("A block hash is 0x followed by 64 hex digits."); return; }
      state.trusted = trusted.toLowerCase(); state.nodes = [];
      state.trustedFrom = "the block hash you gave";
    } else {
      state.trusted = null; state.nodes = []; state.trustedFrom = null;
    }
    if (state.hash) await check();
  }

  function showResult(r) {
    const signers = r.signers || [];
    const bundle = state.receipt && state.receipt.evidence;
    // a bundle checked with no block hash to hold it to: proven down to its header, which only a hash from
    // elsewhere ties to the chain. Not a forgery found: the panel above asks for that hash (or a node to ask)
    const unanchored = bundle && !state.trusted && !state.nodes.length && r.outcome === "invalid" && r.failedStep === "chain";
    const shown = unanchored ? "unanchored" : r.outcome;
    clear(result,
      h("div", { class: `verdict verdict-${shown}`, id: "verdict", dataset: { verdict: shown } },
        h("span", { class: "verdict-icon", "aria-hidden": "true" }, r.outcome === "valid" ? "✓" : unanchored ? "?" : "✗"),
        h("div", {},
          h("h2", {}, unanchored ? "Give the block hash to check"
            : r.outcome === "valid" && r.asOfBlock !== undefined ? `${r.title} as of block ${r.asOfBlock}` : r.title),
          h("p", { class: "summary" }, r.summary),
          bundle ? h("p", { class: "small", id: "offline-source" },
            `Checked against ${state.credential ? "credential" : "receipt"} ${state.receiptName}: its evidence bundle, in this browser, with no call to docchain`,
            state.trustedFrom ? `; the trusted block hash is ${state.trustedFrom}.` : ".")
            : state.receipt || state.refused ? h("p", { class: "small" }, `Checked against receipt ${state.receiptName}.`) : null)),
      supersededSection(r.superseded_by),
      r.steps && r.steps.length ? h("section", {},
        h("h3", {}, "Steps"),
        h("ul", { class: "checks", id: "verdict-steps" }, r.steps.map(c => h("li", { class: c.ok ? "ok" : unanchored ? "pending" : "bad", dataset: { check: c.name } },
          h("span", { class: "check-mark", "aria-hidden": "true" }, c.ok ? "✓" : unanchored ? "?" : "✗"),
          h("strong", {}, c.name), " ", h("span", { class: "detail" }, c.detail))))) : null,
      nodesSection(state.nodes),
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

/** The nodes' answers for the bundle's block, each named, as the CLI's verify --offline --rpc lists them. */
function nodesSection(nodes) {
  if (!nodes.length) return null;
  return h("section", { id: "offline-nodes" },
    h("h3", {}, "Nodes asked"),
    h("ul", {}, nodes.map(n => h("li", { dataset: { rpc: n.rpc } },
      n.blockHash === null ? `${n.rpc} has no block ${n.blockNumber}` : `${n.rpc} has block ${n.blockNumber} as ${n.blockHash}`))));
}

// Nodes asked at once for the bundle's block: enough to outvote a liar, few enough that each is asked once
const MAX_NODES = 5;

/** The nodes named in the panel's field: one per line or comma separated, blanks dropped. */
const nodeList = text => text.split(/[\s,]+/).filter(Boolean);

/** The inputs of an offline verification, shown while the receipt carries an evidence bundle: a block hash the
 *  person trusts, or nodes to ask for it; `onCheck` runs when they ask. */
function offlinePanel(onCheck) {
  const trusted = h("input", { id: "offline-trusted", type: "text", placeholder: "0x + 64 hex digits (optional)",
                               spellcheck: "false", autocomplete: "off" });
  const rpc = h("textarea", { id: "offline-rpc", rows: 2, inputmode: "url", spellcheck: "false", autocomplete: "off",
                              placeholder: `https://… JSON-RPC, one per line or comma separated, up to ${MAX_NODES} (optional)` });
  const block = h("span", {});
  const note = h("p", { class: "small bad-text", id: "offline-note", hidden: true });
  const button = h("button", { id: "offline-check", type: "button", class: "btn" }, "Check the block");
  button.addEventListener("click", onCheck);
  const panel = h("div", { id: "offline-mode", class: "offline", hidden: true },
    h("h3", {}, "Evidence bundle"),
    h("p", { class: "small muted" }, "This receipt carries its proofs: it is verified in your browser, nothing is sent to docchain. The proofs hold if ",
      block, " is on the chain: give its hash, or nodes to ask (they must agree)."),
    h("label", { class: "field", for: "offline-trusted" }, h("span", {}, "Trusted block hash"), trusted),
    h("label", { class: "field", for: "offline-rpc" }, h("span", {}, "…or ask nodes"), rpc),
    button, note);
  return {
    panel,
    show(evidence) {
      panel.hidden = !evidence;
      trusted.value = ""; rpc.value = "";
      note.hidden = true;
      if (evidence) clear(block, `block ${evidence.block.number}`);
    },
    values: () => ({ trusted: trusted.value.trim(), rpcs: nodeList(rpc.value) }),
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
