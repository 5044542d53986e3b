// The admin listener: liveness and readiness for the orchestrator, the running config and cluster state for
// people, and metrics for Prometheus. Read-only; it never changes what the proxy serves.
import http from 'node:http';
import type { ProxyServer } from './server.ts';

export function createAdminServer(proxy: ProxyServer): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const json = (status: number, value: unknown) =>
      send(status, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
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
          loadedAt: proxy.snapshot.createdAt,
          config: proxy.snapshot.config,
        });
      case '/clusters':
        return json(200, {
          version: proxy.snapshot.version,
          clusters: [...proxy.snapshot.clusters.values()].map((c) => c.describe()),
        });
      case '/listeners':
        return json(200, proxy.describeListeners());
      case '/metrics':
        proxy.stats.render().then(
          (text) => send(200, proxy.stats.contentType, text),
          (err: Error) => {
            proxy.log.error('rendering /metrics failed', { error: err.message });
            send(500, 'text/plain', 'metrics unavailable\n');
          },
        );
        return;
      case '/':
        return json(200, { endpoints: ['/live', '/ready', '/config', '/clusters', '/listeners', '/metrics'] });
      default:
        return json(404, { error: `no admin endpoint ${path}` });
    }
  });
}
