// WebSocket through the proxy with real peers: a `ws` server as the upstream and a `ws` client downstream.
// The proxy tunnels the upgraded connection, so frames, control frames and close handshakes must arrive as
// the peers sent them, and a failed upgrade must get the proxy's own HTTP answer.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { quickConfig, type RunningProxy, startProxy } from '../support/proxy.ts';
import { waitForAsync } from '../support/wait-for.ts';

interface WsUpstream {
  address: string;
  /** Server-side sockets, in connection order. */
  sockets: WebSocket[];
  /** The upgrade requests the upstream received. */
  upgrades: IncomingMessage[];
  close(): Promise<void>;
}

/** A ws server that echoes every message back with the same type (text or binary). */
async function startWsUpstream(): Promise<WsUpstream> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
  await once(server, 'listening');
  const sockets: WebSocket[] = [];
  const upgrades: IncomingMessage[] = [];
  server.on('connection', (ws, req) => {
    sockets.push(ws);
    upgrades.push(req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    sockets,
    upgrades,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of server.clients) ws.terminate();
        server.close(() => resolve());
      }),
  };
}

/** Next message on `ws` as [payload, isBinary]. */
async function nextMessage(ws: WebSocket): Promise<[Buffer, boolean]> {
  const [data, isBinary] = (await once(ws, 'message')) as [RawData, boolean];
  return [Buffer.isBuffer(data) ? data : Buffer.concat(data as Buffer[]), isBinary];
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('websocket through the proxy', () => {
  let upstream: WsUpstream;
  let proxy: RunningProxy;
  let clients: WebSocket[];

  beforeEach(async () => {
    upstream = await startWsUpstream();
    proxy = await startProxy(quickConfig([upstream.address]));
    clients = [];
  });

  afterEach(async () => {
    for (const c of clients) c.terminate();
    await proxy.close();
    await upstream.close();
  });

  async function connect(path = '/chat', headers: Record<string, string> = {}): Promise<WebSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}${path}`, { headers, maxPayload: 64 * 1024 * 1024 });
    clients.push(ws);
    await once(ws, 'open');
    return ws;
  }

  it('carries text and binary messages in both directions', async () => {
    const ws = await connect();
    const received: [string, boolean][] = [];
    upstream.sockets[0].on('message', (data, isBinary) => received.push([String(data), isBinary]));

    ws.send('hello upstream');
    expect(await nextMessage(ws)).toEqual([Buffer.from('hello upstream'), false]);
    ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
    expect(await nextMessage(ws)).toEqual([Buffer.from([0, 1, 2, 255]), true]);
    expect(received).toEqual([
      ['hello upstream', false],
      ['\u0000\u0001\u0002\ufffd', true],
    ]);

    // Upstream-initiated messages, not just echoes.
    upstream.sockets[0].send('pushed by the server');
    expect(await nextMessage(ws)).toEqual([Buffer.from('pushed by the server'), false]);
    upstream.sockets[0].send(Buffer.from('binary push'), { binary: true });
    expect(await nextMessage(ws)).toEqual([Buffer.from('binary push'), true]);
  });

  it("counts a tunnel's setup, not its lifetime, as the proxy's own time", async () => {
    const ws = await connect();
    for (let i = 0; i < 20; i++) {
      ws.send(`message ${i}`);
      await nextMessage(ws);
    }
    ws.close(1000, 'done');
    await once(ws, 'close');
    const sample = (text: string, name: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${name}{`))
          ?.split(' ')[1] ?? Number.NaN,
      );
    const text = await waitForAsync(async () => {
      const t = await proxy.proxy.stats.render();
      return sample(t, 'skein_proxy_overhead_seconds_count') === 1 ? t : undefined;
    }, 10_000);
    const overhead = sample(text, 'skein_proxy_overhead_seconds_sum');
    const tunnel = sample(text, 'service_mesh_request_duration_seconds_sum');
    expect(overhead).toBeGreaterThan(0);
    expect(overhead).toBeLessThan(tunnel); // 20 round trips through the tunnel are the upstream's time
  });

  it('answers a client ping with a pong and passes a server ping to the client', async () => {
    const ws = await connect();
    const pong = once(ws, 'pong');
    ws.ping('are you there');
    expect(String((await pong)[0])).toBe('are you there');

    const ping = once(ws, 'ping');
    const serverPong = once(upstream.sockets[0], 'pong');
    upstream.sockets[0].ping('server ping');
    expect(String((await ping)[0])).toBe('server ping');
    // ws answers pings automatically; the answer must make it back upstream.
    expect(String((await serverPong)[0])).toBe('server ping');
  });

  it('passes a client-initiated close with its code and reason to the upstream', async () => {
    const ws = await connect();
    const serverClosed = once(upstream.sockets[0], 'close');
    const clientClosed = once(ws, 'close');
    ws.close(4001, 'client says bye');
    const [code, reason] = await serverClosed;
    expect([code, String(reason)]).toEqual([4001, 'client says bye']);
    const [echoedCode] = await clientClosed;
    expect(echoedCode).toBe(4001);
  });

  it('passes a server-initiated close with its code and reason to the client', async () => {
    const ws = await connect();
    const clientClosed = once(ws, 'close');
    const serverClosed = once(upstream.sockets[0], 'close');
    upstream.sockets[0].close(4002, 'server says bye');
    const [code, reason] = await clientClosed;
    expect([code, String(reason)]).toEqual([4002, 'server says bye']);
    expect((await serverClosed)[0]).toBe(4002);
  });

  it('delivers a multi-megabyte message intact in both directions', async () => {
    const ws = await connect();
    const big = randomBytes(6 * 1024 * 1024);
    const serverGot = once(upstream.sockets[0], 'message');
    ws.send(big);
    const [echo, isBinary] = await nextMessage(ws);
    expect(isBinary).toBe(true);
    expect(echo.length).toBe(big.length);
    expect(sha256(echo)).toBe(sha256(big));
    expect(sha256((await serverGot)[0] as Buffer)).toBe(sha256(big));
  });

  it('delivers a large message the server sends right before it closes', async () => {
    const ws = await connect();
    const big = randomBytes(4 * 1024 * 1024);
    const message = nextMessage(ws);
    const closed = once(ws, 'close');
    upstream.sockets[0].send(big, () => upstream.sockets[0].close(1000, 'done'));
    const [got] = await message;
    expect(sha256(got)).toBe(sha256(big));
    const [code, reason] = await closed;
    expect([code, String(reason)]).toEqual([1000, 'done']);
  });

  it('adds the mesh headers to the upgrade request the upstream receives', async () => {
    await connect('/chat?room=1', { 'x-forwarded-for': '10.1.2.3' });
    const req = upstream.upgrades[0];
    expect(req.url).toBe('/chat?room=1');
    expect(req.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(req.headers['x-forwarded-for']).toBe('10.1.2.3, 127.0.0.1');
    expect(req.headers['x-forwarded-proto']).toBe('http');
    expect(req.headers['x-source-service']).toBe('test-client');
    expect(req.headers['x-target-service']).toBe('upstream');
    expect(req.headers.upgrade).toBe('websocket');
    expect(req.headers.connection).toBe('upgrade');

    await connect('/chat', { 'x-request-id': 'kept-id-1' });
    expect(upstream.upgrades[1].headers['x-request-id']).toBe('kept-id-1');
  });
});

