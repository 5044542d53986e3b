// The canary controller's metrics, exported by control (not the proxy): the canary_deployment_* families of
// manifests/README.md, one set per service with a canary. The controller reports after every evaluation;
// durations are computed at scrape time, so a stalled controller still shows time passing. The families are
// registered at the first report, not before: no canary controller reporting means no canary_* family at all.
import type { Registry } from 'prom-client';
import { collectedGauge } from './metrics-collected.ts';

export const CANARY_STATUSES = ['success', 'failed', 'rolled_back', 'in_progress'] as const;
export type CanaryStatus = (typeof CANARY_STATUSES)[number];

export interface CanaryReport {
  readonly status: CanaryStatus;
  /** The canary version's error rate in percent (0–100); undefined until it has had traffic. */
  readonly errorRatePercent: number | undefined;
  /** The canary version's p95 response time in milliseconds; undefined until it has had traffic. */
  readonly responseTimeP95Ms: number | undefined;
  /** Unix ms when the deployment started. */
  readonly startedAtMs: number;
  /** Unix ms of the last stage change: start, promotion to the next weight, or finish. */
  readonly lastProgressAtMs: number;
  /** Unix ms when it finished (success, failed, rolled_back); the duration stops growing there. */
  readonly finishedAtMs?: number;
}

export class CanaryMetrics {
  private readonly canaries = new Map<string, CanaryReport>();
  private readonly registry: Registry;
  private readonly nowMs: () => number;
  private registered = false;

  constructor(registry: Registry, nowMs: () => number = Date.now) {
    this.registry = registry;
    this.nowMs = nowMs;
  }

  /** The controller's latest view of one service's canary (replaces the previous one). */
  report(service: string, report: CanaryReport): void {
    this.register();
    this.canaries.set(service, report);
  }

  /** The service no longer has a canary to report (deleted from control's store). */
  remove(service: string): void {
    this.canaries.delete(service);
  }

  private register(): void {
    if (this.registered) return;
    this.registered = true;
    const registry = this.registry;
    const nowMs = this.nowMs;
    const canaries = this.canaries;
    collectedGauge(
      registry,
      'canary_deployment_status',
      'One-hot: per service, 1 on the current canary status and 0 on the other three.',
      ['service', 'status'],
      (set) => {
        for (const [service, r] of canaries)
          for (const status of CANARY_STATUSES) set({ service, status }, r.status === status ? 1 : 0);
      },
    );
    collectedGauge(
      registry,
      'canary_deployment_error_rate',
      "The canary version's error rate, in percent (0-100).",
      ['service'],
      (set) => {
        for (const [service, r] of canaries) if (r.errorRatePercent !== undefined) set({ service }, r.errorRatePercent);
      },
    );
    collectedGauge(
      registry,
      'canary_deployment_response_time_p95',
      "The canary version's p95 response time, in milliseconds.",
      ['service'],
      (set) => {
        for (const [service, r] of canaries)
          if (r.responseTimeP95Ms !== undefined) set({ service }, r.responseTimeP95Ms);
      },
    );
    collectedGauge(
      registry,
      'canary_deployment_duration_seconds',
      'Seconds since the canary deployment started (until it finished, once it has).',
      ['service'],
      (set) => {
        const now = nowMs();
        for (const [service, r] of canaries) set({ service }, ((r.finishedAtMs ?? now) - r.startedAtMs) / 1000);
      },
    );
    collectedGauge(
      registry,
      'canary_deployment_last_progress_timestamp_seconds',
      "Unix time (seconds) of the canary's last stage change (start, promotion to the next weight, or finish).",
      ['service'],
      (set) => {
        for (const [service, r] of canaries) set({ service }, r.lastProgressAtMs / 1000);
      },
    );
  }
}
