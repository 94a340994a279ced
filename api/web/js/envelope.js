// Envelopes (docs/protocol.md §9, "Envelopes: the contract"): a document, the signers it needs, in order or not, by a
// deadline or not. Two pages:
//
// - #/envelope/<id>[?signer=<address>]: who has signed (time, block, transaction), who is next, who is pending,
//   who declined (when, and why when the reason is known); the actions the API still has to relay; and, for a
//   connected wallet, what it may do: sign
//   (a registry Registration of the envelope's document, the file hashed here and refused when it is another),
//   decline (a Decline under the envelopes contract's domain) or, for the requester, void. Each pending signer
//   has a signing link, with a copy button and a QR code, that opens this page for them; a link opened once its
//   signer can no longer sign says why. The page follows the envelope's server-sent events and reads the envelope
//   again on each. A stream that fails (the server also ends each one after a minute) is opened again after a
//   back-off, a bounded number of times in a row; meanwhile, where there is no stream at all, and while the API
//   still holds an action, the page reads the envelope every few seconds instead.
// - #/envelope: create one — the wallet signs an EnvelopeRequest and the API relays it.
//
// The wallet signs with eth_signTypedData_v4; the relayer pays the gas. The envelopes contract's types are
// written out below as chain/envelopes.py defines them (a test holds them equal); its domain comes from
// GET /v1/envelopes/domain, the registry's types and domain from GET /v1/chain.

import { api, apiOrNull } from "./api.js";
import { hashFile, toHex } from "./sha256.js";
import { keccak256Hex, sameAddress, toChecksumAddress } from "./keccak.js";
import { walletPanel, signTypedData, typedDataFor, sharedAccount } from "./wallet.js";
import { apiKeyField, authHint } from "./apikey.js";
import {
  h, clear, dropZone, progressBar, errorBox, addrLink, docLink, txLink, blockLink, hashText, fmtBytes, isHash,
  isAddress, facts, timeCell, empty, loading, table, icon, short, ZERO32,
} from "./ui.js";

// qrcode-generator (vendor/qrcode.js, 52 KB) is loaded by the envelope's page only, not with every page
let qrcode = null;
export async function loadQrLibrary() {
  if (!qrcode) qrcode = (await import("./vendor/qrcode.js")).default;
  return qrcode;
}

/** The envelopes contract's EIP-712 types (chain/envelopes.py's EnvelopeRequest, Decline and Void). */
export const ENVELOPE_TYPES = {
  EnvelopeRequest: [
    { name: "docHash", type: "bytes32" },
    { name: "requester", type: "address" },
    { name: "signers", type: "address[]" },
    { name: "ordered", type: "bool" },
    { name: "deadline", type: "uint48" },
    { name: "salt", type: "bytes32" },
    { name: "requestDeadline", type: "uint256" },
  ],
  Decline: [
    { name: "envelopeId", type: "bytes32" },
    { name: "signer", type: "address" },
    { name: "reasonHash", type: "bytes32" },
    { name: "deadline", type: "uint256" },
  ],
  Void: [
    { name: "envelopeId", type: "bytes32" },
    { name: "reasonHash", type: "bytes32" },
    { name: "deadline", type: "uint256" },
  ],
};

export const MAX_SIGNERS = 16;         // the contract's (chain/envelopes.py MAX_SIGNERS)
const MAX_REASON_BYTES = 1024;         // the API's limit on a decline's or void's reason text
const DEADLINE_S = 3600;               // a signed action may be relayed for an hour
const POLL_MS = 3000;                  // without events
const BUSY_POLL_MS = 1000;             // while the API holds an action: it is on chain within seconds, and an
                                       // event may arrive before the envelope's view has caught up with it
const STREAM_RETRY_MS = 1000;          // the first wait before the event stream is opened again; doubling
const STREAM_RETRY_MAX_MS = 30000;     // up to this
export const STREAM_RETRIES = 6;             // failures in a row (none opened in between) after which the page only polls
const FINAL = ["completed", "declined", "voided", "expired", "failed"];
const STATUS_CLASS = { pending: "wait", open: "info", completed: "ok", declined: "bad", voided: "bad", expired: "bad", failed: "bad" };
const SIGNER_CLASS = { signed: "ok", next: "info", pending: "wait", declined: "bad" };
const ACTION_CLASS = { pending: "wait", submitted: "info", done: "ok", failed: "bad" };

