// x-request-id values for requests that arrive without one. UUID-shaped (version 4 layout, so tools that
// validate UUIDs accept them) but cheaper than crypto.randomUUID per request: 61 random bits fixed per
// process, then a 48-bit counter. Unique across proxies by the random part, within a process by the counter.
// Per request only the counter's low 16 bits are formatted (two table lookups); the rest of the string is
// rebuilt once every 65,536 ids.
import { randomBytes } from 'node:crypto';

const r = randomBytes(8).toString('hex'); // 16 hex digits
const PREFIX = `${r.slice(0, 8)}-${r.slice(8, 12)}-4${r.slice(12, 15)}-${((Number.parseInt(r[15], 16) & 0x3) | 0x8).toString(16)}`;
const COUNTER_LIMIT = 2 ** 48;
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

let counter = randomBytes(4).readUInt32BE(0) * 4096;
/** Everything but the last 4 hex digits, for counter values whose high part is `headOf`. */
let head = '';
let headOf = -1;

export function nextRequestId(): string {
  counter = counter + 1 >= COUNTER_LIMIT ? 0 : counter + 1;
  const low = counter % 65536;
  const high = (counter - low) / 65536;
  if (high !== headOf) {
    headOf = high;
    // 15 hex digits after the variant digit: 3 + "-" + 12; the high part is the first 11 of them.
    const hex = high.toString(16).padStart(11, '0');
    head = `${PREFIX}${hex.slice(0, 3)}-${hex.slice(3)}`;
  }
  return head + HEX2[low >>> 8] + HEX2[low & 255];
}
