// The alerting rules: promtool checks their syntax and runs the unit tests in rules.test.yaml (each alert
// fires from synthetic series and stays quiet below its threshold or before its `for`); the
// PrometheusRule's spec must be the plain rule file; every alert the mesh design requires exists, says
// which service it is about, and aggregates only by bounded labels of metrics in the contract, reading one
// reporter side. No rule reads a family still waiting for a feeder (manifests/README.md): it would never fire.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  contractSeries,
  manifestPath,
  promqlNames,
  promtool,
  readContract,
  readPendingFamilies,
} from './metrics-contract.ts';

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: AlertRule[] }[];
}

const rulesPath = manifestPath('prometheus/rules.yaml');
const plain = parse(readFileSync(rulesPath, 'utf8')) as RuleFile;
const operator = parse(readFileSync(manifestPath('base/monitoring/alerts.yaml'), 'utf8'));
const rules = plain.groups.flatMap((g) => g.rules);

// The mesh design's alerts, on what the proxy and control export today: error rate > 10% / 5m, p95 > 1 s / 5m,
// a circuit breaker open for 1m; the health issue's: a cluster with no healthy endpoint; and the canary issue's.
const REQUIRED: Record<string, { for?: string; metric: string }> = {
  ServiceMeshHighErrorRate: { for: '5m', metric: 'service_mesh_requests_total' },
  ServiceMeshHighLatency: { for: '5m', metric: 'service_mesh_request_duration_seconds_bucket' },
  ServiceMeshCircuitBreakerOpen: { for: '1m', metric: 'service_mesh_circuit_breaker_open' },
  // A cluster with no endpoint in rotation (health checks, outlier ejections) in some proxy, for 2 minutes.
  ServiceMeshNoHealthyEndpoints: { for: '2m', metric: 'skein_endpoints_healthy' },
  // Over 10% of a destination's calls refused by a rate limit (429 RL) for 5 minutes.
  ServiceMeshHighRateLimiting: { for: '5m', metric: 'service_mesh_rate_limited_requests_total' },
  // Over 10% of a destination's calls needing a retry for 5 minutes (the budget caps retries near 20%).
  ServiceMeshHighRetryRate: { for: '5m', metric: 'service_mesh_retries_total' },
  // Control's canary controller: failed, rolled back, stuck > 1 h, error rate > 5% / 2m, p95 > 1000 ms / 2m.
  CanaryDeploymentFailed: { metric: 'canary_deployment_status' },
  CanaryDeploymentRolledBack: { metric: 'canary_deployment_status' },
  CanaryDeploymentStuck: { metric: 'canary_deployment_last_progress_timestamp_seconds' },
  CanaryHighErrorRate: { for: '2m', metric: 'canary_deployment_error_rate' },
  CanaryHighLatency: { for: '2m', metric: 'canary_deployment_response_time_p95' },
  // The mTLS work's: a certificate whose renewal is failing (under a quarter of its validity left, at most 7
  // days; `for` lets a renewal under way finish), one expired, and refused handshakes over 5% for 10 minutes.
  ServiceMeshCertificateExpiringSoon: { for: '15m', metric: 'skein_certificate_validity_days' },
  ServiceMeshCertificateExpired: { metric: 'service_mesh_certificate_expiry_days' },
  ServiceMeshMtlsHandshakeFailures: { for: '10m', metric: 'skein_mtls_handshakes_total' },
};
// Labels whose values are bounded by the number of services / identities, never by callers or pods.
// A cluster's name comes from the proxy config, like a listener's; a handshake's direction has two values.
const BOUNDED = new Set(['destination_service', 'service', 'identity', 'status', 'le', 'cluster', 'direction']);

/** Every selector of a family that has a `reporter` label names one side: no call is counted twice. */
function selectorsWithoutReporter(expr: string, families: readonly string[]): string[] {
  const missing: string[] = [];
  for (const family of families)
    for (const m of expr.matchAll(new RegExp(`\\b${family}(\\{[^}]*\\})?`, 'g')))
      if (!/reporter="[^"]+"/.test(m[1] ?? '')) missing.push(m[0]);
  return missing;
}
const REPORTED = readContract()
  .filter((m) => m.labels.includes('reporter'))
  .map((m) => (m.type === 'histogram' ? `${m.name}_bucket` : m.name));

