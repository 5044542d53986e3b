// Retries against real upstreams: the quick form loses no GET when one of its upstreams is dead or dies under
// load, a hanging upstream is cut by the per-try timeout and the other answers, a small POST body is sent
// again whole (a large one is not), a 503 is retried and the last one flagged URX, the budget holds retries back
// when most requests fail, and the upstream sees each attempt's number.
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { RetryPolicy } from '../../src/config/retry-schema.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import * as grpc from '@grpc/grpc-js';
import { echoClient, startGrpcUpstream, unary } from '../support/grpc-echo.ts';
import { httpGet, type HttpResult } from '../support/http-client.ts';
import { freePort, killAllSkein, startSkeinProxy } from '../support/process.ts';
import { startEchoUpstream, startProxy, type RunningProxy, type Upstream } from '../support/proxy.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await killAllSkein();
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Seen {
  method: string;
  url: string;
  body: string;
  attempt: string;
}

/** An HTTP/1.1 upstream that records every request (with its body) and answers as `answer` says. */
async function recordingUpstream(
  name: string,
  answer: (seen: Seen, n: number, req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<Upstream & { seen: Seen[] }> {
  const seen: Seen[] = [];
  const u = await startEchoUpstream(name, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method!,
        url: req.url!,
        body: Buffer.concat(chunks).toString(),
        attempt: String(req.headers['x-skein-attempt-count']),
      };
      seen.push(s);
      answer(s, seen.length, req, res);
    });
  });
  cleanups.push(() => u.close());
  return { ...u, seen };
}

function reply(res: http.ServerResponse, status: number, name: string, body = name): void {
  res.writeHead(status, { 'x-served-by': name, 'content-length': Buffer.byteLength(body) }).end(body);
}

/** An upstream that accepts connections and never answers. */
async function hangingUpstream(): Promise<{ address: string; requests: () => number }> {
  const sockets = new Set<net.Socket>();
  let requests = 0;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('data', () => requests++);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
}

/** An upstream in its own process, so a test can kill it as a crash would (SIGKILL, by PID). */
async function upstreamProcess(name: string): Promise<{ address: string; kill(): void }> {
  const script =
    "const s=require('http').createServer((q,r)=>{q.resume();q.on('end',()=>r.writeHead(200,{'x-served-by':process.argv[1]}).end('ok'))});" +
    "s.listen(0,'127.0.0.1',()=>console.log(s.address().port));";
  const child: ChildProcess = spawn(process.execPath, ['-e', script, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  cleanups.push(kill);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', () => reject(new Error(`upstream ${name} exited before listening`)));
  });
  return { address: `127.0.0.1:${port}`, kill };
}

function config(
  addresses: string[],
  opts: { retries?: z.input<typeof RetryPolicy>; cluster?: Record<string, unknown> } = {},
): ConfigInput {
  return {
    admin: { address: '127.0.0.1:0' },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        routes: [{ cluster: 'app', ...(opts.retries === undefined ? {} : { retries: opts.retries }) }],
      },
    ],
    clusters: [
      {
        name: 'app',
        discovery: { type: 'static', endpoints: addresses.map((address) => ({ address })) },
        ...opts.cluster,
      },
    ],
  };
}

async function proxyFor(input: ConfigInput): Promise<RunningProxy> {
  const p = await startProxy(input);
  cleanups.push(() => p.close());
  return p;
}

/** POST `body` over HTTP/1.1 on a new connection: with its length, or chunked in two writes. */
function post(url: string, body: string, chunked = false): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = chunked ? {} : { 'content-length': Buffer.byteLength(body) };
    const req = http.request(url, { method: 'POST', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
    });
    req.setTimeout(5_000, () => req.destroy(new Error('POST: no response within 5 s')));
    req.on('error', reject);
    if (chunked) {
      const half = Math.floor(body.length / 2);
      req.write(body.slice(0, half));
      setTimeout(() => req.end(body.slice(half)), 20);
    } else req.end(body);
  });
}

/** POST `body` over h2c, returning the status and body. */
function postH2(url: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': '/h2' });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      session.close();
      resolve({ status, body: Buffer.concat(chunks).toString() });
    });
    stream.on('error', reject);
    stream.end(body);
  });
}

