// The bench origin: HTTP/1.1 and h2c on one port, the gRPC echo service (checked with a grpc-js client), the
// WebSocket echo at /ws, TLS by ALPN with optional client certificates, the process entry point, and the
// built-in generator against it for every protocol.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLoad } from '../../../bench/load/index.ts';
import type { LoadProtocol } from '../../../bench/load/types.ts';
import { type Origin, startOrigin } from '../../../bench/origin/index.ts';
import { makePki, type TestPki } from '../load/support/certs.ts';
import { benchEchoClient, type EchoMessage } from '../load/support/grpc-bench-echo.ts';

const MAIN = fileURLToPath(new URL('../../../bench/origin/main.ts', import.meta.url));

function h1(port: number, method: string, body?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: '/anything', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function h2(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  return new Promise<{ headers: http2.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const stream = session.request(headers);
    let text = '';
    let response: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (response = h));
    stream.setEncoding('utf8').on('data', (s: string) => (text += s));
    stream.on('end', () => resolve({ headers: response, text }));
    stream.on('error', reject);
    stream.end(body);
  });
}

describe('bench origin (plaintext)', () => {
  let origin: Origin;
  beforeAll(async () => {
    origin = await startOrigin({ port: 0 });
  });
  afterAll(() => origin.close());

  it('answers HTTP/1.1: GET with "ok", POST with the body length', async () => {
    expect(await h1(origin.port, 'GET')).toEqual({ status: 200, text: 'ok\n' });
    expect(await h1(origin.port, 'POST', Buffer.alloc(100_000))).toEqual({ status: 200, text: '100000\n' });
  });

  it('answers h2c on the same port', async () => {
    const session = http2.connect(`http://127.0.0.1:${origin.port}`);
    try {
      const get = await h2(session, { ':path': '/' });
      expect([get.headers[':status'], get.text]).toEqual([200, 'ok\n']);
      const post = await h2(session, { ':method': 'POST', ':path': '/' }, Buffer.alloc(70_000));
      expect(post.text).toBe('70000\n');
    } finally {
      session.close();
    }
  });

  it('serves skein.bench.Echo to a grpc-js client: Unary echoes, ServerStream repeats x-stream-messages times', async () => {
    const client = benchEchoClient(origin.port);
    try {
      const payload = Buffer.from('hello bench');
      const reply = await new Promise<EchoMessage>((resolve, reject) =>
        client.Unary({ payload }, (err, r) => (err ? reject(err) : resolve(r!))),
      );
      expect(Buffer.from(reply.payload)).toEqual(payload);
      const collect = (metadata?: grpc.Metadata) =>
        new Promise<Buffer[]>((resolve, reject) => {
          const got: Buffer[] = [];
          const call = client.ServerStream({ payload }, metadata);
          call.on('data', (m: EchoMessage) => got.push(Buffer.from(m.payload)));
          call.on('end', () => resolve(got));
          call.on('error', reject);
        });
      const md = new grpc.Metadata();
      md.set('x-stream-messages', '5');
      const five = await collect(md);
      expect(five).toHaveLength(5);
      expect(five.every((m) => m.equals(payload))).toBe(true);
      expect(await collect()).toHaveLength(10);
    } finally {
      client.close();
    }
  });

  it('answers an unknown gRPC method with UNIMPLEMENTED, trailers-only', async () => {
    const session = http2.connect(`http://127.0.0.1:${origin.port}`);
    try {
      const r = await h2(
        session,
        { ':method': 'POST', ':path': '/skein.bench.Echo/Nope', 'content-type': 'application/grpc' },
        Buffer.from([0, 0, 0, 0, 0]),
      );
      expect(r.headers['grpc-status']).toBe('12');
    } finally {
      session.close();
    }
  });

  it('echoes WebSocket messages at /ws and refuses other paths', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${origin.port}/ws`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const echoed = new Promise<Buffer>((resolve) => ws.once('message', (d: Buffer) => resolve(d)));
    ws.send(Buffer.from('ping'));
    expect((await echoed).toString()).toBe('ping');
    ws.close();
    const other = new WebSocket(`ws://127.0.0.1:${origin.port}/elsewhere`);
    const status = await new Promise<number>((resolve) =>
      other.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)).once('error', () => resolve(-1)),
    );
    expect(status).toBe(404);
  });

  it.each<[LoadProtocol, string]>([
    ['http1', 'http://{}/'],
    ['http2', 'http://{}/'],
    ['grpc-unary', 'http://{}'],
    ['grpc-server-stream', 'http://{}'],
    ['websocket', 'ws://{}/ws'],
  ])('carries a built-in %s load without errors', async (protocol, url) => {
    const r = await runLoad({
      url: url.replace('{}', `127.0.0.1:${origin.port}`),
      protocol,
      mode: 'closed',
      engine: 'builtin',
      connections: 2,
      durationS: 0.3,
      payloadBytes: 256,
      streamMessages: 3,
    });
    expect(r.requests).toBeGreaterThan(10);
    expect(r).toMatchObject({ ok: r.requests, errors: {} });
    if (protocol === 'grpc-server-stream') expect(r.messages).toBe(3 * r.requests);
  });
});

