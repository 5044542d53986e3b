// `protocol: auto` in front of apps that speak only HTTP/1.1: HTTP/2 clients (node:http2, curl) through
// `skein proxy --listen … --upstream` get the app's answers, the endpoint is learned as HTTP/1.1-only after one
// refused h2c preface, and gRPC and h2c apps keep HTTP/2.
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Endpoint, HTTP2_REPROBE_MS } from '../../proxy/cluster.ts';
import { runCurl } from '../support/curl.ts';
import { echoClient, grpcError, startGrpcUpstream, unary } from '../support/grpc-echo.ts';
import { httpGet } from '../support/http-client.ts';
import { killAllSkein, freePort, startSkeinProxy } from '../support/process.ts';
import { quickConfig, startH2EchoUpstream, startProxy } from '../support/proxy.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await killAllSkein();
});

interface Http1App {
  address: string;
  /** Connections that opened with something node:http could not parse (the h2c preface). */
  prefaces: () => number;
  /** Requests served, as "METHOD path body". */
  served: string[];
}

/** A node:http server (HTTP/1.1 only) echoing method, path and body; answers the h2c preface as node does. */
async function startHttp1App(): Promise<Http1App> {
  const served: string[] = [];
  let prefaces = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = `${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`;
      served.push(text);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-http-version': req.httpVersion }).end(text);
    });
  });
  // One per connection: after its 400, node may see the client's GOAWAY on the same socket as a second error.
  const refusedSockets = new WeakSet<object>();
  server.on('clientError', (_err, socket) => {
    if (!refusedSockets.has(socket)) {
      refusedSockets.add(socket);
      prefaces++;
    }
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, prefaces: () => prefaces, served };
}

function h2Session(url: string): http2.ClientHttp2Session {
  const session = http2.connect(url);
  session.on('error', () => {});
  cleanups.push(() => session.destroy());
  return session;
}

function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let head: http2.IncomingHttpHeaders = {};
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: string) => (text += c));
    stream.on('error', reject);
    stream.on('close', () => resolve({ status: Number(head[':status']), headers: head, body: text }));
    if (body !== undefined) {
      // Two writes, the second after a turn of the event loop: the body streams in while the proxy probes.
      stream.write(body.slice(0, 5));
      setImmediate(() => stream.end(body.slice(5)));
    }
  });
}

function metric(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('protocol auto in front of an HTTP/1.1-only app', () => {
  it('serves h2c clients (node:http2 and curl) over HTTP/1.1 after one refused preface, bodies intact', async () => {
    const app = await startHttp1App();
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      ['--listen', '127.0.0.1:0', '--upstream', app.address, '--admin', `127.0.0.1:${adminPort}`],
      { adminPort },
    );

    // The first requests meet the refusal together: POSTs whose bodies are still arriving (one larger than
    // HTTP/2's initial flow-control window), and a GET.
    const session = h2Session(proxy.url());
    const large = 'x'.repeat(200_000);
    const [post, get, bigPost] = await Promise.all([
      h2Request(session, { ':method': 'POST', ':path': '/orders', 'content-type': 'text/plain' }, 'hello, skein!'),
      h2Request(session, { ':method': 'GET', ':path': '/first' }),
      h2Request(session, { ':method': 'POST', ':path': '/large' }, large),
    ]);
    expect(bigPost.body).toBe(`POST /large ${large}`);
    expect(post.status).toBe(200);
    expect(post.body).toBe('POST /orders hello, skein!');
    expect(post.headers['x-http-version']).toBe('1.1');
    expect(get.status).toBe(200);
    expect(get.body).toBe('GET /first ');

    // Later requests go straight to HTTP/1.1: the app sees no second preface.
    const again = await h2Request(session, { ':method': 'GET', ':path': '/again' });
    expect(again.body).toBe('GET /again ');
    const curlGet = await runCurl(['--http2-prior-knowledge', `${proxy.url()}/curl`]);
    expect(curlGet.code).toBe(0);
    expect(curlGet.stdout.toString()).toBe('GET /curl ');
    const curlPost = await runCurl(['--http2-prior-knowledge', '--data-binary', 'posted by curl', `${proxy.url()}/c`]);
    expect(curlPost.code).toBe(0);
    expect(curlPost.stdout.toString()).toBe('POST /c posted by curl');

    expect(app.prefaces()).toBe(1);
    expect(app.served).toHaveLength(6);
    const metrics = (await httpGet(`${proxy.adminUrl}/metrics`)).body;
    expect(metric(metrics, 'skein_upstream_protocol_downgrades_total')).toBe(1);
    expect(metrics).toContain('skein_upstream_protocol_downgrades_total{cluster="upstream"} 1');
    const clusters = JSON.parse((await httpGet(`${proxy.adminUrl}/clusters`)).body) as {
      clusters: { endpoints: { refusesHttp2: boolean }[] }[];
    };
    expect(clusters.clusters[0].endpoints[0].refusesHttp2).toBe(true);
  });

  it('answers gRPC to an HTTP/1.1-only app with UNAVAILABLE saying it does not speak HTTP/2', async () => {
    const app = await startHttp1App();
    const proxy = await startProxy(quickConfig([app.address]));
    cleanups.push(() => proxy.close());
    const client = echoClient(`127.0.0.1:${proxy.port()}`);
    cleanups.push(() => client.close());

    const err = await grpcError(unary(client, { message: 'hi' }));
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toContain('does not speak HTTP/2');
    expect(app.served).toHaveLength(0);
  });
});

