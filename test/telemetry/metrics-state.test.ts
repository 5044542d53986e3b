// The state families the resilience and identity stages (proxy) and the canary controller (control) will report:
// no family until its feeder registers or reports, aggregated to the documented labels, time-derived values
// computed at scrape.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CanaryMetrics, type CanaryReport } from '../../src/telemetry/metrics-canary.ts';
import { MeshStateMetrics } from '../../src/telemetry/metrics-state.ts';
import { readContract } from '../manifests/metrics-contract.ts';

/** name → [labels, value] of every sample, from the registry's JSON view. */
async function samples(registry: Registry): Promise<Map<string, [Record<string, string | number>, number][]>> {
  const out = new Map<string, [Record<string, string | number>, number][]>();
  for (const m of await registry.getMetricsAsJSON())
    out.set(
      m.name,
      m.values.map((v) => [v.labels as Record<string, string | number>, v.value]),
    );
  return out;
}

const DAY_MS = 86_400_000;

describe('mesh state metrics', () => {
  it('registers no family until a stage registers or reports (an absent family is "not measured", not 0)', async () => {
    const registry = new Registry();
    const state = new MeshStateMetrics(registry);
    expect((await registry.metrics()).trim()).toBe('');
    state.registerOutlierDetection({ name: 'api', service: 'api' });
    const all = await samples(registry);
    expect([...all.keys()]).toEqual(['service_mesh_outlier_ejections_total']);
    expect(all.get('service_mesh_outlier_ejections_total')).toEqual([[{ destination_service: 'api' }, 0]]);
  });

  it('reports a destination service open while any of its clusters has its breaker open', async () => {
    const registry = new Registry();
    const state = new MeshStateMetrics(registry);
    state.setCircuitBreakerOpen({ name: 'api', service: 'api' }, false);
    state.setCircuitBreakerOpen({ name: 'api-canary', service: 'api' }, true);
    state.setCircuitBreakerOpen({ name: 'db', service: 'postgres' }, false);
    expect((await samples(registry)).get('service_mesh_circuit_breaker_open')).toEqual([
      [{ destination_service: 'api' }, 1],
      [{ destination_service: 'postgres' }, 0],
    ]);
    state.setCircuitBreakerOpen({ name: 'api-canary', service: 'api' }, false);
    state.forgetCluster('db'); // removed by a reload
    expect((await samples(registry)).get('service_mesh_circuit_breaker_open')).toEqual([
      [{ destination_service: 'api' }, 0],
    ]);
  });

  it('computes certificate expiry in days at every scrape, negative once expired, beside its whole validity', async () => {
    const registry = new Registry();
    let now = 1_000 * DAY_MS;
    const state = new MeshStateMetrics(registry, () => now);
    const id = 'spiffe://mesh.local/ns/default/sa/web';
    // Valid for 3 days from half a day ago.
    const notBefore = now - 0.5 * DAY_MS;
    state.setCertificateExpiry(id, notBefore + 3 * DAY_MS, notBefore);
    expect((await samples(registry)).get('service_mesh_certificate_expiry_days')).toEqual([[{ identity: id }, 2.5]]);
    expect((await samples(registry)).get('skein_certificate_validity_days')).toEqual([[{ identity: id }, 3]]);
    now += 3 * DAY_MS;
    expect((await samples(registry)).get('service_mesh_certificate_expiry_days')).toEqual([[{ identity: id }, -0.5]]);
    expect((await samples(registry)).get('skein_certificate_validity_days')).toEqual([[{ identity: id }, 3]]);
    // Renewed: a 24-hour certificate with its CA's 5-minute backdate.
    state.setCertificateExpiry(id, now + DAY_MS, now - 300_000);
    expect((await samples(registry)).get('skein_certificate_validity_days')).toEqual([
      [{ identity: id }, 1 + 300_000 / DAY_MS],
    ]);
    state.removeCertificate(id);
    expect((await samples(registry)).get('service_mesh_certificate_expiry_days')).toEqual([]);
    expect((await samples(registry)).get('skein_certificate_validity_days')).toEqual([]);
  });

  it('sums ejections and health-check results by destination service', async () => {
    const registry = new Registry();
    const state = new MeshStateMetrics(registry);
    const api = { name: 'api', service: 'api' };
    const canary = { name: 'api-canary', service: 'api' };
    state.onOutlierEjection(api);
    state.onOutlierEjection(canary);
    for (let i = 0; i < 3; i++) state.onHealthCheck(api, 'success');
    const all = await samples(registry);
    expect(all.get('service_mesh_outlier_ejections_total')).toEqual([[{ destination_service: 'api' }, 2]]);
    // The failure series exists at 0 as soon as checks run, so the first failure is an increase.
    expect(all.get('service_mesh_health_checks_total')).toEqual([
      [{ destination_service: 'api', result: 'success' }, 3],
      [{ destination_service: 'api', result: 'failure' }, 0],
    ]);
  });
});

