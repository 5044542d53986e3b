// The keep-alive close race (envoy#14981, nodejs/node#47130) against a raw-socket upstream that closes a
// reused connection the moment the next request arrives: requests that can be replayed are sent once more on
// a fresh connection, nothing is ever sent twice after a response byte, and idle upstream connections are
// closed by the proxy (after the cluster's idleMs) even when their last request outlasted that timeout.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { httpGet } from '../support/http-client.ts';
import { quickConfig, type RunningProxy, startProxy } from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface RacyUpstream {
  address: string;
  /** Times a request's first bytes arrived, by "METHOD path" (whether or not it was answered). */
  arrived: Map<string, number>;
  /** Times a request was answered (in full, or with the cut-off head of /partial). */
  answered: Map<string, number>;
}

function bump(m: Map<string, number>, key: string): void {
  m.set(key, (m.get(key) ?? 0) + 1);
}

/**
 * HTTP/1.1 over raw sockets. Every first request on a connection is answered with keep-alive; with
 * `closeReused`, the first bytes of any later request on that connection make it close without answering.
 * `/partial` is answered with half a status line, then the connection is cut.
 */
async function startRacyUpstream(closeReused: boolean): Promise<RacyUpstream> {
  const arrived = new Map<string, number>();
  const answered = new Map<string, number>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let served = 0;
    socket.on('data', (chunk: Buffer) => {
      if (buffered.length === 0) {
        const line = chunk.toString('latin1').split('\r\n')[0].split(' ');
        bump(arrived, `${line[0]} ${line[1]}`);
        if (closeReused && served > 0) {
          socket.destroy(); // the keep-alive race: the idle connection goes away as the request arrives
          return;
        }
      }
      buffered = Buffer.concat([buffered, chunk]);
      const headEnd = buffered.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = buffered.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffered.length < headEnd + 4 + length) return;
      const [method, path] = head.split(' ');
      const requestBody = buffered.subarray(headEnd + 4, headEnd + 4 + length).toString('latin1');
      buffered = buffered.subarray(headEnd + 4 + length);
      served++;
      bump(answered, `${method} ${path}`);
      if (path === '/partial') {
        socket.write('HTTP/1.1 20');
        setImmediate(() => socket.destroy());
        return;
      }
      const body = `${method} ${path} #${served}${requestBody === '' ? '' : ` ${requestBody}`}`;
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nkeep-alive: timeout=60\r\n\r\n${body}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, arrived, answered };
}

async function proxyTo(
  address: string,
  extra: Partial<ConfigInput> = {},
  retries: 'off' | 'default' = 'off',
): Promise<RunningProxy> {
  // Retries off: these tests are about the pool's own re-send, below any retry policy. With the default retry
  // policy the request body is kept by the runner, and the pool's re-send takes it from there.
  const config = quickConfig([address], extra);
  if (retries === 'off') config.listeners[0].stages = { retry: { maxRetries: 0 } };
  const proxy = await startProxy(config);
  cleanups.push(() => proxy.close());
  return proxy;
}

/**
 * One request on a new client connection, head and body in one write (the proxy has the whole body before the
 * upstream can react); resolves with the status, or 'cut' when the connection ended without a response head.
 */
function rawRequest(port: number, method: string, path: string, body = ''): Promise<number | 'cut'> {
  return rawExchange(port, method, path, body).then((r) => r.status);
}

/** rawRequest, also returning the response text (`connection: close`: read to the end). */
function rawExchange(
  port: number,
  method: string,
  path: string,
  body = '',
): Promise<{ status: number | 'cut'; text: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', () => {});
    socket.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m !== null && text.includes('\r\n\r\n') ? Number(m[1]) : 'cut', text });
    });
    const length = body === '' ? '' : `content-length: ${Buffer.byteLength(body)}\r\n`;
    socket.write(`${method} ${path} HTTP/1.1\r\nhost: app\r\n${length}connection: close\r\n\r\n${body}`);
  });
}

