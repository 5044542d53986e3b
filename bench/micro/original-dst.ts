// Micro-benchmark of transparent capture's per-connection cost: one getsockopt(SO_ORIGINAL_DST) through the
// native addon (native/original-dst.c), read once per accepted connection on `originalDst` listeners only, and
// readOriginalDst() around it (fd lookup, key parse, the loop check), plus the route table lookup a captured
// request makes when no route matches (src/routing/original-dst.ts). ns per call, median of 5 rounds.
// Run: node bench/micro/original-dst.ts                  (a connection that was not redirected: ENOENT)
//      ip netns exec NS node bench/micro/original-dst.ts --connect 10.96.0.10:80
//        in a namespace where `skein redirect install --outbound-port 15001 …` redirects it to this listener,
//        for the redirected case (the process runs as root there, so exempt it with another --proxy-uid).
import net from 'node:net';
import { originalDstAddon, readOriginalDst } from '../../proxy/original-dst.ts';
import { compileOriginalDstTable, routeByOriginalDst } from '../../src/routing/original-dst.ts';
import type { ClusterConfig } from '../../src/config/schema.ts';

const CALLS = 1_000_000;
const ROUNDS = 5;
const connectArg = process.argv.find((a) => a.startsWith('--connect='))?.split('=')[1];
const listenPort = Number(process.argv.find((a) => a.startsWith('--listen-port='))?.split('=')[1] ?? 15001);

const addon = originalDstAddon().addon;
if (addon === null) {
  console.error(`original-dst micro-benchmark: the addon is unavailable: ${originalDstAddon().why}`);
  process.exit(1);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** The cases run interleaved (A B C, A B C, …) so that a busy machine slows them alike; median per case. */
const cases: { label: string; fn: () => unknown; perCall: number[] }[] = [];
function time(label: string, fn: () => unknown): void {
  cases.push({ label, fn, perCall: [] });
}

function runAll(): void {
  let sink = 0;
  for (const c of cases) for (let i = 0; i < CALLS / 10; i++) c.fn(); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < CALLS; i++) if (c.fn() !== undefined) sink++;
      c.perCall.push(Number(process.hrtime.bigint() - t0) / CALLS);
    }
  }
  if (sink < 0) console.log(sink);
  for (const c of cases)
    console.log(
      `${c.label.padEnd(66)} ${median(c.perCall).toFixed(0).padStart(6)} ns/op  (min ${Math.min(...c.perCall).toFixed(0)})`,
    );
}

const server = net.createServer();
await new Promise<void>((done) => server.listen(listenPort, '0.0.0.0', done));
const boundPort = (server.address() as net.AddressInfo).port;
const accepted = new Promise<net.Socket>((done) => server.once('connection', done));
const [host, port] = connectArg === undefined ? ['127.0.0.1', boundPort] : connectArg.split(':');
const client = net.connect(Number(port), host);
const socket = await accepted;
const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
const first = addon.originalDst(fd);
console.log(
  `connection ${host}:${port} → ${socket.localAddress}:${socket.localPort}; addon says ${JSON.stringify(first)}`,
);

time('addon.originalDst(fd): the getsockopt', () => addon.originalDst(fd));
time('readOriginalDst(socket, port): + fd lookup, key parse, loop check', () => readOriginalDst(socket, boundPort));

const clusters = Array.from(
  { length: 1000 },
  (_, i): ClusterConfig =>
    ({ name: `svc-${i}`, serviceAddresses: [`10.96.${i >> 8}.${i & 255}:80`] }) as unknown as ClusterConfig,
);
const table = compileOriginalDstTable([...clusters, { name: 'passthrough' } as ClusterConfig], 'passthrough', (c) => c);
const keys = Array.from({ length: 1024 }, (_, i) => `10.96.${(i % 1000) >> 8}.${i % 256}:80`);
let k = 0;
time('routeByOriginalDst (1,000 service addresses, Map get)', () => routeByOriginalDst(table, keys[k++ & 1023]));

runAll();
client.destroy();
socket.destroy();
server.close();
