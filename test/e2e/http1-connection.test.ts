// The HTTP/1.1 downstream connection on the wire (proxy/http1-connection.ts): pipelined requests answered in
// order, Expect: 100-continue, the framing the proxy chooses for the response (the upstream's length, chunked,
// or the close for HTTP/1.0), bodiless responses, the keep-alive idle timeout, drain, and a client that goes
// away mid-request. Raw sockets on one side, real node:http upstreams on the other.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { headerMap, RawConnection } from '../support/raw-http.ts';
import { quickConfig, type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

describe('http/1.1 downstream connection', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  });

  async function upstream(handler: http.RequestListener): Promise<Upstream> {
    const u = await startEchoUpstream('u', handler);
    cleanups.push(() => u.close());
    return u;
  }

  async function proxyFor(config: ConfigInput): Promise<RunningProxy> {
    const p = await startProxy(config);
    cleanups.push(() => p.close());
    return p;
  }

  async function connect(proxy: RunningProxy): Promise<RawConnection> {
    const c = await RawConnection.open(proxy.port());
    cleanups.push(() => c.destroy());
    return c;
  }

  /** An upstream that waits `?delay=ms` before answering with the request's path. */
  const delayedPathUpstream = () =>
    upstream((req, res) => {
      const delay = Number(new URL(req.url!, 'http://x').searchParams.get('delay') ?? 0);
      setTimeout(() => res.end(`answer to ${req.url}`), delay);
    });

  it('answers pipelined requests in order, even when a later one is ready first', async () => {
    const u = await delayedPathUpstream();
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write(
      'GET /a?delay=300 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /b?delay=0 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /c?delay=100 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody' +
        'GET /d HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const rs = await c.waitForResponses(4);
    expect(rs.map((r) => r.body.toString())).toEqual([
      'answer to /a?delay=300',
      'answer to /b?delay=0',
      'answer to /c?delay=100',
      'answer to /d',
    ]);
    expect(c.closed).toBe(false); // keep-alive throughout
  });

  it('serves a request pipelined behind an h2c upgrade attempt as the next request', async () => {
    const u = await delayedPathUpstream();
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write(
      'GET /up HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n' +
        'GET /next HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const rs = await c.waitForResponses(2);
    expect(rs.map((r) => [r.status, r.body.toString()])).toEqual([
      [200, 'answer to /up'],
      [200, 'answer to /next'],
    ]);
  });

  it('answers the requests before a malformed pipelined one, then 400 and close', async () => {
    const u = await delayedPathUpstream();
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write('GET /first?delay=100 HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n');
    await c.waitForClose();
    expect(c.responses.map((r) => [r.status, headerMap(r.headers)['x-skein-flags']])).toEqual([
      [200, undefined],
      [400, 'DPE'],
    ]);
    expect(c.responses[0].body.toString()).toBe('answer to /first?delay=100');
  });

  it('lets go of connections the client closes, and of those it answered as malformed', async () => {
    const u = await delayedPathUpstream();
    const proxy = await proxyFor(quickConfig([u.address]));
    const openConnections = async () => {
      const text = await (await fetch(`${proxy.adminUrl()}/metrics`)).text();
      return Number(/^skein_downstream_connections_active\{listener="main"\} (\d+)$/m.exec(text)?.[1]);
    };
    const kept = await connect(proxy);
    kept.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await kept.waitForResponses(1);
    const bad = await connect(proxy);
    bad.write('GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    await bad.waitForClose();
    expect(bad.responses.map((r) => r.status)).toEqual([400]);
    expect(await openConnections()).toBe(1);
    kept.socket.end(); // a FIN, not a reset: the proxy must see it while idle
    await waitForAsync(async () => (await openConnections()) === 0);
  });

  it('rejects a request with two Host fields with 400', async () => {
    const u = await delayedPathUpstream();
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    await c.waitForClose();
    expect(c.responses.map((r) => r.status)).toEqual([400]);
  });

  it('says 100 Continue when it forwards a request that expects it, then streams the body', async () => {
    let sawExpect: string | undefined = 'unset';
    const u = await upstream((req, res) => {
      sawExpect = req.headers.expect;
      const chunks: Buffer[] = [];
      req.on('data', (b: Buffer) => chunks.push(b));
      req.on('end', () => res.end(`got ${Buffer.concat(chunks).toString()}`));
    });
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write('POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n');
    await waitFor(() => c.interim.length === 1);
    expect(c.interim).toEqual([100]);
    c.write('hello world');
    const [r] = await c.waitForResponses(1);
    expect([r.status, r.body.toString()]).toEqual([200, 'got hello world']);
    expect(sawExpect).toBeUndefined(); // answered here, not passed on
    expect(c.closed).toBe(false);
  });

  it('answers a 100-continue request that matches no route without the go-ahead, and closes', async () => {
    const u = await delayedPathUpstream();
    const proxy = await proxyFor(
      quickConfig([u.address], {
        listeners: [
          { name: 'main', address: '127.0.0.1:0', routes: [{ match: { pathPrefix: '/api' }, cluster: 'upstream' }] },
        ],
      }),
    );
    const c = await connect(proxy);
    c.write('PUT /elsewhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    await c.waitForClose();
    expect(c.interim).toEqual([]);
    expect(c.responses.map((r) => [r.status, headerMap(r.headers).connection])).toEqual([[404, 'close']]);
  });

  it('chunks a response the upstream sends without a length, and passes a Content-Length one through', async () => {
    const u = await upstream((req, res) => {
      if (req.url === '/stream') {
        res.write('part one, ');
        setTimeout(() => res.end('part two'), 20);
      } else res.end('fixed');
    });
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    const [streamed] = await c.waitForResponses(1);
    expect(headerMap(streamed.headers)['transfer-encoding']).toBe('chunked');
    expect(streamed.body.toString()).toBe('part one, part two');
    c.write('GET /fixed HTTP/1.1\r\nHost: x\r\n\r\n');
    const [, fixed] = await c.waitForResponses(2);
    expect(headerMap(fixed.headers)).toMatchObject({ 'content-length': '5' });
    expect(headerMap(fixed.headers)['transfer-encoding']).toBeUndefined();
    expect(fixed.raw.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true);
  });

  it('chunks a response the upstream delimits by closing its connection', async () => {
    const raw = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () =>
        s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nuntil the end'),
      );
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => raw.close(() => r())));
    const proxy = await proxyFor(quickConfig([`127.0.0.1:${(raw.address() as AddressInfo).port}`]));
    const c = await connect(proxy);
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const [r] = await c.waitForResponses(1);
    expect(headerMap(r.headers)['transfer-encoding']).toBe('chunked');
    expect(r.body.toString()).toBe('until the end');
    expect(c.closed).toBe(false);
  });

  it('ends an HTTP/1.0 response of unknown length by closing the connection', async () => {
    const u = await upstream((_req, res) => {
      res.write('streamed ');
      res.end('to a 1.0 client');
    });
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write('GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    await c.waitForClose();
    const [r] = c.responses;
    expect(headerMap(r.headers)['transfer-encoding']).toBeUndefined();
    expect(headerMap(r.headers).connection).toBe('close');
    expect(r.body.toString()).toBe('streamed to a 1.0 client');
  });

  it('keeps an HTTP/1.0 client that asks for keep-alive when the length is known', async () => {
    const u = await upstream((_req, res) => res.end('short'));
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write('GET /1 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    const [r] = await c.waitForResponses(1);
    expect(headerMap(r.headers).connection).toBe('keep-alive');
    c.write('GET /2 HTTP/1.0\r\nHost: x\r\n\r\n');
    await c.waitForClose();
    expect(c.responses.map((x) => x.body.toString())).toEqual(['short', 'short']);
  });

  it('sends no body for HEAD, 204 and 304, and the connection carries the next request', async () => {
    const u = await upstream((req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/304') res.writeHead(304, { etag: '"v1"' }).end();
      else res.writeHead(200, { 'content-length': 11 }).end(req.method === 'HEAD' ? undefined : 'hello world');
    });
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write(
      'HEAD /head HTTP/1.1\r\nHost: x\r\n\r\nGET /204 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /304 HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n',
      ['HEAD', 'GET', 'GET', 'GET'],
    );
    const rs = await c.waitForResponses(4);
    expect(rs.map((r) => [r.status, r.statusText, r.body.toString()])).toEqual([
      [200, 'OK', ''],
      [204, 'No Content', ''],
      [304, 'Not Modified', ''],
      [200, 'OK', 'hello world'],
    ]);
    expect(headerMap(rs[0].headers)['content-length']).toBe('11');
    for (const r of rs.slice(1, 3)) {
      const h = headerMap(r.headers);
      expect([h['content-length'], h['transfer-encoding']]).toEqual([undefined, undefined]);
    }
  });

  it('closes a keep-alive connection left idle longer than idleTimeoutMs', async () => {
    const u = await delayedPathUpstream();
    const config = quickConfig([u.address]);
    config.listeners[0] = { ...config.listeners[0], idleTimeoutMs: 300 };
    const proxy = await proxyFor(config);
    const c = await connect(proxy);
    c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.waitForResponses(1);
    const answeredAt = Date.now();
    await c.waitForClose(5_000);
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(250);
  });

  it('on drain closes idle connections at once and ends busy ones after their response', async () => {
    const u = await delayedPathUpstream();
    const proxy = await startProxy(quickConfig([u.address]));
    const idle = await connect(proxy);
    idle.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await idle.waitForResponses(1);
    const busy = await connect(proxy);
    busy.write('GET /slow?delay=400 HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => proxy.proxy.stats.inFlight === 1);
    const drained = proxy.proxy.drain(5_000);
    await idle.waitForClose(1_000);
    expect(busy.closed).toBe(false);
    await busy.waitForClose(5_000);
    expect(busy.responses.map((r) => [r.status, headerMap(r.headers).connection, r.body.toString()])).toEqual([
      [200, 'close', 'answer to /slow?delay=400'],
    ]);
    expect(await drained).toEqual({ cutRequests: 0 });
  });

  it('flags a request whose client went away before the answer DC, and cancels it upstream', async () => {
    let upstreamClosed = false;
    const u = await upstream((req) => {
      req.socket.on('close', () => (upstreamClosed = true)); // never answers
    });
    const proxy = await proxyFor(quickConfig([u.address]));
    const c = await connect(proxy);
    c.write('GET /hang HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => proxy.proxy.stats.inFlight === 1);
    c.destroy();
    await waitFor(() => upstreamClosed && proxy.proxy.stats.inFlight === 0);
    const metrics = await waitForAsync(async () => {
      const text = await (await fetch(`${proxy.adminUrl()}/metrics`)).text();
      return text.includes('response_flag="DC"') ? text : undefined;
    });
    // One request counted with flag DC, whatever the metric family's other labels are.
    expect(metrics).toMatch(/^\w*requests_total\{[^}]*response_flag="DC"[^}]*\} 1$/m);
  });
});
