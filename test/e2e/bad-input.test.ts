// Malformed and hostile HTTP/1.1 input over raw sockets: the proxy answers with the right status and
// closes, never lets a smuggling-shaped request reach the upstream, drops clients that stall or say
// nothing, counts every rejection in /metrics, and keeps serving normal requests throughout.
import { once } from 'node:events';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quickConfig, type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';

const HEADERS_TIMEOUT_MS = 500;
const MAX_HEADER_BYTES = 4096;

interface RawResult {
  /** Everything the proxy sent before it closed the connection. */
  text: string;
  /** Status code of the first response, 0 when there was none. */
  status: number;
  /** ms from the last write to the close. */
  closedAfterMs: number;
}

/** Connects, writes `parts` in order, and reads until the proxy closes the connection (bounded). */
async function rawExchange(port: number, parts: (string | Buffer)[], timeoutMs = 5_000): Promise<RawResult> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {}); // a reset after the response is a close like any other here
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = new Promise((resolve) => socket.once('close', resolve));
  for (const p of parts) socket.write(p);
  const sentAt = Date.now();
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  await closed;
  clearTimeout(timer);
  const closedAfterMs = Date.now() - sentAt;
  if (closedAfterMs >= timeoutMs) throw new Error(`the proxy kept the connection open for ${timeoutMs} ms`);
  const text = Buffer.concat(chunks).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1] ?? 0);
  return { text, status, closedAfterMs };
}

describe('bad input on an HTTP listener', () => {
  let upstream: Upstream;
  let proxy: RunningProxy;
  let upstreamRequests = 0;

  beforeAll(async () => {
    upstream = await startEchoUpstream('counted', (req, res) => {
      upstreamRequests++;
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const config = quickConfig([upstream.address]);
    config.listeners[0] = {
      ...config.listeners[0],
      headersTimeoutMs: HEADERS_TIMEOUT_MS,
      maxHeaderBytes: MAX_HEADER_BYTES,
    };
    proxy = await startProxy(config);
  });

  afterAll(async () => {
    await proxy.close();
    await upstream.close();
  });

  /** skein_downstream_protocol_errors_total for the listener, summed over codes, and by code. */
  async function protocolErrors(): Promise<{ total: number; byCode: Record<string, number> }> {
    const text = await (await fetch(`${proxy.adminUrl()}/metrics`)).text();
    const byCode: Record<string, number> = {};
    let total = 0;
    for (const m of text.matchAll(
      /^skein_downstream_protocol_errors_total\{listener="main",code="([^"]*)"\} (\d+)$/gm,
    )) {
      byCode[m[1]] = Number(m[2]);
      total += Number(m[2]);
    }
    return { total, byCode };
  }

  /** Runs `fn` and checks it added exactly one protocol error to /metrics. */
  async function expectOneProtocolError(fn: () => Promise<void>): Promise<void> {
    const before = await protocolErrors();
    await fn();
    const after = await protocolErrors();
    expect(after.total - before.total).toBe(1);
  }

  it('answers a malformed request line with 400 and closes the connection', async () => {
    await expectOneProtocolError(async () => {
      const r = await rawExchange(proxy.port(), ['THIS IS NOT HTTP\r\n\r\n']);
      expect(r.status).toBe(400);
      expect(r.text).toMatch(/\r\nx-skein-flags: DPE\r\n/i);
    });
  });

  it('answers a request head larger than maxHeaderBytes with 431 and closes the connection', async () => {
    await expectOneProtocolError(async () => {
      const before = upstreamRequests;
      const r = await rawExchange(proxy.port(), [
        `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(MAX_HEADER_BYTES * 2)}\r\n\r\n`,
      ]);
      expect(r.status).toBe(431);
      expect(upstreamRequests).toBe(before);
    });
    expect((await protocolErrors()).byCode.HPE_HEADER_OVERFLOW).toBeGreaterThanOrEqual(1);
  });

  it('rejects a request with both Content-Length and Transfer-Encoding with 400 and never forwards it', async () => {
    const before = upstreamRequests;
    await expectOneProtocolError(async () => {
      const r = await rawExchange(proxy.port(), [
        'POST /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n' +
          '0\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n',
      ]);
      expect(r.status).toBe(400);
      // One response and nothing for the request hidden in the body.
      expect(r.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    });
    expect(upstreamRequests).toBe(before);
  });

  it('rejects two different Content-Length values with 400 and never forwards the request', async () => {
    const before = upstreamRequests;
    await expectOneProtocolError(async () => {
      const r = await rawExchange(proxy.port(), [
        'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      ]);
      expect(r.status).toBe(400);
    });
    expect(upstreamRequests).toBe(before);
  });

  it('answers an invalid chunk size with 400 and closes the connection', async () => {
    await expectOneProtocolError(async () => {
      const r = await rawExchange(proxy.port(), [
        'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      ]);
      expect(r.status).toBe(400);
    });
  });

  it('answers a request without Host with 400', async () => {
    const before = upstreamRequests;
    const r = await rawExchange(proxy.port(), ['GET / HTTP/1.1\r\n\r\n']);
    expect(r.status).toBe(400);
    expect(upstreamRequests).toBe(before);
  });

  it('answers 408 and disconnects a client that sends part of a request head and stalls', async () => {
    await expectOneProtocolError(async () => {
      const r = await rawExchange(proxy.port(), ['GET /slow HTTP/1.1\r\nHost: x\r\nX-Partial: '], 10_000);
      // headersTimeoutMs is 500 and node checks it about once a second: a generous bound, no tight timing.
      expect(r.closedAfterMs).toBeLessThan(5_000);
      expect(r.status).toBe(408);
    });
  });

  it('disconnects a client that connects and sends nothing', async () => {
    const r = await rawExchange(proxy.port(), [], 10_000);
    expect(r.closedAfterMs).toBeLessThan(5_000);
    expect(r.text).toBe('');
  });

  it('still serves normal requests on new and kept-alive connections after all of that', async () => {
    const r1 = await fetch(`${proxy.url()}/after`);
    expect([r1.status, await r1.text()]).toEqual([200, 'ok']);
    // Two requests on one raw connection, then a clean close by the client.
    const socket = net.connect(proxy.port(), '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await once(socket, 'close');
    expect(text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    const errors = await protocolErrors();
    expect(errors.total).toBeGreaterThan(0);
  });
});
