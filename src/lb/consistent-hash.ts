// Consistent hashing with Maglev (Eisenbud et al., NSDI 2016): update() fills a lookup table of `tableSize` slots
// with endpoint indexes so that each endpoint owns a share of slots proportional to its weight; pick() hashes the
// request's key to a slot. When an endpoint joins or leaves, only about its own share of slots changes owner.
import { randomIndex } from './fast-random.ts';
import type { LbEndpoint, LbOptions, LoadBalancer, PickContext } from './types.ts';

/** A prime; with 5-10 endpoints that is thousands of slots each, so shares are within a fraction of a percent. */
export const DEFAULT_MAGLEV_TABLE_SIZE = 65_537;

// Three seeds make three unrelated hash functions from one: Maglev needs two independent hashes of an endpoint's
// id (where its slot preferences start and how far apart they are), and the key hash should be unrelated to both.
const OFFSET_SEED = 0x9e3779b9;
const SKIP_SEED = 0x85ebca6b;
const KEY_SEED = 0xc2b2ae35;

/**
 * 32-bit FNV-1a over UTF-16 code units, followed by murmur3's fmix32 finalizer. FNV-1a alone mixes poorly into
 * the low bits for short strings that differ in one character ("10.0.0.1:80", "10.0.0.2:80"); the finalizer
 * makes every input bit affect every output bit. Not cryptographic: a client who can choose keys can aim at one
 * endpoint, which it could equally do by reusing one key. Allocation-free.
 */
export function hashString32(text: string, seed: number): number {
  let hash = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** A prime; beyond it a table costs megabytes per cluster and randomIndex() would lose exactness. */
export const MAX_MAGLEV_TABLE_SIZE = 2_000_003;

/** Maglev needs a prime table size (so every skip visits every slot); other sizes are rounded up to one. */
export function maglevTableSize(requested: number): number {
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_MAGLEV_TABLE_SIZE) {
    throw new RangeError(
      `consistent-hash tableSize must be an integer from 1 to ${MAX_MAGLEV_TABLE_SIZE}, got ${requested}`,
    );
  }
  let size = Math.max(requested, 2);
  while (!isPrime(size)) size++;
  return size;
}

function isPrime(value: number): boolean {
  if (value < 4) return value >= 2;
  if (value % 2 === 0) return false;
  for (let divisor = 3; divisor * divisor <= value; divisor += 2) {
    if (value % divisor === 0) return false;
  }
  return true;
}

export class ConsistentHashBalancer implements LoadBalancer {
  readonly #tableSize: number;
  /** Endpoints sorted by id, so the table depends on the set of endpoints and not on the order they arrive in. */
  #endpoints: readonly LbEndpoint[] = [];
  /** Slot → index into #endpoints. 16-bit entries halve the memory whenever there are fewer than 65,535 endpoints. */
  #table: Uint16Array | Uint32Array = new Uint16Array(0);
  /** Injected by tests; undefined means the shared generator (see fast-random.ts). */
  readonly #random: (() => number) | undefined;

  constructor(options: LbOptions = {}) {
    this.#tableSize = maglevTableSize(options.tableSize ?? DEFAULT_MAGLEV_TABLE_SIZE);
    this.#random = options.random;
  }

  update(endpoints: readonly LbEndpoint[]): void {
    const sorted = endpoints.slice().sort(compareIds);
    this.#table = sorted.length === 0 ? new Uint16Array(0) : buildMaglevTable(sorted, this.#tableSize);
    this.#endpoints = sorted;
  }

  /** A request without a key goes to a random slot, which still honours the weights. */
  pick(ctx: PickContext): LbEndpoint | undefined {
    if (this.#endpoints.length === 0) return undefined;
    const key = ctx.hashKey;
    const slot =
      key === undefined ? randomIndex(this.#tableSize, this.#random) : hashString32(key, KEY_SEED) % this.#tableSize;
    return this.#endpoints[this.#table[slot]];
  }
}

function compareIds(a: LbEndpoint, b: LbEndpoint): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Maglev's population: each endpoint walks its own permutation of the slots (start at `offset`, step by `skip`)
 * and endpoints take turns claiming the next free slot on their walk until the table is full.
 *
 * Weights set the turn order by stride scheduling: an endpoint's k-th turn (k = 0, 1, …) falls at virtual time
 * k / weight and turns go in time order, ties to the lower index. So shares follow weight to within one slot,
 * turns of heavy and light endpoints stay interleaved, every endpoint gets a slot as long as the table has room,
 * and equal weights give Maglev's plain 0, 1, …, n-1 rotation. A min-heap on the next turn time keeps the build
 * O(tableSize · log n) even for skewed weights, where a loop over all endpoints per round would not be.
 */
function buildMaglevTable(endpoints: readonly LbEndpoint[], tableSize: number): Uint16Array | Uint32Array {
  const count = endpoints.length;
  // The largest value marks an empty slot, so it must not also be an endpoint index.
  const wide = count >= 0xffff;
  const emptySlot = wide ? 0xffffffff : 0xffff;
  const table = wide ? new Uint32Array(tableSize) : new Uint16Array(tableSize);
  table.fill(emptySlot);

  const nextSlot = new Float64Array(count);
  const skip = new Float64Array(count);
  const turnsTaken = new Float64Array(count);
  const nextTurnTime = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const id = endpoints[i].id;
    nextSlot[i] = hashString32(id, OFFSET_SEED) % tableSize;
    // In 1..tableSize-1: never 0, and coprime with the prime table size, so the walk visits every slot.
    skip[i] = (hashString32(id, SKIP_SEED) % (tableSize - 1)) + 1;
  }
  // Everyone's first turn is at time 0 and ties go by index, so 0..n-1 in order is already a valid heap.
  const heap = new Uint32Array(count);
  for (let i = 0; i < count; i++) heap[i] = i;

  for (let filled = 0; filled < tableSize; filled++) {
    const endpoint = heap[0];
    let slot = nextSlot[endpoint];
    while (table[slot] !== emptySlot) {
      slot += skip[endpoint];
      if (slot >= tableSize) slot -= tableSize;
    }
    table[slot] = endpoint;
    slot += skip[endpoint];
    nextSlot[endpoint] = slot >= tableSize ? slot - tableSize : slot;
    // Computed as turns / weight rather than accumulated, so equal times compare exactly equal.
    nextTurnTime[endpoint] = ++turnsTaken[endpoint] / endpoints[endpoint].weight;
    siftDownRoot(heap, nextTurnTime);
  }
  return table;
}

/** Restores the min-heap of endpoints by next turn time (ties: lower index) after the root's time grew. */
function siftDownRoot(heap: Uint32Array, nextTurnTime: Float64Array): void {
  const size = heap.length;
  const moving = heap[0];
  let position = 0;
  for (;;) {
    let child = 2 * position + 1;
    if (child >= size) break;
    const right = child + 1;
    if (right < size && turnComesFirst(heap[right], heap[child], nextTurnTime)) child = right;
    if (!turnComesFirst(heap[child], moving, nextTurnTime)) break;
    heap[position] = heap[child];
    position = child;
  }
  heap[position] = moving;
}

function turnComesFirst(a: number, b: number, nextTurnTime: Float64Array): boolean {
  return nextTurnTime[a] < nextTurnTime[b] || (nextTurnTime[a] === nextTurnTime[b] && a < b);
}
