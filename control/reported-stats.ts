// Canary judging without Prometheus: the proxies report their cumulative per-version counts
// (src/canary/version-counts.ts) to control every few seconds (POST /v1/push/stats), and a window is the
// difference between each proxy's latest report and its last one from before the window started, summed over
// the proxies. A proxy whose counts went down restarted: its latest counts are the window's. Reports older than
// the longest window anyone asks for are dropped (two hours are kept).
import { z } from 'zod';
import type { VersionWindow } from '../src/canary/judge.ts';
import { VersionCounts } from '../src/canary/version-counts.ts';
import { histogramFromBuckets, type VectorSample } from './canary-prometheus.ts';
import { parseWith } from './http.ts';

const KEEP_MS = 2 * 60 * 60 * 1000;

export const StatsReport = z.strictObject({
  node: z.string().min(1).max(256),
  versions: z.array(VersionCounts).max(1000),
});

interface Report {
  readonly at: number;
  readonly counts: ReadonlyMap<string, VersionCounts>;
}

const keyOf = (service: string, version: string) => `${service}\u0000${version}`;

export class ReportedStats {
  readonly #nodes = new Map<string, Report[]>();

  /** POST /v1/push/stats. */
  report(body: unknown, now = Date.now()): { recorded: true } {
    const r = parseWith(StatsReport, body, 'stats report');
    const list = this.#nodes.get(r.node) ?? [];
    list.push({ at: now, counts: new Map(r.versions.map((v) => [keyOf(v.service, v.version), v])) });
    while (list.length > 2 && list[0].at < now - KEEP_MS) list.shift();
    this.#nodes.set(r.node, list);
    return { recorded: true };
  }

  /** What every proxy counted for one version of `service` over the last `windowS` seconds. */
  async versionWindow(service: string, version: string, windowS: number, now = Date.now()): Promise<VersionWindow> {
    const key = keyOf(service, version);
    const start = now - windowS * 1000;
    let requests = 0;
    let errors = 0;
    const buckets = new Map<string, number>();
    for (const list of this.#nodes.values()) {
      const latest = list[list.length - 1]?.counts.get(key);
      if (latest === undefined) continue;
      let base: VersionCounts | undefined;
      for (const r of list) if (r.at <= start) base = r.counts.get(key);
      // Nothing from before the window: this proxy's counts began inside it (it started, or first called).
      if (base !== undefined && latest.requests < base.requests) base = undefined; // restarted
      requests += latest.requests - (base?.requests ?? 0);
      errors += latest.errors - (base?.errors ?? 0);
      const before = new Map(base?.buckets ?? []);
      for (const [le, n] of latest.buckets) buckets.set(le, (buckets.get(le) ?? 0) + n - (before.get(le) ?? 0));
    }
    const samples: VectorSample[] = [...buckets].map(([le, n]) => ({ metric: { le }, value: [0, String(n)] }));
    requests = Math.round(requests);
    return { requests, errors: Math.min(requests, Math.round(errors)), latency: histogramFromBuckets(samples) };
  }
}
