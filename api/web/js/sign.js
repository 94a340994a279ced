// Sign: connect an EIP-1193 wallet, hash the file here, have the wallet sign docchain's EIP-712
// Registration (eth_signTypedData_v4), submit it, and follow the submission live (SSE, long-poll fallback)
// to anchored and confirmed; then offer the receipt. Optional metadata (title, note, any JSON object) is
// signed through its hash and sent along, so the API can check the hash before accepting it.
//
// Private (docs/protocol.md, "Private mode"): the wallet signs keccak256(sha256(file) ‖ salt), a random 32-byte
// salt from crypto.getRandomValues, in place of the file's SHA-256; the API is told nothing of the file (no name,
// size nor upload), and the downloaded receipt is the API's completed here with the salt and the file's SHA-256,
// name and size: the one place the salt is kept.

import { api } from "./api.js";
import { hashFile, toHex } from "./sha256.js";
import { keccak256 } from "./keccak.js";
import { metadataHash, checkMetadata } from "./metadata.js";
import { walletPanel, signTypedData, typedDataFor } from "./wallet.js";
import { apiKeyField, authHint } from "./apikey.js";
import {
  h, clear, dropZone, progressBar, errorBox, badge, txLink, blockLink, addrLink, docLink, hashText, fmtBytes,
  isHash, facts, timeCell, metaHashCell, ZERO32,
} from "./ui.js";

const STEPS = ["signed", "pending", "submitted", "anchored", "confirmed"];
const FINAL = ["confirmed", "failed", "revoked"];
const DEADLINE_S = 3600;  // a relayer can submit the signature for an hour