describe('bench origin over TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki.remove());

  it('picks HTTP/1.1 or h2 by ALPN on one port', async () => {
    const origin = await startOrigin({ port: 0, tls: { certFile: pki.serverCert, keyFile: pki.serverKey } });
    try {
      const r = await runLoad({
        url: `https://127.0.0.1:${origin.port}/`,
        protocol: 'http2',
        mode: 'closed',
        engine: 'builtin',
        connections: 1,
        durationS: 0.3,
        tls: { caFile: pki.caFile },
      });
      expect(r).toMatchObject({ ok: r.requests, errors: {} });
      const options: https.RequestOptions & tls.ConnectionOptions = {
        host: '127.0.0.1',
        port: origin.port,
        path: '/',
        ca: readFileSync(pki.caFile),
        ALPNProtocols: ['http/1.1'],
      };
      const text = await new Promise<string>((resolve, reject) =>
        https
          .get(options, (res) => {
            let t = `${(res.socket as tls.TLSSocket).alpnProtocol} `;
            res.setEncoding('utf8').on('data', (s: string) => (t += s));
            res.on('end', () => resolve(t));
          })
          .on('error', reject),
      );
      expect(text).toBe('http/1.1 ok\n');
    } finally {
      await origin.close();
    }
  });

  it('requires a client certificate when given a CA (mTLS)', async () => {
    const origin = await startOrigin({
      port: 0,
      tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caFile },
    });
    try {
      const base = {
        url: `https://127.0.0.1:${origin.port}/`,
        protocol: 'http1' as LoadProtocol,
        mode: 'open' as const,
        engine: 'builtin' as const,
        ratePerS: 50,
        connections: 1,
        durationS: 0.4,
      };
      const withCert = await runLoad({
        ...base,
        tls: { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey },
      });
      expect(withCert).toMatchObject({ requests: 20, ok: 20, errors: {} });
      const mtls = { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey };
      const grpcOverTls = await runLoad({ ...base, protocol: 'grpc-unary', payloadBytes: 64, tls: mtls });
      expect(grpcOverTls).toMatchObject({ requests: 20, ok: 20, errors: {} });
      const wss = await runLoad({
        ...base,
        url: `wss://127.0.0.1:${origin.port}/ws`,
        protocol: 'websocket',
        payloadBytes: 64,
        tls: mtls,
      });
      expect(wss).toMatchObject({ requests: 20, ok: 20, errors: {} });
      const without = await runLoad({ ...base, tls: { caFile: pki.caFile } });
      expect(without).toMatchObject({ requests: 20, ok: 0 });
      expect(Object.keys(without.errors).every((k) => ['tls', 'reset'].includes(k))).toBe(true);
    } finally {
      await origin.close();
    }
  });
});

describe('bench origin process', () => {
  it('starts with --port 0, prints where it listens, serves, and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [MAIN, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => {
          out += s;
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`origin exited with ${code} before listening`)));
      });
      expect(await h1(port, 'GET')).toEqual({ status: 200, text: 'ok\n' });
      const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });

  it('refuses bad arguments with usage', async () => {
    const child = spawn(process.execPath, [MAIN, '--nope'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(err).toMatch(/unknown argument --nope[\s\S]*usage:/);
  });
});
