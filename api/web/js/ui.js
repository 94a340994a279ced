// Small DOM helpers shared by the views: element builder, links for hashes/addresses, formatting, states.

import { toChecksumAddress } from "./keccak.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const ZERO32 = "0x" + "0".repeat(64);
export const isHash = s => /^0x[0-9a-fA-F]{64}$/.test(s || "");
export const isAddress = s => /^0x[0-9a-fA-F]{40}$/.test(s || "");

export function short(hex, keep = 6) {
  if (!hex || hex.length <= 2 + keep * 2 + 1) return hex || "";
  return `${hex.slice(0, 2 + keep)}…${hex.slice(-keep)}`;
}

// Inline SVG icons: no icon font or emoji font is needed (headless and minimal systems have none).
const ICONS = {
  file: '<path d="M6 2h8l5 5v15H6z" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linejoin="round"/><path d="M14 2v5h5M9 12h7M9 15.5h7M9 19h4" fill="none" stroke="currentColor" stroke-width="1.6"/>',
  receipt: '<path d="M6 2h12v20l-3-2-3 2-3-2-3 2z" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linejoin="round"/><path d="M9 7h6M9 11h6M9 15h4" stroke="currentColor" stroke-width="1.6"/>',
  copy: '<rect x="8" y="8" width="12" height="13" rx="2" fill="none" stroke="currentColor" stroke-width="1.8"/><path d="M5 16V5a2 2 0 0 1 2-2h9" fill="none" stroke="currentColor" stroke-width="1.8"/>',
  done: '<path d="M5 12.5l4.5 4.5L19 7.5" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>',
};

export function icon(name, cls = "icon") {
  const span = document.createElement("span");
  span.className = cls;
  span.setAttribute("aria-hidden", "true");
  span.innerHTML = `<svg viewBox="0 0 24 24" width="1em" height="1em">${ICONS[name]}</svg>`;
  return span;
}

/** A link to an explorer page; the full value is in the title, the href and (for copy) data-full.
 *  Addresses are shown EIP-55 checksummed, whatever case the API or the wallet gave them in. */
export function link(kind, value, { full = false, label } = {}) {
  if (value === null || value === undefined || value === "") return h("span", { class: "muted" }, "—");
  if (kind === "address") value = toChecksumAddress(String(value));
  const text = label ?? (full ? String(value) : short(String(value)));
  const route = { doc: "doc", tx: "tx", block: "block", address: "signer" }[kind];
  return h("a", { class: `ref ref-${kind}${full ? " ref-full" : ""}`, href: `#/${route}/${value}`, title: String(value),
                  dataset: { full: String(value) } }, text);
}

export const docLink = (v, o) => link("doc", v, o);
export const txLink = (v, o) => link("tx", v, o);
export const blockLink = (v, o) => link("block", v, { label: v === null || v === undefined ? undefined : `#${v}`, ...o });
export const addrLink = (v, o) => link("address", v, o);

/** A metadataHash: "none" when zero (nothing was attached), else the short hash with the full one kept. */
export function metaHashCell(hash) {
  if (!hash || hash === ZERO32) return h("span", { class: "muted meta-hash-cell", dataset: { full: ZERO32 } }, "none");
  return h("code", { class: "meta-hash-cell", title: hash, dataset: { full: hash } }, short(hash, 4));
}

export function fmtTime(unix) {
  if (!unix) return "—";
  const d = new Date(Number(unix) * 1000);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function ago(unix) {
  if (!unix) return "";
  const s = Math.round(Date.now() / 1000 - Number(unix));
  if (s < -60) return "in the future";
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function timeCell(unix) {
  if (!unix) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: new Date(Number(unix) * 1000).toISOString(), title: ago(unix) }, fmtTime(unix));
}

const STATE_CLASS = { confirmed: "ok", anchored: "info", submitted: "wait", pending: "wait", failed: "bad",
                      revoked: "bad", valid: "ok", invalid: "bad", unknown: "bad" };