async function metricsOf(proxy: RunningProxy): Promise<string> {
  return (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
}

describe('keep-alive close race', () => {
  it('sends a GET that met a closing keep-alive connection once more on a fresh one', async () => {
    const upstream = await startRacyUpstream(true);
    const dir = mkdtempSync(join(tmpdir(), 'skein-keepalive-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const proxy = await proxyTo(upstream.address, {
      telemetry: { accessLog: { enabled: true, path: join(dir, 'access.log') } },
    });

    // One after the other: each finds the connection the previous one left idle, which the upstream closes.
    for (let i = 1; i <= 5; i++) {
      const res = await httpGet(`${proxy.url()}/get/${i}`);
      expect(res.status).toBe(200);
      expect(res.body).toBe(`GET /get/${i} #1`); // answered as the first request of a fresh connection
    }
    for (let i = 1; i <= 5; i++) expect(upstream.answered.get(`GET /get/${i}`)).toBe(1);
    for (let i = 2; i <= 5; i++) expect(upstream.arrived.get(`GET /get/${i}`)).toBe(2);
    expect(await metricsOf(proxy)).toContain('skein_upstream_keepalive_retries_total{cluster="upstream"} 4');

    const lines = await waitFor(() => {
      let text = '';
      try {
        text = readFileSync(join(dir, 'access.log'), 'utf8');
      } catch {
        return undefined;
      }
      const parsed = text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      return parsed.length >= 5 ? parsed : undefined;
    });
    const byPath = new Map(lines.map((l) => [l.path, l]));
    expect(byPath.get('/get/1')).not.toHaveProperty('upstream_attempts');
    expect(byPath.get('/get/2')).toMatchObject({ response_code: 200, upstream_attempts: 2 });
  });

  it.each([
    ['by the pool (retries off)', 'off'],
    ['by the runner for retries (the pool keeps no copy)', 'default'],
  ] as const)('sends a PUT again with the body it had already streamed, kept %s', async (_, retries) => {
    const upstream = await startRacyUpstream(true);
    const proxy = await proxyTo(upstream.address, {}, retries);

    expect(await rawRequest(proxy.port(), 'GET', '/warm')).toBe(200);
    const put = await rawExchange(proxy.port(), 'PUT', '/doc', 'the whole document');
    expect(put.status).toBe(200);
    expect(put.text.endsWith('\r\n\r\nPUT /doc #1 the whole document')).toBe(true);
    expect(upstream.arrived.get('PUT /doc')).toBe(2);
    expect(upstream.answered.get('PUT /doc')).toBe(1);
    expect(await metricsOf(proxy)).toContain('skein_upstream_keepalive_retries_total{cluster="upstream"} 1');
  });

  it('does not send a POST again once its body was streamed to a connection that then closed', async () => {
    const upstream = await startRacyUpstream(true);
    const proxy = await proxyTo(upstream.address);

    expect(await rawRequest(proxy.port(), 'GET', '/warm')).toBe(200);
    expect(await rawRequest(proxy.port(), 'POST', '/order', 'one order please')).toBe(503);
    expect(upstream.arrived.get('POST /order')).toBe(1);
    expect(upstream.answered.get('POST /order')).toBeUndefined();
    expect(await metricsOf(proxy)).not.toContain('skein_upstream_keepalive_retries_total{');
  });

  it('never sends a request again after a response byte arrived: the client gets an error', async () => {
    const upstream = await startRacyUpstream(false);
    const proxy = await proxyTo(upstream.address);

    expect(await rawRequest(proxy.port(), 'GET', '/warm')).toBe(200);
    // On the reused connection, the upstream reads the whole POST, starts its answer and cuts the connection.
    const post = await rawRequest(proxy.port(), 'POST', '/partial', 'pay once');
    expect(post === 'cut' || post >= 500).toBe(true);
    expect(upstream.arrived.get('POST /partial')).toBe(1);

    expect(await rawRequest(proxy.port(), 'GET', '/warm')).toBe(200);
    const get = await rawRequest(proxy.port(), 'GET', '/partial'); // idempotent, still not resent
    expect(get === 'cut' || get >= 500).toBe(true);
    expect(upstream.arrived.get('GET /partial')).toBe(1);
    expect(await metricsOf(proxy)).not.toContain('skein_upstream_keepalive_retries_total{');
  });
});

describe('upstream idle expiry', () => {
  it("closes an idle upstream connection after the cluster's idleMs, even after a request that outlasted it", async () => {
    const closed: number[] = [];
    let connections = 0;
    const server = http.createServer((req, res) => {
      // Longer than idleMs below: the idle timer runs out while the request is on the connection.
      setTimeout(() => res.end(`slow ${req.url}`), 600);
    });
    server.keepAliveTimeout = 60_000; // the app would keep it open: the proxy must be the one to close it
    server.on('connection', (socket: net.Socket) => {
      const n = ++connections;
      socket.on('close', () => closed.push(n));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    );
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const proxy = await proxyTo(address, {
      clusters: [
        {
          name: 'upstream',
          timeouts: { connectMs: 1000, requestMs: 15_000, idleMs: 200 },
          discovery: { type: 'static', endpoints: [{ address }] },
        },
      ],
    });

    expect((await httpGet(`${proxy.url()}/one`)).body).toBe('slow /one');
    expect(connections).toBe(1);
    await waitFor(() => closed.length === 1, 10_000);
  });
});