/** `total` GETs over `concurrency` connections at a time; each result's status and flag, in no order. */
async function load(url: string, total: number, concurrency: number, onEach?: (n: number) => void): Promise<string[]> {
  const results: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < total) {
      const n = next++;
      onEach?.(n);
      const r = await httpGet(`${url}/load/${n}`).catch((err: Error): HttpResult => ({
        status: 0,
        headers: {},
        body: err.message,
      }));
      results.push(`${r.status} ${String(r.headers['x-skein-flags'] ?? '')}`.trim());
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

describe('retries: the quick form', () => {
  it('loses no GET of a run when one of its two upstreams is dead from the start', async () => {
    const live = await recordingUpstream('live', (_s, _n, _req, res) => reply(res, 200, 'live'));
    const dead = `127.0.0.1:${await freePort()}`;
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      ['--listen', '127.0.0.1:0', '--upstream', dead, '--upstream', live.address, '--admin', `127.0.0.1:${adminPort}`],
      { adminPort },
    );
    const results = await load(proxy.url(), 200, 8);
    expect(results.filter((r) => r !== '200')).toEqual([]);
    expect(live.seen).toHaveLength(200);
    const metrics = (await httpGet(`${proxy.adminUrl}/metrics`)).body;
    const retried = metrics
      .split('\n')
      .filter((l) => l.startsWith('service_mesh_retries_total{'))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    // The dead one is tried until outlier detection ejects it (5 connect failures in a row).
    expect(retried).toBeGreaterThan(0);
    const clusters = JSON.parse((await httpGet(`${proxy.adminUrl}/clusters`)).body) as {
      clusters: { retryBudget: { retries: number; requests: number; refused: number } }[];
    };
    expect(clusters.clusters[0].retryBudget).toMatchObject({ requests: 200, retries: retried, refused: 0 });
  });

  it('loses no GET of a steady run when one of its upstream processes is killed in the middle', async () => {
    const a = await upstreamProcess('a');
    const b = await upstreamProcess('b');
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      [
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        a.address,
        '--upstream',
        b.address,
        '--admin',
        `127.0.0.1:${adminPort}`,
      ],
      { adminPort },
    );
    const results = await load(proxy.url(), 400, 8, (n) => n === 150 && b.kill());
    expect(results.filter((r) => r !== '200')).toEqual([]);
  });
});

describe('retries: timeouts', () => {
  it('cuts an attempt to a hanging upstream at the per-try timeout, and the other endpoint answers', async () => {
    const hang = await hangingUpstream();
    const good = await recordingUpstream('good', (_s, _n, _req, res) => reply(res, 200, 'good'));
    const proxy = await proxyFor(
      config([hang.address, good.address], {
        retries: { perTryTimeoutMs: 200 },
        cluster: { timeouts: { connectMs: 1000, requestMs: 10_000, idleMs: 4000 } },
      }),
    );
    for (let i = 0; i < 6; i++) {
      const r = await httpGet(`${proxy.url()}/slow/${i}`);
      expect(r.status).toBe(200);
      expect(r.headers['x-served-by']).toBe('good');
    }
    // Round robin sends some first attempts to the hanging one; each was cut and sent on.
    expect(hang.requests()).toBeGreaterThan(0);
    expect(good.seen).toHaveLength(6);
  });

  it('gives up at the request timeout whatever the retries left (UT), and flags per-try timeouts that ran out UT,URX', async () => {
    const hang = await hangingUpstream();
    // Request timeout 300 ms, per try 200 ms: the second attempt gets what is left, and its timeout is final.
    const bounded = await proxyFor(
      config([hang.address], {
        retries: { perTryTimeoutMs: 200, backoff: { baseIntervalMs: 1, maxIntervalMs: 1 } },
        cluster: { timeouts: { connectMs: 1000, requestMs: 300, idleMs: 4000 } },
      }),
    );
    const r = await httpGet(`${bounded.url()}/`);
    expect(r.status).toBe(504);
    expect(r.headers['x-skein-flags']).toBe('UT');
    expect(hang.requests()).toBe(2);
    // With room for every attempt, the last per-try timeout is the answer, flagged as the last retry.
    const roomy = await proxyFor(
      config([hang.address], {
        retries: { perTryTimeoutMs: 100, backoff: { baseIntervalMs: 1, maxIntervalMs: 1 } },
        cluster: { timeouts: { connectMs: 1000, requestMs: 10_000, idleMs: 4000 } },
      }),
    );
    const last = await httpGet(`${roomy.url()}/`);
    expect(last.status).toBe(504);
    expect(last.headers['x-skein-flags']).toBe('UT,URX');
    expect(hang.requests()).toBe(2 + 3);
  });
});

describe('retries: request bodies', () => {
  /** Resets the connection of the first request it gets (after reading its body), echoes the body after. */
  async function resetsFirst(name: string) {
    return recordingUpstream(name, (s, n, req, res) => {
      if (n === 1) req.socket.destroy();
      else reply(res, 200, name, s.body);
    });
  }

  it('sends a small POST body again whole after a reset, over HTTP/1.1 (length or chunked) and h2c', async () => {
    for (const how of ['length', 'chunked', 'h2c'] as const) {
      const u = await resetsFirst(`flaky-${how}`);
      const proxy = await proxyFor(config([u.address], { retries: { retryOn: ['reset'] } }));
      const body = `${how}:`.padEnd(10_000, 'x');
      const r = how === 'h2c' ? await postH2(proxy.url(), body) : await post(proxy.url(), body, how === 'chunked');
      expect(r.status, how).toBe(200);
      expect(r.body, how).toBe(body);
      expect(
        u.seen.map((s) => s.body === body),
        how,
      ).toEqual([true, true]);
      expect(
        u.seen.map((s) => s.attempt),
        how,
      ).toEqual(['1', '2']);
    }
  });

  it('does not retry a POST whose body is over the buffer limit: the reset reaches the client', async () => {
    for (const chunked of [false, true]) {
      const u = await resetsFirst(`big-${chunked}`);
      const proxy = await proxyFor(config([u.address], { retries: { retryOn: ['reset'], bufferLimitBytes: 4096 } }));
      const r = await post(proxy.url(), 'y'.repeat(10_000), chunked);
      expect(r.status).toBe(503);
      expect(r.headers['x-skein-flags']).toBe('UC');
      expect(u.seen).toHaveLength(1);
    }
  });
});

