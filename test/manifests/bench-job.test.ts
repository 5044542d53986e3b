// manifests/bench/ can't be applied here (no Kubernetes API server; kubernetes.test.ts renders and validates it);
// what is checked: it parses, the Job runs `skein bench` with arguments the bench accepts (remote targets only),
// every remote URL names a Service of the manifests on its port (Skein's, and the origin in each other mesh's
// namespace, labelled for that mesh's injection), the results land on the volume, the embedded Skein sidecar config passes the proxy's
// validation and fronts the origin the pod runs, and everything runs as a non-root user with a read-only root.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseRunOptions, type RunOptions } from '../../bench/run/options.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { manifestPath } from './metrics-contract.ts';

interface Container {
  name: string;
  image: string;
  args?: string[];
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface Doc {
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: any;
}

const docsOf = (file: string) =>
  parseAllDocuments(readFileSync(manifestPath(file), 'utf8')).map((d) => d.toJS() as Doc);
const docs = [...docsOf('bench/bench-job.yaml'), ...docsOf('bench/meshes.yaml')];
const find = (kind: string, name?: string, namespace = 'skein-bench') => {
  const doc = docs.find(
    (d) =>
      d.kind === kind &&
      (name === undefined || d.metadata.name === name) &&
      (kind === 'Namespace' || d.metadata.namespace === namespace),
  );
  if (doc === undefined) throw new Error(`no ${kind} ${namespace}/${name ?? ''} in manifests/bench/`);
  return doc;
};
const job = find('Job');
const pod = job.spec.template.spec;
const bench = pod.containers.find((c: Container) => c.name === 'bench') as Container;
const sidecarImage = parseAllDocuments(readFileSync(manifestPath('overlays/sidecar/sidecar.yaml'), 'utf8'))
  .map((d) => d.toJS() as Doc)
  .find((d) => d.kind === 'Deployment')
  ?.spec.template.spec.containers.find((c: Container) => c.name === 'skein').image;

/** Flag values of an argv (`--listen 1.2.3.4:80` → '1.2.3.4:80'). */
const flag = (args: readonly string[], name: string) => args[args.indexOf(name) + 1];

describe('manifests/bench/', () => {
  it("is a run-once Job of the bench image (the Dockerfile's bench stage) running `skein bench` on remote targets only", () => {
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.spec.backoffLimit).toBe(0);
    expect(pod.restartPolicy).toBe('Never');
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(0);
    // The proxy image carries no bench harness; the Dockerfile's `bench` stage builds the same version with it.
    expect(bench.image).toBe(sidecarImage.replace(/^skein:/, 'skein-bench:'));
    expect(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')).toMatch(/^FROM \S+ AS bench$/m);
    expect(bench.args?.[0]).toBe('bench');
    const opts = parseRunOptions(bench.args!.slice(1)) as RunOptions;
    expect(opts.localTargets).toEqual([]);
    expect(opts.remotes.map((r) => r.mesh)).toEqual(
      expect.arrayContaining(['baseline', 'skein', 'istio', 'linkerd', 'cilium']),
    );
  });

  it('points every --remote at a Service of this manifest, on a port the Service exposes', () => {
    const opts = parseRunOptions(bench.args!.slice(1)) as RunOptions;
    for (const r of opts.remotes) {
      const url = new URL(r.url);
      const [service, namespace] = url.hostname.split('.');
      const svc = find('Service', service, namespace);
      expect(
        svc.spec.ports.map((p: { port: number }) => p.port),
        r.name,
      ).toContain(Number(url.port));
      const deployment = docs.find(
        (d) =>
          d.kind === 'Deployment' &&
          d.metadata.namespace === namespace &&
          d.spec.selector.matchLabels.app === svc.spec.selector.app,
      );
      expect(deployment, `${r.name}: a Deployment behind ${service}`).toBeDefined();
    }
  });

  it('writes the reports onto the results volume, backed by a claim defined here', () => {
    const out = flag(bench.args!, '--out');
    const mount = bench.volumeMounts!.find((m) => out.startsWith(`${m.mountPath}/`));
    expect(mount, `--out ${out} is under a mounted volume`).toBeDefined();
    const volume = pod.volumes.find((v: { name: string }) => v.name === mount!.name);
    expect(find('PersistentVolumeClaim', volume.persistentVolumeClaim.claimName)).toBeDefined();
    // A read-only root needs a writable /tmp for the run's scratch directory.
    expect(bench.volumeMounts!.map((m) => m.mountPath)).toContain('/tmp');
  });

  it('runs the origin with `skein bench origin`, alone and behind a Skein sidecar whose config the proxy accepts', () => {
    const plain = find('Deployment', 'bench-origin').spec.template.spec.containers[0] as Container;
    expect(plain.args?.slice(0, 2)).toEqual(['bench', 'origin']);
    const listen = flag(plain.args!, '--listen');
    expect(Number(listen.split(':')[1])).toBe(plain.ports![0].containerPort);

    const meshed = find('Deployment', 'bench-origin-skein').spec.template.spec;
    const origin = meshed.containers.find((c: Container) => c.name === 'origin') as Container;
    const skein = meshed.containers.find((c: Container) => c.name === 'skein') as Container;
    const cfg = parseConfigText(find('ConfigMap', 'bench-origin-skein').data['config.yaml'], 'bench-origin-skein');
    const inbound = cfg.listeners.find((l) => l.name === 'inbound');
    const endpoint = cfg.clusters[0].discovery;
    expect(endpoint.type === 'static' && endpoint.endpoints[0].address).toBe(flag(origin.args!, '--listen'));
    const inboundPort = skein.ports!.find((p) => p.name === 'inbound')!.containerPort;
    expect(inbound?.address).toBe(`0.0.0.0:${inboundPort}`);
    expect(find('Service', 'bench-origin-skein').spec.ports[0].targetPort).toBe('inbound');
    expect(skein.args).toEqual(['proxy', '--config', '/etc/skein/config.yaml']);
  });

  it("runs each other mesh's origin in a namespace that mesh injects, the Job and Skein's origins in none", () => {
    const ns = (name: string) => find('Namespace', name);
    expect(ns('bench-istio').metadata.labels).toMatchObject({ 'istio-injection': 'enabled' });
    expect(ns('bench-linkerd').metadata.annotations).toMatchObject({ 'linkerd.io/inject': 'enabled' });
    // Cilium injects nothing: an L7 policy (cilium-l7-policy.yaml, checked in kubernetes.test.ts) selects the pod.
    expect(ns('bench-cilium').metadata.labels).toMatchObject({ 'skein.io/bench-mesh': 'cilium' });
    expect(ns('skein-bench').metadata.labels).toMatchObject({ 'istio-injection': 'disabled' });
    expect(ns('skein-bench').metadata.annotations).toMatchObject({ 'linkerd.io/inject': 'disabled' });
    // The same origin everywhere: only the namespace differs.
    const spec = (namespace: string) => find('Deployment', 'bench-origin', namespace).spec.template.spec;
    for (const namespace of ['bench-istio', 'bench-linkerd', 'bench-cilium'])
      expect(spec(namespace), namespace).toEqual(spec('skein-bench'));
  });

  it('runs every container as non-root with a read-only root filesystem', () => {
    const pods = [pod, ...docs.filter((d) => d.kind === 'Deployment').map((d) => d.spec.template.spec)];
    for (const spec of pods)
      for (const c of [...(spec.initContainers ?? []), ...spec.containers] as Container[])
        expect(c.securityContext, c.name).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true });
  });
});