describe('canary metrics (control)', () => {
  it('registers no canary family before the controller reports', async () => {
    const registry = new Registry();
    new CanaryMetrics(registry);
    expect((await registry.metrics()).trim()).toBe('');
  });

  const started = 1_700_000_000_000;
  const report: CanaryReport = {
    status: 'in_progress',
    errorRatePercent: 1.5,
    responseTimeP95Ms: 120,
    startedAtMs: started,
    lastProgressAtMs: started + 60_000,
  };

  it('exports the contract families: one-hot status, rates, duration and last progress', async () => {
    const registry = new Registry();
    const canary = new CanaryMetrics(registry, () => started + 90_000);
    canary.report('reviews', report);
    const all = await samples(registry);
    expect(all.get('canary_deployment_status')).toEqual([
      [{ service: 'reviews', status: 'success' }, 0],
      [{ service: 'reviews', status: 'failed' }, 0],
      [{ service: 'reviews', status: 'rolled_back' }, 0],
      [{ service: 'reviews', status: 'in_progress' }, 1],
    ]);
    expect(all.get('canary_deployment_error_rate')).toEqual([[{ service: 'reviews' }, 1.5]]);
    expect(all.get('canary_deployment_response_time_p95')).toEqual([[{ service: 'reviews' }, 120]]);
    expect(all.get('canary_deployment_duration_seconds')).toEqual([[{ service: 'reviews' }, 90]]);
    expect(all.get('canary_deployment_last_progress_timestamp_seconds')).toEqual([
      [{ service: 'reviews' }, (started + 60_000) / 1000],
    ]);
    const contract = readContract().filter((m) => m.name.startsWith('canary_'));
    expect(contract.length).toBeGreaterThan(0);
    for (const m of contract) {
      expect(all.has(m.name), m.name).toBe(true);
      for (const [labels] of all.get(m.name)!) expect(Object.keys(labels).sort(), m.name).toEqual([...m.labels].sort());
    }
  });

  it('stops the duration when the canary finishes, omits rates it has no data for, and drops removed services', async () => {
    const registry = new Registry();
    const canary = new CanaryMetrics(registry, () => started + 3_600_000);
    canary.report('reviews', {
      ...report,
      status: 'rolled_back',
      errorRatePercent: undefined,
      responseTimeP95Ms: undefined,
      finishedAtMs: started + 600_000,
    });
    let all = await samples(registry);
    expect(all.get('canary_deployment_duration_seconds')).toEqual([[{ service: 'reviews' }, 600]]);
    expect(all.get('canary_deployment_error_rate')).toEqual([]);
    expect(all.get('canary_deployment_response_time_p95')).toEqual([]);
    expect(all.get('canary_deployment_status')).toContainEqual([{ service: 'reviews', status: 'rolled_back' }, 1]);
    canary.remove('reviews');
    all = await samples(registry);
    for (const values of all.values()) expect(values).toEqual([]);
  });
});
