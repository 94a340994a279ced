// docchain web UI: hash router, node status, view lifecycle. No framework, no build step.

import { api, ApiError } from "./api.js";
import { h, clear, errorBox, empty, isChainDown, chainUnreachable } from "./ui.js";
import { verifyView } from "./verify.js";
import { signView } from "./sign.js";
import { revokeView } from "./revoke.js";
import { explorerHome, documentPage, signerPage, txPage, blockPage } from "./explorer.js";
import { envelopeView, createEnvelopeView } from "./envelope.js";

const routes = [
  [/^$|^verify$/, "verify", () => verifyView],
  [/^sign$/, "sign", () => signView],
  [/^explorer$/, "explorer", () => explorerHome],
  [/^doc\/(.+)$/, "explorer", () => documentPage],
  [/^revoke\/(.+)$/, "explorer", () => revokeView],
  [/^signer\/(.+)$/, "explorer", () => signerPage],
  [/^tx\/(.+)$/, "explorer", () => txPage],
  [/^block\/(.+)$/, "explorer", () => blockPage],
  [/^envelope$/, "envelope", () => createEnvelopeView],
  // a signing link names its signer after "?": #/envelope/<id>?signer=<address>
  [/^envelope\/([^?]+)(?:\?(.*))?$/, "envelope", () => envelopeView],
];

const view = document.getElementById("view");
let current = null;  // {controller, cleanup}

/** Shared state the views read: chain info (cached) and the node's readiness. */
export const ctx = {
  chain: null,
  refreshNode: () => { lastCheck = 0; return checkNode(); },
  async chainInfo(force = false) {
    if (!this.chain || force) this.chain = await api("/v1/chain");
    return this.chain;
  },
};

async function route() {
  const path = decodeURIComponent(location.hash.replace(/^#\/?/, "")).trim();
  if (current) {
    current.controller.abort();
    if (current.cleanup) try { current.cleanup(); } catch { /* a view's cleanup must not block navigation */ }
  }
  const controller = new AbortController();
  current = { controller, cleanup: null };
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.remove("active");
  let match = null, section = null, render = null;
  for (const [re, sec, get] of routes) {
    match = path.match(re);
    if (match) { section = sec; render = get(); break; }
  }
  if (!render) {
    clear(view, empty("Page not found", `There is no page “${path}”.`, h("p", {}, h("a", { href: "#/verify" }, "Go to Verify"))));
    return;
  }
  document.querySelector(`[data-nav="${section}"]`)?.classList.add("active");
  const root = h("div", { class: `page page-${section}` });
  clear(view, root);
  checkNode();
  try {
    const cleanup = await render(root, match.slice(1), { signal: controller.signal, ctx });
    if (current.controller === controller) current.cleanup = cleanup || null;
    else if (cleanup) cleanup();
  } catch (err) {
    if (err.name === "AbortError") return;
    const title = root.querySelector("h1");
    const hint = err.status === 0 ? "Is the docchain API running?"
      : err.status === 503 ? "The Ethereum node behind docchain is down; this page needs it. Try again in a moment." : null;
    clear(root, title, isChainDown(err) ? chainUnreachable(err) : errorBox(err, hint));
  }
}

// ---------------------------------------------------------------- node status

const pill = document.getElementById("node-status");
const banner = document.getElementById("banner");
let lastCheck = 0;

export async function checkNode() {
  if (Date.now() - lastCheck < 2000) return;
  lastCheck = Date.now();
  let state, text, detail = "";
  try {
    const r = await api("/readyz");
    state = "ok";
    text = `node ok · block ${r.latestBlock}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 503) {
      const checks = (err.problem && err.problem.checks) || {};
      const nodeDown = checks.node && checks.node !== "ok";
      state = "bad";
      text = nodeDown ? "node down" : "database down";
      detail = err.detail;
    } else if (err instanceof ApiError && err.status === 0) {
      state = "bad";
      text = "API unreachable";
      detail = err.detail;
    } else {
      state = "bad";
      text = "not ready";
      detail = err.message;
    }
  }
  pill.className = `pill pill-${state}`;
  pill.textContent = text;
  pill.title = detail || text;
  if (state === "ok") {
    banner.hidden = true;
    banner.replaceChildren();
  } else {
    banner.hidden = false;
    clear(banner, h("div", { class: "banner-inner", role: "alert" },
      h("strong", {}, text === "API unreachable" ? "The docchain API cannot be reached." : "The Ethereum node is not reachable."),
      " Verification and signing need it; what is shown may be out of date. ",
      detail ? h("span", { class: "muted" }, detail) : null));
  }
}

window.addEventListener("hashchange", route);
setInterval(() => { lastCheck = 0; checkNode(); }, 15000);
route();
