// `skein proxy --workers 2` as a scraper sees it: the workers share the admin port, yet every /metrics and /clusters
// answer is the whole process's (the primary gathers every worker's figures), and a worker that hangs or dies
// while its figures are being gathered costs the scrape at most the gather timeout, never a hang.
import { describe, expect, it } from 'vitest';
import { httpGet, type HttpResult } from '../support/http-client.ts';
import { freePort, processTestFixture, type RunningSkein, startSkeinProxy } from '../support/process.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const fixture = processTestFixture('skein-workers-metrics-');

/** `skein proxy --workers 2` in front of an echo upstream, once both workers have applied their config. */
async function startTwoWorkers(extraArgs: string[] = []): Promise<{ proxy: RunningSkein; workerPids: number[] }> {
  const echo = await fixture.upstream('echo');
  const adminPort = await freePort();
  const proxy = await startSkeinProxy(
    [
      '--listen',
      '127.0.0.1:0',
      '--upstream',
      echo.address,
      '--admin',
      `127.0.0.1:${adminPort}`,
      '--workers',
      '2',
      ...extraArgs,
    ],
    { adminPort },
  );
  const appliedBy = () => [...new Set(proxy.logs.filter((l) => l.msg === 'config applied').map((l) => l.pid))];
  const workerPids = await waitFor(() => (appliedBy().length === 2 ? appliedBy() : undefined), 10_000);
  return { proxy, workerPids };
}

/** `count` GETs through the proxy on fresh connections (no agent), five at a time: they spread over the workers. */
async function sendRequests(proxy: RunningSkein, count: number): Promise<void> {
  for (let sent = 0; sent < count; sent += 5) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(5, count - sent) }, () => httpGet(`${proxy.url()}/n`)),
    );
    for (const r of batch) expect(r.status).toBe(200);
  }
}

