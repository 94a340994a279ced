// Explorer: chain summary, latest blocks, registry transactions with decoded events, and pages for a
// document, a signer (any address), a transaction and a block. Every hash and address is a link.

import { api, apiOrNull } from "./api.js";
import {
  h, clear, table, badge, timeCell, addrLink, txLink, blockLink, docLink, facts, empty, errorBox, loading,
  hashText, fmtEth, isHash, isAddress, ZERO32, short, metaHashCell, isChainDown, chainUnreachable,
} from "./ui.js";
import { signersTable } from "./verify.js";
import { toChecksumAddress, sameAddress } from "./keccak.js";
import { sharedAccount } from "./wallet.js";
import { documentEnvelopes } from "./envelope.js";

function searchForm() {
  const input = h("input", { type: "search", id: "explorer-search", placeholder: "document hash, transaction hash, address or block number",
                             spellcheck: "false", autocomplete: "off", "aria-label": "search" });
  const msg = h("p", { class: "muted small", role: "status" });
  const form = h("form", { class: "search", role: "search" }, input, h("button", { class: "btn", type: "submit" }, "Go"), msg);
  form.addEventListener("submit", async e => {
    e.preventDefault();
    const q = input.value.trim();
    if (/^\d+$/.test(q)) { location.hash = `#/block/${q}`; return; }
    if (isAddress(q)) { location.hash = `#/signer/${q}`; return; }
    if (isHash(q)) {
      // a 32-byte hash is a document or a transaction: ask for the document first
      msg.textContent = "looking up…";
      const doc = await apiOrNull(`/v1/documents/${q}`).catch(() => null);
      location.hash = doc ? `#/doc/${q.toLowerCase()}` : `#/tx/${q.toLowerCase()}`;
      return;
    }
    msg.textContent = "Enter 0x + 64 hex digits (document or transaction), 0x + 40 hex digits (address) or a block number.";
  });
  return form;
}

export async function explorerHome(root, _p, { signal, ctx }) {
  // the search form is not re-rendered when the data arrives: what the user types meanwhile stays, focused
  const body = h("div", {}, loading());
  clear(root, h("h1", {}, "Explorer"), searchForm(), body);
  // The recent documents come from docchain's index: with the node out of reach they still show, beside a
  // notice in place of what only the node can tell.
  let chainDown = null;
  const chainPart = async () => {
    try {
      const [chain, blocks] = await Promise.all([ctx.chainInfo(true), api("/v1/explorer/blocks?limit=10", { signal })]);
      const withTxs = blocks.filter(b => b.registryTxs > 0).slice(0, 5);
      const details = await Promise.all(withTxs.map(b => api(`/v1/explorer/blocks/${b.number}`, { signal })));
      return { chain, blocks, txs: details.flatMap(b => b.transactions.map(t => ({ ...t, timestamp: b.timestamp }))) };
    } catch (err) {
      if (!isChainDown(err)) throw err;
      chainDown = err;
      return null;
    }
  };
  const [onChain, recent] = await Promise.all([chainPart(), api("/v1/documents?limit=10", { signal })]);
  clear(body,
    chainDown ? chainUnreachable(chainDown) : chainSections(onChain),
    h("section", { id: "recent-documents" },
      h("h2", {}, "Recently signed"),
      recent.items.length ? table(["Document", "Signer", "State", "Signed at", "Block", "Anchored"], recent.items.map(d => [
        docLink(d.docHash), addrLink(d.signer), badge(d.state), timeCell(d.timestamp), blockLink(d.blockNumber), anchoringCell(d),
      ])) : empty("No documents yet", "Nothing has been signed on this registry yet.", h("p", {}, h("a", { href: "#/sign" }, "Sign the first one")))));
}