describe('retries: answers', () => {
  it('retries a 503 and the client gets the next answer; the upstream sees the attempt count', async () => {
    const u = await recordingUpstream('once-503', (_s, n, _req, res) => reply(res, n === 1 ? 503 : 200, 'once-503'));
    const proxy = await proxyFor(config([u.address]));
    const r = await httpGet(`${proxy.url()}/x`);
    expect(r.status).toBe(200);
    expect(r.headers['x-skein-flags']).toBeUndefined();
    expect(u.seen.map((s) => s.attempt)).toEqual(['1', '2']);
    // A request that needs no retry says 1.
    await httpGet(`${proxy.url()}/y`);
    expect(u.seen.at(-1)!.attempt).toBe('1');
  });

  it('passes the last 503 on, flagged URX, when every attempt answered 503', async () => {
    const u = await recordingUpstream('always-503', (_s, n, _req, res) => reply(res, 503, 'always-503', `busy ${n}`));
    const proxy = await proxyFor(config([u.address]));
    const r = await httpGet(`${proxy.url()}/`);
    expect(r.status).toBe(503);
    expect(r.body).toBe('busy 3'); // the upstream's own answer, from the third attempt
    expect(r.headers['x-skein-flags']).toBe('URX');
    expect(u.seen.map((s) => s.attempt)).toEqual(['1', '2', '3']);
  });

  it('sends nothing again when retries are off (maxRetries 0)', async () => {
    const u = await recordingUpstream('off', (_s, _n, _req, res) => reply(res, 503, 'off'));
    const proxy = await proxyFor(config([u.address], { retries: { maxRetries: 0 } }));
    const r = await httpGet(`${proxy.url()}/`);
    expect(r.status).toBe(503);
    expect(r.headers['x-skein-flags']).toBeUndefined();
    expect(u.seen.map((s) => s.attempt)).toEqual(['undefined']);
  });
});

describe('retries: gRPC', () => {
  it('retries a unary call answered UNAVAILABLE, with its request message, and the client gets the answer', async () => {
    const seen: { message: string; attempt: string }[] = [];
    const upstream = await startGrpcUpstream({
      Unary(call, callback) {
        seen.push({ message: call.request.message, attempt: String(call.metadata.get('x-skein-attempt-count')[0]) });
        if (seen.length === 1) callback({ code: grpc.status.UNAVAILABLE, details: 'not yet' });
        else callback(null, { message: call.request.message, index: seen.length });
      },
    });
    cleanups.push(() => upstream.close());
    const proxy = await proxyFor(config([upstream.address]));
    const client = echoClient(`127.0.0.1:${proxy.port()}`);
    cleanups.push(() => client.close());
    const reply = await unary(client, { message: 'hello' });
    expect(reply).toMatchObject({ message: 'hello', index: 2 });
    expect(seen).toEqual([
      { message: 'hello', attempt: '1' },
      { message: 'hello', attempt: '2' },
    ]);
  });
});

describe('retries: the budget', () => {
  it('holds retries to 20% of requests plus the floor when most requests fail', async () => {
    const u = await recordingUpstream('failing', (_s, _n, _req, res) => reply(res, 503, 'failing'));
    const proxy = await proxyFor(
      config([u.address], {
        retries: { backoff: { baseIntervalMs: 1, maxIntervalMs: 1 } },
        // Floor: 1 retry a second over 10 s, so 10; plus 20% of the requests.
        cluster: { retryBudget: { retryRatio: 0.2, minRetriesPerSecond: 1, ttlMs: 10_000 } },
      }),
    );
    const requests = 100;
    for (let i = 0; i < requests; i++) expect((await httpGet(`${proxy.url()}/${i}`)).status).toBe(503);
    const retries = u.seen.length - requests;
    // Without the budget every request would be tried 3 times (200 retries).
    expect(retries).toBeGreaterThan(0);
    expect(retries).toBeLessThanOrEqual(0.2 * requests + 10);
    const c = proxy.proxy.snapshot.clusters.get('app')!.describe() as {
      retryBudget: { retries: number; refused: number };
    };
    expect(c.retryBudget.retries).toBe(retries);
    expect(c.retryBudget.refused).toBeGreaterThan(0);
  });
});
