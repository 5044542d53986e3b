// Each protocol of the built-in engine against a real server of that protocol: node:http, node:http2 (h2c and
// h2 over TLS), HTTPS with a client certificate (mTLS), a grpc-js server and a ws server. Short runs; the
// server's own view (methods, body sizes, streams in flight, peer certificate) is checked beside the counts.
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import type tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runLoad } from '../../../bench/load/index.ts';
import type { LoadSpec } from '../../../bench/load/types.ts';
import { waitFor } from '../../support/wait-for.ts';
import { makePki, type TestPki } from './support/certs.ts';
import { echoHandlers, startGrpcEchoServer } from './support/grpc-bench-echo.ts';
import { answerOk, startHttp1Server } from './support/servers.ts';

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
    ratePerS: 200,
    connections: 2,
    durationS: 0.5,
    ...over,
  };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => sockets.add(s));
  server.on('secureConnection', (s: net.Socket) => sockets.add(s));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as net.AddressInfo).port;
}

describe('HTTP/1.1', () => {
  it('GETs without a body and POSTs payloadBytes, open and closed loop', async () => {
    const s = await startHttp1Server();
    cleanups.push(() => s.close());
    const get = await runLoad(spec(s.url, {}));
    expect(get).toMatchObject({ requests: 100, ok: 100, errors: {} });
    expect(s.arrivals.every((a) => a.method === 'GET' && a.bodyBytes === 0)).toBe(true);
    s.arrivals.length = 0;
    const post = await runLoad(spec(s.url, { mode: 'closed', payloadBytes: 4096 }));
    expect(post.requests).toBeGreaterThan(0);
    expect(post).toMatchObject({ ok: post.requests, errors: {} });
    expect(s.arrivals.length).toBeGreaterThanOrEqual(post.requests);
    expect(s.arrivals.every((a) => a.method === 'POST' && a.bodyBytes === 4096)).toBe(true);
  });

  it('reads chunked answers and reconnects when the server closes after each answer', async () => {
    let n = 0;
    const s = await startHttp1Server((_req, res) => {
      if (n++ % 2 === 0) {
        res.writeHead(200, { 'transfer-encoding': 'chunked' });
        res.write('part one, ');
        res.end('part two');
      } else {
        res.writeHead(200, { connection: 'close', 'content-length': 2 });
        res.end('ok');
      }
    });
    cleanups.push(() => s.close());
    const r = await runLoad(spec(s.url, { ratePerS: 100, durationS: 1 }));
    expect(r).toMatchObject({ requests: 100, ok: 100, errors: {} });
    expect(new Set(s.arrivals.map((a) => a.conn)).size).toBeGreaterThan(10);
  });

  it('reads a body that runs to the close of the connection', async () => {
    let served = 0;
    const server = net.createServer((socket) => {
      socket.once('data', () => {
        served++;
        socket.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nno length: the close ends me');
      });
    });
    const port = await listen(server);
    const r = await runLoad(spec(`http://127.0.0.1:${port}/`, { ratePerS: 100 }));
    expect(r).toMatchObject({ requests: 50, ok: 50, errors: {} });
    expect(served).toBe(50);
  });
});

describe("HTTP/1.1 framing (the proxy's llhttp module)", () => {
  it('skips interim 100 answers, reads trailers, and counts an answer that is not HTTP as "protocol"', async () => {
    let n = 0;
    const server = net.createServer((socket) => {
      socket.on('data', () => {
        if (n++ % 2 === 0)
          socket.write(
            'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n' +
              '2\r\nok\r\n0\r\nx-trailer: 1\r\n\r\n',
          );
        else socket.write('SSH-2.0-OpenSSH_9.2\r\n');
      });
    });
    const port = await listen(server);
    const r = await runLoad(spec(`http://127.0.0.1:${port}/`, { ratePerS: 100, connections: 1, mode: 'closed' }));
    expect(r.ok).toBeGreaterThan(0);
    expect(r.errors.protocol).toBeGreaterThan(0);
    expect(r.ok + r.errors.protocol!).toBe(r.requests);
  });
});