function chainSections({ chain, blocks, txs }) {
  return [
    h("section", { class: "card chain-card" }, facts([
      ["Chain id", String(chain.chainId)],
      ["Registry", addrLink(chain.contract, { full: true })],
      ["Deployed in", blockLink(chain.deploymentBlock)],
      ["Latest block", blockLink(chain.latestBlock)],
      ["Confirmations required", String(chain.confirmations)],
      ["Relayer", h("span", {}, addrLink(chain.relayer, { full: true }), h("span", { class: "muted nowrap" }, ` · ${fmtEth(chain.relayerBalanceWei)}`))],
    ])),
    h("div", { class: "two-col" },
      h("section", { id: "latest-blocks" },
        h("h2", {}, "Latest blocks"),
        // no hash column: at half the page's width it pushed the registry count out of view (the block's page
        // and the link's tooltip show it)
        blocks.length ? table(["Block", "Time", "Txs", "Registry"], blocks.map(b => [
          h("span", { title: b.hash }, blockLink(b.number)), timeCell(b.timestamp),
          String(b.txCount), b.registryTxs ? h("strong", {}, String(b.registryTxs)) : "0",
        ])) : empty("No blocks yet", "The chain has no blocks.")),
      h("section", { id: "registry-txs" },
        h("h2", {}, "Registry transactions"),
        txs.length ? txs.map(txCard) : empty("No registry transactions in the latest blocks",
          "Signed documents appear here once the relayer anchors them."))),
  ];
}

/** How a listed record is on chain: its own record, or a leaf of the Merkle root its transaction anchored (the
 *  chain shows the root alone; this service knows the leaf). */
function anchoringCell(d) {
  if (d.anchoring !== "merkle") return h("span", { class: "muted small", dataset: { anchoring: "direct" } }, "direct");
  return h("span", { class: "small merkle-root nowrap", title: `Merkle root ${d.merkleRoot}`, dataset: { anchoring: "merkle" } },
    `Merkle root ${short(d.merkleRoot, 4)}`);
}

function rootLine(r) {
  return h("li", { class: "event event-RootAnchored", dataset: { kind: "RootAnchored" } },
    h("span", { class: "badge badge-ok" }, "RootAnchored"), " ",
    h("code", { class: "merkle-root", title: r.root }, short(r.root)),
    ` · ${r.leafCount.toLocaleString("en-US")} ${r.leafCount === 1 ? "leaf" : "leaves"}`,
    r.documents.length ? h("span", { class: "muted small" }, ` · ${r.documents.length} from this service`) : null);
}

function eventLine(e) {
  return h("li", { class: `event event-${e.kind}`, dataset: { kind: e.kind } },
    h("span", { class: `badge badge-${e.kind === "Revoked" ? "bad" : "ok"}` }, e.kind), " ",
    docLink(e.docHash), " by ", addrLink(e.signer),
    e.supersedes && e.supersedes !== ZERO32 ? h("span", {}, " · replaces ", docLink(e.supersedes)) : null);
}

function txCard(t) {
  return h("article", { class: "card tx-card" },
    h("div", { class: "tx-head" }, txLink(t.hash), " ", h("code", {}, t.call ? `${t.call.function}()` : "call"),
      " ", statusBadge(t.status), " ", h("span", { class: "muted small" }, "block "), blockLink(t.blockNumber)),
    t.events.length || (t.roots || []).length
      ? h("ul", { class: "events" }, t.events.map(eventLine), (t.roots || []).map(rootLine))
      : h("p", { class: "muted small" }, "no registry events"));
}

function statusBadge(status) {
  if (status === null || status === undefined) return badge("pending");
  return h("span", { class: `badge badge-${status === 1 ? "ok" : "bad"}` }, status === 1 ? "success" : "reverted");
}

// ---------------------------------------------------------------- document

