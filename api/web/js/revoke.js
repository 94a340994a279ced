// Revoke: the signer of a document withdraws their signature. The wallet signs docchain's EIP-712
// Revocation(docHash, signer, nonce, deadline) — a different type from Registration, with the signer's
// on-chain nonce, so no registration signature can be replayed as a revocation — and the API relays it.
// Then the request is followed (GET /v1/documents/{docHash}/revocations/{signer}) until it is mined and the
// indexer sees the Revoked event — or until the relayer gives up on it (the chain refused it), shown with its
// error. An earlier request made from this browser (still pending, or failed) is picked up when the page opens.

import { api, apiOrNull } from "./api.js";
import { sameAddress } from "./keccak.js";
import { walletPanel, signTypedData, sharedAccount, typedDataFor } from "./wallet.js";
import { apiKeyField, authHint } from "./apikey.js";
import {
  h, clear, errorBox, badge, addrLink, docLink, txLink, blockLink, hashText, isHash, facts, timeCell, empty, loading,
} from "./ui.js";

const STEPS = ["signed", "pending", "revoked"];
const DEADLINE_S = 3600;  // the relayer may hold the revocation for an hour (node outage, retries)
const POLL_MS = 750;      // no notification stream exists for revocations: poll the request's status
// "docHash/signer" pairs this browser asked to revoke: only those are looked up when the page opens (asking
// for every signer would be a 404, logged by the browser as an error, for everyone who never revoked)
const ASKED_ITEM = "docchain.revocationsAsked";

function asked() {
  try { return JSON.parse(localStorage.getItem(ASKED_ITEM) || "[]"); } catch { return []; }
}

function remember(pair) {
  try {
    localStorage.setItem(ASKED_ITEM, JSON.stringify([...asked().filter(p => p !== pair), pair].slice(-200)));
  } catch { /* storage disabled: the request is still followed on this page */ }
}