const tag = (cls, value, key) => h("span", { class: `badge badge-${cls[value] || "wait"}`, dataset: { [key]: value } }, value);
const now = () => Math.floor(Date.now() / 1000);

/** eth_signTypedData_v4's JSON for one of the envelopes contract's types under its ``domain``. */
function envelopeTypedData(chain, domain, primaryType, message) {
  return { types: { EIP712Domain: chain.eip712.domainType, [primaryType]: ENVELOPE_TYPES[primaryType] }, primaryType, domain, message };
}

/** A reason's commitment: keccak256 of its UTF-8 text, zero for none. Throws when the text is over the API's limit. */
function reasonHash(reason) {
  if (!reason) return ZERO32;
  const size = new TextEncoder().encode(reason).length;
  if (size > MAX_REASON_BYTES) throw new Error(`the reason is ${size} bytes of UTF-8; at most ${MAX_REASON_BYTES} are kept`);
  return keccak256Hex(reason);
}

/** The signing link of ``signer``: the envelope's public page (the API's links.page) naming them. */
export function signingLink(env, signer) {
  // absolute, whatever form the API gives it in: the link is copied and put in a QR code, read away from this page
  const page = new URL((env.links && env.links.page) || `#/envelope/${env.id}`, location.href).href;
  return `${page}?signer=${toChecksumAddress(signer)}`;
}

/** ``text`` as a QR code (qrcode-generator, byte mode, level M): an SVG of one path, a 1×1 square per dark module
 *  inside a 4-module quiet zone, drawn with attributes only (the page's CSP refuses inline styles). */
export function qrSvg(text) {
  if (!qrcode) throw new Error("the QR code library is not loaded (loadQrLibrary)");
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount(), quiet = 4, size = n + 2 * quiet;
  let d = "";
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  for (const [k, v] of Object.entries({ viewBox: `0 0 ${size} ${size}`, class: "qr", role: "img", "shape-rendering": "crispEdges",
                                         "aria-label": `QR code of ${text}`, "data-payload": text, "data-modules": String(n) })) svg.setAttribute(k, v);
  const bg = document.createElementNS(NS, "rect");
  for (const [k, v] of Object.entries({ width: size, height: size, fill: "#fff" })) bg.setAttribute(k, String(v));
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  return svg;
}

function copyButton(value, label) {
  const btn = h("button", { class: "copy", type: "button", title: `copy ${label}`, "aria-label": `copy ${label}` }, icon("copy"));
  btn.addEventListener("click", () => {
    navigator.clipboard?.writeText(value).then(() => { btn.replaceChildren(icon("done")); setTimeout(() => btn.replaceChildren(icon("copy")), 1200); },
                                                  () => {});
  });
  return btn;
}

function linkCell(env, signer) {
  const url = signingLink(env, signer);
  return h("div", { class: "sign-link", dataset: { signer: signer.toLowerCase() } },
    h("a", { class: "invite-link", href: url, title: url }, "signing link"), copyButton(url, "the signing link"),
    h("details", { class: "qr-box" }, h("summary", {}, "QR code"), qrSvg(url)));
}

function chainPoint(p) {
  if (!p) return h("span", { class: "muted" }, "—");
  return h("span", {}, timeCell(p.timestamp), " · block ", blockLink(p.blockNumber), " · tx ", txLink(p.transactionHash));
}

// ---------------------------------------------------------------- one envelope

