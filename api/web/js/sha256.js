// SHA-256 of a File in the browser, streamed, with progress. The file never leaves the page.
//
// WebCrypto has no streaming digest: crypto.subtle.digest wants the whole file in memory. So the file is read
// in order into two CHUNK buffers (the file's byte stream, the next read running while the last one is hashed)
// and fed to an incremental SHA-256: hash-wasm's WebAssembly one (vendored from npm in hash-wasm-sha256.js),
// or, where WebAssembly cannot run (disabled by policy, a browser's lockdown mode), the JavaScript one below.
// The page's memory stays the same whatever the file's size (where Blob streams have no BYOB reader, File.slice
// gives a fresh buffer per slice instead, and memory then depends on when the garbage collector runs).

import { createSHA256 } from "./hash-wasm-sha256.js";

export const CHUNK = 1024 * 1024;

export const WASM = "WebAssembly SHA-256";
export const JS = "JavaScript SHA-256";

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Incremental SHA-256 (FIPS 180-4) in JavaScript: update(bytes)… then digest() → Uint8Array(32). */
export class Sha256 {
  constructor() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Uint32Array(64);
    this.buf = new Uint8Array(64);
    this.bufLen = 0;
    this.length = 0;  // bytes so far (a JS number is exact up to 2^53)
  }

  update(data) {
    let i = 0;
    const n = data.length;
    this.length += n;
    if (this.bufLen > 0) {
      const take = Math.min(64 - this.bufLen, n);
      this.buf.set(data.subarray(0, take), this.bufLen);
      this.bufLen += take;
      i = take;
      if (this.bufLen < 64) return this;
      this.block(this.buf, 0);
      this.bufLen = 0;
    }
    for (; i + 64 <= n; i += 64) this.block(data, i);
    if (i < n) {
      this.buf.set(data.subarray(i), 0);
      this.bufLen = n - i;
    }
    return this;
  }

  block(d, o) {
    const w = this.w, h = this.h;
    for (let t = 0; t < 16; t++, o += 4) w[t] = (d[o] << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3];
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15], y = w[t - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], e = h[4], f = h[5], g = h[6], dd = h[3], hh = h[7];
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + S1 + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (dd + t1) | 0; dd = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += dd; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }

  digest() {
    const bits = this.length * 8;
    const pad = new Uint8Array(((this.bufLen < 56 ? 56 : 120) - this.bufLen) + 8);
    pad[0] = 0x80;
    const hi = Math.floor(bits / 2 ** 32), lo = bits >>> 0;
    const end = pad.length;
    for (let i = 0; i < 4; i++) {
      pad[end - 1 - i] = (lo >>> (8 * i)) & 0xff;
      pad[end - 5 - i] = (hi >>> (8 * i)) & 0xff;
    }
    const length = this.length;
    this.update(pad);
    this.length = length;
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      out[4 * i] = this.h[i] >>> 24; out[4 * i + 1] = this.h[i] >>> 16;
      out[4 * i + 2] = this.h[i] >>> 8; out[4 * i + 3] = this.h[i];
    }
    return out;
  }
}

export function toHex(bytes) {
  let s = "0x";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** An incremental SHA-256 with hash-wasm's interface (init, update, digest("binary")) from `engine`. */
async function hasher(engine) {
  if (engine === WASM) return createSHA256();
  const js = new Sha256();
  return { init() {}, update(data) { js.update(data); }, digest() { return js.digest(); } };
}

let wasmWorks = null;  // whether WebAssembly runs in this page: asked once

async function pickEngine() {
  if (wasmWorks === null) {
    try {
      await createSHA256();
      wasmWorks = true;
    } catch {
      wasmWorks = false;
    }
  }
  return wasmWorks ? WASM : JS;
}

/** Yields the bytes of `file` in order, with at most two CHUNK buffers in use, one read ahead of the other. */
async function* slices(file) {
  let reader = null;
  try {
    // A byte stream's BYOB reader fills the page's own buffers: the same two, however large the file.
    reader = file.stream().getReader({ mode: "byob" });
  } catch {
    reader = null;  // a browser without byte streams for Blob: File.slice, one fresh buffer per slice
  }
  if (reader === null) {
    const read = offset => file.slice(offset, offset + CHUNK).arrayBuffer();
    let ahead = file.size > 0 ? read(0) : null;
    for (let offset = 0; offset < file.size; offset += CHUNK) {
      const chunk = new Uint8Array(await ahead);
      ahead = offset + CHUNK < file.size ? read(offset + CHUNK) : null;
      yield chunk;
    }
    return;
  }
  let finished = false;
  try {
    let spare = new ArrayBuffer(CHUNK);
    let ahead = reader.read(new Uint8Array(new ArrayBuffer(CHUNK)));
    for (;;) {
      const { done, value } = await ahead;
      if (done) { finished = true; return; }
      ahead = reader.read(new Uint8Array(spare));
      yield value;
      spare = value.buffer;  // hashed by now: the read after next fills it again
    }
  } finally {
    // stopped early (cancelled, or a failed read): the read in flight ends with the stream, not as an error
    if (!finished) reader.cancel().catch(() => {});
  }
}

// The byte stream hands over pieces of some tens of KiB: a label rewritten for each would be thousands of
// layouts per GiB for no visible change.
const PROGRESS_EVERY_MS = 100;

/**
 * SHA-256 of a File/Blob as "0x…" hex. onProgress(fraction, "reading") while reading (at most every 100 ms),
 * then (1, "done"). `engine` (WASM or JS) forces one implementation; by default WebAssembly where it runs.
 * Answers {hash, method, ms}; throws an AbortError when signal aborts.
 */
export async function hashFile(file, { onProgress = () => {}, signal, engine } = {}) {
  const start = performance.now();
  const method = engine || await pickEngine();
  const digest = await hasher(method);
  digest.init();
  onProgress(0, "reading");
  let done = 0, shown = start;
  for await (const chunk of slices(file)) {
    if (signal && signal.aborted) throw new DOMException("hashing cancelled", "AbortError");
    digest.update(chunk);
    done += chunk.length;
    const now = performance.now();
    if (now - shown >= PROGRESS_EVERY_MS) {
      shown = now;
      onProgress(done / file.size, "reading");
    }
  }
  if (done !== file.size) throw new Error(`read ${done} bytes of a ${file.size}-byte file: was it changed?`);
  const hash = toHex(digest.digest("binary"));
  onProgress(1, "done");
  return { hash, method, ms: performance.now() - start };
}
