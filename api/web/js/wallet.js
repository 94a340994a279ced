// The EIP-1193 wallet (window.ethereum) as the sign and revoke pages use it: connect, show the account and
// chain, follow account/chain changes, and sign EIP-712 typed data.

import { ApiError } from "./api.js";
import { h, clear, facts, addrLink, errorBox } from "./ui.js";

/** The account the wallet already shares with this page, without prompting; null if none (or no wallet). */
export async function sharedAccount() {
  if (!window.ethereum) return null;
  try {
    const accounts = await window.ethereum.request({ method: "eth_accounts" });
    return (accounts && accounts[0]) || null;
  } catch {
    return null;  // a wallet may refuse even this before it is unlocked: treat it as not connected
  }
}

/**
 * A wallet card: a connect button, then the account, the wallet's chain and docchain's registry (with a
 * warning when the chains differ). Calls onChange(account) whenever the account changes; `cleanup()`
 * removes the provider listeners when the view goes away. `state` holds {account, walletChain}.
 */
export function walletPanel({ ctx, onChange = () => {}, onError = () => {}, note = "Your key stays in your wallet; docchain only sees the signature." }) {
  const state = { account: null, walletChain: null };
  const el = h("div", { class: "wallet" });
  const connectBtn = h("button", { type: "button", id: "connect", class: "btn" }, "Connect wallet");

  function render() {
    if (!window.ethereum) {
      clear(el, h("div", { class: "box empty" }, h("strong", {}, "No wallet found"),
        h("p", {}, "Signing needs an Ethereum wallet in this browser (an EIP-1193 provider such as MetaMask). Verification works without one.")));
      return;
    }
    if (!state.account) { clear(el, connectBtn, h("p", { class: "muted small" }, note)); return; }
    const chain = ctx.chain;
    const mismatch = chain && state.walletChain !== null && state.walletChain !== chain.chainId;
    clear(el,
      facts([["Account", addrLink(state.account, { full: true })],
             ["Wallet chain", String(state.walletChain ?? "?")],
             chain ? ["Registry", h("span", {}, `chain ${chain.chainId} · `, addrLink(chain.contract))] : null]),
      mismatch ? h("div", { class: "box warn" }, `Your wallet is on chain ${state.walletChain} but this docchain registry is on chain ${chain.chainId}. Switch networks in the wallet; most wallets refuse to sign for another chain.`) : null);
  }

  connectBtn.addEventListener("click", async () => {
    try {
      const [accounts, chainHex] = await Promise.all([
        window.ethereum.request({ method: "eth_requestAccounts" }),
        window.ethereum.request({ method: "eth_chainId" }),
        ctx.chainInfo(),
      ]);
      if (!accounts || !accounts.length) throw new Error("the wallet shared no account");
      state.account = accounts[0];
      state.walletChain = parseInt(chainHex, 16);
      render();
      onChange(state.account);
    } catch (err) {
      onError(errorBox(walletError(err), "Connect the wallet again to retry."));
    }
  });

  let cleanup = () => {};
  if (window.ethereum && window.ethereum.on) {
    const onAccounts = a => { state.account = (a && a[0]) || null; render(); onChange(state.account); };
    const onChain = c => { state.walletChain = parseInt(c, 16); render(); };
    window.ethereum.on("accountsChanged", onAccounts);
    window.ethereum.on("chainChanged", onChain);
    cleanup = () => { window.ethereum.removeListener?.("accountsChanged", onAccounts); window.ethereum.removeListener?.("chainChanged", onChain); };
  }
  render();
  /** Take an account the wallet already shares (eth_accounts), as if the user had pressed Connect. */
  const adopt = (account, chainHex) => {
    state.account = account;
    state.walletChain = chainHex ? parseInt(chainHex, 16) : null;
    render();
    onChange(account);
  };
  return { el, state, cleanup, adopt };
}

/**
 * The full EIP-712 JSON a wallet's eth_signTypedData_v4 takes, for one action ("registration" or
 * "revocation") of GET /v1/chain's `eip712`: the API serves each action's types apart from EIP712Domain
 * (ethers' signTypedData wants them so), and this form adds the domain type back.
 */
export function typedDataFor(chain, action, message) {
  const { domain, domainType, actions } = chain.eip712;
  const { primaryType, types } = actions[action];
  return { types: { EIP712Domain: domainType, ...types }, primaryType, domain, message };
}

/** eth_signTypedData_v4 → a 65-byte 0x signature with v = 27/28; wallet failures become readable errors. */
export async function signTypedData(account, typed) {
  let signature;
  try {
    signature = await window.ethereum.request({ method: "eth_signTypedData_v4", params: [account, JSON.stringify(typed)] });
  } catch (err) {
    throw walletError(err);
  }
  // some wallets (hardware keys) answer v as 0/1; the registry, like OpenZeppelin's ECDSA, wants 27/28
  if (/^0x[0-9a-fA-F]{128}0[01]$/.test(signature)) signature = signature.slice(0, 130) + (parseInt(signature.slice(130), 16) + 27).toString(16);
  return signature;
}

export function walletError(err) {
  if (err instanceof ApiError) return err;
  if (err && err.code === 4001) return { title: "Signature request rejected", detail: "You declined in the wallet; nothing was submitted." };
  return { title: "The wallet returned an error", detail: (err && err.message) || String(err) };
}