describe('HTTP/2', () => {
  function h2Server(delayMs: number, seen: { streams: number; maxInFlight: number; sessions: number; posts: number }) {
    const server = http2.createServer();
    let inFlight = 0;
    server.on('session', () => seen.sessions++);
    server.on('stream', (stream, headers) => {
      seen.streams++;
      seen.maxInFlight = Math.max(seen.maxInFlight, ++inFlight);
      let bytes = 0;
      stream.on('data', (c: Buffer) => (bytes += c.length));
      stream.on('error', () => {});
      stream.on('end', () => {
        if (headers[':method'] === 'POST' && bytes === 1000) seen.posts++;
        setTimeout(() => {
          inFlight--;
          if (stream.destroyed) return;
          stream.respond({ ':status': 200 });
          stream.end('ok');
        }, delayMs);
      });
    });
    return server;
  }

  it('h2c: multiplexes up to streamsPerConnection streams on each connection in a closed loop', async () => {
    const seen = { streams: 0, maxInFlight: 0, sessions: 0, posts: 0 };
    const port = await listen(h2Server(20, seen));
    const r = await runLoad(
      spec(`http://127.0.0.1:${port}/x`, {
        protocol: 'http2',
        mode: 'closed',
        connections: 1,
        streamsPerConnection: 4,
        payloadBytes: 1000,
      }),
    );
    expect(r.errors).toEqual({});
    expect(r.ok).toBe(r.requests);
    expect(seen.sessions).toBe(1);
    expect(seen.maxInFlight).toBe(4);
    expect(seen.posts).toBe(seen.streams);
    expect(seen.streams).toBeGreaterThanOrEqual(r.requests);
  });

  it('h2c open loop: every due request gets its own stream at once, however many are in flight', async () => {
    const seen = { streams: 0, maxInFlight: 0, sessions: 0, posts: 0 };
    const port = await listen(h2Server(100, seen));
    const r = await runLoad(spec(`http://127.0.0.1:${port}/`, { protocol: 'http2', connections: 1 }));
    expect(r).toMatchObject({ requests: 100, ok: 100, errors: {}, queued: 0 });
    // 200/s with 100 ms answers: about 20 streams in flight on the one connection.
    expect(seen.maxInFlight).toBeGreaterThan(10);
  });
});

describe('TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki.remove());

  function secureOptions(): tls.TlsOptions {
    return {
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ca: readFileSync(pki.caFile),
      requestCert: true,
      rejectUnauthorized: true,
    };
  }

  const peers: string[] = [];
  const peerName = (socket: tls.TLSSocket) => String(socket.getPeerCertificate().subject?.CN);

  it('HTTP/1.1 over TLS with a client certificate (mTLS), verified against the CA', async () => {
    const server = https.createServer(secureOptions(), (req, res) => {
      peers.push(peerName(req.socket as tls.TLSSocket));
      answerOk(req, res, { at: 0, conn: 0, method: '', bodyBytes: 0 });
    });
    const port = await listen(server);
    const tlsSpec = { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey };
    const r = await runLoad(spec(`https://127.0.0.1:${port}/`, { tls: tlsSpec }));
    expect(r).toMatchObject({ requests: 100, ok: 100, errors: {} });
    expect(new Set(peers)).toEqual(new Set(['load-client']));
    // Without the client certificate the server refuses every connection.
    const refused = await runLoad(spec(`https://127.0.0.1:${port}/`, { tls: { caFile: pki.caFile }, ratePerS: 40 }));
    expect(refused.ok).toBe(0);
    expect(refused.requests).toBe(20);
    // TLS 1.3: the refusal may arrive as the server's alert or as the connection cut after it.
    expect(Object.keys(refused.errors).every((k) => ['tls', 'reset'].includes(k))).toBe(true);
  });

  it('counts a server certificate that does not match the name as a "tls" error, before anything is sent', async () => {
    let requests = 0;
    const server = https.createServer(secureOptions(), (req, res) => {
      requests++;
      answerOk(req, res, { at: 0, conn: 0, method: '', bodyBytes: 0 });
    });
    const port = await listen(server);
    const tlsSpec = {
      caFile: pki.caFile,
      certFile: pki.clientCert,
      keyFile: pki.clientKey,
      servername: 'not-the-server.example',
    };
    for (const protocol of ['http1', 'http2'] as const) {
      const r = await runLoad(spec(`https://127.0.0.1:${port}/`, { protocol, tls: tlsSpec, ratePerS: 40 }));
      expect(r).toMatchObject({ requests: 20, ok: 0, errors: { tls: 20 } });
    }
    expect(requests).toBe(0);
  });

  it('h2 over TLS (ALPN) with mTLS and a server name to verify', async () => {
    const server = http2.createSecureServer({ ...secureOptions(), allowHTTP1: false });
    const seen: string[] = [];
    server.on('stream', (stream) => {
      seen.push(`${stream.session?.alpnProtocol} ${peerName(stream.session!.socket as tls.TLSSocket)}`);
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    const port = await listen(server);
    const r = await runLoad(
      spec(`https://127.0.0.1:${port}/`, {
        protocol: 'http2',
        tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey, servername: 'localhost' },
      }),
    );
    expect(r).toMatchObject({ requests: 100, ok: 100, errors: {} });
    expect(new Set(seen)).toEqual(new Set(['h2 load-client']));
  });

  it('WebSocket over TLS (wss) with mTLS', async () => {
    const server = https.createServer(secureOptions());
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws, req) => {
      peers.push(`ws ${peerName(req.socket as tls.TLSSocket)}`);
      ws.on('message', (data) => ws.send(data as Buffer));
    });
    cleanups.push(() => wss.close());
    const port = await listen(server);
    const r = await runLoad(
      spec(`wss://127.0.0.1:${port}/`, {
        protocol: 'websocket',
        payloadBytes: 64,
        tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey },
      }),
    );
    expect(r).toMatchObject({ requests: 100, ok: 100, errors: {} });
    expect(peers).toContain('ws load-client');
  });
});

