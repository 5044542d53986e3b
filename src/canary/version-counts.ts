// What a proxy reports to control for canary judging when control has no Prometheus to ask: per destination
// service and version, as the calling side counted them (reporter="source"), the cumulative requests, errors
// (5xx, and gRPC errors answered with another HTTP status: the same as control's PromQL) and latency buckets
// (le in seconds → cumulative count). Control turns two reports into a window (control/reported-stats.ts).
import { z } from 'zod';

export const VersionCounts = z.strictObject({
  service: z.string().max(256),
  version: z.string().max(256),
  requests: z.number().min(0),
  errors: z.number().min(0),
  /** [le, cumulative count], le as Prometheus writes it ("0.005", "+Inf"). */
  buckets: z.array(z.tuple([z.string().max(32), z.number().min(0)])).max(64),
});
export type VersionCounts = z.infer<typeof VersionCounts>;

/** The part of prom-client's getMetricsAsJSON() answer read here. */
interface Family {
  readonly name: string;
  readonly values: readonly {
    readonly value: number;
    readonly labels: Readonly<Record<string, string | number | undefined>>;
    readonly metricName?: string;
  }[];
}

const REQUESTS = 'service_mesh_requests_total';
const DURATION = 'service_mesh_request_duration_seconds';

/** The proxy's metric families → one VersionCounts per destination service and version it called. */
export function versionCounts(families: readonly Family[]): VersionCounts[] {
  const out = new Map<string, { c: VersionCounts; buckets: Map<string, number> }>();
  const entry = (labels: Family['values'][number]['labels']) => {
    const service = String(labels.destination_service ?? '');
    const version = String(labels.destination_version ?? '');
    const key = `${service}\u0000${version}`;
    let e = out.get(key);
    if (e === undefined) {
      e = { c: { service, version, requests: 0, errors: 0, buckets: [] }, buckets: new Map() };
      out.set(key, e);
    }
    return e;
  };
  for (const f of families) {
    if (f.name !== REQUESTS && f.name !== DURATION) continue;
    for (const v of f.values) {
      const l = v.labels;
      if (l.reporter !== 'source' || l.destination_version === undefined || l.destination_version === '') continue;
      if (f.name === REQUESTS) {
        const e = entry(l);
        e.c.requests += v.value;
        const code = String(l.response_code ?? '');
        const grpc = String(l.grpc_status ?? '');
        if (code.startsWith('5') || (grpc !== '' && grpc !== '0')) e.c.errors += v.value;
      } else if (v.metricName === `${DURATION}_bucket` && l.le !== undefined) {
        const e = entry(l);
        const le = l.le === Infinity || l.le === '+Inf' ? '+Inf' : String(l.le);
        e.buckets.set(le, (e.buckets.get(le) ?? 0) + v.value);
      }
    }
  }
  return [...out.values()].map(({ c, buckets }) => ({ ...c, buckets: [...buckets] }));
}
