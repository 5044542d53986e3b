// The ServiceMonitors must find what the sidecar overlay deploys: the proxy monitor's selector matches the sidecar
// Service's labels, and the port it scrapes is that Service's port onto the container's admin listener.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { manifestPath } from './metrics-contract.ts';

const docsOf = (file: string) => parseAllDocuments(readFileSync(manifestPath(file), 'utf8')).map((d) => d.toJS());
const monitors = docsOf('base/monitoring/servicemonitor.yaml');
const sidecar = docsOf('overlays/sidecar/sidecar.yaml');
const monitor = (name: string) => monitors.find((m) => m.metadata.name === name);

describe('manifests/base/monitoring/servicemonitor.yaml', () => {
  it('declares ServiceMonitors for the proxies and control, scraping /metrics on the admin port', () => {
    for (const name of ['skein-proxy', 'skein-control']) {
      const m = monitor(name);
      expect(m?.apiVersion, name).toBe('monitoring.coreos.com/v1');
      expect(m?.kind, name).toBe('ServiceMonitor');
      expect(m?.spec.endpoints, name).toEqual([expect.objectContaining({ port: 'admin', path: '/metrics' })]);
    }
  });

  it("selects the sidecar overlay's Service and scrapes the port that reaches the proxy's admin listener", () => {
    const m = monitor('skein-proxy');
    const service = sidecar.find((d) => d.kind === 'Service');
    expect(service.metadata.labels).toMatchObject(m.spec.selector.matchLabels);
    expect(m.spec.namespaceSelector).toEqual({ any: true });
    const port = service.spec.ports.find((p: { name: string }) => p.name === m.spec.endpoints[0].port);
    const container = sidecar
      .find((d) => d.kind === 'Deployment')
      .spec.template.spec.containers.find((c: { name: string }) => c.name === 'skein');
    const target = container.ports.find((p: { name: string }) => p.name === port?.targetPort);
    expect(target?.name).toBe('admin');
    // The app's own Service port must not be the one scraped.
    expect(port?.targetPort).not.toBe('inbound');
  });
});
