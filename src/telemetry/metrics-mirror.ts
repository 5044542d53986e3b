// skein_mirror_requests_total: the copies request mirroring made (proxy/stages/mirror.ts), by listener, route,
// shadow cluster and what became of each copy. Counted into plain numbers, one record per (listener, route,
// cluster) handed to the mirror stage once, read by prom-client at scrape time. Registered with the first
// mirror stage: a proxy whose routes mirror nothing exports no such family.
import type { Registry } from 'prom-client';
import { collectedCounter } from './metrics-collected.ts';

/**
 * What became of a copy: `answered` (the shadow sent a whole response, any status), `failed` (no answer: connect
 * failure, reset, timeout, protocol error), `overflow` (the shadow cluster's maxRequests was reached: not sent),
 * `no_healthy_upstream` (not sent), `body_not_kept` (its body went past the limit or broke off: not sent).
 */
export const MIRROR_OUTCOMES = ['answered', 'failed', 'overflow', 'no_healthy_upstream', 'body_not_kept'] as const;
export type MirrorOutcome = (typeof MIRROR_OUTCOMES)[number];

export type MirrorCounts = Record<MirrorOutcome, number>;

export class MirrorMetrics {
  private readonly registry: Registry;
  private registered = false;
  private readonly counts = new Map<string, { labels: [string, string, string]; counts: MirrorCounts }>();

  constructor(registry: Registry) {
    this.registry = registry;
  }

  /** The counts of one route's copies to one cluster (the same record for the same names, across reloads). */
  countsFor(listener: string, route: string, cluster: string): MirrorCounts {
    this.register();
    const key = `${listener}\0${route}\0${cluster}`;
    let entry = this.counts.get(key);
    if (entry === undefined) {
      const counts = Object.fromEntries(MIRROR_OUTCOMES.map((o) => [o, 0])) as MirrorCounts;
      entry = { labels: [listener, route, cluster], counts };
      this.counts.set(key, entry);
    }
    return entry.counts;
  }

  register(): void {
    if (this.registered) return;
    this.registered = true;
    collectedCounter(
      this.registry,
      'skein_mirror_requests_total',
      'Copies of requests sent to a shadow cluster by request mirroring, by what became of them.',
      ['listener', 'route', 'cluster', 'outcome'],
      (add) => {
        for (const { labels, counts } of this.counts.values())
          for (const outcome of MIRROR_OUTCOMES)
            add({ listener: labels[0], route: labels[1], cluster: labels[2], outcome }, counts[outcome]);
      },
    );
  }
}
