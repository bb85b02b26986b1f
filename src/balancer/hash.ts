// Owns the 32-bit string hash of consistent hashing: request keys (worker, per request) and
// backend identities (primary, when it builds the hash ring, ring.ts) go through the same function.
//
// FNV-1a over the string's UTF-16 code units (charCodeAt: no encoding, no allocation), then
// murmur3's fmix32 finaliser. FNV-1a alone mixes its last characters poorly into the low bits,
// and ring positions are compared as whole numbers, so keys that differ in one trailing character
// ("/a1", "/a2") would land near each other; fmix32 makes every input bit flip about half the
// output bits.

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** murmur3's 32-bit finaliser: full avalanche, a bijection on 32 bits. Returns an unsigned value. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Unsigned 32-bit hash of `s`, the same in every process and Node version (it depends on code
 * units only). `seed` gives independent hash functions of one string.
 * Never -1, so it cannot be mistaken for PickContext's "no key". Optimised code keeps the
 * result in a register; only unoptimised code boxes a value of 2^31 or more (not a small integer).
 */
export function hashString(s: string, seed = 0): number {
  let h = (FNV_OFFSET ^ seed) | 0;
  for (let k = 0; k < s.length; k++) {
    h ^= s.charCodeAt(k);
    h = Math.imul(h, FNV_PRIME);
  }
  return fmix32(h);
}
