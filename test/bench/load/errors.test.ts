// Error kinds the built-in engine counts: connection refused ("connect"), error statuses ("status_4xx",
// "status_5xx"), answers that never come ("timeout", timed from the intended send) and cut connections ("reset").
import http2 from 'node:http2';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runLoad } from '../../../bench/load/index.ts';
import type { LoadProtocol, LoadSpec } from '../../../bench/load/types.ts';
import { answerOk, closedPort, startHttp1Server, type TestServer } from './support/servers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function spec(url: string, over: Partial<LoadSpec>): LoadSpec {
  return {
    url,
    protocol: 'http1',
    mode: 'open',
    engine: 'builtin',
    ratePerS: 100,
    connections: 2,
    durationS: 0.5,
    ...over,
  };
}

async function h1(answer: Parameters<typeof startHttp1Server>[0]): Promise<TestServer> {
  const s = await startHttp1Server(answer);
  cleanups.push(() => s.close());
  return s;
}

describe('error kinds', () => {
  it.each<[LoadProtocol, string]>([
    ['http1', 'http'],
    ['http2', 'http'],
    ['grpc-unary', 'http'],
    ['websocket', 'ws'],
  ])('%s: every request to a refused port is a "connect" error, open and closed loop', async (protocol, scheme) => {
    const port = await closedPort();
    const open = await runLoad(spec(`${scheme}://127.0.0.1:${port}/`, { protocol }));
    expect(open).toMatchObject({ requests: 50, ok: 0, errors: { connect: 50 } });
    const closed = await runLoad(spec(`${scheme}://127.0.0.1:${port}/`, { protocol, mode: 'closed', durationS: 0.3 }));
    expect(closed.ok).toBe(0);
    expect(Object.keys(closed.errors)).toEqual(['connect']);
    expect(closed.requests).toBeGreaterThan(0);
  });

  it('counts 5xx and 4xx answers by class, exactly as the server sent them', async () => {
    const sent = { 503: 0, 404: 0, 200: 0 };
    let n = 0;
    const s = await h1((req, res, arrival) => {
      const status = ([503, 404, 200] as const)[n++ % 3];
      sent[status]++;
      if (status === 200) answerOk(req, res, arrival);
      else res.writeHead(status, { 'content-length': 0 }).end();
    });
    const r = await runLoad(spec(s.url, { ratePerS: 120 }));
    expect(r.requests).toBe(60);
    expect(r.errors).toEqual({ status_5xx: sent[503], status_4xx: sent[404] });
    expect(r.ok).toBe(sent[200]);
    expect(sent[503]).toBe(20);
  });

  it('counts answers that never come as timeouts, including requests queued behind them', async () => {
    const s = await h1(() => {}); // never answers
    const r = await runLoad(spec(s.url, { timeoutMs: 200 }));
    expect(r).toMatchObject({ requests: 50, ok: 0, errors: { timeout: 50 } });
    // Requests queued behind a stuck one time out too (how many reach the server depends on when connections
    // are replaced, so it is not asserted).
    expect(r.latencyUs.p50).toBeGreaterThanOrEqual(200_000);
  });

  it('counts a connection cut before the answer as "reset", and an HTTP/2 RST_STREAM as "reset"', async () => {
    const s = await h1((req) => req.socket.destroy());
    const r = await runLoad(spec(s.url, {}));
    expect(r).toMatchObject({ requests: 50, ok: 0, errors: { reset: 50 } });

    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {}); // the refused streams below
      if (headers[':path'] === '/503') {
        stream.respond({ ':status': 503 });
        stream.end();
      } else stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as net.AddressInfo).port;
    const rst = await runLoad(spec(`http://127.0.0.1:${port}/`, { protocol: 'http2' }));
    expect(rst).toMatchObject({ requests: 50, ok: 0, errors: { reset: 50 } });
    const unavailable = await runLoad(spec(`http://127.0.0.1:${port}/503`, { protocol: 'http2', mode: 'closed' }));
    expect(Object.keys(unavailable.errors)).toEqual(['status_5xx']);
    expect(unavailable.errors.status_5xx).toBe(unavailable.requests);
  });

  it('rejects a spec it cannot run, naming the field', async () => {
    await expect(runLoad(spec('ws://127.0.0.1:1/', {}))).rejects.toThrow(/url: http1 needs http: or https:/);
    await expect(runLoad(spec('http://127.0.0.1:1/', { ratePerS: 0 }))).rejects.toThrow(/ratePerS/);
    await expect(runLoad(spec('http://127.0.0.1:1/', { connections: 0 }))).rejects.toThrow(/connections/);
  });
});