/** Sum of every sample of `family` in Prometheus text. */
function sumOf(text: string, family: string): number {
  let total = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${family}{`) || line.startsWith(`${family} `))
      total += Number(line.slice(line.lastIndexOf(' ')));
  return total;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * GET `path` on the admin port twice at once: the primary hands each new connection to a worker that has taken
 * its last one, so a stopped worker holds at most one of them and the other reaches a live worker.
 */
function adminGetFromALiveWorker(proxy: RunningSkein, path: string): Promise<HttpResult> {
  const get = () => httpGet(`${proxy.adminUrl}${path}`, { timeoutMs: 15_000 });
  return Promise.any([get(), get()]);
}

describe('--workers 1 (the default)', () => {
  it('serves /metrics from its own registry: no primary, nothing gathered', async () => {
    const echo = await fixture.upstream('echo');
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      ['--listen', '127.0.0.1:0', '--upstream', echo.address, '--admin', `127.0.0.1:${adminPort}`],
      { adminPort },
    );
    for (let i = 0; i < 3; i++) expect((await httpGet(`${proxy.url()}/one`)).status).toBe(200);
    const r = await httpGet(`${proxy.adminUrl}/metrics`);
    expect(sumOf(r.body, 'service_mesh_requests_total')).toBe(3);
    expect(r.body).not.toContain('skein_scrape_workers');
    expect(JSON.parse((await httpGet(`${proxy.adminUrl}/clusters`)).body)).not.toHaveProperty('workers');
  });
});

describe('--workers 2: admin figures for the whole process', () => {
  it('every /metrics scrape counts all K requests and /clusters sums them, whichever worker answers', async () => {
    const { proxy } = await startTwoWorkers();
    const K = 40;
    await sendRequests(proxy, K);

    for (let scrape = 0; scrape < 6; scrape++) {
      const r = await httpGet(`${proxy.adminUrl}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toContain('text/plain');
      expect(sumOf(r.body, 'service_mesh_requests_total')).toBe(K);
      expect(sumOf(r.body, 'service_mesh_request_duration_seconds_count')).toBe(K);
      expect(sumOf(r.body, 'skein_downstream_connections_total')).toBe(K);
      expect(sample(r.body, 'skein_scrape_workers{result="answered"}')).toBe(2);
      expect(sample(r.body, 'skein_scrape_workers{result="stale"}')).toBe(0);
      expect(sample(r.body, 'skein_scrape_workers{result="missing"}')).toBe(0);
      // The version every worker serves, not their sum.
      expect(sample(r.body, 'skein_config_version')).toBe(1);
      // Each family once, however many workers reported it.
      expect(r.body.match(/^# TYPE service_mesh_requests_total /gm)).toHaveLength(1);
    }

    for (let read = 0; read < 4; read++) {
      const r = await httpGet(`${proxy.adminUrl}/clusters`);
      expect(r.status).toBe(200);
      const view = JSON.parse(r.body) as {
        clusters: { endpoints: { requestsTotal: number; activeRequests: number }[] }[];
        workers: { asked: number; answered: number };
      };
      const endpoints = view.clusters.flatMap((c) => c.endpoints);
      expect(endpoints).toHaveLength(1);
      expect(endpoints[0].requestsTotal).toBe(K);
      expect(endpoints[0].activeRequests).toBe(0);
      expect(view.workers).toMatchObject({ asked: 2, answered: 2 });
    }
  });

  it('a worker that stops answering costs the scrape the gather timeout, not a hang: its last figures stand in, and it is named', async () => {
    const { proxy, workerPids } = await startTwoWorkers();
    const [stopped] = workerPids;
    const K = 20;
    await sendRequests(proxy, K);
    const full = await httpGet(`${proxy.adminUrl}/metrics`);
    expect(sumOf(full.body, 'service_mesh_requests_total')).toBe(K);

    process.kill(stopped, 'SIGSTOP');
    try {
      const r = await adminGetFromALiveWorker(proxy, '/metrics');
      expect(r.status).toBe(200);
      expect(sample(r.body, 'skein_scrape_workers{result="answered"}')).toBe(1);
      expect(sample(r.body, 'skein_scrape_workers{result="stale"}')).toBe(1);
      expect(sample(r.body, 'skein_scrape_workers{result="missing"}')).toBe(0);
      expect(r.body).toContain(`# skein: worker pid ${stopped} missing from this scrape: no answer within`);
      // Counters never dip (Prometheus would read a dip as a restart and a spike).
      expect(sumOf(r.body, 'service_mesh_requests_total')).toBe(K);
      const c = await adminGetFromALiveWorker(proxy, '/clusters');
      expect(JSON.parse(c.body).workers).toMatchObject({ asked: 2, answered: 1, missing: [{ pid: stopped }] });
    } finally {
      process.kill(stopped, 'SIGCONT');
    }
    // Its late answers are dropped; the next scrape has both again.
    await waitForAsync(async () => {
      const r = await httpGet(`${proxy.adminUrl}/metrics`, { timeoutMs: 15_000 });
      return sample(r.body, 'skein_scrape_workers{result="answered"}') === 2;
    }, 20_000);
  }, 60_000);

  it('a worker killed while its figures are awaited is left out at once, its counts kept, and its replacement counted later', async () => {
    // debug: the primary logs when a gather starts, so the kill can come while the worker is being waited for.
    const { proxy, workerPids } = await startTwoWorkers(['--log-level', 'debug']);
    const [victim] = workerPids;
    const K = 20;
    await sendRequests(proxy, K);
    const full = await httpGet(`${proxy.adminUrl}/metrics`);
    expect(sumOf(full.body, 'service_mesh_requests_total')).toBe(K);

    process.kill(victim, 'SIGSTOP'); // asked, but cannot answer
    const seen = proxy.logs.length;
    const scrape = adminGetFromALiveWorker(proxy, '/metrics');
    await waitFor(
      () =>
        proxy.logs
          .slice(seen)
          .find((l) => l.msg === 'gathering from workers' && (l.workerPids as number[]).includes(victim)),
      15_000,
    );
    process.kill(victim, 'SIGKILL');
    const r = await scrape;
    expect(r.status).toBe(200);
    expect(sample(r.body, 'skein_scrape_workers{result="answered"}')).toBe(1);
    expect(sample(r.body, 'skein_scrape_workers{result="missing"}')).toBe(1);
    // Left out because it exited, not after waiting out the gather timeout; what it had counted stays.
    expect(r.body).toContain(`# skein: worker pid ${victim} missing from this scrape: exited`);
    expect(sumOf(r.body, 'service_mesh_requests_total')).toBe(K);

    await proxy.waitForLog((l) => l.msg === 'config applied' && !workerPids.includes(l.pid), 15_000);
    await waitForAsync(async () => {
      const m = await httpGet(`${proxy.adminUrl}/metrics`, { timeoutMs: 15_000 });
      return sample(m.body, 'skein_scrape_workers{result="answered"}') === 2;
    }, 20_000);
    await sendRequests(proxy, 5);
    expect(sumOf((await httpGet(`${proxy.adminUrl}/metrics`)).body, 'service_mesh_requests_total')).toBe(K + 5);
  }, 60_000);
});