export function badge(state) {
  return h("span", { class: `badge badge-${STATE_CLASS[state] || "wait"}`, dataset: { state } }, state);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

export function fmtEth(wei) {
  if (wei === null || wei === undefined) return "—";
  const big = BigInt(wei);
  const whole = big / 10n ** 18n, frac = (big % 10n ** 18n).toString().padStart(18, "0").slice(0, 4);
  return `${whole}.${frac} ETH`;
}

/** An error box: problem+json title and detail, status code, and what to do about it. */
export function errorBox(err, hint) {
  const status = err && err.status;
  const title = (err && err.title) || "Something went wrong";
  const detail = (err && (err.detail ?? err.message)) || "";
  return h("div", { class: "box error", role: "alert" },
    h("strong", {}, title),
    status ? h("span", { class: "muted" }, ` (HTTP ${status})`) : null,
    detail ? h("p", { class: "detail" }, detail) : null,
    hint ? h("p", { class: "muted" }, hint) : null);
}

/** Whether an error is the chain being out of reach: a 503 from a route that reads the Ethereum node. */
export function isChainDown(err) {
  const type = (err && err.problem && err.problem.type) || "";
  return Boolean(err && err.status === 503 && /\/(node-unavailable|not-deployed)$/.test(type));
}

/** In place of what only the node can tell (blocks, transactions, chain details): the chain is unreachable,
 *  and the page answers again once it is back. */
export function chainUnreachable(err) {
  return h("div", { class: "box error chain-unreachable", id: "chain-unreachable", role: "alert" },
    h("strong", {}, "The chain is unreachable"),
    err.status ? h("span", { class: "muted" }, ` (HTTP ${err.status})`) : null,
    h("p", {}, "docchain cannot reach its Ethereum node, so blocks, transactions and chain details cannot be shown "
      + "right now. What docchain has already indexed still shows. Try again in a moment."),
    err.detail ? h("p", { class: "detail muted small" }, err.detail) : null);
}

export function empty(title, text, ...extra) {
  return h("div", { class: "box empty" }, h("strong", {}, title), text ? h("p", {}, text) : null, ...extra);
}

export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

/** A responsive table: on narrow screens each row becomes a card, cells labelled by their column. */
export function table(columns, rows, { cls = "" } = {}) {
  return h("div", { class: "table-wrap" },
    h("table", { class: `grid ${cls}` },
      h("thead", {}, h("tr", {}, columns.map(c => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map(cells => h("tr", {}, cells.map((cell, i) => h("td", { "data-label": columns[i] }, cell)))))));
}

/** Definition list of [label, value] pairs. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** A drop zone around a hidden file input; onFile(file) on drop or pick. */
export function dropZone({ id, title, hint, accept, onFile, small = false }) {
  const input = h("input", { type: "file", id, accept, class: "visually-hidden" });
  const name = h("span", { class: "drop-file" });
  const zone = h("label", { class: `drop${small ? " drop-small" : ""}`, for: id },
    input,
    icon(small ? "receipt" : "file", "drop-icon"),
    h("span", { class: "drop-title" }, title),
    h("span", { class: "drop-hint" }, hint),
    name);
  const take = file => {
    if (!file) return;
    name.textContent = `${file.name} · ${fmtBytes(file.size)}`;
    zone.classList.add("has-file");
    onFile(file);
  };
  input.addEventListener("change", () => take(input.files[0]));
  zone.addEventListener("dragover", e => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", e => {
    e.preventDefault();
    zone.classList.remove("over");
    take(e.dataTransfer.files[0]);
  });
  zone.reset = () => { input.value = ""; name.textContent = ""; zone.classList.remove("has-file"); };
  return zone;
}

export function progressBar() {
  const bar = h("progress", { max: 1, value: 0 });
  const label = h("span", { class: "progress-label" });
  const wrap = h("div", { class: "progress", hidden: true }, bar, label);
  wrap.set = (fraction, text) => { wrap.hidden = false; bar.value = fraction; label.textContent = text; };
  /** onProgress for hashFile: hashing N% of SIZE, hidden when done. */
  wrap.forFile = file => (f, phase) => {
    if (phase === "done") wrap.hide();
    else wrap.set(f, `hashing ${Math.round(f * 100)}% of ${fmtBytes(file.size)}`);
  };
  wrap.hide = () => { wrap.hidden = true; };
  return wrap;
}

/** Hash text with a copy button. */
export function hashText(value) {
  const btn = h("button", { class: "copy", type: "button", title: "copy to the clipboard", "aria-label": "copy" }, icon("copy"));
  btn.addEventListener("click", () => {
    navigator.clipboard?.writeText(value).then(() => { btn.replaceChildren(icon("done")); setTimeout(() => btn.replaceChildren(icon("copy")), 1200); },
                                                  () => {});
  });
  return h("span", { class: "hash" }, h("code", {}, value), btn);
}
