// The admin listener: liveness and readiness for the orchestrator, the running config and cluster state for
// people, and metrics for Prometheus. Read-only; it never changes what the proxy serves.
import http from 'node:http';
import type { Config } from '../src/config/schema.ts';
import type { Logger } from '../src/log.ts';
import type { ClustersView } from './workers-aggregate.ts';
import { askPrimary, type GatherKind, isSkeinWorker } from './workers-gather.ts';

/** What the admin listener reads of the proxy (server.ts's ProxyServer is one); it changes nothing through it. */
export interface AdminView {
  readonly log: Pick<Logger, 'error'>;
  readonly ready: boolean;
  readonly draining: boolean;
  readonly snapshot: {
    readonly version: number;
    readonly hash: string;
    readonly createdAt: Date;
    readonly config: Config;
    readonly clusters: ReadonlyMap<string, { describe(): object }>;
  };
  readonly stats: { readonly contentType: string; render(): Promise<string> };
  describeListeners(): object[];
  describeIdentity(): object;
}

/** What /clusters shows of this process's clusters (and what a worker gives the primary to merge). */
export function describeClusters(proxy: Pick<AdminView, 'snapshot'>): ClustersView {
  return {
    version: proxy.snapshot.version,
    clusters: [...proxy.snapshot.clusters.values()].map((c) => c.describe() as Record<string, unknown>),
  };
}

export function createAdminServer(proxy: AdminView): http.Server {
  // In a worker of `--workers N`, /metrics and /clusters come from the primary, which merges every worker's
  // (proxy/workers-gather.ts): this worker's own figures are a fraction of the process's.
  const acrossWorkers = isSkeinWorker();
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const json = (status: number, value: unknown) =>
      send(status, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
    const fromPrimary = (kind: GatherKind, type: string) =>
      askPrimary(kind).then(
        (body) => send(200, type, body),
        (err: Error) => {
          proxy.log.error(`reading ${path} across workers failed`, { error: err.message });
          send(503, 'text/plain', `${path.slice(1)} unavailable: ${err.message}\n`);
        },
      );
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' });
    switch (path) {
      case '/live':
        return send(200, 'text/plain', 'live\n');
      case '/ready':
        return proxy.ready
          ? send(200, 'text/plain', 'ready\n')
          : send(503, 'text/plain', proxy.draining ? 'draining\n' : 'starting\n');
      case '/config':
        return json(200, {
          version: proxy.snapshot.version,
          hash: proxy.snapshot.hash,
          loadedAt: proxy.snapshot.createdAt,
          config: proxy.snapshot.config,
        });
      case '/clusters':
        if (acrossWorkers) return void fromPrimary('clusters', 'application/json');
        return json(200, describeClusters(proxy));
      case '/listeners':
        return json(200, proxy.describeListeners());
      case '/certs':
        return json(200, proxy.describeIdentity());
      case '/metrics':
        if (acrossWorkers) return void fromPrimary('metrics', proxy.stats.contentType);
        proxy.stats.render().then(
          (text) => send(200, proxy.stats.contentType, text),
          (err: Error) => {
            proxy.log.error('rendering /metrics failed', { error: err.message });
            send(500, 'text/plain', 'metrics unavailable\n');
          },
        );
        return;
      case '/':
        return json(200, {
          endpoints: ['/live', '/ready', '/config', '/clusters', '/listeners', '/certs', '/metrics'],
        });
      default:
        return json(404, { error: `no admin endpoint ${path}` });
    }
  });
}
