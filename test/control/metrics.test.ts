// Control's /metrics in-process, over real HTTP: API requests counted by the route's pattern (never the raw path a
// caller sends), method and status, and bench jobs counted by status as they finish (a stand-in bench command
// that fails at once, so no benchmark runs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlServer, startControl } from '../../control/server.ts';
import { api, useToken } from '../support/control.ts';
import { waitForAsync } from '../support/wait-for.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skein-control-metrics-'));
let control: ControlServer;

beforeAll(async () => {
  control = await startControl({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    retentionDays: 30,
    log: () => {},
    benchCommand: [process.execPath, '-e', 'process.exit(3)'],
  });
  useToken(control.url, control.token.token);
});

afterAll(async () => {
  await control.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function scrape(): Promise<string> {
  const res = await fetch(`${control.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of `series` (name and labels as printed); 0 when the scrape has no such sample. */
function valueOf(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe('control /metrics', () => {
  it('counts API requests by route pattern, method and status, with unmatched paths and odd methods bounded', async () => {
    const before = await scrape();
    await api(control.url, 'GET', '/benchmarks/jobs/bj-no-such-job');
    await api(control.url, 'GET', '/benchmarks/jobs/bj-another-missing-one');
    await api(control.url, 'PUT', '/benchmarks/jobs');
    await api(control.url, 'GET', '/some/path/a/client/made/up');
    await api(control.url, 'PROPFIND', '/benchmarks/jobs');
    const after = await scrape();

    const delta = (series: string) => valueOf(after, series) - valueOf(before, series);
    const requests = (labels: string) => delta(`skein_control_api_requests_total{${labels}}`);
    expect(requests('route="/benchmarks/jobs/:id",method="GET",status="404"')).toBe(2);
    expect(requests('route="/benchmarks/jobs",method="PUT",status="405"')).toBe(1);
    expect(requests('route="unmatched",method="GET",status="404"')).toBe(1);
    expect(requests('route="/benchmarks/jobs",method="other",status="405"')).toBe(1);
    // The first scrape itself was counted, under its own route.
    expect(requests('route="/metrics",method="GET",status="200"')).toBe(1);
    expect(delta('skein_control_api_request_duration_seconds_count{route="/benchmarks/jobs/:id",method="GET"}')).toBe(
      2,
    );
    for (const raw of ['bj-no-such-job', 'made/up', 'PROPFIND']) expect(after).not.toContain(raw);
  });

  it('counts bench jobs by status, every status listed from the start', async () => {
    const before = await scrape();
    for (const status of ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'])
      expect(before).toContain(`skein_control_bench_jobs{status="${status}"} `);
    for (const status of ['starting', 'running', 'succeeded', 'stopped', 'failed', 'interrupted'])
      expect(before).toContain(`skein_control_probe_runs{status="${status}"} 0`);
    const failedBefore = valueOf(before, 'skein_control_bench_jobs{status="failed"}');

    const started = await api<{ id: string }>(control.url, 'POST', '/benchmarks/start', {
      localTargets: ['direct'],
      scenarios: ['http1-max'],
      rounds: 1,
      durationS: 1,
      probes: false,
    });
    expect(started.status).toBe(202);
    await waitForAsync(
      async () =>
        (await api<{ status: string }>(control.url, 'GET', `/benchmarks/jobs/${started.body.id}`)).body.status ===
        'failed',
      10_000,
    );
    const after = await scrape();
    expect(valueOf(after, 'skein_control_bench_jobs{status="failed"}')).toBe(failedBefore + 1);
    expect(valueOf(after, 'skein_control_bench_jobs{status="running"}')).toBe(0);
  });
});
