// HTTP/2 through the proxy end to end: curl and node:http2 clients on the proxy's plaintext listener (h2c
// prior knowledge), real h2c and HTTP/1.1 upstreams behind it. Covers large bodies, many streams on one
// connection, the mesh headers, HTTP/1.1 ⇄ HTTP/2 translation both ways and resets on either side.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { runCurl } from '../support/curl.ts';
import { startH2Upstream } from '../support/h2-upstream.ts';
import {
  type EchoBody,
  quickConfig,
  type RunningProxy,
  startEchoUpstream,
  startH2EchoUpstream,
  startProxy,
  type Upstream,
} from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  // Last started, first closed: clients, then the proxy, then upstreams.
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function upstreamOf(start: Promise<Upstream>): Promise<Upstream> {
  const upstream = await start;
  cleanups.push(() => upstream.close());
  return upstream;
}

async function proxyTo(
  upstream: Upstream,
  cluster: { protocol?: 'auto' | 'http1' | 'http2'; service?: string } = {},
): Promise<RunningProxy> {
  const config: ConfigInput = quickConfig([upstream.address], {
    clusters: [
      { name: 'upstream', ...cluster, discovery: { type: 'static', endpoints: [{ address: upstream.address }] } },
    ],
  });
  const proxy = await startProxy(config);
  cleanups.push(() => proxy.close());
  return proxy;
}

function connect(proxy: RunningProxy): http2.ClientHttp2Session {
  const session = http2.connect(proxy.url());
  session.on('error', () => {}); // surfaced through the streams
  cleanups.push(() => session.destroy());
  return session;
}

interface H2Response {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on `session`; rejects on a stream error or a reset instead of a clean end. */
function request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': body === undefined ? 'GET' : 'POST', ':path': '/', ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      responseHeaders = h;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('close', () => {
      if (stream.rstCode !== NGHTTP2_NO_ERROR) reject(new Error(`stream reset with code ${stream.rstCode}`));
      else resolve({ headers: responseHeaders, body: Buffer.concat(chunks) });
    });
    stream.end(body);
  });
}

