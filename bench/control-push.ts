// Push latency of `skein control`: from an API write to each proxy's ACK of the snapshot it led to, with 1, 10,
// 100 and 1,000 connected proxies. Up to --real-max (default 10) they are real `skein proxy` processes; above,
// simulated proxies in this process that speak the real protocol (GET /v1/push, POST /v1/push/ack). Each write
// replaces one rule every proxy gets; the latency of every proxy's ACK is read from control's /proxies (control
// measures it: write start to ACK received). Prints p50/p99/max per proxy count as a Markdown table.
//
//   node bench/control-push.ts [--proxies 1,10,100,1000] [--writes 20] [--real-max 10]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const SKEIN = new URL('../bin/skein.js', import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    proxies: { type: 'string', default: '1,10,100,1000' },
    writes: { type: 'string', default: '20' },
    'real-max': { type: 'string', default: '10' },
  },
});
const counts = values.proxies.split(',').map(Number);
const writes = Number(values.writes);
const realMax = Number(values['real-max']);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function start(args: string[]): { child: ChildProcess; out: () => string } {
  let out = '';
  const child = spawn(process.execPath, [SKEIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', () => {});
  return { child, out: () => out };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function json<T>(url: string, init?: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const body = (await res.json()) as T;
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** A proxy that only speaks the push protocol: it ACKs every snapshot at once. */
function simulatedProxy(control: string, node: string, agent: http.Agent): () => void {
  const url = `${control}/v1/push?node=${encodeURIComponent(node)}&service=bench`;
  let buffered = '';
  const req = http.get(url, { agent: false }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (s: string) => {
      buffered += s;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const msg = JSON.parse(buffered.slice(0, nl)) as { type: string; hash?: string; overlay?: { version: number } };
        buffered = buffered.slice(nl + 1);
        if (msg.type !== 'snapshot') continue;
        const body = JSON.stringify({ node, version: msg.overlay!.version, hash: msg.hash, ok: true });
        const ack = http.request(`${control}/v1/push/ack`, {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        });
        ack.on('response', (r) => r.resume());
        ack.on('error', () => {});
        ack.end(body);
      }
    });
  });
  req.on('error', () => {});
  return () => req.destroy();
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

interface ProxyRow {
  node: string;
  connected: boolean;
  lastAck: { version: number; latencyMs: number | null } | null;
}

async function measure(n: number): Promise<{ n: number; kind: string; samples: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'skein-push-bench-'));
  const control = start([
    'control',
    '--listen',
    '127.0.0.1:0',
    '--data-dir',
    join(dir, 'control'),
    '--log-level',
    'warn',
  ]);
  const stops: (() => void)[] = [];
  const children: ChildProcess[] = [control.child];
  try {
    const url = await waitFor('control', () => /listening on (http:\/\/\S+)/.exec(control.out())?.[1]);
    const token = readFileSync(join(dir, 'control', 'api-token'), 'utf8').trim();
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    // Every proxy gets this rule; each write changes its header value, so every proxy gets a new snapshot.
    const rule = (i: number) => ({
      id: 'bench',
      conditions: [{ type: 'header', field: 'x-bench', value: '1' }],
      destinations: [{ cluster: 'upstream' }],
      actions: { headers: { add: { 'x-write': String(i) } } },
    });
    await json(`${url}/v1/rules`, { method: 'POST', headers: auth, body: JSON.stringify(rule(0)) });
    const real = n <= realMax;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    for (let i = 0; i < n; i++) {
      if (real) {
        const p = start([
          'proxy',
          '--listen',
          '127.0.0.1:0',
          '--upstream',
          '127.0.0.1:9',
          '--service',
          'bench',
          '--control',
          url,
          '--node-id',
          `real-${i}`,
          '--state-dir',
          join(dir, `proxy-${i}`),
          '--log-level',
          'warn',
        ]);
        children.push(p.child);
      } else stops.push(simulatedProxy(url, `sim-${i}`, agent));
    }
    await waitFor(`${n} proxies connected`, async () =>
      (await json<ProxyRow[]>(`${url}/proxies`)).filter((p) => p.connected).length === n ? true : undefined,
    );
    const samples: number[] = [];
    for (let w = 1; w <= writes; w++) {
      await json(`${url}/v1/rules/bench`, { method: 'PUT', headers: auth, body: JSON.stringify(rule(w)) });
      const version = (await json<{ version: number }>(`${url}/v1/config`)).version;
      const rows = await waitFor(`write ${w} ACKed by all`, async () => {
        const all = await json<ProxyRow[]>(`${url}/proxies`);
        return all.filter((p) => p.lastAck?.version === version).length === n ? all : undefined;
      });
      for (const r of rows) if (r.lastAck?.latencyMs != null) samples.push(r.lastAck.latencyMs);
      await sleep(100);
    }
    agent.destroy();
    return { n, kind: real ? 'skein proxy processes' : 'simulated (real protocol)', samples };
  } finally {
    for (const s of stops) s();
    for (const c of children) c.kill('SIGTERM');
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`| proxies | kind | writes | ACKs | p50 ms | p99 ms | max ms |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const n of counts) {
  const r = await measure(n);
  const s = [...r.samples].sort((a, b) => a - b);
  console.log(
    `| ${r.n} | ${r.kind} | ${writes} | ${s.length} | ${quantile(s, 0.5)} | ${quantile(s, 0.99)} | ${s[s.length - 1]} |`,
  );
}