export async function revokeView(root, [hash], { signal, ctx }) {
  clear(root, h("h1", {}, "Revoke a signature"), loading());
  if (!isHash(hash)) {
    clear(root, h("h1", {}, "Revoke a signature"), errorBox({ title: "Not a document hash", detail: `“${hash}” is not 0x + 64 hex digits` }));
    return;
  }
  const docHash = hash.toLowerCase();
  let doc = await apiOrNull(`/v1/documents/${docHash}`, { signal });
  if (!doc) {
    clear(root, h("h1", {}, "Revoke a signature"), h("p", {}, hashText(docHash)),
      empty("Unknown document", "No one has signed a document with this SHA-256 on this registry: there is nothing to revoke."));
    return;
  }
  const s = { busy: false, done: false };
  const status = h("section", { class: "status", "aria-live": "polite" });
  const record = h("div", { class: "record" });
  const submitBtn = h("button", { type: "button", id: "revoke-submit", class: "btn btn-danger", disabled: true }, "Sign revocation");
  const apiKey = apiKeyField();
  const wallet = walletPanel({ ctx, onChange: () => accountChanged(), onError: box => clear(status, box),
                               note: "Connect the wallet whose account signed this document." });

  clear(root,
    h("h1", {}, "Revoke a signature"),
    h("p", { class: "lead" }, "Withdraw your signature of this document. Your wallet signs a revocation (EIP-712, no gas: docchain’s relayer pays); the original record stays on chain, marked revoked from then on, and verification reports it as revoked."),
    h("ol", { class: "steps-form" },
      h("li", { class: "card" }, h("h2", {}, "1. Wallet"), wallet.el),
      h("li", { class: "card" }, h("h2", {}, "2. Your signature"), h("p", {}, docLink(doc.docHash, { full: true })), record),
      h("li", { class: "card" }, h("h2", {}, "3. Revoke"),
        h("p", { class: "muted small" }, "This cannot be undone: to sign the document again later, it would be a new record."),
        apiKey.el,
        h("div", { class: "actions" }, submitBtn))),
    status);

  const mine = () => wallet.state.account && doc.signers.find(x => sameAddress(x.signer, wallet.state.account));

  function renderRecord() {
    const account = wallet.state.account, entry = mine();
    let ok = false;
    if (!account) clear(record, h("p", { class: "muted" }, "Connect your wallet to see your signature of this document."));
    else if (!entry) clear(record, h("div", { class: "box warn", id: "not-signer" }, addrLink(account, { full: true }), " has not signed this document; only a signer can revoke their own signature."));
    else {
      ok = ["anchored", "confirmed"].includes(entry.state) && !entry.revokedAt;
      clear(record,
        facts([
          ["State", badge(entry.state)],
          ["Signed at", timeCell(entry.timestamp)],
          ["Block", blockLink(entry.blockNumber)],
          ["Transaction", txLink(entry.txHash)],
          entry.revokedAt ? ["Revoked at", timeCell(entry.revokedAt)] : null,
        ]),
        !ok && !entry.revokedAt ? h("p", { class: "muted small" }, "Not on chain yet: a signature can be revoked once it is anchored.") : null);
    }
    submitBtn.disabled = !ok || s.busy || s.done;
  }

  submitBtn.addEventListener("click", async () => {
    const account = wallet.state.account;
    s.busy = true; renderRecord();
    try {
      // The API checks the nonce against the registry's, so ask it rather than counting here
      const [chain, { nonce }] = await Promise.all([ctx.chainInfo(true), api(`/v1/nonces/${account}`, { signal })]);
      const message = { docHash, signer: account, nonce, deadline: Math.floor(Date.now() / 1000) + DEADLINE_S };
      renderProgress({ state: "signing" });
      const signature = await signTypedData(account, typedDataFor(chain, "revocation", message));
      renderProgress({ state: "signed" });
      const accepted = await api("/v1/revocations", { method: "POST", json: { revocation: message, signature }, signal });
      remember(`${docHash}/${account.toLowerCase()}`);
      s.done = true;
      await follow(accepted);
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(status, errorBox(err, authHint(err, apiKey)));
    } finally {
      s.busy = false; renderRecord();
    }
  });

  function renderProgress(rev, note) {
    const state = rev.state;
    const idx = state === "signing" ? -1 : STEPS.indexOf(state === "submitted" ? "pending" : state);
    const title = { signing: "Waiting for your wallet…", revoked: "Signature revoked", failed: "Revocation failed" }[state] || "Revocation";
    clear(status,
      h("div", { class: `card status-card state-${state}`, id: "revocation", dataset: { state } },
        h("div", { class: "status-head" }, h("h2", {}, title), state !== "signing" ? badge(state) : null),
        h("ol", { class: "stepper" }, STEPS.map((step, i) => h("li", {
          class: state === "failed" ? (i < 1 ? "done" : "") : i < idx ? "done" : i === idx ? (step === "revoked" ? "done" : "now") : "" }, step))),
        note ? h("p", { class: "muted small" }, note) : null,
        state === "failed" ? h("div", { class: "box error", role: "alert", id: "revocation-error" },
          h("strong", {}, "The chain refused this revocation; the relayer gave up on it."),
          h("p", { class: "detail" }, rev.error || "no reason was recorded"),
          h("p", { class: "muted" }, "Your signature is not revoked. You can sign a new revocation and try again.")) : null,
        rev.signer ? facts([
          ["Document", docLink(rev.docHash, { full: true })],
          ["Signer", addrLink(rev.signer, { full: true })],
          ["Nonce", String(rev.nonce)],
          rev.txHash ? ["Transaction", txLink(rev.txHash, { full: true })] : null,
          rev.createdAt ? ["Requested at", timeCell(Math.floor(rev.createdAt))] : null,
          rev.revokedAt ? ["Revoked at", timeCell(rev.revokedAt)] : null,
        ]) : null,
        state === "revoked" ? h("div", { class: "actions" },
          h("a", { class: "btn", href: `#/doc/${rev.docHash}` }, "Document page"),
          h("a", { class: "btn", href: "#/verify" }, "Verify the file"),
          h("span", { class: "muted small" }, "Verification now reports this signature as revoked.")) : null));
  }

  /** The signer's revocation requests for this document, newest first; null when there are none. */
  const requestsOf = signer => apiOrNull(`/v1/documents/${docHash}/revocations/${signer}`, { signal });

  async function follow(accepted) {
    // `request` is the API's record of this revocation; `shown` what the page says: "revoked" only once the
    // indexer has the Revoked event, so the record above and the verify page agree with this card
    let request = { ...accepted };
    const signer = accepted.signer;
    const started = Date.now();
    let lost = null;
    for (;;) {
      if (request.state === "failed") {
        s.done = false;  // nothing happened on chain: a new revocation may be signed
        renderProgress({ ...request, docHash, signer });
        renderRecord();
        return;
      }
      if (request.state === "revoked") {
        const entry = mine();
        if (entry && (entry.state === "revoked" || entry.revokedAt)) {
          renderProgress({ ...request, docHash, signer, revokedAt: entry.revokedAt });
          renderRecord();
          ctx.refreshNode();
          return;
        }
      }
      const shown = request.state === "revoked" ? "submitted" : request.state;
      // the worker may wait on the node (outage, retries); after a minute, say we are still waiting
      const slow = Date.now() - started > 60000 ? "Still waiting for the relayer to put the revocation on chain…" : null;
      renderProgress({ ...request, docHash, signer, state: shown }, lost || slow);
      await new Promise(r => setTimeout(r, POLL_MS));
      if (signal.aborted) return;
      try {
        const found = await requestsOf(signer);
        const same = found && found.revocations.find(r => Number(r.nonce) === Number(request.nonce));
        if (same) request = { ...request, ...same };
        if (request.state === "revoked") doc = await api(`/v1/documents/${docHash}`, { signal });
        lost = null;
      } catch (err) {
        if (err.name === "AbortError") return;
        lost = `Lost contact with the API (${err.message}); retrying…`;
      }
    }
  }

  /** A newly connected account: show its signature, and its latest revocation request if this browser made
   *  one (still on its way: follow it; failed: show why). */
  let seen = null;
  async function accountChanged() {
    renderRecord();
    const account = wallet.state.account;
    if (!account || account === seen || s.busy || s.done) return;
    seen = account;
    if (!asked().includes(`${docHash}/${account.toLowerCase()}`)) return;
    let found = null;
    try {
      found = await requestsOf(account);
    } catch (err) {
      if (err.name !== "AbortError") clear(status, errorBox(err));
      return;
    }
    const latest = found && found.revocations[0];
    if (!latest || signal.aborted || wallet.state.account !== account || s.busy) return;
    const request = { ...latest, docHash, signer: found.signer };
    if (latest.state === "failed") {
      renderProgress(request, "Your last revocation request of this document did not go through.");
    } else if (!(mine() || {}).revokedAt) {
      s.done = true;
      renderRecord();
      await follow(request);
    }
  }

  // Coming from the document page the wallet already shares its account: use it without a prompt.
  const account = await sharedAccount();
  if (account && !wallet.state.account && !signal.aborted) {
    await ctx.chainInfo().catch(() => null);
    wallet.adopt(account, await window.ethereum.request({ method: "eth_chainId" }).catch(() => null));
  }
  renderRecord();
  return () => wallet.cleanup();
}