function echoed(res: H2Response): EchoBody {
  return JSON.parse(res.body.toString()) as EchoBody;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('HTTP/2 through the proxy', () => {
  it('serves curl --http2-prior-knowledge from an h2c upstream over HTTP/2', async () => {
    const proxy = await proxyTo(await upstreamOf(startH2EchoUpstream('h2-up')));
    const run = await runCurl(['-i', '--http2-prior-knowledge', `${proxy.url()}/hello?x=1`]);
    expect(run.code).toBe(0);
    const text = run.stdout.toString();
    expect(text.startsWith('HTTP/2 200')).toBe(true);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as EchoBody;
    expect(body).toMatchObject({ method: 'GET', url: '/hello?x=1', server: 'h2-up' });
  });

  it('streams a multi-megabyte POST body to the upstream and back intact', async () => {
    let receivedHash = '';
    const upstream = await upstreamOf(
      startH2Upstream((stream) => {
        // Echo the body back as it arrives, and remember what arrived.
        const hash = createHash('sha256');
        stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
        stream.on('data', (c: Buffer) => hash.update(c));
        stream.on('end', () => {
          receivedHash = hash.digest('hex');
        });
        stream.pipe(stream);
      }),
    );
    const session = connect(await proxyTo(upstream));
    const payload = randomBytes(6 * 1024 * 1024 + 123);
    const res = await request(session, { ':path': '/upload', 'content-type': 'application/octet-stream' }, payload);
    expect(res.headers[':status']).toBe(200);
    expect(res.body.length).toBe(payload.length);
    expect(sha256(res.body)).toBe(sha256(payload));
    expect(receivedHash).toBe(sha256(payload));
  });

  it('completes 200 concurrent streams on one client connection', async () => {
    const proxy = await proxyTo(await upstreamOf(startH2EchoUpstream()));
    const session = connect(proxy);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => request(session, { ':path': `/item/${i}` })),
    );
    results.forEach((res, i) => {
      expect(res.headers[':status']).toBe(200);
      expect(echoed(res).url).toBe(`/item/${i}`);
    });
    // Every stream was its own request to the mesh.
    expect(new Set(results.map((r) => echoed(r).headers['x-request-id'])).size).toBe(200);
  });

  it('adds the mesh headers upstream: a generated x-request-id, x-forwarded-for, source and target service', async () => {
    const proxy = await proxyTo(await upstreamOf(startH2EchoUpstream()), { service: 'inventory' });
    const session = connect(proxy);
    const { headers } = echoed(await request(session, { ':path': '/', 'x-custom': 'kept' }));
    expect(headers['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-source-service']).toBe('test-client');
    expect(headers['x-target-service']).toBe('inventory');
    expect(headers['x-custom']).toBe('kept');

    const given = echoed(
      await request(session, { ':path': '/', 'x-request-id': 'req-42', 'x-forwarded-for': '10.1.2.3' }),
    ).headers;
    expect(given['x-request-id']).toBe('req-42');
    expect(given['x-forwarded-for']).toBe('10.1.2.3, 127.0.0.1');
  });

  describe('across protocols', () => {
    it('forwards an HTTP/1.1 request, body included, to a cluster declared protocol: http2', async () => {
      const proxy = await proxyTo(await upstreamOf(startH2EchoUpstream('h2-only')), { protocol: 'http2' });
      const res = await new Promise<{ status: number; httpVersion: string; body: string }>((resolve, reject) => {
        const req = http.request(
          `${proxy.url()}/h1-to-h2`,
          { method: 'POST', agent: false, headers: { 'content-type': 'text/plain' } },
          (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () =>
              resolve({ status: r.statusCode!, httpVersion: r.httpVersion, body: Buffer.concat(chunks).toString() }),
            );
          },
        );
        req.on('error', reject);
        req.end('from an HTTP/1.1 client');
      });
      expect(res.status).toBe(200);
      expect(res.httpVersion).toBe('1.1');
      const body = JSON.parse(res.body) as EchoBody;
      expect(body).toMatchObject({
        method: 'POST',
        url: '/h1-to-h2',
        body: 'from an HTTP/1.1 client',
        server: 'h2-only',
      });
      expect(body.headers['content-length']).toBe(String(Buffer.byteLength('from an HTTP/1.1 client')));
    });

    it('forwards a chunked HTTP/1.1 upload to a cluster declared protocol: http2', async () => {
      const proxy = await proxyTo(await upstreamOf(startH2EchoUpstream()), { protocol: 'http2' });
      const run = await runCurl(
        ['-i', '--http1.1', '-H', 'transfer-encoding: chunked', '--data-binary', '@-', `${proxy.url()}/chunked`],
        {
          input: 'streamed without a length',
        },
      );
      expect(run.code).toBe(0);
      const text = run.stdout.toString();
      expect(text.startsWith('HTTP/1.1 200')).toBe(true);
      const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as EchoBody;
      expect(body).toMatchObject({ method: 'POST', body: 'streamed without a length' });
    });

    it('forwards an HTTP/2 request, body included, to a cluster declared protocol: http1', async () => {
      const proxy = await proxyTo(await upstreamOf(startEchoUpstream('h1-only')), { protocol: 'http1' });
      const session = connect(proxy);
      const res = await request(
        session,
        { ':path': '/h2-to-h1', 'content-type': 'text/plain' },
        Buffer.from('from an h2 client'),
      );
      expect(res.headers[':status']).toBe(200);
      expect(res.headers['x-served-by']).toBe('h1-only');
      const body = echoed(res);
      expect(body).toMatchObject({ method: 'POST', url: '/h2-to-h1', body: 'from an h2 client', server: 'h1-only' });
      expect(body.headers.host).toBe(`127.0.0.1:${proxy.port()}`);
    });
  });

  describe('resets', () => {
    it.each(['reset-cancel', 'reset-internal-error', 'connection-lost'])(
      'a response the upstream cuts off mid-body (%s) reaches the client as a reset, not as a complete one',
      async (cut) => {
        const upstream = await upstreamOf(
          startH2Upstream((stream) => {
            stream.respond({ ':status': 200 }, { waitForTrailers: true });
            // waitForTrailers holds END_STREAM back, so the cut below happens with the response still open.
            stream.on('wantTrailers', () => {
              if (cut === 'reset-cancel') stream.close(NGHTTP2_CANCEL);
              else if (cut === 'reset-internal-error') stream.close(NGHTTP2_INTERNAL_ERROR);
              else stream.session!.socket.destroy();
            });
            stream.end('partial body');
          }),
        );
        const session = connect(await proxyTo(upstream));
        const stream = session.request({ ':path': '/' });
        stream.on('error', () => {});
        let body = '';
        stream.on('data', (c: Buffer) => {
          body += c.toString();
        });
        stream.end();
        await new Promise((resolve) => stream.on('close', resolve));
        expect(body).toBe('partial body');
        expect(stream.rstCode).not.toBe(NGHTTP2_NO_ERROR);
      },
    );

    it('survives a client resetting its stream with an error code, and cancels the upstream stream', async () => {
      let slowClosed = 0;
      const upstream = await upstreamOf(
        startH2Upstream((stream, headers) => {
          if (headers[':path'] === '/ok') {
            stream.respond({ ':status': 200 });
            stream.end('ok');
            return;
          }
          // Never answers: the client gives up first.
          stream.on('close', () => slowClosed++);
        }),
      );
      const proxy = await proxyTo(upstream);
      const session = connect(proxy);
      for (const code of [NGHTTP2_INTERNAL_ERROR, NGHTTP2_CANCEL]) {
        const stream = session.request({ ':method': 'POST', ':path': '/slow' });
        stream.on('error', () => {});
        stream.write('some of the body');
        await waitFor(() => proxy.proxy.stats.inFlight === 1);
        stream.close(code);
        await waitFor(() => proxy.proxy.stats.inFlight === 0);
      }
      await waitFor(() => slowClosed === 2);
      // Still serving, on the same connection and on a new one.
      expect((await request(session, { ':path': '/ok' })).body.toString()).toBe('ok');
      expect((await request(connect(proxy), { ':path': '/ok' })).body.toString()).toBe('ok');
    });
  });
});
