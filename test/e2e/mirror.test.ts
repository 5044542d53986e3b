// Request mirroring through a running proxy: the shadow cluster gets a copy of each mirrored request (same
// method, path, body; Host suffixed -shadow) while the client's answer comes from the primary alone; a shadow
// that hangs or is down costs the client nothing (every request answered, within generous bounds); a body too
// large to keep is not copied; 50% mirroring over 2000 requests copies about half; the copies are counted in
// skein_mirror_requests_total.
import http from 'node:http';
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { echoClient, startGrpcUpstream, unary } from '../support/grpc-echo.ts';
import { httpGet } from '../support/http-client.ts';
import { freePort } from '../support/process.ts';
import { listenOnLoopback } from '../support/listen.ts';
import { startEchoUpstream, startProxy, type RunningProxy, type Upstream } from '../support/proxy.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Copy {
  method: string;
  url: string;
  host: string;
  body: string;
  targetService: string;
}

/** An upstream that records what it got and answers with `status` and its own name. */
async function recording(name: string, status = 200): Promise<Upstream & { seen: Copy[] }> {
  const seen: Copy[] = [];
  const u = await startEchoUpstream(name, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        host: req.headers.host ?? '',
        body: Buffer.concat(chunks).toString(),
        targetService: String(req.headers['x-target-service']),
      });
      res.writeHead(status, { 'x-served-by': name, 'content-type': 'text/plain' });
      res.end(`${name} says ${req.method} ${req.url}`);
    });
  });
  cleanups.push(() => u.close());
  return Object.assign(u, { seen });
}

/** A shadow that takes requests and never answers (until the test ends). */
async function hanging(): Promise<Upstream & { received: () => number }> {
  let received = 0;
  const server = http.createServer(() => {
    received++;
  });
  const u = await listenOnLoopback(server, () => server.closeAllConnections());
  cleanups.push(() => u.close());
  return Object.assign(u, { received: () => received });
}

async function mirroringProxy(
  primary: string,
  shadow: string,
  percentage?: number,
  opts: { direction?: 'inbound' | 'outbound'; route?: Record<string, unknown> } = {},
): Promise<RunningProxy> {
  const config: ConfigInput = {
    service: 'frontend',
    admin: { address: '127.0.0.1:0' },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        direction: opts.direction ?? 'outbound',
        routes: [
          {
            name: 'mirrored',
            cluster: 'primary',
            mirror: percentage === undefined ? { cluster: 'shadow' } : { cluster: 'shadow', percentage },
            ...opts.route,
          },
        ],
      },
    ],
    clusters: [
      { name: 'primary', discovery: { type: 'static', endpoints: [{ address: primary }] } },
      {
        name: 'shadow',
        service: 'api-shadow-svc',
        discovery: { type: 'static', endpoints: [{ address: shadow }] },
        timeouts: { connectMs: 1000, requestMs: 30_000, idleMs: 4000 },
      },
    ],
  };
  const p = await startProxy(config);
  cleanups.push(() => p.close());
  return p;
}

/** One request through the proxy; resolves with status, served-by header and body. */
function request(
  url: string,
  method: string,
  body?: string | Buffer,
  agent: http.Agent | false = false,
): Promise<{ status: number; servedBy: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          servedBy: String(res.headers['x-served-by']),
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** skein_mirror_requests_total by outcome for the route. */
async function mirrorCounts(p: RunningProxy): Promise<Record<string, number>> {
  const text = (await httpGet(`${p.adminUrl()}/metrics`)).body;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^skein_mirror_requests_total\{(.*)\} (\d+)$/.exec(line);
    if (m === null || !m[1].includes('route="mirrored"') || !m[1].includes('cluster="shadow"')) continue;
    out[/outcome="([a-z_]+)"/.exec(m[1])![1]] = Number(m[2]);
  }
  return out;
}

