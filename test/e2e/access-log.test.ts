// Access logs as an operator reads them at 3 a.m.: one JSON line per request with what was asked, how it
// ended (status, response flag), where it went and how long it took — for a success, a 503 with no healthy
// upstream, an upstream's 429 and a request nobody routes; plus sampling that never hides errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningProxy, startEchoUpstream, startProxy, type Upstream } from '../support/proxy.ts';
import { waitFor } from '../support/wait-for.ts';

type Line = Record<string, string | number>;

function readLines(path: string): Line[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

describe('access log', () => {
  let dir: string;
  let proxy: RunningProxy | undefined;
  let upstream: Upstream | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'skein-access-'));
  });
  afterEach(async () => {
    await proxy?.close();
    await upstream?.close();
    proxy = upstream = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(accessLog: Record<string, unknown>): Promise<string> {
    upstream = await startEchoUpstream('app', (req, res) => {
      const status = req.url === '/busy' ? 429 : 200;
      const body = status === 429 ? 'slow down\n' : 'hello\n';
      res.writeHead(status, { 'content-length': Buffer.byteLength(body), 'content-type': 'text/plain' });
      req.resume();
      req.on('end', () => res.end(body));
    });
    const empty = join(dir, 'empty.json');
    writeFileSync(empty, '[]\n');
    const path = join(dir, String(accessLog.path ?? 'access.log'));
    proxy = await startProxy(
      {
        service: 'frontend',
        admin: { address: '127.0.0.1:0' },
        telemetry: { accessLog: { enabled: true, path: 'access.log', ...accessLog } },
        listeners: [
          {
            name: 'outbound',
            address: '127.0.0.1:0',
            routes: [
              { name: 'to-nowhere', match: { pathPrefix: '/nowhere' }, cluster: 'drained' },
              { name: 'to-app', match: { pathPrefix: '/' }, cluster: 'app' },
            ],
          },
        ],
        clusters: [
          {
            name: 'app',
            service: 'backend',
            discovery: { type: 'static', endpoints: [{ address: upstream.address, labels: { version: 'v2' } }] },
          },
          { name: 'drained', discovery: { type: 'file', path: empty } },
        ],
      },
      { baseDir: dir },
    );
    return path;
  }

  it('writes one JSON line per request with status, flags, bytes, timings and identities', async () => {
    const path = await start({});
    const base = proxy!.url();
    const ok = await fetch(`${base}/hello?x=1`, {
      method: 'POST',
      body: 'ping',
      headers: { 'x-request-id': 'req-ok', 'user-agent': 'test-agent/1' },
    });
    expect(await ok.text()).toBe('hello\n');
    const busy = await fetch(`${base}/busy`, { headers: { 'x-request-id': 'req-busy' } });
    expect(busy.status).toBe(429);
    await busy.text();
    const none = await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'req-uh' } });
    expect(none.status).toBe(503);
    await none.text();

    await waitFor(() => readLines(path).length === 3, 5000);
    const byId = new Map(readLines(path).map((l) => [l.x_request_id, l]));

    const line = byId.get('req-ok')!;
    expect(line).toMatchObject({
      method: 'POST',
      path: '/hello',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      bytes_received: 4,
      bytes_sent: 6,
      upstream_host: upstream!.address,
      upstream_cluster: 'app',
      route_name: 'to-app',
      listener: 'outbound',
      direction: 'outbound',
      user_agent: 'test-agent/1',
      source_service: 'frontend',
      destination_service: 'backend',
      destination_version: 'v2',
      downstream_remote_address: '127.0.0.1',
      trace_id: '-',
    });
    expect(line.authority).toBe(`127.0.0.1:${proxy!.port()}`);
    expect(Date.parse(String(line.start_time))).toBeGreaterThan(Date.now() - 60_000);
    expect(line.duration_ms).toBeGreaterThan(0);
    expect(line.upstream_service_time_ms).toBeGreaterThanOrEqual(0);
    expect(line.upstream_service_time_ms).toBeLessThanOrEqual(Number(line.duration_ms));

    expect(byId.get('req-busy')).toMatchObject({ response_code: 429, response_flags: '-', upstream_cluster: 'app' });
    expect(byId.get('req-uh')).toMatchObject({
      response_code: 503,
      response_flags: 'UH',
      upstream_host: '-',
      upstream_cluster: 'drained',
      upstream_service_time_ms: -1,
    });
  });

  it('samples successes but always logs errors, and logs nothing when off', async () => {
    const path = await start({ sampleRatio: 0 });
    const base = proxy!.url();
    for (let i = 0; i < 20; i++) await (await fetch(`${base}/ok-${i}`)).text();
    await (await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'the-error' } })).text();
    await waitFor(() => readLines(path).length >= 1, 5000);
    // Give any wrongly sampled success time to arrive before counting.
    await (await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'second-error' } })).text();
    await waitFor(() => readLines(path).length >= 2, 5000);
    expect(readLines(path).map((l) => l.x_request_id)).toEqual(['the-error', 'second-error']);

    await proxy!.close();
    await upstream!.close();
    proxy = upstream = undefined;
    const offPath = await start({ enabled: false, path: 'off.log' });
    await (await fetch(`${proxy!.url()}/nowhere`)).text();
    await (await fetch(`${proxy!.url()}/ok`)).text();
    await proxy!.close();
    proxy = undefined;
    expect(readLines(offPath)).toEqual([]);
  });
});