export async function documentPage(root, [hash], { signal }) {
  clear(root, h("h1", {}, "Document"), loading());
  if (!isHash(hash)) {
    clear(root, h("h1", {}, "Document"), errorBox({ title: "Not a document hash", detail: `“${hash}” is not 0x + 64 hex digits` }));
    return;
  }
  const doc = await apiOrNull(`/v1/documents/${hash}`, { signal });
  if (!doc) {
    clear(root, h("h1", {}, "Document"), h("p", {}, hashText(hash.toLowerCase())),
      empty("Unknown document", "No one has signed a document with this SHA-256 on this registry, and nothing is waiting to be anchored.",
        h("p", {}, h("a", { href: "#/verify" }, "Verify a file"), " · ", h("a", { href: `#/tx/${hash}` }, "look it up as a transaction"))),
      // an envelope may name a document before anyone has signed it
      documentEnvelopes(hash.toLowerCase(), signal));
    return;
  }
  const timeline = [];
  for (const s of doc.signers) {
    if (s.timestamp) timeline.push({ t: s.timestamp, block: s.blockNumber, tx: s.txHash, what: "signed", who: s.signer, supersedes: s.supersedes });
    else timeline.push({ t: null, what: s.state === "failed" ? "failed" : "waiting to be anchored", who: s.signer, error: s.error });
    if (s.revokedAt) timeline.push({ t: s.revokedAt, what: "revoked", who: s.signer });
  }
  timeline.sort((a, b) => (a.t ?? Infinity) - (b.t ?? Infinity));
  const replaces = doc.signers.map(s => s.supersedes).filter(x => x && x !== ZERO32);
  clear(root,
    h("h1", {}, "Document"),
    h("p", {}, hashText(doc.docHash)),
    h("div", { class: "card" }, facts([
      ["Signers", String(doc.signers.length)],
      ["Stored file", doc.stored ? h("a", { href: `/v1/documents/${doc.docHash}/content`, download: "", id: "stored-file" }, "download (hash checked by the server)")
                                 : h("span", { class: "muted" }, "not stored on this server")],
      replaces.length ? ["Replaces", h("span", {}, [...new Set(replaces)].map(r => docLink(r)))] : null,
    ])),
    documentEnvelopes(doc.docHash, signal),
    h("h2", {}, "Signers"),
    revokeAction(doc, signal),
    signersTable(doc.signers, { receipts: true, metadata: true, docHash: doc.docHash }),
    metadataSection(doc.signers),
    h("h2", {}, "Timeline"),
    h("ol", { class: "timeline" }, timeline.map(e => h("li", { class: `tl-${e.what.split(" ")[0]}` },
      e.t ? timeCell(e.t) : h("span", { class: "muted" }, "pending"), " ",
      addrLink(e.who), ` ${e.what}`,
      e.block ? h("span", {}, " in block ", blockLink(e.block), ", tx ", txLink(e.tx)) : null,
      e.error ? h("span", { class: "bad-text" }, ` — ${e.error}`) : null))));
}

/** The metadata each signer submitted with their signature (this server keeps the text; the chain only its
 *  hash). Values are shown as text: strings as they are, anything else as JSON. */
function metadataSection(signers) {
  const withMeta = signers.filter(s => s.metadata && typeof s.metadata === "object");
  if (!withMeta.length) return null;
  return [
    h("h2", {}, "Metadata"),
    h("div", { class: "metadata-list", id: "metadata" }, withMeta.map(s => h("div", { class: "card metadata", dataset: { signer: s.signer } },
      h("p", { class: "small" }, "From ", addrLink(s.signer), ", signed through its hash ", metaHashCell(s.metadataHash)),
      facts(Object.entries(s.metadata).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]))))),
  ];
}

/** "You signed this: Revoke" when the wallet's account is an active signer of the document. Filled in
 *  asynchronously: the page does not wait for the wallet, and never prompts it unless asked to. */
function revokeAction(doc, signal) {
  const box = h("div", { class: "revoke-action", id: "revoke-action" });
  const show = account => {
    if (signal.aborted) return;
    const mine = account && doc.signers.find(s => sameAddress(s.signer, account));
    if (mine && ["anchored", "confirmed"].includes(mine.state) && !mine.revokedAt) {
      clear(box, h("div", { class: "box" },
        h("span", {}, "Your wallet’s account ", addrLink(account), " signed this document. "),
        h("a", { class: "btn btn-small btn-danger", id: "revoke-link", href: `#/revoke/${doc.docHash}` }, "Revoke")));
    } else if (mine && mine.revokedAt) {
      clear(box, h("p", { class: "muted small", id: "revoked-note" }, "Your wallet’s account ", addrLink(account),
        " revoked its signature of this document on ", timeCell(mine.revokedAt), "."));
    } else if (!account && window.ethereum) {
      const connect = h("button", { type: "button", class: "btn btn-small", id: "revoke-connect" }, "Connect wallet");
      connect.addEventListener("click", () => window.ethereum.request({ method: "eth_requestAccounts" })
        .then(a => show((a && a[0]) || null), () => {}));
      clear(box, h("p", { class: "muted small" }, "Signed this document? ", connect, " to revoke your signature."));
    } else {
      clear(box);
    }
  };
  sharedAccount().then(show);
  return box;
}