export async function signView(root, _params, { signal, ctx }) {
  const s = { file: null, hash: null, busy: false };
  let stopFollow = () => {};

  const status = h("section", { class: "status", "aria-live": "polite" });
  const wallet = walletPanel({ ctx, onChange: () => updateButton(), onError: box => clear(status, box) });
  const meta = metadataEditor();
  const apiKey = apiKeyField();
  // a "Metadata cannot be signed" box is stale as soon as the metadata is edited
  meta.el.addEventListener("input", () => { if (status.querySelector(".meta-error")) clear(status); });
  const progress = progressBar();
  const hashOut = h("div", { class: "hash-out" });
  const store = h("input", { type: "checkbox", id: "sign-store" });
  const privateBox = h("input", { type: "checkbox", id: "sign-private" });
  // a stored file would give the server the document a private registration hides: the two exclude each other
  privateBox.addEventListener("change", () => { store.disabled = privateBox.checked; if (privateBox.checked) store.checked = false; });
  const supersedes = h("input", { type: "text", id: "sign-supersedes", placeholder: "0x… SHA-256 of the replaced document (optional)",
                                  spellcheck: "false", autocomplete: "off" });
  const submitBtn = h("button", { type: "button", id: "sign-submit", class: "btn btn-primary", disabled: true }, "Sign and submit");
  const fileZone = dropZone({ id: "sign-file", title: "Drop the document to sign", hint: "or click to choose — hashed on this computer",
                              onFile: f => takeFile(f) });

  clear(root,
    h("h1", {}, "Sign a document"),
    h("p", { class: "lead" }, "Your wallet signs the document’s SHA-256 (EIP-712, no gas: docchain’s relayer pays). The signature, not the file, goes on chain."),
    h("ol", { class: "steps-form" },
      h("li", { class: "card" }, h("h2", {}, "1. Wallet"), wallet.el),
      h("li", { class: "card" }, h("h2", {}, "2. Document"), fileZone, progress, hashOut),
      h("li", { class: "card" }, h("h2", {}, "3. Sign"),
        h("label", { class: "check", for: "sign-store" }, store,
          h("span", {}, "Also upload the file so it can be downloaded from this docchain server later")),
        h("label", { class: "check", for: "sign-private" }, privateBox,
          h("span", {}, "Private: put only a salted commitment on chain, so that no one can find this file there; "
            + "verifying it then needs the receipt, which alone keeps the salt")),
        h("label", { class: "field", for: "sign-supersedes" }, h("span", {}, "Replaces an earlier document"), supersedes),
        meta.el,
        apiKey.el,
        h("div", { class: "actions" }, submitBtn))),
    status);

  async function takeFile(file) {
    s.file = file; s.hash = null;
    updateButton();
    clear(hashOut);
    try {
      const { hash, method, ms } = await hashFile(file, {
        signal,
        onProgress: progress.forFile(file),
      });
      if (s.file !== file) return;
      progress.hide();
      s.hash = hash;
      clear(hashOut, h("div", { class: "kv" }, h("span", { class: "k" }, "SHA-256"), hashText(hash)),
        h("p", { class: "muted small" }, `${file.name} · ${fmtBytes(file.size)} · ${method}, ${Math.max(1, Math.round(ms))} ms`));
      updateButton();
    } catch (err) {
      if (err.name === "AbortError") return;
      progress.hide();
      clear(hashOut, errorBox({ title: "Could not read the file", detail: err.message }));
    }
  }

  function updateButton() {
    const account = wallet.state.account;
    submitBtn.disabled = !(account && s.hash) || s.busy;
    submitBtn.title = !account ? "connect a wallet first" : !s.hash ? "choose a document first" : "";
  }

  submitBtn.addEventListener("click", async () => {
    const replaced = supersedes.value.trim().toLowerCase();
    if (replaced && !isHash(replaced)) {
      clear(status, errorBox({ title: "Not a SHA-256 hash", detail: "“Replaces” must be 0x followed by 64 hex digits" }));
      return;
    }
    let metadata;
    try {
      metadata = meta.value();
    } catch (err) {
      clear(status, h("div", { class: "meta-error" }, errorBox({ title: "Metadata cannot be signed", detail: err.message })));
      return;
    }
    const account = wallet.state.account;
    stopFollow();
    s.busy = true; updateButton();
    try {
      const chain = await ctx.chainInfo(true);
      const opening = privateBox.checked ? newOpening(s.hash) : null;
      const message = {
        docHash: opening ? opening.commitment : s.hash, signer: account, metadataHash: metadataHash(metadata), supersedes: replaced || ZERO32,
        deadline: Math.floor(Date.now() / 1000) + DEADLINE_S,
      };
      renderProgress({ state: "signing" });
      const signature = await signTypedData(account, typedDataFor(chain, "registration", message));
      renderProgress({ state: "signed" });
      // a private submission tells the server nothing of the file: the receipt gets its name and size here
      const submission = opening ? { registration: message, signature, private: true }
        : { registration: message, signature, fileName: s.file.name, fileSize: s.file.size };
      s.opening = opening;
      s.named = { sha256: s.hash, name: s.file.name, size: s.file.size };
      // the API hashes this object again and must find the metadataHash that was signed
      if (metadata) submission.metadata = metadata;
      s.metadataHash = message.metadataHash;
      let accepted;
      if (store.checked) {
        const form = new FormData();
        form.append("submission", JSON.stringify(submission));
        form.append("file", s.file, s.file.name);
        accepted = await api("/v1/documents", { method: "POST", form, signal });
      } else {
        accepted = await api("/v1/documents", { method: "POST", json: submission, signal });
      }
      follow(accepted);
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(status, errorBox(err, authHint(err, apiKey)));
    } finally {
      s.busy = false; updateButton();
    }
  });

  function renderProgress(sub, note) {
    const state = sub.state;
    const idx = state === "signing" ? -1 : STEPS.indexOf(state);
    const receiptReady = ["anchored", "confirmed", "revoked"].includes(state) && sub.docHash;
    const fileName = (s.named && s.named.name) || "document";
    const href = `/v1/documents/${sub.docHash}/receipts/${sub.signer}`;
    clear(status,
      h("div", { class: `card status-card state-${state}`, id: "submission", dataset: { state } },
        h("div", { class: "status-head" },
          h("h2", {}, state === "signing" ? "Waiting for your wallet…" : state === "failed" ? "Submission failed" : "Submission"),
          state !== "signing" ? badge(state) : null),
        h("ol", { class: "stepper" }, STEPS.map((step, i) => h("li", {
          class: state === "failed" ? (i <= 1 ? "done" : "") : i < idx ? "done" : i === idx ? (step === "confirmed" ? "done" : "now") : "" }, step))),
        note ? h("p", { class: "muted small" }, note) : null,
        sub.error ? h("div", { class: "box error" }, sub.error) : null,
        sub.id ? facts([
          s.opening ? ["Commitment (private)", docLink(sub.docHash, { full: true })] : ["Document", docLink(sub.docHash, { full: true })],
          s.opening ? ["SHA-256 (not sent)", hashText(s.named.sha256)] : null,
          ["Signer", addrLink(sub.signer, { full: true })],
          ["Metadata hash", metaHashCell(s.metadataHash)],
          ["Submission", h("code", {}, sub.id)],
          sub.txHash ? ["Transaction", txLink(sub.txHash, { full: true })] : null,
          sub.blockNumber ? ["Block", blockLink(sub.blockNumber)] : null,
          sub.timestamp ? ["Time", timeCell(sub.timestamp)] : null,
          sub.blockNumber ? ["Confirmations", String(sub.confirmations ?? 0)] : null,
        ]) : null,
        receiptReady ? h("div", { class: "actions" },
          s.opening ? privateDownload(href, fileName, s.opening, s.named)
            : h("a", { class: "btn btn-primary", id: "receipt-download", href, download: `${fileName}.docchain.json` }, "Download receipt"),
          h("span", { class: "muted small" }, s.opening
            ? "Private: this receipt is the only copy of the salt. Keep it next to the file: without it, the signature cannot be found or verified."
            : "Keep it next to the file: with any Ethereum node it proves the signature without docchain.")) : null,
        s.opening && sub.id && !receiptReady ? h("p", { class: "muted small", id: "private-note" },
          "Private: keep this page open until the receipt can be downloaded; it alone will hold the salt.") : null));
  }

  /** The private receipt: the API's (which cannot know the salt) completed with the salt and the file's SHA-256,
   *  name and size, offered as a file of its own. */
  function privateDownload(href, fileName, opening, named) {
    const link = h("a", { class: "btn btn-primary", id: "receipt-download", href: "#", download: `${fileName}.docchain.json` }, "Download receipt");
    link.addEventListener("click", async ev => {
      if (link.dataset.ready) return;  // the completed receipt's blob URL: the browser downloads it
      ev.preventDefault();
      try {
        const receipt = await api(href, { signal });
        if (receipt.eip712.message.docHash !== opening.commitment) throw new Error("the server's receipt is of another docHash than this commitment");
        receipt.document = { sha256: named.sha256, name: named.name, size: named.size };
        receipt.private = { salt: opening.salt };
        const blob = new Blob([JSON.stringify(receipt, null, 2) + "\n"], { type: "application/json" });
        link.href = URL.createObjectURL(blob);
        link.dataset.ready = "1";
        link.click();
      } catch (err) {
        if (err.name === "AbortError") return;
        clear(status, errorBox({ title: "Could not complete the private receipt", detail: err.message }));
      }
    });
    return link;
  }

  function follow(accepted) {
    let sub = { ...accepted, confirmations: 0 };
    renderProgress(sub);
    let closed = false, es = null;
    const update = next => {
      const changed = next.state !== sub.state;
      sub = { ...sub, ...next };
      renderProgress(sub);
      if (changed) ctx.refreshNode();
      if (FINAL.includes(sub.state)) stop();
    };
    const stop = () => { closed = true; if (es) es.close(); };
    stopFollow = stop;
    if (window.EventSource) {
      es = new EventSource(accepted.eventsUrl);
      es.addEventListener("state", ev => update(JSON.parse(ev.data)));
      es.onerror = () => {
        // the server closes the stream at a final state; otherwise fall back to long-polling
        if (es) es.close();
        es = null;
        if (!closed) longPoll();
      };
    } else {
      longPoll();
    }
    async function longPoll() {
      while (!closed) {
        try {
          update(await api(`${accepted.statusUrl}?wait=25&until=confirmed`, { signal }));
        } catch (err) {
          if (err.name === "AbortError") return;
          renderProgress(sub, `Lost contact with the API (${err.message}); retrying…`);
          await new Promise(r => setTimeout(r, 3000));
        }
      }
    }
  }

  return () => { stopFollow(); wallet.cleanup(); };
}


