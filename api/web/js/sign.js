// Sign: connect an EIP-1193 wallet, hash the file here, have the wallet sign docchain's EIP-712
// Registration (eth_signTypedData_v4), submit it, and follow the submission live (SSE, long-poll fallback)
// to anchored and confirmed; then offer the receipt.

import { api, ApiError } from "./api.js";
import { hashFile } from "./sha256.js";
import {
  h, clear, dropZone, progressBar, errorBox, badge, txLink, blockLink, addrLink, docLink, hashText, fmtBytes,
  isHash, facts, timeCell, ZERO32,
} from "./ui.js";

const STEPS = ["signed", "pending", "submitted", "anchored", "confirmed"];
const FINAL = ["confirmed", "failed", "revoked"];
const DEADLINE_S = 3600;  // a relayer can submit the signature for an hour

export async function signView(root, _params, { signal, ctx }) {
  const s = { account: null, walletChain: null, file: null, hash: null, busy: false };
  let stopFollow = () => {};

  const walletBox = h("div", { class: "wallet" });
  const connectBtn = h("button", { type: "button", id: "connect", class: "btn" }, "Connect wallet");
  const progress = progressBar();
  const hashOut = h("div", { class: "hash-out" });
  const store = h("input", { type: "checkbox", id: "sign-store" });
  const supersedes = h("input", { type: "text", id: "sign-supersedes", placeholder: "0x… SHA-256 of the replaced document (optional)",
                                  spellcheck: "false", autocomplete: "off" });
  const submitBtn = h("button", { type: "button", id: "sign-submit", class: "btn btn-primary", disabled: true }, "Sign and submit");
  const status = h("section", { class: "status", "aria-live": "polite" });
  const fileZone = dropZone({ id: "sign-file", title: "Drop the document to sign", hint: "or click to choose — hashed on this computer",
                              onFile: f => takeFile(f) });

  clear(root,
    h("h1", {}, "Sign a document"),
    h("p", { class: "lead" }, "Your wallet signs the document’s SHA-256 (EIP-712, no gas: docchain’s relayer pays). The signature, not the file, goes on chain."),
    h("ol", { class: "steps-form" },
      h("li", { class: "card" }, h("h2", {}, "1. Wallet"), walletBox),
      h("li", { class: "card" }, h("h2", {}, "2. Document"), fileZone, progress, hashOut),
      h("li", { class: "card" }, h("h2", {}, "3. Sign"),
        h("label", { class: "check", for: "sign-store" }, store,
          h("span", {}, "Also upload the file so it can be downloaded from this docchain server later")),
        h("label", { class: "field", for: "sign-supersedes" }, h("span", {}, "Replaces an earlier document"), supersedes),
        h("div", { class: "actions" }, submitBtn))),
    status);

  function renderWallet() {
    if (!window.ethereum) {
      clear(walletBox, h("div", { class: "box empty" }, h("strong", {}, "No wallet found"),
        h("p", {}, "Signing needs an Ethereum wallet in this browser (an EIP-1193 provider such as MetaMask). Verification works without one.")));
      return;
    }
    if (!s.account) { clear(walletBox, connectBtn, h("p", { class: "muted small" }, "Your key stays in your wallet; docchain only sees the signature.")); return; }
    const chain = ctx.chain;
    const mismatch = chain && s.walletChain !== null && s.walletChain !== chain.chainId;
    clear(walletBox,
      facts([["Account", addrLink(s.account, { full: true })],
             ["Wallet chain", String(s.walletChain ?? "?")],
             chain ? ["Registry", h("span", {}, `chain ${chain.chainId} · `, addrLink(chain.contract))] : null]),
      mismatch ? h("div", { class: "box warn" }, `Your wallet is on chain ${s.walletChain} but this docchain registry is on chain ${chain.chainId}. Switch networks in the wallet; most wallets refuse to sign for another chain.`) : null);
  }

  connectBtn.addEventListener("click", async () => {
    try {
      const [accounts, chainHex] = await Promise.all([
        window.ethereum.request({ method: "eth_requestAccounts" }),
        window.ethereum.request({ method: "eth_chainId" }),
        ctx.chainInfo(),
      ]);
      if (!accounts || !accounts.length) throw new Error("the wallet shared no account");
      s.account = accounts[0];
      s.walletChain = parseInt(chainHex, 16);
      renderWallet();
      updateButton();
    } catch (err) {
      clear(status, errorBox(walletError(err), "Connect the wallet again to retry."));
    }
  });

  if (window.ethereum && window.ethereum.on) {
    const onAccounts = a => { s.account = a && a[0] || null; renderWallet(); updateButton(); };
    const onChain = c => { s.walletChain = parseInt(c, 16); renderWallet(); };
    window.ethereum.on("accountsChanged", onAccounts);
    window.ethereum.on("chainChanged", onChain);
    const prev = stopFollow;
    stopFollow = () => { prev(); window.ethereum.removeListener?.("accountsChanged", onAccounts); window.ethereum.removeListener?.("chainChanged", onChain); };
  }
  renderWallet();

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
    submitBtn.disabled = !(s.account && s.hash) || s.busy;
    submitBtn.title = !s.account ? "connect a wallet first" : !s.hash ? "choose a document first" : "";
  }

  submitBtn.addEventListener("click", async () => {
    const replaced = supersedes.value.trim().toLowerCase();
    if (replaced && !isHash(replaced)) {
      clear(status, errorBox({ title: "Not a SHA-256 hash", detail: "“Replaces” must be 0x followed by 64 hex digits" }));
      return;
    }
    stopFollow();
    s.busy = true; updateButton();
    try {
      const chain = await ctx.chainInfo(true);
      const message = {
        docHash: s.hash, signer: s.account, metadataHash: ZERO32, supersedes: replaced || ZERO32,
        deadline: Math.floor(Date.now() / 1000) + DEADLINE_S,
      };
      const typed = {
        types: { EIP712Domain: chain.types.EIP712Domain, Registration: chain.types.Registration },
        primaryType: "Registration", domain: chain.domain, message,
      };
      renderProgress({ state: "signing" });
      let signature;
      try {
        signature = await window.ethereum.request({ method: "eth_signTypedData_v4", params: [s.account, JSON.stringify(typed)] });
      } catch (err) {
        throw walletError(err);
      }
      // some wallets (hardware keys) answer v as 0/1; the registry, like OpenZeppelin's ECDSA, wants 27/28
      if (/^0x[0-9a-fA-F]{128}0[01]$/.test(signature)) signature = signature.slice(0, 130) + (parseInt(signature.slice(130), 16) + 27).toString(16);
      renderProgress({ state: "signed" });
      const submission = { registration: message, signature, fileName: s.file.name, fileSize: s.file.size };
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
      clear(status, errorBox(err));
    } finally {
      s.busy = false; updateButton();
    }
  });

  function renderProgress(sub, note) {
    const state = sub.state;
    const idx = state === "signing" ? -1 : STEPS.indexOf(state);
    const receiptReady = ["anchored", "confirmed", "revoked"].includes(state) && sub.docHash;
    const fileName = (s.file && s.file.name) || "document";
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
          ["Document", docLink(sub.docHash, { full: true })],
          ["Signer", addrLink(sub.signer, { full: true })],
          ["Submission", h("code", {}, sub.id)],
          sub.txHash ? ["Transaction", txLink(sub.txHash, { full: true })] : null,
          sub.blockNumber ? ["Block", blockLink(sub.blockNumber)] : null,
          sub.timestamp ? ["Time", timeCell(sub.timestamp)] : null,
          sub.blockNumber ? ["Confirmations", String(sub.confirmations ?? 0)] : null,
        ]) : null,
        receiptReady ? h("div", { class: "actions" },
          h("a", { class: "btn btn-primary", id: "receipt-download", href: `/v1/documents/${sub.docHash}/receipts/${sub.signer}`,
                   download: `${fileName}.docchain.json` }, "Download receipt"),
          h("span", { class: "muted small" }, "Keep it next to the file: with any Ethereum node it proves the signature without docchain.")) : null));
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

  return () => stopFollow();
}

function walletError(err) {
  if (err instanceof ApiError) return err;
  if (err && err.code === 4001) return { title: "Signature request rejected", detail: "You declined in the wallet; nothing was submitted." };
  return { title: "The wallet returned an error", detail: (err && err.message) || String(err) };
}