// ---------------------------------------------------------------- signer / address

export async function signerPage(root, [address], { signal, ctx }) {
  clear(root, h("h1", {}, "Signer"), loading());
  if (!isAddress(address)) {
    clear(root, h("h1", {}, "Signer"), errorBox({ title: "Not an address", detail: `“${address}” is not 0x + 40 hex digits` }));
    return;
  }
  const [data, chain] = await Promise.all([api(`/v1/explorer/signers/${address}`, { signal }), ctx.chainInfo().catch(() => null)]);
  const role = chain && sameAddress(data.signer, chain.contract) ? "the docchain registry contract"
    : chain && sameAddress(data.signer, chain.relayer) ? "docchain’s relayer (it pays gas, it does not sign documents)" : null;
  clear(root,
    h("h1", {}, "Signer"),
    h("p", {}, hashText(toChecksumAddress(data.signer))),
    role ? h("p", { class: "muted" }, `This address is ${role}.`) : null,
    data.pending.length ? h("section", {}, h("h2", {}, "Waiting to be anchored"),
      table(["Document", "State"], data.pending.map(p => [docLink(p.docHash), badge(p.state)]))) : null,
    h("h2", {}, "Signed documents ", h("span", { class: "muted" }, `(${data.documents.length})`)),
    data.documents.length
      ? table(["Document", "State", "Signed at", "Block", "Transaction", "Anchored", "Confirmations", "Revoked"], data.documents.map(d => [
          docLink(d.docHash), badge(d.state), timeCell(d.timestamp), blockLink(d.blockNumber), txLink(d.txHash),
          anchoringCell(d), String(d.confirmations), d.revokedAt ? timeCell(d.revokedAt) : h("span", { class: "muted" }, "no"),
        ]), { cls: "signer-documents" })
      : empty("No signed documents", "This address has not signed any document on this registry."));
}

// ---------------------------------------------------------------- transaction

export async function txPage(root, [hash], { signal }) {
  clear(root, h("h1", {}, "Transaction"), loading());
  if (!isHash(hash)) {
    clear(root, h("h1", {}, "Transaction"), errorBox({ title: "Not a transaction hash", detail: `“${hash}” is not 0x + 64 hex digits` }));
    return;
  }
  const tx = await apiOrNull(`/v1/explorer/tx/${hash}`, { signal });
  if (!tx) {
    clear(root, h("h1", {}, "Transaction"), h("p", {}, hashText(hash.toLowerCase())),
      empty("Unknown transaction", "The node knows no transaction with this hash.",
        h("p", {}, h("a", { href: `#/doc/${hash}` }, "look it up as a document"))));
    return;
  }
  clear(root,
    h("h1", {}, "Transaction"),
    h("p", {}, hashText(tx.hash)),
    h("div", { class: "card" }, facts([
      ["Status", statusBadge(tx.status)],
      ["Block", blockLink(tx.blockNumber)],
      ["From", addrLink(tx.from, { full: true })],
      ["To", addrLink(tx.to, { full: true })],
      ["Nonce", String(tx.nonce)],
      ["Gas used", tx.gasUsed === null ? "—" : tx.gasUsed.toLocaleString("en-US")],
      ["Call", tx.call ? h("code", { id: "tx-function" }, `${tx.call.function}()`) : h("span", { class: "muted" }, "not a registry call")],
    ])),
    tx.call && tx.call.args ? callArgs(tx.call) : null,
    (tx.roots || []).map(rootSection),
    // an anchorRoot's one event is its root, shown above
    (tx.roots || []).length && !tx.events.length ? null : h("h2", {}, "Events"),
    (tx.roots || []).length && !tx.events.length ? null : tx.events.length
      ? table(["Event", "Document", "Signer", "Log index", "Replaces"], tx.events.map(e => [
          h("span", { class: `badge badge-${e.kind === "Revoked" ? "bad" : "ok"}`, dataset: { kind: e.kind } }, e.kind),
          docLink(e.docHash), addrLink(e.signer), String(e.logIndex),
          e.supersedes && e.supersedes !== ZERO32 ? docLink(e.supersedes) : h("span", { class: "muted" }, "—"),
        ]), { cls: "events-table" })
      : empty("No registry events", tx.status === null ? "The transaction is not mined yet." : "This transaction emitted no registry event."));
}