describe('request mirroring', () => {
  it('copies GETs and small POSTs to the shadow, and the client hears only the primary', async () => {
    const primary = await recording('primary');
    const shadow = await recording('shadow', 500);
    const p = await mirroringProxy(primary.address, shadow.address);
    const get = await request(`${p.url()}/items?page=2`, 'GET');
    expect(get).toEqual({ status: 200, servedBy: 'primary', body: 'primary says GET /items?page=2' });
    const post = await request(`${p.url()}/items`, 'POST', '{"name":"lamp"}');
    expect(post).toEqual({ status: 200, servedBy: 'primary', body: 'primary says POST /items' });
    await waitFor(() => shadow.seen.length === 2);
    const host = `127.0.0.1:${p.port()}`;
    expect(shadow.seen).toEqual([
      {
        method: 'GET',
        url: '/items?page=2',
        host: `127.0.0.1-shadow:${p.port()}`,
        body: '',
        targetService: 'api-shadow-svc',
      },
      {
        method: 'POST',
        url: '/items',
        host: `127.0.0.1-shadow:${p.port()}`,
        body: '{"name":"lamp"}',
        targetService: 'api-shadow-svc',
      },
    ]);
    // The primary got the real requests, Host untouched.
    expect(primary.seen.map((s) => [s.method, s.host, s.body])).toEqual([
      ['GET', host, ''],
      ['POST', host, '{"name":"lamp"}'],
    ]);
    // The shadow's 500s were read and dropped: counted as answered copies.
    expect(await waitForAsync(async () => (await mirrorCounts(p)).answered === 2 && mirrorCounts(p))).toMatchObject({
      answered: 2,
      failed: 0,
      body_not_kept: 0,
    });
  });

  it('copies POST bodies on an inbound listener (no retry policy) and from an HTTP/2 client', async () => {
    const primary = await recording('primary');
    const shadow = await recording('shadow');
    const p = await mirroringProxy(primary.address, shadow.address, undefined, { direction: 'inbound' });
    expect((await request(`${p.url()}/in`, 'POST', 'inbound body')).servedBy).toBe('primary');
    const session = http2.connect(p.url());
    cleanups.push(() => void session.close());
    const h2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const stream = session.request({ ':method': 'PUT', ':path': '/h2?x=1', 'content-type': 'text/plain' });
      let body = '';
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (body += c));
      stream.on('end', () => resolve({ status, body }));
      stream.on('error', reject);
      stream.end('h2 body');
    });
    expect(h2).toEqual({ status: 200, body: 'primary says PUT /h2?x=1' });
    await waitFor(() => shadow.seen.length === 2);
    expect(shadow.seen.map((c) => [c.method, c.url, c.body])).toEqual([
      ['POST', '/in', 'inbound body'],
      ['PUT', '/h2?x=1', 'h2 body'],
    ]);
  });

  it('does not copy bodies on a route whose retry policy keeps none (bufferLimitBytes: 0), but copies GETs', async () => {
    const primary = await recording('primary');
    const shadow = await recording('shadow');
    const p = await mirroringProxy(primary.address, shadow.address, undefined, {
      route: { retries: { maxRetries: 1, bufferLimitBytes: 0 } },
    });
    expect((await request(`${p.url()}/post`, 'POST', 'not kept')).servedBy).toBe('primary');
    expect((await request(`${p.url()}/get`, 'GET')).servedBy).toBe('primary');
    await waitFor(() => shadow.seen.length === 1);
    expect(shadow.seen.map((c) => c.url)).toEqual(['/get']);
    expect(primary.seen.map((c) => c.body)).toEqual(['not kept', '']);
    expect(await mirrorCounts(p)).toMatchObject({ answered: 1, body_not_kept: 1 });
  });

  it("copies unary gRPC calls (message and authority) while the client gets the primary's reply", async () => {
    const seen: { message: string; authority: string }[] = [];
    const primary = await startGrpcUpstream({
      Unary: (call, cb) => cb(null, { message: `primary: ${call.request.message}`, index: 1 }),
    });
    const shadow = await startGrpcUpstream({
      Unary: (call, cb) => {
        seen.push({ message: call.request.message, authority: call.getHost() });
        cb(null, { message: 'shadow', index: 2 });
      },
    });
    cleanups.push(
      () => primary.close(),
      () => shadow.close(),
    );
    const p = await mirroringProxy(primary.address, shadow.address);
    const client = echoClient(`127.0.0.1:${p.port()}`);
    cleanups.push(() => client.close());
    for (const message of ['one', 'two'])
      expect(await unary(client, { message })).toEqual({ message: `primary: ${message}`, index: 1 });
    await waitFor(() => seen.length === 2);
    expect(seen).toEqual([
      { message: 'one', authority: `127.0.0.1-shadow:${p.port()}` },
      { message: 'two', authority: `127.0.0.1-shadow:${p.port()}` },
    ]);
  });

  it('does not copy a request whose body is too large to keep, and still serves it', async () => {
    const primary = await recording('primary');
    const shadow = await recording('shadow');
    const p = await mirroringProxy(primary.address, shadow.address);
    const big = Buffer.alloc(200 * 1024, 'x');
    const res = await request(`${p.url()}/upload`, 'PUT', big);
    expect(res.status).toBe(200);
    expect(primary.seen[0].body.length).toBe(big.length);
    await request(`${p.url()}/after`, 'GET');
    await waitFor(() => shadow.seen.length === 1);
    expect(shadow.seen.map((s) => s.url)).toEqual(['/after']);
    expect(await mirrorCounts(p)).toMatchObject({ body_not_kept: 1 });
  });

  it('answers every request when the shadow never answers', async () => {
    const primary = await recording('primary');
    const shadow = await hanging();
    const p = await mirroringProxy(primary.address, shadow.address);
    const started = performance.now();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2 === 0 ? request(`${p.url()}/r${i}`, 'GET') : request(`${p.url()}/r${i}`, 'POST', `body ${i}`),
      ),
    );
    expect(results.every((r) => r.status === 200 && r.servedBy === 'primary')).toBe(true);
    // The shadow holds every copy for its 30 s request timeout; the client's requests did not wait for them.
    expect(performance.now() - started).toBeLessThan(5_000);
    await waitFor(() => shadow.received() === 40);
    // Nothing is counted yet: no copy has ended.
    expect((await mirrorCounts(p)).answered ?? 0).toBe(0);
  });

  it('answers every request when the shadow is down, and counts the failed copies', async () => {
    const primary = await recording('primary');
    const p = await mirroringProxy(primary.address, `127.0.0.1:${await freePort()}`);
    for (let i = 0; i < 20; i++) {
      const r = await request(`${p.url()}/r${i}`, i % 2 === 0 ? 'GET' : 'POST', i % 2 === 0 ? undefined : 'x');
      expect([r.status, r.servedBy]).toEqual([200, 'primary']);
    }
    expect(await waitForAsync(async () => (await mirrorCounts(p)).failed === 20)).toBe(true);
  });

  it('copies about half of 2000 requests at percentage 50', async () => {
    const primary = await recording('primary');
    const shadow = await recording('shadow');
    const p = await mirroringProxy(primary.address, shadow.address, 50);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    cleanups.push(() => agent.destroy());
    const n = 2000;
    for (let sent = 0; sent < n; sent += 100) {
      const batch = await Promise.all(
        Array.from({ length: 100 }, (_, i) => request(`${p.url()}/n${sent + i}`, 'GET', undefined, agent)),
      );
      expect(batch.every((r) => r.servedBy === 'primary')).toBe(true);
    }
    expect(primary.seen.length).toBe(n);
    // Every copy made has been answered and counted (the count and the shadow agree), then: 50% ± 5 points.
    const copies = await waitForAsync(async () => {
      const answered = (await mirrorCounts(p)).answered ?? -1;
      return answered === shadow.seen.length && answered;
    });
    expect(copies).toBeGreaterThanOrEqual(n * 0.45);
    expect(copies).toBeLessThanOrEqual(n * 0.55);
  });
});