describe('gRPC against a grpc-js server', () => {
  it('unary calls carry the payload as EchoMessage.payload', async () => {
    const sizes: number[] = [];
    const server = await startGrpcEchoServer({
      ...echoHandlers,
      Unary(call, callback) {
        sizes.push(call.request.payload.length);
        callback(null, { payload: call.request.payload });
      },
    });
    cleanups.push(() => server.close());
    const r = await runLoad(
      spec(`http://127.0.0.1:${server.port}`, { protocol: 'grpc-unary', payloadBytes: 300, ratePerS: 100 }),
    );
    expect(r).toMatchObject({ requests: 50, ok: 50, errors: {} });
    expect(sizes).toHaveLength(50);
    expect(new Set(sizes)).toEqual(new Set([300]));
  });

  it('server streaming: one call is one request; every message is counted', async () => {
    const server = await startGrpcEchoServer(echoHandlers);
    cleanups.push(() => server.close());
    const r = await runLoad(
      spec(`http://127.0.0.1:${server.port}`, {
        protocol: 'grpc-server-stream',
        payloadBytes: 10,
        streamMessages: 7,
        ratePerS: 100,
      }),
    );
    expect(r).toMatchObject({ requests: 50, ok: 50, errors: {}, messages: 350 });
  });

  it('counts gRPC statuses by name, from trailers and from trailers-only answers', async () => {
    let n = 0;
    const server = await startGrpcEchoServer({
      ...echoHandlers,
      Unary(call, callback) {
        const i = n++;
        if (i % 3 === 0) callback({ code: grpc.status.UNAVAILABLE, details: 'try later' });
        else if (i % 3 === 1) callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'slow down' });
        else callback(null, { payload: call.request.payload });
      },
    });
    cleanups.push(() => server.close());
    const r = await runLoad(spec(`http://127.0.0.1:${server.port}`, { protocol: 'grpc-unary', ratePerS: 60 }));
    expect(r.requests).toBe(30);
    expect(r.errors).toEqual({ grpc_unavailable: 10, grpc_resource_exhausted: 10 });
    expect(r.ok).toBe(10);
  });
});

describe('WebSocket against a ws server', () => {
  it('one request is one echo round trip of payloadBytes', async () => {
    const sizes: number[] = [];
    const server = (await import('node:http')).createServer();
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) =>
      ws.on('message', (data: Buffer) => {
        sizes.push(data.length);
        ws.send(data);
      }),
    );
    cleanups.push(() => wss.close());
    const port = await listen(server);
    const r = await runLoad(spec(`ws://127.0.0.1:${port}/`, { protocol: 'websocket', payloadBytes: 2048 }));
    expect(r).toMatchObject({ requests: 100, ok: 100, errors: {} });
    expect(sizes).toHaveLength(100);
    expect(new Set(sizes)).toEqual(new Set([2048]));
    // The generator closed its sockets; the server learns it once the close handshake has crossed.
    await waitFor(() => wss.clients.size === 0);
  });
});