/** A Merkle root the transaction anchored: the chain holds the root and its leaf count; the documents under it
 *  are those this service put in the tree (none for another sender's tree). */
function rootSection(r) {
  const known = r.documents.length;
  return h("section", { class: "merkle-root-section", dataset: { root: r.root } },
    h("h2", {}, "Merkle root"),
    h("div", { class: "card" }, facts([
      ["Root", h("code", { class: "wrap merkle-root" }, r.root)],
      ["Leaves", h("span", { class: "leaf-count" }, r.leafCount.toLocaleString("en-US"))],
      ["Anchored by", addrLink(r.sender, { full: true })],
      ["Log index", String(r.logIndex)],
    ])),
    known
      ? table(["Leaf", "Document", "Signer", "State"], r.documents.map(d => [
          d.leafIndex === null ? h("span", { class: "muted" }, "—") : String(d.leafIndex),
          docLink(d.docHash), addrLink(d.signer), badge(d.state),
        ]), { cls: "tree-documents" })
      : h("p", { class: "muted small" }, "This service holds none of the tree’s documents: another sender anchored it."),
    known && known < r.leafCount
      ? h("p", { class: "muted small" }, `${known.toLocaleString("en-US")} of ${r.leafCount.toLocaleString("en-US")} leaves shown.`)
      : null);
}

/** The decoded call: registrations (tuples of docHash, signer, metadataHash, supersedes, deadline) as a table. */
function callArgs(call) {
  const regs = [];
  const walk = v => {
    if (!Array.isArray(v)) return;
    if (v.length === 5 && isHash(v[0]) && isAddress(v[1]) && isHash(v[2]) && isHash(v[3])) { regs.push(v); return; }
    v.forEach(walk);
  };
  Object.values(call.args).forEach(walk);
  const rest = Object.entries(call.args).filter(([, v]) => !Array.isArray(v));
  return h("section", {},
    h("h2", {}, "Decoded call ", h("code", {}, call.function)),
    regs.length ? table(["Document", "Signer", "Replaces", "Deadline"], regs.map(r => [
      docLink(r[0]), addrLink(r[1]), r[3] !== ZERO32 ? docLink(r[3]) : h("span", { class: "muted" }, "—"), timeCell(Number(r[4])),
    ])) : null,
    rest.length ? facts(rest.map(([k, v]) => [k, valueCell(v)])) : null,
    h("details", {}, h("summary", {}, "raw arguments"), h("pre", { class: "raw" }, JSON.stringify(call.args, null, 2))));
}

function valueCell(v) {
  if (typeof v === "string" && isAddress(v)) return addrLink(v, { full: true });
  if (typeof v === "string" && isHash(v)) return docLink(v);
  return h("code", {}, String(v));
}

// ---------------------------------------------------------------- block

export async function blockPage(root, [number], { signal }) {
  clear(root, h("h1", {}, "Block"), loading());
  if (!/^\d+$/.test(number)) {
    clear(root, h("h1", {}, "Block"), errorBox({ title: "Not a block number", detail: `“${number}”` }));
    return;
  }
  const b = await apiOrNull(`/v1/explorer/blocks/${number}`, { signal });
  if (!b) {
    clear(root, h("h1", {}, `Block #${number}`), empty("No such block", "The chain has not reached this block yet."));
    return;
  }
  clear(root,
    h("h1", {}, `Block #${b.number}`),
    h("div", { class: "pager" }, b.number > 0 ? h("a", { href: `#/block/${b.number - 1}` }, "← previous") : null,
      h("a", { href: `#/block/${b.number + 1}` }, "next →")),
    h("div", { class: "card" }, facts([
      ["Hash", h("code", { class: "wrap" }, b.hash)],
      ["Parent", b.number > 0 ? blockLink(b.number - 1, { label: `#${b.number - 1} · ${short(b.parentHash)}` }) : h("code", {}, short(b.parentHash))],
      ["Time", timeCell(b.timestamp)],
      ["Transactions", String(b.txCount)],
      ["Gas used", b.gasUsed.toLocaleString("en-US")],
    ])),
    h("h2", {}, "Registry transactions"),
    b.transactions.length ? b.transactions.map(txCard) : empty("No registry transactions", "No docchain transaction is in this block."));
}
