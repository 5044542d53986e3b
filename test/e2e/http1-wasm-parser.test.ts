// The public fallback path end to end: a `skein proxy` process started with SKEIN_HTTP_PARSER=wasm parses
// HTTP/1.1 in both directions with llhttp compiled to WebAssembly, fed from 'data' events (what it uses when
// Node's binding fails the startup self-check). It says so in its log, and serves what the binding serves:
// pipelined requests with chunked bodies and trailers, chunked responses, WebSocket upgrades with their first
// frame in the same read, and 400/431 for bad heads. The proxy is spawned and killed by PID.
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { freePort, processTestFixture, startSkeinProxy } from '../support/process.ts';
import { headerMap, RawConnection } from '../support/raw-http.ts';

const fixture = processTestFixture('skein-wasm-parser-');

async function proxyTo(address: string) {
  const adminPort = await freePort();
  return startSkeinProxy(
    ['--listen', '127.0.0.1:0', '--upstream', address, '--admin', `127.0.0.1:${adminPort}`, '--log-level', 'info'],
    { adminPort, env: { SKEIN_HTTP_PARSER: 'wasm' } },
  );
}

describe('HTTP/1.1 through the WebAssembly parser fallback', () => {
  it('logs the fallback and serves pipelined requests, chunked bodies with trailers and chunked responses', async () => {
    const upstream = await fixture.upstream('app', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        // A chunked response with a trailer: the upstream-side parser reads it through the fallback too.
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-len' });
        res.write(`${req.method} ${req.url} `);
        res.addTrailers({ 'x-len': String(body.length) });
        res.end(`body=${body}`);
      });
    });
    const proxy = await proxyTo(upstream.address);
    expect(proxy.stderr + proxy.stdout).toMatch(/llhttp WebAssembly fallback.*SKEIN_HTTP_PARSER=wasm/);

    const conn = await RawConnection.open(proxy.port());
    try {
      conn.write(
        'GET /one?x=1 HTTP/1.1\r\nHost: a\r\n\r\n' +
          'POST /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwasm\r\n3\r\n-ok\r\n0\r\nX-T: 1\r\n\r\n' +
          'PUT /three HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello',
        ['GET', 'POST', 'PUT'],
      );
      const [one, two, three] = await conn.waitForResponses(3);
      expect([one.status, two.status, three.status]).toEqual([200, 200, 200]);
      expect(one.body.toString()).toBe('GET /one?x=1 body=');
      expect(two.body.toString()).toBe('POST /two body=wasm-ok');
      expect(three.body.toString()).toBe('PUT /three body=hello');
      expect(headerMap(three.trailers)['x-len']).toBe('5'); // the upstream's trailer, read by the fallback
    } finally {
      conn.destroy();
    }
  });

  it('answers a malformed head with 400 and an oversized one with 431', async () => {
    const upstream = await fixture.upstream('app');
    const proxy = await proxyTo(upstream.address);
    const bad = await RawConnection.open(proxy.port());
    bad.write('GET / HTTP/1.1\r\nHo st: a\r\n\r\n', ['GET']);
    const [r400] = await bad.waitForResponses(1);
    expect(r400.status).toBe(400);
    expect(headerMap(r400.headers)['x-skein-flags']).toBe('DPE');
    bad.destroy();

    const big = await RawConnection.open(proxy.port());
    big.write(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(70_000)}\r\n\r\n`, ['GET']);
    const [r431] = await big.waitForResponses(1);
    expect(r431.status).toBe(431);
    big.destroy();
  });

  it('tunnels a WebSocket whose first frame arrives in the same read as the upgrade request', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
    try {
      const proxy = await proxyTo(`127.0.0.1:${(wss.address() as AddressInfo).port}`);
      // The upgrade request and a masked text frame in one write: the parser stops at the head's end and the
      // frame goes through the tunnel.
      const socket = net.connect(proxy.port(), '127.0.0.1');
      await once(socket, 'connect');
      const mask = Buffer.from([1, 2, 3, 4]);
      const payload = Buffer.from('first-frame');
      const frame = Buffer.concat([
        Buffer.from([0x81, 0x80 | payload.length]),
        mask,
        Buffer.from(payload.map((b, i) => b ^ mask[i % 4])),
      ]);
      const head =
        'GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
      socket.write(Buffer.concat([Buffer.from(head), frame]));
      let received = Buffer.alloc(0);
      socket.on('data', (c: Buffer) => (received = Buffer.concat([received, c])));
      const echoed = Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
      await expect.poll(() => received.includes(echoed), { timeout: 5_000 }).toBe(true);
      expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
      socket.destroy();
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});
