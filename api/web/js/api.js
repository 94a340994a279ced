// Fetch wrapper: JSON in and out; RFC 9457 problem+json answers become ApiError with title and detail.

export class ApiError extends Error {
  constructor(status, title, detail, problem = null) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;       // 0: the API could not be reached at all
    this.title = title;
    this.detail = detail || "";
    this.problem = problem;
  }
}

/** The write API key the user typed on the sign or revoke page: kept for this tab only (sessionStorage). */
const API_KEY_ITEM = "docchain.apiKey";

export function storedApiKey() {
  try { return sessionStorage.getItem(API_KEY_ITEM) || ""; } catch { return ""; }
}

export function storeApiKey(value) {
  try {
    if (value) sessionStorage.setItem(API_KEY_ITEM, value);
    else sessionStorage.removeItem(API_KEY_ITEM);
  } catch { /* storage disabled: the key is used for this page only */ }
}

export async function api(path, { method = "GET", json, form, signal } = {}) {
  const init = { method, signal, headers: { accept: "application/json, application/problem+json" } };
  // writes need the key when the server has API keys configured (401 otherwise); reads never do
  const key = method !== "GET" && method !== "HEAD" ? storedApiKey() : "";
  if (key) init.headers["x-api-key"] = key;
  if (json !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;  // multipart: the browser sets the boundary
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Cannot reach the docchain API", `${location.origin} did not answer (${err.message})`);
  }
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const p = body && typeof body === "object" ? body : {};
    let detail = p.detail || (typeof body === "string" ? body.slice(0, 300) : "");
    if (Array.isArray(p.errors) && p.errors.length) {
      detail += (detail ? " — " : "") + p.errors.map(e => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
    }
    throw new ApiError(res.status, p.title || res.statusText || `HTTP ${res.status}`, detail, p);
  }
  return body;
}

/** GET that answers null for 404 (an unknown document is a normal result, not an error). */
export async function apiOrNull(path, opts) {
  try {
    return await api(path, opts);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}