describe('protocol http2 in front of an HTTP/1.1-only app', () => {
  it('answers 503 UC saying the app does not speak HTTP/2, and learns nothing', async () => {
    const app = await startHttp1App();
    const proxy = await startProxy(
      quickConfig([], {
        clusters: [
          { name: 'upstream', protocol: 'http2', discovery: { type: 'static', endpoints: [{ address: app.address }] } },
        ],
      }),
    );
    cleanups.push(() => proxy.close());

    for (let i = 0; i < 2; i++) {
      const res = await httpGet(`${proxy.url()}/x`);
      expect(res.status).toBe(503);
      expect(res.headers['x-skein-flags']).toBe('UC');
      expect(res.body).toContain('does not speak HTTP/2');
    }
    expect(app.prefaces()).toBe(2); // declared http2: every new session tries, none falls back
    const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
    expect(metric(metrics, 'skein_upstream_protocol_downgrades_total')).toBeUndefined();
  });
});

describe('protocol auto in front of an app that speaks h2c', () => {
  it('keeps HTTP/2 for gRPC and for plain HTTP/2 requests, with no downgrade', async () => {
    const grpcApp = await startGrpcUpstream();
    cleanups.push(() => grpcApp.close());
    const h2App = await startH2EchoUpstream('h2app');
    cleanups.push(() => h2App.close());
    const proxy = await startProxy(
      quickConfig([], {
        listeners: [
          {
            name: 'main',
            address: '127.0.0.1:0',
            routes: [
              { name: 'grpc', match: { grpc: true }, cluster: 'grpc-app' },
              { name: 'rest', cluster: 'h2-app' },
            ],
          },
        ],
        clusters: [
          { name: 'grpc-app', discovery: { type: 'static', endpoints: [{ address: grpcApp.address }] } },
          { name: 'h2-app', discovery: { type: 'static', endpoints: [{ address: h2App.address }] } },
        ],
      }),
    );
    cleanups.push(() => proxy.close());

    const client = echoClient(`127.0.0.1:${proxy.port()}`);
    cleanups.push(() => client.close());
    expect((await unary(client, { message: 'over h2c' })).message).toBe('over h2c');

    const session = h2Session(proxy.url());
    const res = await h2Request(session, { ':method': 'POST', ':path': '/h2' }, 'body over h2c');
    const seen = JSON.parse(res.body) as { headers: Record<string, string>; body: string };
    expect(seen.headers[':method']).toBe('POST'); // a pseudo-header: the app got HTTP/2
    expect(seen.body).toBe('body over h2c');

    const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
    expect(metric(metrics, 'skein_upstream_protocol_downgrades_total')).toBeUndefined();
  });
});

describe('Endpoint protocol memory', () => {
  it('remembers a refusal of HTTP/2 for HTTP2_REPROBE_MS, then tries HTTP/2 again', () => {
    let downgrades = 0;
    const ep = new Endpoint(
      { host: '127.0.0.1', port: 1, weight: 1, labels: {} },
      { connectTimeoutMs: 1000, idleTimeoutMs: 1000, maxIdle: 1 },
      { onDowngrade: () => downgrades++ },
    );
    const now = performance.now();
    expect(ep.speaksHttp2(now)).toBe(true);
    ep.refusedHttp2('Protocol error');
    ep.refusedHttp2('Protocol error'); // a gRPC request that tried anyway: already known, not counted again
    expect(downgrades).toBe(1);
    expect(ep.speaksHttp2(performance.now())).toBe(false);
    expect(ep.speaksHttp2(now + HTTP2_REPROBE_MS + 1)).toBe(true);
    ep.refusedHttp2('Protocol error');
    expect(downgrades).toBe(2);
    ep.close();
  });
});
