// `skein control` as a real process, scraped as its ServiceMonitor does: GET /metrics answers Prometheus text
// with control's own process metrics, its API request counts and its job and probe-run counts, and a request to
// the API shows up in the next scrape.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'skein-control-metrics-e2e-'));
let control: RunningControl;

beforeAll(async () => {
  control = await startSkeinControl(dataDir);
});

afterAll(async () => {
  await control?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('skein control /metrics', () => {
  it('answers Prometheus text with the process, API, bench job and probe run families', async () => {
    const res = await api<string>(control.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    for (const family of [
      'process_cpu_user_seconds_total counter',
      'process_resident_memory_bytes gauge',
      'nodejs_eventloop_lag_seconds gauge',
      'skein_control_api_requests_total counter',
      'skein_control_api_request_duration_seconds histogram',
      'skein_control_bench_jobs gauge',
      'skein_control_probe_runs gauge',
    ])
      expect(res.body).toContain(`# TYPE ${family}\n`);
    expect(valueOf(res.body, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(valueOf(res.body, 'skein_control_bench_jobs{status="running"}')).toBe(0);
  });

  it('counts a request to the API in the next scrape', async () => {
    const series = 'skein_control_api_requests_total{route="/benchmarks/jobs",method="GET",status="200"}';
    const before = valueOf((await api<string>(control.url, 'GET', '/metrics')).body, series) ?? 0;
    expect((await api(control.url, 'GET', '/benchmarks/jobs')).status).toBe(200);
    const after = valueOf((await api<string>(control.url, 'GET', '/metrics')).body, series);
    expect(after).toBe(before + 1);
  });
});