/** A private registration's opening of ``sha256`` (0x hex): a random 32-byte salt and the commitment
 *  keccak256(sha256 ‖ salt) the wallet signs as its docHash (chain/hashing.py's commitment). */
export function newOpening(sha256) {
  const salt = crypto.getRandomValues(new Uint8Array(32));
  const digest = Uint8Array.from(sha256.slice(2).match(/../g), b => parseInt(b, 16));
  const joined = new Uint8Array(64);
  joined.set(digest);
  joined.set(salt, 32);
  return { salt: toHex(salt), commitment: toHex(keccak256(joined)) };
}


/**
 * Optional metadata: name/value rows (title and note to start with) and, for anything richer, a JSON
 * object. The hash shown below is the metadataHash the wallet will sign; it updates as you type.
 * value() → the metadata object, or null for none; it throws an Error that says what is wrong.
 */
function metadataEditor() {
  const rows = h("div", { class: "meta-rows" });
  const json = h("textarea", { id: "sign-metadata-json", rows: 4, spellcheck: "false", placeholder: '{"project": "Apollo", "version": 2}' });
  const preview = h("p", { class: "small meta-hash", id: "sign-metadata-hash", "aria-live": "polite" });

  const addRow = (key = "", value = "") => {
    const keyIn = h("input", { type: "text", class: "meta-key", value: key, placeholder: "field", "aria-label": "field name", autocomplete: "off" });
    const valueIn = h("input", { type: "text", class: "meta-value", placeholder: "value", "aria-label": `value of ${key || "the field"}`, autocomplete: "off" });
    const row = h("div", { class: "meta-row" }, keyIn, valueIn,
      h("button", { type: "button", class: "copy", title: "remove this field", "aria-label": "remove this field",
                    onclick: () => { row.remove(); update(); } }, "×"));
    rows.append(row);
    return row;
  };

  function value() {
    let metadata = {};
    const text = json.value.trim();
    if (text) {
      try { metadata = JSON.parse(text); } catch (err) { throw new Error(`the JSON is not valid (${err.message})`); }
      if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) throw new Error("the JSON must be an object: {\"name\": value, …}");
    }
    for (const row of rows.querySelectorAll(".meta-row")) {
      const key = row.querySelector(".meta-key").value.trim();
      const val = row.querySelector(".meta-value").value.trim();
      if (!val) continue;  // an empty field is not signed: the starting rows are suggestions
      if (!key) throw new Error(`the value “${val}” needs a field name`);
      if (Object.hasOwn(metadata, key)) throw new Error(`the field “${key}” is given twice`);
      metadata[key] = val;
    }
    checkMetadata(metadata);
    return Object.keys(metadata).length ? metadata : null;
  }

  function update() {
    try {
      const m = value();
      clear(preview, m ? h("span", {}, "Metadata hash (signed): ", h("code", { class: "wrap" }, metadataHash(m)))
                       : h("span", { class: "muted" }, "No metadata: the signed metadataHash is zero."));
      preview.classList.remove("bad-text");
    } catch (err) {
      clear(preview, err.message);
      preview.classList.add("bad-text");
    }
  }

  addRow("title");
  addRow("note");
  const el = h("fieldset", { class: "meta" },
    h("legend", {}, "Metadata (optional)"),
    h("p", { class: "muted small" }, "Signed with the document through its keccak256; the text itself is kept by this docchain server, not put on chain."),
    rows,
    h("button", { type: "button", class: "btn btn-small", id: "meta-add", onclick: () => addRow().querySelector(".meta-key").focus() }, "Add field"),
    h("details", {}, h("summary", {}, "More as a JSON object"), json),
    preview);
  el.addEventListener("input", update);
  update();
  return { el, value };
}