export async function envelopeView(root, [rawId, query], { signal, ctx }) {
  const id = (rawId || "").toLowerCase();
  const invited = new URLSearchParams(query || "").get("signer");
  clear(root, h("h1", {}, "Envelope"), loading());
  if (!isHash(id)) {
    clear(root, h("h1", {}, "Envelope"), errorBox({ title: "Not an envelope id", detail: `“${rawId}” is not 0x + 64 hex digits` }));
    return;
  }
  if (invited && !isAddress(invited)) {
    clear(root, h("h1", {}, "Envelope"), errorBox({ title: "Not a signer's address", detail: `The link names “${invited}”, not 0x + 40 hex digits` }));
    return;
  }
  let [env] = await Promise.all([apiOrNull(`/v1/envelopes/${id}`, { signal }), loadQrLibrary()]);
  if (!env) {
    clear(root, h("h1", {}, "Envelope"), h("p", {}, hashText(id)),
      empty("Unknown envelope", "Neither the chain nor this docchain server knows an envelope with this id.",
        h("p", {}, h("a", { href: "#/envelope" }, "Create an envelope"))));
    return;
  }

  const s = { busy: false, file: null, fileHash: null, sent: new Set(), actionsKey: null };
  const summary = h("section", { id: "env-summary" });
  const signersOut = h("section", { id: "env-signers" });
  const pendingOut = h("section", { id: "env-actions" });
  const status = h("section", { class: "status", id: "env-status", "aria-live": "polite" });
  const mine = h("div", { id: "env-mine" });
  const apiKey = apiKeyField();
  const wallet = walletPanel({ ctx, onChange: () => renderMine(), onError: box => clear(status, box),
                               note: "Connect the wallet of a signer to sign or decline, or the requester’s to void." });
  const progress = progressBar();
  const inviteBox = h("div", { class: "box", id: "env-invite", "aria-live": "polite" });

  clear(root,
    h("h1", {}, "Envelope"),
    h("p", {}, hashText(id)),
    invited ? inviteBox : null,
    summary, signersOut, pendingOut,
    h("section", { class: "card env-you" }, h("h2", {}, "Your part"), wallet.el, mine, apiKey.el),
    status);

  /** How the envelope ended, or that it has not: completed; declined or voided, by whom, when and why; expired. */
  function ending() {
    const closing = env.declined || env.voided;
    if (closing) {
      const declined = Boolean(env.declined);
      return [
        [declined ? "Declined" : "Voided", h("span", { id: declined ? "env-declined" : "env-voided" },
          "by ", addrLink(closing.by, { full: true }), declined ? "" : " (the requester)", h("br"), chainPoint(closing))],
        ["Reason", closing.reason ? h("q", { id: "env-reason" }, closing.reason)
          : closing.reasonHash === ZERO32 ? h("span", { class: "muted", id: "env-reason" }, "none given")
            : h("span", { class: "muted", id: "env-reason" }, "given as its keccak256 only, ", hashText(closing.reasonHash))],
      ];
    }
    if (env.declinedBy) return [["Declined by", addrLink(env.declinedBy, { full: true })]];
    if (env.completed) return [["Completed", chainPoint(env.completed)]];
    const why = { expired: "no: its deadline passed", voided: "no: it was voided", failed: "no: its creation was refused" };
    return [["Completed", h("span", { class: "muted" }, why[env.status] || "not yet")]];
  }

  /** What the signing link says to whom it names: an invitation while they can sign, else why they cannot. */
  function renderInvite() {
    if (!invited) return;
    const who = addrLink(invited, { full: true });
    const me = env.signers.find(x => sameAddress(x.address, invited));
    let state = "sign", said;
    if (!me) {
      state = "not-a-signer";
      said = ["This link names ", who, ", who is not one of this envelope’s signers."];
    } else if (me.state === "declined") {
      state = "declined";
      said = ["This link invited ", who, " to sign the document below; they declined", env.declined ? [" ", timeCell(env.declined.timestamp)] : "", "."];
    } else if (me.state === "signed") {
      state = "signed";
      said = ["This link invited ", who, " to sign the document below; they have signed."];
    } else if (env.status === "declined") {
      state = "closed";
      said = ["This link invited ", who, " to sign, but ", addrLink(env.declinedBy, { full: true }), " declined the envelope: it can no longer be signed."];
    } else if (env.status === "voided" || env.status === "expired" || env.status === "failed") {
      state = "closed";
      const why = { voided: "its requester voided it", expired: "its deadline passed", failed: "its creation was refused" }[env.status];
      said = ["This link invited ", who, ` to sign, but ${why}: it can no longer be signed.`];
    } else {
      said = ["This link invites ", who, " to sign the document below. Connect that account’s wallet, then sign with the file."];
    }
    inviteBox.dataset.invite = state;
    inviteBox.className = state === "sign" ? "box" : "box warn";
    clear(inviteBox, said);
  }

  function render() {
    renderInvite();
    clear(summary, h("div", { class: "card", dataset: { status: env.status } }, facts([
      ["Status", tag(STATUS_CLASS, env.status, "status")],
      ["Document", docLink(env.docHash, { full: true })],
      ["Requester", addrLink(env.requester, { full: true })],
      ["Order", env.ordered ? "in the order listed" : "any order"],
      ["Deadline", env.deadline ? timeCell(env.deadline) : h("span", { class: "muted" }, "none")],
      ["Created", chainPoint(env.created)],
      ...ending(),
      ["Contract", h("span", {}, `chain ${env.chainId} · `, addrLink(env.envelopes))],
      env.status === "completed" ? ["Certificate", h("a", { href: `/v1/envelopes/${env.id}/certificate.pdf`, id: "env-certificate", download: "" },
        "certificate of completion (PDF)")] : null,
    ])));
    const open = env.status === "open" || env.status === "pending";
    const rows = env.signers.map((x, i) => [
      String(i + 1), addrLink(x.address), tag(SIGNER_CLASS, x.state, "state"), timeCell(x.signedAt),
      x.blockNumber ? blockLink(x.blockNumber) : h("span", { class: "muted" }, "—"), txLink(x.transactionHash),
      open && (x.state === "next" || x.state === "pending") ? linkCell(env, x.address) : h("span", { class: "muted" }, "—"),
    ]);
    // a QR code someone opened stays open across the envelope's refreshes
    const shown = new Set([...signersOut.querySelectorAll(".sign-link")].filter(l => l.querySelector("details[open]")).map(l => l.dataset.signer));
    const grid = table(["#", "Signer", "State", "Signed at", "Block", "Transaction", "Invite"], rows, { cls: "env-signers" });
    for (const l of grid.querySelectorAll(".sign-link")) if (shown.has(l.dataset.signer)) l.querySelector("details").open = true;
    grid.querySelectorAll("tbody tr").forEach((tr, i) => {
      const x = env.signers[i];
      tr.dataset.signer = x.address.toLowerCase();
      tr.dataset.state = x.state;
      if (invited && sameAddress(invited, x.address)) tr.classList.add("invited");
    });
    clear(signersOut, h("h2", {}, "Signers"), grid,
      env.next ? h("p", { class: "muted small", id: "env-next" }, "Next to sign: ", addrLink(env.next)) : null);
    const waiting = (env.actions || []).filter(a => a.state !== "done");
    clear(pendingOut, waiting.length ? [h("h2", {}, "Actions still being relayed"),
      h("ul", { class: "env-action-list" }, waiting.map(a => h("li", { dataset: { kind: a.kind, state: a.state } },
        h("code", {}, a.kind), a.signer ? h("span", {}, " by ", addrLink(a.signer)) : null, " ", tag(ACTION_CLASS, a.state, "actionState"),
        a.error ? h("span", { class: "bad-text" }, ` — ${a.error}`) : null)))] : null);
    renderMine();
  }

  /** The actions the connected account may take, rebuilt only when what it may do changes (so a chosen file and
   *  a typed reason survive the envelope's refreshes). */
  function renderMine() {
    const account = wallet.state.account;
    const me = account && env.signers.find(x => sameAddress(x.address, account));
    const requester = account && sameAddress(account, env.requester);
    const key = [account, env.status, me && me.state, requester, [...s.sent].join()].join("|");
    if (key === s.actionsKey) return;
    s.actionsKey = key;
    if (!account) { clear(mine); return; }
    const parts = [];
    if (invited && !sameAddress(invited, account)) {
      parts.push(h("div", { class: "box warn", id: "env-other-account" }, "This link is for ", addrLink(invited),
        "; your wallet’s account is ", addrLink(account), "."));
    }
    if (env.status !== "open") {
      parts.push(h("p", { class: "muted", id: "env-closed" }, env.status === "pending"
        ? "The envelope is not on chain yet: signing opens once its creation is mined."
        : `This envelope is ${env.status}: nothing more can be signed.`));
    } else if (me) {
      const canSign = me.state === "next" || (!env.ordered && me.state === "pending");
      if (s.sent.has("sign") || s.sent.has("decline")) {
        parts.push(h("p", { class: "muted", id: "env-sent" }, "Your answer is with the relayer; this page shows it once it is on chain."));
      } else if (canSign) {
        parts.push(signForm(account), declineForm(account));
      } else if (me.state === "pending") {
        parts.push(h("p", { class: "muted", id: "env-wait-turn" }, "You sign after ", addrLink(env.next), ": the envelope is in order."),
          declineForm(account));
      } else {
        parts.push(h("p", { class: "muted", id: "env-done-mine" }, `You have ${me.state} this envelope.`));
      }
    } else if (!requester) {
      parts.push(h("p", { class: "muted", id: "env-not-signer" }, addrLink(account), " is not one of this envelope’s signers."));
    }
    if (requester && env.status === "open" && !s.sent.has("void")) parts.push(voidForm());
    clear(mine, parts);
  }

  function signForm(account) {
    const hashOut = h("div", { class: "hash-out", id: "env-file-check" });
    const btn = h("button", { type: "button", id: "env-sign", class: "btn btn-primary", disabled: true }, "Sign the document");
    const zone = dropZone({ id: "env-sign-file", title: "Drop the envelope’s document", hint: "or click to choose — hashed on this computer",
                            onFile: f => take(f) });
    async function take(file) {
      s.file = file; s.fileHash = null; btn.disabled = true;
      clear(hashOut);
      try {
        const { hash } = await hashFile(file, { signal, onProgress: progress.forFile(file) });
        if (s.file !== file) return;
        progress.hide();
        if (hash.toLowerCase() !== env.docHash.toLowerCase()) {
          clear(hashOut, errorBox({ title: "Not this envelope’s document",
            detail: `${file.name} has SHA-256 ${hash}; the envelope is for ${env.docHash}.` }, "Choose the file the requester sent."));
          return;
        }
        s.fileHash = hash;
        clear(hashOut, h("p", { class: "ok-text small", id: "env-file-ok" }, `${file.name} · ${fmtBytes(file.size)} is the envelope’s document.`));
        btn.disabled = s.busy;
      } catch (err) {
        if (err.name === "AbortError") return;
        progress.hide();
        clear(hashOut, errorBox({ title: "Could not read the file", detail: err.message }));
      }
    }
    btn.addEventListener("click", () => act("sign", async () => {
      const chain = await ctx.chainInfo(true);
      const registration = { docHash: env.docHash, signer: account, metadataHash: ZERO32, supersedes: ZERO32, deadline: now() + DEADLINE_S };
      const signature = await signTypedData(account, typedDataFor(chain, "registration", registration));
      return api(`/v1/envelopes/${env.id}/sign`, { method: "POST", signal,
        json: { registration, signature, fileName: s.file.name, fileSize: s.file.size } });
    }, sub => h("span", {}, "Signature submitted (submission ", h("code", {}, sub.id), "); it counts once it is on chain.")));
    return h("div", { class: "env-form" }, h("h3", {}, "Sign"),
      h("p", { class: "muted small" }, "Your wallet signs the document’s SHA-256, as on the Sign page; the signature is a registry record and counts toward this envelope."),
      zone, progress, hashOut, h("div", { class: "actions" }, btn));
  }

  function declineForm(account) {
    const reason = h("input", { type: "text", id: "env-decline-reason", placeholder: "reason (optional; only its hash goes on chain)", autocomplete: "off" });
    const btn = h("button", { type: "button", id: "env-decline", class: "btn btn-danger" }, "Decline");
    btn.addEventListener("click", () => act("decline", async () => {
      const text = reason.value.trim();
      const [domain, chain] = await Promise.all([api("/v1/envelopes/domain", { signal }), ctx.chainInfo()]);
      const decline = { envelopeId: env.id, signer: account, reasonHash: reasonHash(text), deadline: now() + DEADLINE_S };
      const signature = await signTypedData(account, envelopeTypedData(chain, domain, "Decline", decline));
      return api(`/v1/envelopes/${env.id}/decline`, { method: "POST", signal, json: { decline, signature, ...(text ? { reason: text } : {}) } });
    }, () => "Decline submitted; the envelope closes once it is on chain."));
    return h("div", { class: "env-form" }, h("h3", {}, "Decline"),
      h("p", { class: "muted small" }, "Declining ends the envelope for everyone: it can then not complete."),
      h("label", { class: "field", for: "env-decline-reason" }, h("span", {}, "Reason"), reason), h("div", { class: "actions" }, btn));
  }

  function voidForm() {
    const reason = h("input", { type: "text", id: "env-void-reason", placeholder: "reason (optional; only its hash goes on chain)", autocomplete: "off" });
    const btn = h("button", { type: "button", id: "env-void", class: "btn btn-danger" }, "Void the envelope");
    btn.addEventListener("click", () => act("void", async () => {
      const text = reason.value.trim();
      const [domain, chain] = await Promise.all([api("/v1/envelopes/domain", { signal }), ctx.chainInfo()]);
      const voided = { envelopeId: env.id, reasonHash: reasonHash(text), deadline: now() + DEADLINE_S };
      const signature = await signTypedData(wallet.state.account, envelopeTypedData(chain, domain, "Void", voided));
      return api(`/v1/envelopes/${env.id}/void`, { method: "POST", signal, json: { void: voided, signature, ...(text ? { reason: text } : {}) } });
    }, () => "Void submitted; the envelope closes once it is on chain."));
    return h("div", { class: "env-form" }, h("h3", {}, "Void (requester)"),
      h("p", { class: "muted small" }, "You created this envelope: you may withdraw it while it is incomplete."),
      h("label", { class: "field", for: "env-void-reason" }, h("span", {}, "Reason"), reason), h("div", { class: "actions" }, btn));
  }

  /** Run one wallet action: sign with the wallet, post, say what happened (a problem's title, never a blank). */
  async function act(kind, run, said) {
    if (s.busy) return;
    s.busy = true;
    for (const b of mine.querySelectorAll("button")) b.disabled = true;
    clear(status, h("p", { class: "muted", role: "status" }, "Waiting for your wallet…"));
    try {
      const answer = await run();
      s.sent.add(kind);
      clear(status, h("div", { class: "box", id: "env-submitted", dataset: { kind } }, said(answer)));
      s.busy = false;
      await refresh();
    } catch (err) {
      if (err.name === "AbortError") return;
      s.busy = false;
      s.actionsKey = null;  // rebuild the forms: the buttons come back
      renderMine();
      clear(status, errorBox(err instanceof Error && !err.title ? { title: "Cannot do that", detail: err.message } : err, authHint(err, apiKey)));
    }
  }

  /** What this page sent and the API has since relayed or given up on: the note that it is with the relayer
   *  goes, and a refused answer brings the forms back with the chain's reason. */
  function settleSent() {
    const account = wallet.state.account;
    const mineState = (env.signers.find(x => sameAddress(x.address, account)) || {}).state;
    if (mineState === "signed") s.sent.delete("sign");
    for (const kind of [...s.sent]) {
      const failed = (env.actions || []).filter(a => a.kind === kind && a.state === "failed" && (kind === "void" || sameAddress(a.signer, account)));
      if (failed.length && env.status === "open") {
        s.sent.delete(kind);
        clear(status, errorBox({ title: `The ${kind} was refused`, detail: failed[failed.length - 1].error || "" }, "Try again, or ask the requester."));
      }
    }
  }

  // ---- following the envelope: its events, and polling where they are missing or the API holds an action

  let es = null, timer = null, closed = false, reading = null;
  let streamTimer = null, failures = 0, lastEventId = null;
  async function refresh() {
    if (reading) return reading;
    reading = (async () => {
      try {
        const next = await apiOrNull(`/v1/envelopes/${id}`, { signal });
        if (next && !closed && JSON.stringify(next) !== JSON.stringify(env)) {
          if (next.status !== env.status || next.signers.some((x, i) => x.state !== env.signers[i].state)) ctx.refreshNode();
          env = next;
          settleSent();
          render();
        }
      } catch (err) {
        if (err.name !== "AbortError") clear(status, errorBox(err, "The page tries again in a few seconds."));
      } finally {
        reading = null;
        schedule();
      }
    })();
    return reading;
  }
  // an answer this page sent shows on chain as a new state; until then the relayer holds it
  const busyOnServer = () => env.status === "pending" || (env.actions || []).some(a => a.state === "pending" || a.state === "submitted")
    || (s.sent.size > 0 && !FINAL.includes(env.status));
  function schedule() {
    clearTimeout(timer);
    if (closed) return;
    if (FINAL.includes(env.status) && !busyOnServer()) { stopEvents(); clearTimeout(streamTimer); return; }
    if (busyOnServer()) timer = setTimeout(refresh, BUSY_POLL_MS);
    else if (!es) timer = setTimeout(refresh, POLL_MS);
  }
  function stopEvents() { if (es) { es.close(); es = null; } }
  /** Where the event stream stands, on the summary for whoever looks (a test, a curious reader): live,
   *  connecting, retrying (after ``failures`` in a row) or polling (given up: the page reads the envelope). */
  function streamState(state) {
    summary.dataset.stream = state;
    summary.dataset.streamFailures = String(failures);
  }
  /** Open the envelope's event stream, resuming after the last change seen. On an error the browser's own
   *  reconnection is not relied on (it gives up for good on an HTTP error, a 503 of a busy server say): the page
   *  closes the stream, polls meanwhile, and opens it again after a back-off, at most STREAM_RETRIES times in a
   *  row without one opening; a stream that opens resets the count, so a server that ends each stream after a
   *  minute is followed for as long as the page is open. */
  function follow() {
    if (closed || FINAL.includes(env.status)) return;
    const after = lastEventId ? `?after=${encodeURIComponent(lastEventId)}` : "";
    es = new EventSource(`/v1/envelopes/${id}/events${after}`);
    streamState("connecting");
    es.onopen = () => { failures = 0; streamState("live"); };
    es.addEventListener("envelope", e => { if (e.lastEventId) lastEventId = e.lastEventId; refresh(); });
    es.onerror = () => {
      stopEvents();
      failures += 1;
      if (failures > STREAM_RETRIES) {
        streamState("polling");
      } else {
        streamState("retrying");
        clearTimeout(streamTimer);
        streamTimer = setTimeout(follow, Math.min(STREAM_RETRY_MS * 2 ** (failures - 1), STREAM_RETRY_MAX_MS));
      }
      schedule();
    };
  }
  if (window.EventSource) follow();
  else streamState("polling");

  render();
  schedule();
  // a wallet that already shares an account with this page is taken as connected, as the revoke page does
  sharedAccount().then(async account => {
    if (account && !signal.aborted && !wallet.state.account) {
      wallet.adopt(account, await window.ethereum.request({ method: "eth_chainId" }).catch(() => null));
    }
  });
  return () => { closed = true; clearTimeout(timer); clearTimeout(streamTimer); stopEvents(); wallet.cleanup(); };
}

