// Local rate limits through a running proxy: beyond the burst a key gets 429 with Retry-After and flag RL (in
// the response, the access log and metrics), other keys are untouched, a gRPC client gets RESOURCE_EXHAUSTED,
// and a listener-wide policy covers every route.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/schema.ts';
import { echoClient, grpcError, startGrpcUpstream, unary } from '../support/grpc-echo.ts';
import { httpGet } from '../support/http-client.ts';
import { listenOnLoopback } from '../support/listen.ts';
import { quickConfig, startEchoUpstream, startProxy } from '../support/proxy.ts';
import { waitForAsync } from '../support/wait-for.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('local rate limit', () => {
  it('answers 429 with Retry-After and RL beyond the burst, per key, and logs and counts it', async () => {
    let served = 0;
    const upstream = await startEchoUpstream('app', (_req, res) => {
      served++;
      res.end('ok');
    });
    cleanups.push(() => upstream.close());
    const dir = await mkdtemp(join(tmpdir(), 'skein-rl-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const log = join(dir, 'access.log');
    const proxy = await startProxy({
      ...quickConfig([upstream.address]),
      telemetry: { accessLog: { enabled: true, path: log } },
      listeners: [
        {
          name: 'main',
          address: '127.0.0.1:0',
          routes: [
            {
              name: 'api',
              cluster: 'upstream',
              // One every 10 s: nothing refills during the test.
              rateLimit: { requestsPerSecond: 0.1, burstSize: 3, keyExtractor: 'header', header: 'x-user' },
            },
          ],
        },
      ],
    } as ConfigInput);
    cleanups.push(() => proxy.close());
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof httpGet>> | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await httpGet(`${proxy.url()}/`, { headers: { 'x-user': 'alice' } });
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(limited!.headers['x-skein-flags']).toBe('RL');
    expect(limited!.body).toBe('rate limited\n');
    const retryAfter = Number(limited!.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(10);
    // Another key has its own bucket.
    expect((await httpGet(`${proxy.url()}/`, { headers: { 'x-user': 'bob' } })).status).toBe(200);
    expect(served).toBe(4);

    const lines = await waitForAsync(async () => {
      const l = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
      return l.length >= 6 ? l.map((x) => JSON.parse(x) as Record<string, unknown>) : undefined;
    });
    expect(lines.filter((l) => l.response_flags === 'RL' && l.response_code === 429)).toHaveLength(2);

    const metrics = (await httpGet(`${proxy.adminUrl()}/metrics`)).body;
    const rl = metrics.split('\n').filter((l) => l.startsWith('service_mesh_rate_limited_requests_total{'));
    expect(rl.reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)).toBe(2);
  });

  it('keeps a listener-wide policy over every route, keyed by client address', async () => {
    const upstream = await startEchoUpstream('app');
    cleanups.push(() => upstream.close());
    const proxy = await startProxy({
      ...quickConfig([upstream.address]),
      listeners: [
        {
          name: 'main',
          address: '127.0.0.1:0',
          stages: { 'rate-limit': { requestsPerSecond: 0.1, burstSize: 2, keyExtractor: 'client_ip' } },
          routes: [
            { name: 'a', match: { pathPrefix: '/a' }, cluster: 'upstream' },
            { name: 'b', cluster: 'upstream' },
          ],
        },
      ],
    } as ConfigInput);
    cleanups.push(() => proxy.close());
    const statuses = [];
    for (const path of ['/a', '/b', '/a', '/b']) statuses.push((await httpGet(`${proxy.url()}${path}`)).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
  });

  it('gives a gRPC client RESOURCE_EXHAUSTED with flag RL', async () => {
    const upstream = await startGrpcUpstream();
    cleanups.push(() => upstream.close());
    const proxy = await startProxy({
      ...quickConfig([upstream.address]),
      listeners: [
        {
          name: 'main',
          address: '127.0.0.1:0',
          routes: [{ cluster: 'upstream', rateLimit: { requestsPerSecond: 0.1, burstSize: 1 } }],
        },
      ],
    } as ConfigInput);
    cleanups.push(() => proxy.close());
    const client = echoClient(`127.0.0.1:${proxy.port()}`);
    cleanups.push(() => client.close());
    await unary(client, { message: 'first' });
    const err = await grpcError(unary(client, { message: 'second' }));
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err.metadata.get('x-skein-flags')).toEqual(['RL']);
  });

  it('keeps its counts across a reload that leaves the policy as it was', async () => {
    const upstream = await startEchoUpstream('app');
    cleanups.push(() => upstream.close());
    const config = {
      ...quickConfig([upstream.address]),
      listeners: [
        {
          name: 'main',
          address: '127.0.0.1:0',
          routes: [{ name: 'api', cluster: 'upstream', rateLimit: { requestsPerSecond: 0.1, burstSize: 2 } }],
        },
      ],
    } as ConfigInput;
    const proxy = await startProxy(config);
    cleanups.push(() => proxy.close());
    const { parseConfig } = await import('../../src/config/load.ts');
    expect((await httpGet(`${proxy.url()}/`)).status).toBe(200);
    expect((await httpGet(`${proxy.url()}/`)).status).toBe(200);
    await proxy.proxy.apply(parseConfig({ ...config, drainTimeoutMs: 5000 }, 'test'));
    expect((await httpGet(`${proxy.url()}/`)).status).toBe(429);
  });

  it('survives a "Redis" that answers garbage: fail open serves, fail closed refuses, nothing crashes', async () => {
    // Answers every connection with bytes that are no RESP reply, then a wrong-typed reply, then closes.
    const sockets = new Set<net.Socket>();
    const hostile = await listenOnLoopback(
      net.createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('data', () => {
          socket.write('+OK\r\n:12\r\n\x00\xff garbage {}\r\n$-7\r\n');
          setTimeout(() => socket.destroy(), 5);
        });
      }),
      () => sockets.forEach((s) => s.destroy()),
    );
    cleanups.push(() => hostile.close());
    const upstream = await startEchoUpstream('app');
    cleanups.push(() => upstream.close());
    for (const [failureMode, expected] of [
      ['open', 200],
      ['closed', 429],
    ] as const) {
      const proxy = await startProxy({
        ...quickConfig([upstream.address]),
        listeners: [
          {
            name: `main-${failureMode}`,
            address: '127.0.0.1:0',
            routes: [
              {
                cluster: 'upstream',
                rateLimit: {
                  requestsPerSecond: 1,
                  burstSize: 1,
                  global: { redis: `redis://${hostile.address}`, failureMode, timeoutMs: 50 },
                },
              },
            ],
          },
        ],
      } as ConfigInput);
      cleanups.push(() => proxy.close());
      for (let i = 0; i < 20; i++) expect((await httpGet(`${proxy.url()}/`)).status).toBe(expected);
    }
  });

  it('refuses a WebSocket upgrade beyond the limit with 429, Retry-After and RL', async () => {
    const upstream = await startEchoUpstream('app');
    cleanups.push(() => upstream.close());
    const proxy = await startProxy({
      ...quickConfig([upstream.address]),
      listeners: [
        {
          name: 'main',
          address: '127.0.0.1:0',
          routes: [{ cluster: 'upstream', rateLimit: { requestsPerSecond: 0.1, burstSize: 1, keyExtractor: 'route' } }],
        },
      ],
    } as ConfigInput);
    cleanups.push(() => proxy.close());
    expect((await httpGet(`${proxy.url()}/`)).status).toBe(200);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(proxy.port(), '127.0.0.1');
      let text = '';
      socket.setTimeout(5_000, () => socket.destroy(new Error('no answer')));
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('end', () => {
        socket.end();
        resolve(text);
      });
      socket.on('error', reject);
      socket.write(
        'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 429 /);
    expect(answer).toMatch(/\r\nretry-after: \d+\r\n/);
    expect(answer).toMatch(/\r\nx-skein-flags: RL\r\n/);
  });
});
