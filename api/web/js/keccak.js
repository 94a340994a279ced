// Keccak-256 (the original Keccak padding that Ethereum uses, not NIST SHA3-256) and EIP-55 checksummed
// addresses. WebCrypto has no Keccak, and the page loads nothing from a CDN, so the permutation is here.
//
// Each 64-bit lane is a pair of 32-bit words (lo, hi) in one Uint32Array: plain 32-bit integer arithmetic
// is far faster than BigInt, and byte i of the little-endian state is simply byte (i & 3) of word i >> 2.

const RATE = 136;  // bytes absorbed per permutation: 1600 - 2 * 256 bits of capacity

// Round constants and rotation offsets are generated as the Keccak reference defines them rather than
// pasted as 48 hex words, so there is no table to mistype.
const RC = new Uint32Array(48);  // [lo, hi] per round
{
  let r = 1;  // the LFSR x^8 + x^6 + x^5 + x^4 + 1, one output bit per step
  for (let round = 0; round < 24; round++) {
    for (let j = 0; j < 7; j++) {
      const bit = (1 << j) - 1;  // the bit positions 0, 1, 3, 7, 15, 31, 63
      if (r & 1) RC[2 * round + (bit >> 5)] ^= 1 << (bit & 31);
      r = r & 0x80 ? (r << 1) ^ 0x171 : r << 1;
    }
  }
}
const ROT = new Uint8Array(25);   // rho: rotation of lane x + 5y
const DEST = new Uint8Array(25);  // pi: lane (x, y) moves to (y, 2x + 3y)
for (let t = 0, x = 1, y = 0; t < 24; t++) {
  ROT[x + 5 * y] = ((t + 1) * (t + 2) / 2) % 64;
  [x, y] = [y, (2 * x + 3 * y) % 5];
}
for (let x = 0; x < 5; x++) for (let y = 0; y < 5; y++) DEST[x + 5 * y] = y + 5 * ((2 * x + 3 * y) % 5);

function keccakF(s) {
  const c = new Uint32Array(10), b = new Uint32Array(50);
  for (let round = 0; round < 24; round++) {
    // theta: each lane ^= parity of the column to its left ^ (parity of the column to its right, rotated by 1)
    for (let x = 0; x < 5; x++) {
      c[2 * x] = s[2 * x] ^ s[2 * x + 10] ^ s[2 * x + 20] ^ s[2 * x + 30] ^ s[2 * x + 40];
      c[2 * x + 1] = s[2 * x + 1] ^ s[2 * x + 11] ^ s[2 * x + 21] ^ s[2 * x + 31] ^ s[2 * x + 41];
    }
    for (let x = 0; x < 5; x++) {
      const l = 2 * ((x + 4) % 5), r = 2 * ((x + 1) % 5);
      const dlo = c[l] ^ ((c[r] << 1) | (c[r + 1] >>> 31));
      const dhi = c[l + 1] ^ ((c[r + 1] << 1) | (c[r] >>> 31));
      for (let y = 0; y < 25; y += 5) { s[2 * (x + y)] ^= dlo; s[2 * (x + y) + 1] ^= dhi; }
    }
    // rho and pi: rotate each lane and move it
    for (let i = 0; i < 25; i++) {
      let lo = s[2 * i], hi = s[2 * i + 1], n = ROT[i];
      if (n >= 32) { [lo, hi] = [hi, lo]; n -= 32; }
      const d = 2 * DEST[i];
      b[d] = n ? (lo << n) | (hi >>> (32 - n)) : lo;
      b[d + 1] = n ? (hi << n) | (lo >>> (32 - n)) : hi;
    }
    // chi: the only non-linear step, row by row
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) {
        const i = 2 * (x + y), j = 2 * ((x + 1) % 5 + y), k = 2 * ((x + 2) % 5 + y);
        s[i] = b[i] ^ (~b[j] & b[k]);
        s[i + 1] = b[i + 1] ^ (~b[j + 1] & b[k + 1]);
      }
    }
    // iota
    s[0] ^= RC[2 * round];
    s[1] ^= RC[2 * round + 1];
  }
}

/** keccak256(data) → Uint8Array(32); a string is hashed as its UTF-8 bytes. */
export function keccak256(data) {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const s = new Uint32Array(50);
  // pad with 0x01 … 0x80 (Keccak's multi-rate padding; SHA3-256 would use 0x06 here)
  const blocks = Math.floor(bytes.length / RATE) + 1;
  const padded = new Uint8Array(blocks * RATE);
  padded.set(bytes);
  padded[bytes.length] ^= 0x01;
  padded[padded.length - 1] ^= 0x80;
  for (let off = 0; off < padded.length; off += RATE) {
    for (let i = 0; i < RATE; i++) s[i >> 2] ^= padded[off + i] << (8 * (i & 3));
    keccakF(s);
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = s[i >> 2] >>> (8 * (i & 3));
  return out;
}

/** keccak256 as 0x + 64 lowercase hex digits. */
export function keccak256Hex(data) {
  return "0x" + Array.from(keccak256(data), b => b.toString(16).padStart(2, "0")).join("");
}

/** EIP-55: a hex digit is upper case when the matching nibble of keccak256(lowercase hex address) is >= 8.
 *  Anything that is not an address comes back unchanged, so callers may pass whatever an API returned. */
export function toChecksumAddress(address) {
  if (!/^0x[0-9a-fA-F]{40}$/.test(address || "")) return address;
  const hex = address.slice(2).toLowerCase();
  const hash = keccak256(hex);
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1] >> (i & 1 ? 0 : 4)) & 0xf;
    out += nibble >= 8 ? hex[i].toUpperCase() : hex[i];
  }
  return out;
}

/** Address equality ignores case: a checksum is for people, not identity. */
export const sameAddress = (a, b) => !!a && !!b && a.toLowerCase() === b.toLowerCase();
