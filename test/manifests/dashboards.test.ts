// The Grafana dashboard: the ConfigMap carries exactly skein.json; it has the panels the observability
// issue asks for; every query uses only metrics and labels of the contract (manifests/README.md), so no panel
// reads a family nothing exports (nor one still waiting for a feeder); request families are read from one reporter
// side; and every query parses (promtool checks them as recording rules in a throwaway rule file).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  contractSeries,
  manifestPath,
  promqlNames,
  promtool,
  readContract,
  readPendingFamilies,
} from './metrics-contract.ts';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

const dashboardText = readFileSync(manifestPath('dashboards/skein.json'), 'utf8');
const dashboard = JSON.parse(dashboardText) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; definition?: string; query?: unknown; current?: unknown }[] };
};
// Rows may hold their panels when collapsed; flatten them.
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe('manifests/dashboards/skein.json', () => {
  it('is embedded unchanged in the grafana_dashboard ConfigMap', () => {
    const cm = parse(readFileSync(manifestPath('base/monitoring/dashboard.yaml'), 'utf8'));
    expect(cm.kind).toBe('ConfigMap');
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    expect(JSON.parse(cm.data['skein.json'])).toEqual(dashboard);
  });

  it('has panels for request rate, error rate, latency quantiles, what the proxy costs, certificates and mTLS', () => {
    expect(dashboard.uid).toBeTruthy();
    const uses = (metric: string) => queries.filter((q) => promqlNames(q.expr).metrics.has(metric));
    expect(panels.map((p) => p.title)).toEqual(
      expect.arrayContaining([
        'Request rate',
        'Error rate',
        'Proxy overhead per request (p50 / p99)',
        'Proxy CPU per request',
        'Certificate expiry',
        'mTLS handshakes by result',
      ]),
    );
    const latency = uses('service_mesh_request_duration_seconds_bucket').map((q) => q.expr);
    for (const q of [0.5, 0.95, 0.99])
      expect(
        latency.some((e) => e.startsWith(`histogram_quantile(${q},`) && /destination_version/.test(e)),
        `p${q}`,
      ).toBe(true);
    // Every metric of the contract is on the dashboard somewhere.
    for (const m of contractSeries(readContract()).keys())
      if (!/_(sum|count)$/.test(m)) expect(uses(m).length, m).toBeGreaterThan(0);
  });

  it('reads every request family from one side, chosen by the reporter variable (default source)', () => {
    const reporter = dashboard.templating.list.find((v) => v.name === 'reporter');
    expect(reporter?.type).toBe('custom');
    expect(reporter?.query).toBe('source,destination');
    expect(reporter?.current).toMatchObject({ value: 'source' });
    const reported = readContract()
      .filter((m) => m.labels.includes('reporter'))
      .map((m) => (m.type === 'histogram' ? `${m.name}_bucket` : m.name));
    let selectors = 0;
    for (const { panel, expr } of queries)
      for (const family of reported)
        for (const m of expr.matchAll(new RegExp(`\\b${family}(\\{[^}]*\\})?`, 'g'))) {
          selectors++;
          expect(m[1] ?? '', `${panel}: ${m[0]}`).toContain('reporter="$reporter"');
        }
    expect(selectors).toBeGreaterThan(0);
  });

  it('queries only metrics and labels of the contract', () => {
    const series = contractSeries(readContract());
    expect(queries.length).toBeGreaterThan(0);
    for (const { panel, expr } of queries) {
      const { metrics, labels } = promqlNames(expr);
      expect(metrics.size, panel).toBeGreaterThan(0);
      for (const m of metrics) expect([...series.keys()], `${panel} uses ${m}`).toContain(m);
      const known = new Set([...metrics].flatMap((m) => series.get(m) ?? []));
      for (const l of labels) expect([...known], `${panel} uses label ${l}`).toContain(l);
    }
    for (const v of dashboard.templating.list.filter((t) => t.type === 'query')) {
      const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(v.definition ?? '');
      expect(m, v.name).not.toBeNull();
      expect(series.get(m?.[1] ?? '') ?? [], v.name).toContain(m?.[2]);
    }
  });

  it('has only queries promtool parses', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skein-dashboard-'));
    try {
      const file = join(dir, 'dashboard-queries.yaml');
      // Grafana's interval variables become a plain range; label-matcher variables sit in strings already.
      const rules = queries.map((q, i) => ({
        record: `dashboard:query_${i}`,
        expr: q.expr.replaceAll(/\$__(rate_)?interval|\$__range/g, '5m'),
      }));
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = promtool(['check', 'rules', file]);
      expect(r.ok, r.output).toBe(true);
      expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the families waiting for a feeder (manifests/README.md)', () => {
  it('are on no panel (a panel of one would read "nothing wrong" while nothing measures it)', () => {
    const waiting = contractSeries(readPendingFamilies());
    expect(waiting.size).toBeGreaterThan(0);
    for (const { panel, expr } of queries)
      for (const m of promqlNames(expr).metrics) expect([...waiting.keys()], `${panel} uses ${m}`).not.toContain(m);
  });
});
