// The manifests can't be applied here (no Kubernetes API server on this machine); what can be checked is
// that they parse, that the proxy config embedded in the ConfigMap passes the proxy's own validation, and
// that the ports and probes the Deployment names match that config.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../src/config/load.ts';

const docs = parseAllDocuments(
  readFileSync(new URL('../../manifests/overlays/sidecar/sidecar.yaml', import.meta.url), 'utf8'),
).map((d) => d.toJS());
const byKind = (kind: string) => docs.find((d) => d.kind === kind);

describe('manifests/overlays/sidecar/sidecar.yaml', () => {
  it('embeds a proxy config the proxy accepts', () => {
    const cfg = parseConfigText(byKind('ConfigMap').data['config.yaml'], 'configmap');
    expect(cfg.listeners.map((l) => l.name).sort()).toEqual(['inbound', 'outbound']);
  });

  it('exposes the ports and probes the embedded config listens on', () => {
    const cfg = parseConfigText(byKind('ConfigMap').data['config.yaml'], 'configmap');
    const sidecar = byKind('Deployment').spec.template.spec.containers.find(
      (c: { name: string }) => c.name === 'skein',
    );
    const port = (name: string) => sidecar.ports.find((p: { name: string }) => p.name === name).containerPort;
    expect(cfg.admin?.address).toBe(`0.0.0.0:${port('admin')}`);
    expect(cfg.listeners.find((l) => l.name === 'inbound')?.address).toBe(`0.0.0.0:${port('inbound')}`);
    expect(sidecar.readinessProbe.httpGet.path).toBe('/ready');
    expect(sidecar.livenessProbe.httpGet.path).toBe('/live');
    // The pod's grace period must outlast the proxy's drain, or SIGKILL cuts requests the drain would finish.
    expect(byKind('Deployment').spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(
      cfg.drainTimeoutMs,
    );
  });
});
