// HTTP/1.1 through the proxy with real clients (curl, and Node's client where a test needs to pace reads or
// ask for trailers) against real upstream servers: forwarding, keep-alive reuse, streaming both ways,
// header handling, the proxy's own error replies with their flags, traffic splits and route edits.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { curl, runCurl } from '../support/curl.ts';
import {
  type EchoBody,
  quickConfig,
  type RunningProxy,
  startEchoUpstream,
  startProxy,
  type Upstream,
} from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const echoOf = (body: Buffer): EchoBody => JSON.parse(body.toString());

/** A free port with nothing listening on it: bind, note the port, release. */
async function deadAddress(): Promise<string> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  return `127.0.0.1:${port}`;
}

/** One cluster per upstream (named after it) and the given listener routes. */
function clustersConfig(
  upstreams: Record<string, string>,
  routes: NonNullable<ConfigInput['listeners'][number]['routes']>,
  timeouts: { requestMs?: number } = {},
): ConfigInput {
  return {
    service: 'test-client',
    admin: { address: '127.0.0.1:0' },
    listeners: [{ name: 'main', address: '127.0.0.1:0', routes }],
    clusters: Object.entries(upstreams).map(([name, address]) => ({
      name,
      timeouts,
      discovery: { type: 'static' as const, endpoints: [{ address }] },
    })),
  };
}

/** Polls `value` until it has not changed for `quietMs` (bounded by timeoutMs); returns the settled value. */
async function settled(value: () => number, quietMs: number, timeoutMs = 10_000): Promise<number> {
  let last = value();
  let since = Date.now();
  await waitFor(() => {
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
    return Date.now() - since >= quietMs;
  }, timeoutMs);
  return last;
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  trailers: NodeJS.Dict<string>;
  body: Buffer;
}