// ---------------------------------------------------------------- create

export async function createEnvelopeView(root, _params, { signal, ctx }) {
  const s = { file: null, hash: null, busy: false };
  const status = h("section", { class: "status", id: "env-create-status", "aria-live": "polite" });
  const wallet = walletPanel({ ctx, onChange: () => update(), onError: box => clear(status, box),
                               note: "The requester’s wallet signs the request; docchain’s relayer pays the gas." });
  const progress = progressBar();
  const hashOut = h("div", { class: "hash-out" });
  const signers = h("textarea", { id: "env-signers-input", rows: 4, spellcheck: "false", placeholder: "0x… one address per line" });
  const ordered = h("input", { type: "checkbox", id: "env-ordered" });
  const deadline = h("input", { type: "datetime-local", id: "env-deadline" });
  const apiKey = apiKeyField();
  const createBtn = h("button", { type: "button", id: "env-create", class: "btn btn-primary", disabled: true }, "Sign and create");
  const zone = dropZone({ id: "env-file", title: "Drop the document to be signed", hint: "or click to choose — hashed on this computer",
                          onFile: f => take(f) });

  clear(root,
    h("h1", {}, "Create an envelope"),
    h("p", { class: "lead" }, "Name the people who must sign a document, in order or not, by a deadline or not. Your wallet signs the request; the envelope, every signature and its completion are on chain."),
    h("ol", { class: "steps-form" },
      h("li", { class: "card" }, h("h2", {}, "1. Wallet"), wallet.el),
      h("li", { class: "card" }, h("h2", {}, "2. Document"), zone, progress, hashOut),
      h("li", { class: "card" }, h("h2", {}, "3. Signers"),
        h("label", { class: "field", for: "env-signers-input" }, h("span", {}, `Signers’ addresses (1 to ${MAX_SIGNERS})`), signers),
        h("label", { class: "check", for: "env-ordered" }, ordered, h("span", {}, "In this order: each signs only after the one above")),
        h("label", { class: "field", for: "env-deadline" }, h("span", {}, "Deadline (optional, your local time)"), deadline),
        apiKey.el,
        h("div", { class: "actions" }, createBtn))),
    status);

  async function take(file) {
    s.file = file; s.hash = null; update();
    clear(hashOut);
    try {
      const { hash } = await hashFile(file, { signal, onProgress: progress.forFile(file) });
      if (s.file !== file) return;
      progress.hide();
      s.hash = hash;
      clear(hashOut, h("div", { class: "kv" }, h("span", { class: "k" }, "SHA-256"), hashText(hash)),
        h("p", { class: "muted small" }, `${file.name} · ${fmtBytes(file.size)}`));
      update();
    } catch (err) {
      if (err.name === "AbortError") return;
      progress.hide();
      clear(hashOut, errorBox({ title: "Could not read the file", detail: err.message }));
    }
  }

  function update() {
    createBtn.disabled = !(wallet.state.account && s.hash) || s.busy;
    createBtn.title = !wallet.state.account ? "connect a wallet first" : !s.hash ? "choose a document first" : "";
  }

  /** The form's signers and deadline, checked as the contract would (chain/envelopes.py check_request). */
  function read() {
    const list = signers.value.split(/[\s,;]+/).map(x => x.trim()).filter(Boolean);
    if (!list.length || list.length > MAX_SIGNERS) throw new Error(`an envelope names 1 to ${MAX_SIGNERS} signers, got ${list.length}`);
    const seen = new Set();
    for (const a of list) {
      if (!isAddress(a)) throw new Error(`“${short(a, 10)}” is not an address (0x + 40 hex digits)`);
      if (/^0x0{40}$/.test(a)) throw new Error("the zero address cannot sign");
      if (seen.has(a.toLowerCase())) throw new Error(`${a} is named twice`);
      seen.add(a.toLowerCase());
    }
    let until = 0;
    if (deadline.value) {
      until = Math.floor(new Date(deadline.value).getTime() / 1000);
      if (!(until > now())) throw new Error("the deadline has passed");
    }
    return { list: list.map(toChecksumAddress), until };
  }

  createBtn.addEventListener("click", async () => {
    let form;
    try { form = read(); } catch (err) { clear(status, errorBox({ title: "The envelope cannot be created", detail: err.message })); return; }
    const account = wallet.state.account;
    s.busy = true; update();
    clear(status, h("p", { class: "muted", role: "status" }, "Waiting for your wallet…"));
    try {
      const [domain, chain] = await Promise.all([api("/v1/envelopes/domain", { signal }), ctx.chainInfo(true)]);
      const request = {
        docHash: s.hash, requester: account, signers: form.list, ordered: ordered.checked, deadline: form.until,
        salt: toHex(crypto.getRandomValues(new Uint8Array(32))), requestDeadline: now() + DEADLINE_S,
      };
      const signature = await signTypedData(account, envelopeTypedData(chain, domain, "EnvelopeRequest", request));
      const env = await api("/v1/envelopes", { method: "POST", signal, json: { request, signature } });
      location.hash = `#/envelope/${env.id}`;
    } catch (err) {
      if (err.name === "AbortError") return;
      clear(status, errorBox(err, authHint(err, apiKey)));
    } finally {
      s.busy = false; update();
    }
  });

  return () => wallet.cleanup();
}

