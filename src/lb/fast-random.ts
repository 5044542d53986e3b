// The policies' default source of randomness: xoshiro128** (Blackman & Vigna), shared by all balancers.
// Not Math.random because, measured on Node 24, that costs 10-15 ns per call and leaves garbage behind (a
// young-generation GC every ~65k picks); this costs a few ns and allocates nothing. Not for anything security-related.

/** xoshiro128** state in [0..3]; [4] holds the latest output, so advance() returns nothing that could be boxed. */
const state = new Uint32Array(5);
for (let i = 0; i < 4; i++) state[i] = Math.floor(Math.random() * 2 ** 32);
if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1; // all-zero state would only ever yield 0

function advance(): void {
  const s0 = state[0];
  const s1 = state[1];
  const s2 = state[2] ^ s0;
  const s3 = state[3] ^ s1;
  state[4] = Math.imul(rotateLeft(Math.imul(s1, 5), 7), 9);
  state[0] = s0 ^ s3;
  state[1] = s1 ^ s2;
  state[2] = s2 ^ (s1 << 9);
  state[3] = rotateLeft(s3, 11);
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/** Uniform in [0, 1) from 32 random bits, like Math.random; the default for LbOptions.random. */
export function fastRandom(): number {
  advance();
  return state[4] / 2 ** 32;
}

/**
 * Uniform integer in [0, count) for count up to 2^21: from `random` when a test injected one, else straight from
 * the generator. Policies call this rather than `Math.floor(random() * count)` because an integer result is never
 * boxed, while a float returned from a call the JIT did not inline is: measurably, one allocation per pick.
 */
export function randomIndex(count: number, random: (() => number) | undefined): number {
  if (random !== undefined) return Math.floor(random() * count);
  advance();
  return Math.floor((state[4] * count) / 2 ** 32);
}
