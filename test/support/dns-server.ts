// A tiny authoritative DNS server for tests: UDP on 127.0.0.1 port 0, answering A, AAAA and SRV queries from
// records the test sets (and changes while running). Just enough of the RFC 1035 wire format for c-ares to accept.
import { createSocket, type RemoteInfo } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

export type DnsRecord =
  | { type: 'A'; address: string; ttlS: number }
  | { type: 'AAAA'; address: string; ttlS: number }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string; ttlS: number };

export type DnsErrorRcode = 'SERVFAIL' | 'NXDOMAIN' | 'REFUSED';

export interface TestDnsServer {
  /** "127.0.0.1:PORT", ready for a resolver's server list. */
  readonly address: string;
  readonly port: number;
  /** Replace every record of `name`; an empty list makes the name exist with no records (NODATA). */
  setRecords(name: string, records: DnsRecord[]): void;
  /** Answer every query for `name` with this error until setRecords is called for it again. */
  setError(name: string, rcode: DnsErrorRcode): void;
  /** Hold every reply this long (tests of queries in flight). */
  setReplyDelayMs(delayMs: number): void;
  /** Queries received for `name` (of `type`, if given), counting c-ares's retries. */
  queryCount(name: string, type?: DnsRecord['type']): number;
  close(): Promise<void>;
}

const TYPE_CODES = { A: 1, AAAA: 28, SRV: 33 } as const;
const RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const CLASS_IN = 1;
const HEADER_BYTES = 12;
/** A compression pointer (top two bits set) to offset 12, where the question's name starts. */
const POINTER_TO_QUESTION_NAME = 0xc000 | HEADER_BYTES;

interface Question {
  id: number;
  flags: number;
  name: string;
  type: number;
  /** Offset just past the question, so the reply can echo its bytes verbatim (keeping the asker's letter case). */
  end: number;
}

type Zone = Map<string, { records: DnsRecord[] } | { error: DnsErrorRcode }>;

export async function startDnsServer(): Promise<TestDnsServer> {
  const zone: Zone = new Map();
  const queries: { name: string; type: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let replyDelayMs = 0;
  const socket = createSocket('udp4');

  socket.on('message', (msg: Buffer, from: RemoteInfo) => {
    const question = decodeQuestion(msg);
    if (!question) return; // Too mangled to answer; a real server would drop it too.
    queries.push({ name: question.name, type: question.type });
    const reply = answer(msg, question, zone);
    if (replyDelayMs === 0) {
      socket.send(reply, from.port, from.address);
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      socket.send(reply, from.port, from.address);
    }, replyDelayMs);
    timers.add(timer);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;

  return {
    address: `127.0.0.1:${port}`,
    port,
    setRecords(name, records) {
      zone.set(normalize(name), { records });
    },
    setError(name, rcode) {
      zone.set(normalize(name), { error: rcode });
    },
    setReplyDelayMs(delayMs) {
      replyDelayMs = delayMs;
    },
    queryCount(name, type) {
      const n = normalize(name);
      return queries.filter((q) => q.name === n && (type === undefined || q.type === TYPE_CODES[type])).length;
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      return new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function decodeQuestion(msg: Buffer): Question | undefined {
  if (msg.length < HEADER_BYTES + 5 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = HEADER_BYTES;
  for (;;) {
    if (offset >= msg.length) return undefined;
    const length = msg[offset];
    offset += 1;
    if (length === 0) break;
    if (length > 63 || offset + length > msg.length) return undefined; // No compression in a question.
    labels.push(msg.toString('latin1', offset, offset + length));
    offset += length;
  }
  if (offset + 4 > msg.length) return undefined;
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name: normalize(labels.join('.')),
    type: msg.readUInt16BE(offset),
    end: offset + 4,
  };
}

function answer(msg: Buffer, q: Question, zone: Zone): Buffer {
  const opcode = (q.flags >> 11) & 0xf;
  if (opcode !== 0) return reply(msg, q, RCODES.NOTIMP, []);
  const entry = zone.get(q.name);
  if (!entry) return reply(msg, q, RCODES.NXDOMAIN, []);
  if ('error' in entry) return reply(msg, q, RCODES[entry.error], []);
  const records = entry.records.filter((r) => TYPE_CODES[r.type] === q.type);
  return reply(msg, q, RCODES.NOERROR, records.map(encodeRecord));
}

function reply(msg: Buffer, q: Question, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(q.id, 0);
  // QR (a response) | the query's opcode | AA (we are the authority) | the query's RD | rcode. RA stays 0.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | rcode, 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(answers.length, 6); // ANCOUNT; NSCOUNT and ARCOUNT stay 0
  return Buffer.concat([header, msg.subarray(HEADER_BYTES, q.end), ...answers]);
}

function encodeRecord(record: DnsRecord): Buffer {
  let rdata: Buffer;
  if (record.type === 'A') rdata = ipv4Bytes(record.address);
  else if (record.type === 'AAAA') rdata = ipv6Bytes(record.address);
  else {
    const fixed = Buffer.alloc(6);
    fixed.writeUInt16BE(record.priority, 0);
    fixed.writeUInt16BE(record.weight, 2);
    fixed.writeUInt16BE(record.port, 4);
    rdata = Buffer.concat([fixed, encodeName(record.target)]); // RFC 2782: the target is never compressed
  }
  const head = Buffer.alloc(10);
  head.writeUInt16BE(POINTER_TO_QUESTION_NAME, 0);
  head.writeUInt16BE(TYPE_CODES[record.type], 2);
  head.writeUInt16BE(CLASS_IN, 4);
  head.writeUInt32BE(record.ttlS, 6);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(rdata.length, 0);
  return Buffer.concat([head, length, rdata]);
}

function encodeName(name: string): Buffer {
  const labels = normalize(name)
    .split('.')
    .filter((l) => l !== '');
  const parts = labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function ipv4Bytes(address: string): Buffer {
  if (!isIPv4(address)) throw new Error(`not an IPv4 address: ${address}`);
  return Buffer.from(address.split('.').map(Number));
}

function ipv6Bytes(address: string): Buffer {
  if (!isIPv6(address) || address.includes('.') || address.includes('%')) {
    throw new Error(`not a plain IPv6 address: ${address}`);
  }
  const [head, tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : new Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const bytes = Buffer.alloc(16);
  [...headGroups, ...zeros, ...tailGroups].forEach((group, i) => {
    bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  });
  return bytes;
}
