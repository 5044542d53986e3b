// x-request-id values for requests that arrive without one. UUID-shaped (version 4 layout, so tools that
// validate UUIDs accept them) but cheaper than crypto.randomUUID per request: 61 random bits fixed per
// process, then a 48-bit counter. Unique across proxies by the random part, within a process by the counter.
import { randomBytes } from 'node:crypto';

const r = randomBytes(8).toString('hex'); // 16 hex digits
const PREFIX = `${r.slice(0, 8)}-${r.slice(8, 12)}-4${r.slice(12, 15)}-${((Number.parseInt(r[15], 16) & 0x3) | 0x8).toString(16)}`;
let counter = randomBytes(4).readUInt32BE(0) * 4096;
const COUNTER_LIMIT = 2 ** 48;

export function nextRequestId(): string {
  counter = counter + 1 >= COUNTER_LIMIT ? 0 : counter + 1;
  const hex = counter.toString(16);
  // 15 hex digits after the variant digit: 3 + "-" + 12.
  const tail = hex.length >= 15 ? hex.slice(-15) : '000000000000000'.slice(hex.length) + hex;
  return `${PREFIX}${tail.slice(0, 3)}-${tail.slice(3)}`;
}
