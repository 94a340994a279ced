// Revoke: the signer of a document withdraws their signature. The wallet signs docchain's EIP-712
// Revocation(docHash, signer, nonce, deadline) — a different type from Registration, with the signer's
// on-chain nonce, so no registration signature can be replayed as a revocation — and the API relays it.
// Then the record is followed until the indexer sees the Revoked event.

import { api, apiOrNull } from "./api.js";
import { sameAddress } from "./keccak.js";
import { walletPanel, signTypedData, sharedAccount } from "./wallet.js";
import {
  h, clear, errorBox, badge, addrLink, docLink, txLink, blockLink, hashText, isHash, facts, timeCell, empty, loading,
} from "./ui.js";

const STEPS = ["signed", "pending", "revoked"];
const DEADLINE_S = 3600;  // the relayer may hold the revocation for an hour (node outage, retries)
const POLL_MS = 750;      // no notification stream exists for revocations: poll the document's status

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
  const wallet = walletPanel({ ctx, onChange: () => renderRecord(), onError: box => clear(status, box),
                               note: "Connect the wallet whose account signed this document." });

  clear(root,
    h("h1", {}, "Revoke a signature"),
    h("p", { class: "lead" }, "Withdraw your signature of this document. Your wallet signs a revocation (EIP-712, no gas: docchain’s relayer pays); the original record stays on chain, marked revoked from then on, and verification reports it as revoked."),
    h("ol", { class: "steps-form" },
      h("li", { class: "card" }, h("h2", {}, "1. Wallet"), wallet.el),
      h("li", { class: "card" }, h("h2", {}, "2. Your signature"), h("p", {}, docLink(doc.docHash, { full: true })), record),
      h("li", { class: "card" }, h("h2", {}, "3. Revoke"),
        h("p", { class: "muted small" }, "This cannot be undone: to sign the document again later, it would be a new record."),
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
      const typed = {
        types: { EIP712Domain: chain.types.EIP712Domain, Revocation: chain.types.Revocation },
        primaryType: "Revocation", domain: chain.domain, message,
      };
      renderProgress({ state: "signing" });
      const signature = await signTypedData(account, typed);
      renderProgress({ state: "signed" });
      const accepted = await api("/v1/revocations", { method: "POST", json: { revocation: message, signature }, signal });
      s.done = true;
      await follow(accepted);
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(status, errorBox(err));
    } finally {
      s.busy = false; renderRecord();
    }
  });

  function renderProgress(rev, note) {
    const state = rev.state;
    const idx = state === "signing" ? -1 : STEPS.indexOf(state === "submitted" ? "pending" : state);
    clear(status,
      h("div", { class: `card status-card state-${state}`, id: "revocation", dataset: { state } },
        h("div", { class: "status-head" },
          h("h2", {}, state === "signing" ? "Waiting for your wallet…" : state === "revoked" ? "Signature revoked" : "Revocation"),
          state !== "signing" ? badge(state) : null),
        h("ol", { class: "stepper" }, STEPS.map((step, i) => h("li", {
          class: state === "failed" ? (i < 1 ? "done" : "") : i < idx ? "done" : i === idx ? (step === "revoked" ? "done" : "now") : "" }, step))),
        note ? h("p", { class: "muted small" }, note) : null,
        rev.signer ? facts([
          ["Document", docLink(rev.docHash, { full: true })],
          ["Signer", addrLink(rev.signer, { full: true })],
          ["Nonce", String(rev.nonce)],
          rev.revokedAt ? ["Revoked at", timeCell(rev.revokedAt)] : null,
        ]) : null,
        state === "revoked" ? h("div", { class: "actions" },
          h("a", { class: "btn", href: `#/doc/${rev.docHash}` }, "Document page"),
          h("a", { class: "btn", href: "#/verify" }, "Verify the file"),
          h("span", { class: "muted small" }, "Verification now reports this signature as revoked.")) : null));
  }

  async function follow(accepted) {
    let rev = { ...accepted };
    renderProgress(rev);
    let quiet = 0;
    while (!signal.aborted && !["revoked", "failed"].includes(rev.state)) {
      await new Promise(r => setTimeout(r, POLL_MS));
      try {
        doc = await api(`/v1/documents/${docHash}`, { signal });
      } catch (err) {
        if (err.name === "AbortError") return;
        renderProgress(rev, `Lost contact with the API (${err.message}); retrying…`);
        continue;
      }
      const entry = mine();
      if (entry && (entry.state === "revoked" || entry.revokedAt)) {
        rev = { ...rev, state: "revoked", revokedAt: entry.revokedAt };
        ctx.refreshNode();
      }
      quiet++;
      // the worker retries a revocation the node refused; after a minute, say we are still waiting
      renderProgress(rev, rev.state !== "revoked" && quiet * POLL_MS > 60000 ? "Still waiting for the relayer to put the revocation on chain…" : null);
      renderRecord();
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