describe('websocket upgrade failures', () => {
  it('answers an upgrade to an upstream with nothing listening with 503 and flag UF', async () => {
    // A port that was free a moment ago: bind, note it, release.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const proxy = await startProxy(quickConfig([`127.0.0.1:${deadPort}`]));
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}/chat`);
    ws.on('error', () => {}); // terminate() below aborts the handshake, which ws reports as an error
    try {
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
      expect(res.statusCode).toBe(503);
      expect(res.headers['x-skein-flags']).toBe('UF');
      res.resume();
    } finally {
      ws.terminate();
      await proxy.close();
    }
  });

  it("carries the request's x-request-id on the local reply to an upgrade whose upstream is dead", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const deadPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));

    const proxy = await startProxy(quickConfig([`127.0.0.1:${deadPort}`]));
    const answer = async (headers: Record<string, string>): Promise<IncomingMessage> => {
      const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}/chat`, { headers });
      ws.on('error', () => {});
      try {
        const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
        res.resume();
        return res;
      } finally {
        ws.terminate();
      }
    };
    try {
      const kept = await answer({ 'x-request-id': 'ws-dead-1' });
      expect(kept.statusCode).toBe(503);
      expect(kept.headers['x-skein-flags']).toBe('UF');
      expect(kept.headers['x-request-id']).toBe('ws-dead-1');
      const generated = await answer({});
      expect(generated.statusCode).toBe(503);
      expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await proxy.close();
    }
  });

  it('answers an upgrade that matches no route with 404 and flag NR', async () => {
    const proxy = await startProxy(
      quickConfig(['127.0.0.1:1'], {
        listeners: [
          { name: 'main', address: '127.0.0.1:0', routes: [{ match: { pathPrefix: '/only' }, cluster: 'upstream' }] },
        ],
      }),
    );
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port()}/elsewhere`);
    ws.on('error', () => {});
    try {
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
      expect(res.statusCode).toBe(404);
      expect(res.headers['x-skein-flags']).toBe('NR');
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      res.resume();
    } finally {
      ws.terminate();
      await proxy.close();
    }
  });
});