describe('manifests/prometheus/rules.yaml', () => {
  it('passes promtool check rules', () => {
    const r = promtool(['check', 'rules', rulesPath]);
    expect(r.output).toContain('SUCCESS');
    expect(r.ok, r.output).toBe(true);
  });

  it('passes its promtool unit tests: every alert fires above its threshold and not below or too early', () => {
    const r = promtool(['test', 'rules', manifestPath('prometheus/rules.test.yaml')]);
    expect(r.ok, r.output).toBe(true);
    const tested = readFileSync(manifestPath('prometheus/rules.test.yaml'), 'utf8');
    for (const name of Object.keys(REQUIRED)) expect(tested, name).toContain(`alertname: ${name}`);
  });

  it('has every alert the mesh design requires on exported metrics, with its `for` duration', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual(Object.keys(REQUIRED).sort());
    for (const [name, want] of Object.entries(REQUIRED)) {
      const rule = rules.find((r) => r.alert === name);
      expect(rule?.for, name).toBe(want.for);
      expect(promqlNames(rule?.expr ?? '').metrics.has(want.metric), name).toBe(true);
    }
  });

  it('reads one side of each call: every request-family selector says reporter="source"', () => {
    expect(REPORTED).toContain('service_mesh_requests_total');
    for (const rule of rules) {
      expect(selectorsWithoutReporter(rule.expr, REPORTED), rule.alert).toEqual([]);
      for (const m of rule.expr.matchAll(/reporter="([^"]+)"/g)) expect(m[1], rule.alert).toBe('source');
    }
  });

  it('gives every alert a severity, a summary and description naming the service, and a runbook hint', () => {
    for (const rule of rules) {
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels.severity);
      const grouping = [...promqlNames(rule.expr).grouping].filter((l) => l !== 'le');
      for (const key of ['summary', 'description'])
        expect(
          grouping.some((l) => rule.annotations[key]?.includes(`{{ $labels.${l} }}`)),
          `${rule.alert} ${key}`,
        ).toBe(true);
      expect(rule.annotations.runbook, rule.alert).toMatch(/\/clusters|access log|control's/);
    }
  });

  it('uses only contract metrics and labels, aggregated by bounded labels', () => {
    const series = contractSeries(readContract());
    for (const rule of rules) {
      const { metrics, labels, grouping } = promqlNames(rule.expr);
      expect(metrics.size, rule.alert).toBeGreaterThan(0);
      for (const m of metrics) expect([...series.keys()], `${rule.alert} uses ${m}`).toContain(m);
      const known = new Set([...metrics].flatMap((m) => series.get(m) ?? []));
      for (const l of labels) expect([...known], `${rule.alert} uses label ${l}`).toContain(l);
      for (const l of grouping) expect([...BOUNDED], `${rule.alert} aggregates by ${l}`).toContain(l);
      expect(grouping.size, `${rule.alert} aggregates`).toBeGreaterThan(0);
    }
  });
});

describe('the families waiting for a feeder (manifests/README.md)', () => {
  it('are read by no rule (one would never fire, and read as "all fine"), and none is also in the contract', () => {
    const waiting = contractSeries(readPendingFamilies());
    const exported = contractSeries(readContract());
    expect(waiting.size).toBeGreaterThan(0);
    for (const name of waiting.keys()) expect([...exported.keys()], name).not.toContain(name);
    for (const rule of rules)
      for (const m of promqlNames(rule.expr).metrics)
        expect([...waiting.keys()], `${rule.alert} uses ${m}`).not.toContain(m);
  });
});

describe('manifests/base/monitoring/alerts.yaml', () => {
  it('is a PrometheusRule whose spec is exactly manifests/prometheus/rules.yaml', () => {
    expect(operator.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(operator.kind).toBe('PrometheusRule');
    expect(operator.metadata.name).toBeTruthy();
    expect(operator.spec).toEqual(plain);
  });
});