// ---------------------------------------------------------------- on the document page

/** The envelopes on chain for a document (GET /v1/documents/{hash}/envelopes), as links; filled in without
 *  holding the page up, and nothing at all when there are none. */
export function documentEnvelopes(docHash, signal) {
  const box = h("section", { id: "doc-envelopes" });
  api(`/v1/documents/${docHash}/envelopes`, { signal }).then(answer => {
    const ids = envelopeIds(answer);
    if (!ids.length || signal.aborted) return;
    clear(box, h("h2", {}, "Envelopes"),
      h("ul", { class: "env-links" }, ids.map(e => h("li", {}, h("a", { href: `#/envelope/${e}`, class: "env-link", title: e, dataset: { envelope: e } },
        `Envelope ${short(e)}`)))));
  }, err => {
    if (err.name !== "AbortError") clear(box, errorBox(err, "The document’s envelopes could not be listed."));
  });
  return box;
}

/** The ids in the envelope list's answer: a list of ids, or an object holding them under ``envelopes``. */
function envelopeIds(answer) {
  const list = Array.isArray(answer) ? answer : (answer && (answer.envelopes || answer.items)) || [];
  return list.map(e => (typeof e === "string" ? e : e && e.id)).filter(isHash).map(e => e.toLowerCase());
}
