// The optional write API key on the sign and revoke pages. A docchain server with DOCCHAIN_API_KEYS set
// answers 401 to a submission or revocation without one; the key typed here lives in sessionStorage (this tab
// only, gone when it closes) and api.js sends it as X-API-Key on writes.

import { storedApiKey, storeApiKey } from "./api.js";
import { h } from "./ui.js";

/** A collapsible "API key" field; open when a key is already stored. `reveal()` opens and focuses it. */
export function apiKeyField() {
  const input = h("input", { type: "password", id: "api-key", autocomplete: "off", spellcheck: "false",
                             placeholder: "only if the server requires one", value: storedApiKey() || null });
  input.addEventListener("input", () => storeApiKey(input.value.trim()));
  const el = h("details", { class: "api-key", id: "api-key-field", open: Boolean(storedApiKey()) },
    h("summary", {}, "API key"),
    h("label", { class: "field", for: "api-key" },
      h("span", {}, "Write API key (sent as X-API-Key, kept in this tab only)"), input));
  const reveal = () => { el.open = true; input.focus(); };
  return { el, reveal };
}

/** The hint under a 401/403 problem: what the key field is for, or that the key given was refused. */
export function authHint(err, field) {
  if (!err || (err.status !== 401 && err.status !== 403)) return null;
  field.reveal();
  if (err.status === 403) return "The API key was accepted but may not do this; ask the server's operator for one that can.";
  return storedApiKey()
    ? "This docchain server refused the API key given above: check it, then try again."
    : "This docchain server requires an API key to sign and revoke: enter it in the “API key” field above, then try again.";
}