/** GET with Node's client; reads the whole body. */
function get(url: string, opts: http.RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

describe('http/1.1 through the proxy', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  async function upstream(name = 'echo', handler?: http.RequestListener): Promise<Upstream> {
    const u = await startEchoUpstream(name, handler);
    cleanups.push(() => u.close());
    return u;
  }

  async function proxyFor(config: ConfigInput): Promise<RunningProxy> {
    const p = await startProxy(config);
    cleanups.push(() => p.close());
    return p;
  }

  describe('forwarding', () => {
    it('forwards a GET with its path, query and Host to the upstream and returns the answer', async () => {
      const u = await upstream();
      const proxy = await proxyFor(quickConfig([u.address]));
      const res = await curl([`${proxy.url()}/hello/world?x=1&y=two`]);
      expect(res.status).toBe(200);
      expect(res.headers['x-served-by']).toBe('echo');
      const echo = echoOf(res.body);
      expect(echo).toMatchObject({ method: 'GET', url: '/hello/world?x=1&y=two', body: '' });
      expect(echo.headers.host).toBe(`127.0.0.1:${proxy.port()}`);
      expect(echo.headers['user-agent']).toMatch(/^curl\//);
    });

    it('forwards a POST body with its length and content type', async () => {
      const u = await upstream();
      const proxy = await proxyFor(quickConfig([u.address]));
      const res = await curl(['-d', 'name=skein&kind=mesh', `${proxy.url()}/form`]);
      expect(res.status).toBe(200);
      const echo = echoOf(res.body);
      expect(echo).toMatchObject({ method: 'POST', url: '/form', body: 'name=skein&kind=mesh' });
      expect(echo.headers['content-length']).toBe('20');
      expect(echo.headers['content-type']).toBe('application/x-www-form-urlencoded');
    });

    it('serves several requests on one client connection over one upstream connection', async () => {
      const upstreamSockets = new Set<net.Socket>();
      const u = await upstream('counting', (req, res) => {
        upstreamSockets.add(req.socket);
        res.end(`request ${req.url}`);
      });
      const proxy = await proxyFor(quickConfig([u.address]));
      const urls = [1, 2, 3, 4].flatMap((i) => [`${proxy.url()}/r${i}`, '-o', '/dev/null']);
      const run = await runCurl(['-w', '%{http_code} %{num_connects}\\n', ...urls]);
      expect(run.code).toBe(0);
      // curl opened one connection to the proxy and reused it...
      expect(run.stdout.toString().trim().split('\n')).toEqual(['200 1', '200 0', '200 0', '200 0']);
      // ...and the proxy used one keep-alive connection upstream for all four.
      expect(upstreamSockets.size).toBe(1);
      const clusters = (await (await fetch(`${proxy.adminUrl()}/clusters`)).json()) as {
        clusters: { endpoints: { connections: number; requestsTotal: number }[] }[];
      };
      expect(clusters.clusters[0].endpoints[0]).toMatchObject({ connections: 1, requestsTotal: 4 });
    });

    it('streams a request body of unknown length (chunked) to the upstream intact', async () => {
      const u = await upstream('hasher', (req, res) => {
        const hash = createHash('sha256');
        let length = 0;
        req.on('data', (c: Buffer) => {
          hash.update(c);
          length += c.length;
        });
        req.on('end', () =>
          res.end(JSON.stringify({ length, sha256: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null })),
        );
      });
      const proxy = await proxyFor(quickConfig([u.address]));
      const body = randomBytes(3 * 1024 * 1024 + 17);
      // -T - uploads stdin; its size is unknown to curl, so it sends Transfer-Encoding: chunked.
      const res = await curl(['-X', 'POST', '-T', '-', `${proxy.url()}/upload`], { input: body });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body.toString())).toEqual({ length: body.length, sha256: sha256(body), te: 'chunked' });
    });

    it('streams a multi-megabyte response to curl intact', async () => {
      const big = randomBytes(12 * 1024 * 1024);
      const u = await upstream('big', (_req, res) => {
        res.writeHead(200, { 'content-length': big.length, 'content-type': 'application/octet-stream' });
        res.end(big);
      });
      const proxy = await proxyFor(quickConfig([u.address]));
      const run = await runCurl([`${proxy.url()}/big`]);
      expect(run.code).toBe(0);
      expect(run.stdout.length).toBe(big.length);
      expect(sha256(run.stdout)).toBe(sha256(big));
    });

    it('holds a large response back for a slow reader and keeps its connections usable afterwards', async () => {
      const chunk = randomBytes(64 * 1024);
      const chunks = 512; // 32 MB: several times what the socket buffers on the way can hold
      const expected = createHash('sha256');
      for (let i = 0; i < chunks; i++) expected.update(chunk);
      let produced = 0;
      const u = await upstream('streamer', (req, res) => {
        if (req.url !== '/big') return res.end('small');
        // Chunked, written only as fast as the proxy takes it, so the upstream feels the backpressure.
        let sent = 0;
        const pump = () => {
          while (sent < chunks) {
            sent++;
            produced = sent;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      });
      const proxy = await proxyFor(
        quickConfig([u.address], {
          clusters: [
            {
              name: 'upstream',
              timeouts: { requestMs: 10_000 },
              discovery: { type: 'static', endpoints: [{ address: u.address }] },
            },
          ],
        }),
      );
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      cleanups.push(() => agent.destroy());

      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get(`${proxy.url()}/big`, { agent }, resolve).on('error', reject),
      );
      res.pause();
      // While the client reads nothing, the upstream is held back once the buffers on the way are full.
      const heldAt = await settled(() => produced, 300);
      expect(heldAt).toBeLessThan(chunks);

      const hash = createHash('sha256');
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        res.on('data', (c: Buffer) => {
          hash.update(c);
          received += c.length;
          // Keep reading slowly so the proxy's writes keep meeting a full buffer.
          res.pause();
          setImmediate(() => res.resume());
        });
        res.on('end', resolve);
        res.on('error', reject);
        res.resume();
      });
      expect(received).toBe(chunks * chunk.length);
      expect(hash.digest('hex')).toBe(expected.digest('hex'));

      // The same client and upstream connections serve the next request without waiting.
      const next = await get(`${proxy.url()}/small`, { agent });
      expect([next.status, next.body.toString()]).toEqual([200, 'small']);
    });

    it('answers HEAD with the headers and no body, and the connection stays usable', async () => {
      const u = await upstream();
      const proxy = await proxyFor(quickConfig([u.address]));
      const head = await curl(['-I', `${proxy.url()}/resource`]);
      expect(head.status).toBe(200);
      expect(head.headers['x-served-by']).toBe('echo');
      expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
      expect(head.body.length).toBe(0);
      // The upstream connection that carried the HEAD is reused; it must not be waiting for a body.
      const after = await curl([`${proxy.url()}/after`]);
      expect(after.status).toBe(200);
      expect(echoOf(after.body).url).toBe('/after');
    });

    it('passes upstream response trailers to a client that asks for them', async () => {
      const u = await upstream('trailers', (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('part one, ');
        res.write('part two');
        res.addTrailers({ 'x-checksum': 'sha256=abc123' });
        res.end();
      });
      const proxy = await proxyFor(quickConfig([u.address]));
      const res = await get(`${proxy.url()}/with-trailers`, { headers: { te: 'trailers' } });
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('part one, part two');
      expect(res.headers['transfer-encoding']).toBe('chunked');
      expect(res.trailers['x-checksum']).toBe('sha256=abc123');
    });
  });

  describe('headers', () => {
    it('drops hop-by-hop headers and the ones Connection names before the upstream', async () => {
      const u = await upstream();
      const proxy = await proxyFor(quickConfig([u.address]));
      const res = await curl([
        ...['-H', 'Connection: keep-alive, x-hop'],
        ...['-H', 'X-Hop: secret'],
        ...['-H', 'Keep-Alive: timeout=5'],
        ...['-H', 'TE: trailers'],
        ...['-H', 'Upgrade: something-else'],
        ...['-H', 'Proxy-Connection: keep-alive'],
        ...['-H', 'X-End-To-End: kept'],
        `${proxy.url()}/hop`,
      ]);
      expect(res.status).toBe(200);
      const h = echoOf(res.body).headers;
      for (const name of ['x-hop', 'keep-alive', 'te', 'upgrade', 'proxy-connection'])
        expect(h[name], name).toBeUndefined();
      expect(h.connection ?? 'keep-alive').toBe('keep-alive');
      expect(h['x-end-to-end']).toBe('kept');
    });

    it('serves an h2c upgrade attempt (curl --http2) as plain HTTP/1.1 without passing the upgrade on', async () => {
      const u = await upstream();
      const proxy = await proxyFor(quickConfig([u.address]));
      // curl sends Connection: Upgrade, HTTP2-Settings / Upgrade: h2c / HTTP2-Settings: ...
      const res = await curl(['--http2', `${proxy.url()}/h2c`]);
      expect(res.status).toBe(200);
      const h = echoOf(res.body).headers;
      expect(h.upgrade).toBeUndefined();
      expect(h['http2-settings']).toBeUndefined();
      expect(h.connection ?? 'keep-alive').toBe('keep-alive');
      // Answered by the proxy's pipeline (mesh headers added), not tunnelled past it.
      expect(h['x-request-id']).toBeDefined();
    });

    it('generates x-request-id when absent and keeps the one the client sent', async () => {
      const u = await upstream();
      const proxy = await proxyFor(quickConfig([u.address]));
      const generated = echoOf((await curl([`${proxy.url()}/a`])).body).headers['x-request-id'];
      expect(generated).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const other = echoOf((await curl([`${proxy.url()}/b`])).body).headers['x-request-id'];
      expect(other).not.toBe(generated);
      const kept = echoOf((await curl(['-H', 'X-Request-Id: client-chosen-42', `${proxy.url()}/c`])).body);
      expect(kept.headers['x-request-id']).toBe('client-chosen-42');
    });

    it('appends the client address to x-forwarded-for and sets x-forwarded-proto', async () => {
      const u = await upstream();
      const proxy = await proxyFor(quickConfig([u.address]));
      const first = echoOf((await curl([`${proxy.url()}/xff`])).body).headers;
      expect(first['x-forwarded-for']).toBe('127.0.0.1');
      expect(first['x-forwarded-proto']).toBe('http');
      const chained = echoOf((await curl(['-H', 'X-Forwarded-For: 203.0.113.7, 10.0.0.1', `${proxy.url()}/xff`])).body);
      expect(chained.headers['x-forwarded-for']).toBe('203.0.113.7, 10.0.0.1, 127.0.0.1');
    });

    it('sets x-source-service from the config, replacing a client-sent one, and x-target-service from the cluster', async () => {
      const u = await upstream();
      const proxy = await proxyFor(
        quickConfig([u.address], {
          service: 'checkout',
          clusters: [
            {
              name: 'upstream',
              service: 'payments',
              discovery: { type: 'static', endpoints: [{ address: u.address }] },
            },
          ],
        }),
      );
      const h = echoOf(
        (await curl(['-H', 'X-Source-Service: spoofed', '-H', 'X-Target-Service: spoofed', `${proxy.url()}/`])).body,
      ).headers;
      expect(h['x-source-service']).toBe('checkout');
      expect(h['x-target-service']).toBe('payments');
    });
  });

  describe('proxy-generated errors', () => {
    it('answers 404 with flag NR when no route matches', async () => {
      const u = await upstream();
      const proxy = await proxyFor(
        clustersConfig({ api: u.address }, [{ match: { pathPrefix: '/api/' }, cluster: 'api' }]),
      );
      const res = await curl([`${proxy.url()}/elsewhere`]);
      expect(res.status).toBe(404);
      expect(res.headers['x-skein-flags']).toBe('NR');
      expect(res.headers['x-request-id']).toBeDefined();
      expect((await curl([`${proxy.url()}/api/ok`])).status).toBe(200);
    });

    it('answers 503 with flag UF,URX when the upstream refuses connections (the default retries ran out)', async () => {
      const proxy = await proxyFor(quickConfig([await deadAddress()]));
      const res = await curl([`${proxy.url()}/`]);
      expect(res.status).toBe(503);
      expect(res.headers['x-skein-flags']).toBe('UF,URX');
    });

    it('answers 504 with flag UT when the upstream accepts but never answers within the request timeout', async () => {
      const silent = net.createServer((s) => s.on('error', () => {}));
      const held = new Set<net.Socket>();
      silent.on('connection', (s) => held.add(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      cleanups.push(
        () =>
          new Promise<void>((r) => {
            for (const s of held) s.destroy();
            silent.close(() => r());
          }),
      );
      const address = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const proxy = await proxyFor(clustersConfig({ silent: address }, [{ cluster: 'silent' }], { requestMs: 300 }));
      const started = Date.now();
      const res = await curl([`${proxy.url()}/slow`]);
      expect(res.status).toBe(504);
      expect(res.headers['x-skein-flags']).toBe('UT');
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it('aborts the client response when the upstream closes mid-response instead of hanging', async () => {
      const u = await upstream('quitter', (_req, res) => {
        res.writeHead(200, { 'content-length': 100_000 });
        res.write(Buffer.alloc(10_000, 1), () => res.socket?.destroy());
      });
      const proxy = await proxyFor(quickConfig([u.address]));
      const outcome = await new Promise<{ status: number; complete: boolean; received: number }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('client response still open after 5 s')), 5_000);
        http
          .get(`${proxy.url()}/partial`, (res) => {
            let received = 0;
            res.on('data', (c: Buffer) => (received += c.length));
            res.on('error', () => {}); // 'aborted': reported through 'close' below
            res.on('close', () => {
              clearTimeout(timer);
              resolve({ status: res.statusCode!, complete: res.complete, received });
            });
          })
          .on('error', reject);
      });
      expect(outcome.status).toBe(200);
      expect(outcome.complete).toBe(false);
      expect(outcome.received).toBeLessThan(100_000);

      // curl sees the same thing: a transfer closed with bytes remaining (exit 18), promptly.
      const run = await runCurl([`${proxy.url()}/partial`, '-o', '/dev/null'], { timeoutMs: 5_000 });
      expect(run.code).toBe(18);
    });
  });

  describe('routes', () => {
    it('splits traffic about 80/20 between weighted clusters', async () => {
      const a = await upstream('a', (_req, res) => res.end('a'));
      const b = await upstream('b', (_req, res) => res.end('b'));
      const proxy = await proxyFor(
        clustersConfig({ a: a.address, b: b.address }, [
          {
            weightedClusters: [
              { cluster: 'a', weight: 80 },
              { cluster: 'b', weight: 20 },
            ],
          },
        ]),
      );
      const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
      cleanups.push(() => agent.destroy());
      const total = 1000;
      const counts = { a: 0, b: 0 };
      let next = 0;
      const worker = async () => {
        while (next < total) {
          next++;
          const res = await get(`${proxy.url()}/split`, { agent });
          counts[res.body.toString() as 'a' | 'b']++;
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      expect(counts.a + counts.b).toBe(total);
      // Binomial(1000, 0.8) has a standard deviation of ~13: ±100 is more than 7 of them.
      expect(counts.a).toBeGreaterThan(700);
      expect(counts.a).toBeLessThan(900);
    });

    it('rewrites the matched path prefix and keeps the rest of the path and query', async () => {
      const u = await upstream();
      const proxy = await proxyFor(
        clustersConfig({ api: u.address }, [{ match: { pathPrefix: '/api/' }, prefixRewrite: '/v2/', cluster: 'api' }]),
      );
      const echo = echoOf((await curl([`${proxy.url()}/api/users/7?fields=name`])).body);
      expect(echo.url).toBe('/v2/users/7?fields=name');
    });

    it('sets and removes request headers as the route says', async () => {
      const u = await upstream();
      const proxy = await proxyFor(
        clustersConfig({ api: u.address }, [
          {
            cluster: 'api',
            requestHeaders: { set: { 'X-Env': 'test', 'x-overwritten': 'by-route' }, remove: ['X-Secret'] },
          },
        ]),
      );
      const h = echoOf(
        (
          await curl([
            '-H',
            'x-secret: hunter2',
            '-H',
            'X-Overwritten: by-client',
            '-H',
            'x-other: stays',
            `${proxy.url()}/`,
          ])
        ).body,
      ).headers;
      expect(h['x-env']).toBe('test');
      expect(h['x-overwritten']).toBe('by-route');
      expect(h['x-secret']).toBeUndefined();
      expect(h['x-other']).toBe('stays');
    });
  });
});
