// The Kubernetes manifests as a cluster would get them: `kubectl kustomize` renders each overlay (and the bench),
// every object validates against the Kubernetes schemas of a pinned version (kubernetes-models; the Prometheus
// Operator's for ServiceMonitor and PrometheusRule; a structural check for the Cilium policy, which has no
// schema package), and the objects fit together: control's RBAC is read-only on what discovery reads, every
// name a pod refers to (ConfigMap, Secret, ServiceAccount, volume, port) exists, the proxies' configs pass the
// proxy's own validation and send traces to the Jaeger Service, the sidecar's redirect and proxy agree on ports
// and uid, and every container runs with the least it needs. No API server here: nothing is applied.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { CONTROL_OPTIONS } from '../../control/cli.ts';
import { PROXY_OPTIONS, parseProxyArgs } from '../../proxy/cli.ts';
import { REDIRECT_OPTIONS } from '../../proxy/redirect-cli.ts';
import { type K8sObject, kustomize, manifestDir, readObjects, schemaProblems } from './kubernetes-schema.ts';

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    runAsUser?: number;
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  hostNetwork?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  initContainers?: Container[];
  containers: Container[];
  volumes?: {
    name: string;
    configMap?: { name: string };
    secret?: { secretName: string; optional?: boolean };
    persistentVolumeClaim?: { claimName: string };
  }[];
}

const OVERLAYS = ['overlays/sidecar', 'overlays/daemonset'] as const;
const rendered = new Map([...OVERLAYS, 'bench'].map((dir) => [dir, kustomize(manifestDir(dir))]));
const objectsOf = (dir: string): K8sObject[] => rendered.get(dir)!.objects;
const find = (objects: K8sObject[], kind: string, name: string, namespace?: string): K8sObject => {
  const o = objects.find(
    (x) =>
      x.kind === kind && x.metadata.name === name && (namespace === undefined || x.metadata.namespace === namespace),
  );
  if (o === undefined) throw new Error(`no ${kind} ${namespace ?? ''}/${name}`);
  return o;
};
const WORKLOADS = new Set(['Deployment', 'DaemonSet', 'Job']);
const podsOf = (objects: K8sObject[]) =>
  objects
    .filter((o) => WORKLOADS.has(o.kind))
    .map((o) => ({ owner: o, pod: o.spec.template.spec as PodSpec, labels: o.spec.template.metadata.labels }));
const containersOf = (pod: PodSpec) => [...(pod.initContainers ?? []), ...pod.containers];
/** The value after `flag` in an argv. */
const flag = (args: readonly string[], name: string) => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
};
const flagsIn = (args: readonly string[]) => args.filter((a) => a.startsWith('--'));
/** A proxy config from a ConfigMap key, validated as the proxy validates it. */
const proxyConfig = (cm: K8sObject): Config => parseConfigText(cm.data['config.yaml'], cm.metadata.name);
/** The Service a cluster-local URL names (http://NAME.NAMESPACE.svc.cluster.local:PORT), and that port. */
function serviceOfUrl(objects: K8sObject[], url: string): { service: K8sObject; port: number } {
  const u = new URL(url);
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/.exec(u.hostname);
  expect(m, `${url} names a Service by its cluster-local name`).not.toBeNull();
  const service = find(objects, 'Service', m![1], m![2]);
  const port = Number(u.port);
  expect(
    service.spec.ports.map((p: { port: number }) => p.port),
    url,
  ).toContain(port);
  return { service, port };
}
/** The container port a Service port reaches in the pods it selects. */
function targetOf(objects: K8sObject[], service: K8sObject, port: number): { pod: PodSpec; port: number } {
  const sp = service.spec.ports.find((p: { port: number }) => p.port === port);
  const selected = podsOf(objects).filter(
    (p) =>
      p.owner.metadata.namespace === service.metadata.namespace &&
      Object.entries(service.spec.selector as Record<string, string>).every(([k, v]) => p.labels[k] === v),
  );
  expect(selected.length, `${service.metadata.name} selects a workload`).toBeGreaterThan(0);
  const pod = selected[0].pod;
  const cp = pod.containers
    .flatMap((c) => c.ports ?? [])
    .find((p) => p.name === sp.targetPort || p.containerPort === sp.targetPort);
  expect(cp, `${service.metadata.name}:${port} → a container port`).toBeDefined();
  return { pod, port: cp!.containerPort };
}

describe.each([...OVERLAYS, 'bench'])('kubectl kustomize manifests/%s', (dir) => {
  it('renders', () => {
    const r = rendered.get(dir)!;
    expect(r.ok, r.stderr).toBe(true);
    expect(r.objects.length).toBeGreaterThan(0);
  });

  it('gives only objects that validate against the Kubernetes schemas, with no field the schema lacks', () => {
    const objects = objectsOf(dir);
    for (const o of objects) expect(schemaProblems(o), `${o.kind} ${o.metadata.name}`).toEqual([]);
    // Unique, and namespaced objects say where they go (no reliance on kubectl's current namespace).
    const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);
    for (const o of objects)
      if (!clusterScoped.has(o.kind)) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBeTruthy();
    for (const ns of new Set(objects.map((o) => o.metadata.namespace).filter(Boolean)))
      expect(() => find(objects, 'Namespace', ns!), `namespace ${ns}`).not.toThrow();
  });

  it('refers only to things that exist: ServiceAccounts, ConfigMaps, claims, volumes, ports (Secrets: shipped, or created by hand as manifests/README.md says)', () => {
    const objects = objectsOf(dir);
    const readme = readFileSync(manifestDir('README.md'), 'utf8');
    for (const { owner, pod } of podsOf(objects)) {
      const ns = owner.metadata.namespace;
      const where = `${owner.kind} ${owner.metadata.name}`;
      if (pod.serviceAccountName !== undefined) find(objects, 'ServiceAccount', pod.serviceAccountName, ns);
      for (const v of pod.volumes ?? []) {
        if (v.configMap) find(objects, 'ConfigMap', v.configMap.name, ns);
        if (v.persistentVolumeClaim) find(objects, 'PersistentVolumeClaim', v.persistentVolumeClaim.claimName, ns);
        if (v.secret && !objects.some((o) => o.kind === 'Secret' && o.metadata.name === v.secret!.secretName))
          expect(readme, `${where}: Secret ${v.secret.secretName} is created by hand`).toContain(
            `create secret generic ${v.secret.secretName}`,
          );
      }
      const volumes = new Set((pod.volumes ?? []).map((v) => v.name));
      for (const c of containersOf(pod))
        for (const m of c.volumeMounts ?? []) expect(volumes, `${where} ${c.name} mounts ${m.name}`).toContain(m.name);
    }
    for (const service of objects.filter((o) => o.kind === 'Service'))
      for (const p of service.spec.ports) targetOf(objects, service, p.port);
  });
});

describe.each(OVERLAYS)('manifests/%s', (dir) => {
  it('runs control with read-only RBAC on exactly services, pods and endpointslices (and token reviews), and nothing else has any', () => {
    const objects = objectsOf(dir);
    const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    expect(roles.map((r) => r.metadata.name)).toEqual(['skein-control']);
    const granted = roles[0].rules.flatMap((r: { apiGroups: string[]; resources: string[]; verbs: string[] }) =>
      r.apiGroups.flatMap((g) => r.resources.map((res) => `${g}/${res}:${[...r.verbs].sort().join(',')}`)),
    );
    expect(granted.sort()).toEqual([
      '/pods:get,list,watch',
      '/services:get,list,watch',
      // Proxies' service-account tokens, reviewed before their certificates are signed.
      'authentication.k8s.io/tokenreviews:create',
      'discovery.k8s.io/endpointslices:get,list,watch',
    ]);
    for (const r of roles[0].rules) expect(r.resourceNames, 'no resourceNames needed').toBeUndefined();
    const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
    expect(bindings).toHaveLength(1);
    expect(bindings[0].roleRef).toMatchObject({ kind: 'ClusterRole', name: 'skein-control' });
    expect(bindings[0].subjects).toEqual([
      { kind: 'ServiceAccount', name: 'skein-control', namespace: 'skein-system' },
    ]);
    const control = find(objects, 'Deployment', 'skein-control', 'skein-system');
    expect(control.spec.template.spec.serviceAccountName).toBe('skein-control');
    // Every other pod runs without an API token.
    for (const { owner, pod } of podsOf(objects).filter((p) => p.owner !== control)) {
      const sa = pod.serviceAccountName;
      const tokenOff =
        pod.automountServiceAccountToken === false ||
        (sa !== undefined && find(objects, 'ServiceAccount', sa).automountServiceAccountToken === false);
      expect(tokenOff, `${owner.kind} ${owner.metadata.name}`).toBe(true);
    }
  });

  it('runs control with its store, CA and tokens on the volume and Secrets it mounts, discovery on, API on the admin port', () => {
    const objects = objectsOf(dir);
    const pod = find(objects, 'Deployment', 'skein-control', 'skein-system').spec.template.spec as PodSpec;
    const control = pod.containers.find((c) => c.name === 'control')!;
    const args = control.args!;
    expect(args[0]).toBe('control');
    const known = Object.keys(CONTROL_OPTIONS).map((k) => `--${k}`);
    for (const f of flagsIn(args)) expect(known, f).toContain(f);
    expect(args).toContain('--kubernetes');
    const mountOf = (path: string) =>
      control.volumeMounts!.find((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
    const volumeOf = (path: string) => pod.volumes!.find((v) => v.name === mountOf(path)?.name);
    expect(volumeOf(flag(args, '--data-dir')!)?.persistentVolumeClaim?.claimName).toBe('skein-control-data');
    expect(volumeOf(flag(args, '--ca-dir')!)?.persistentVolumeClaim, '--ca-dir is writable').toBeDefined();
    expect(volumeOf(flag(args, '--bootstrap-token-file')!)?.secret?.secretName).toBe('skein-bootstrap-token');
    // The CA Secret of the base is what the init container seeds the CA directory from.
    find(objects, 'Secret', 'skein-ca', 'skein-system');
    const init = pod.initContainers!.find((c) => c.name === 'ca-from-secret')!;
    const seeded = pod.volumes!.find((v) => v.secret?.secretName === 'skein-ca')!;
    expect(seeded.secret?.optional, 'an empty CA Secret lets control make its own').toBe(true);
    expect(init.volumeMounts!.map((m) => m.name)).toEqual(
      expect.arrayContaining([seeded.name, mountOf(flag(args, '--ca-dir')!)!.name]),
    );
    // Listens on all addresses of the pod, on the port the Service and ServiceMonitor name `admin`.
    const listen = flag(args, '--listen')!;
    expect(listen.startsWith('0.0.0.0:')).toBe(true);
    expect(control.ports).toEqual([{ name: 'admin', containerPort: Number(listen.split(':')[1]) }]);
    expect(control.readinessProbe?.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    const service = find(objects, 'Service', 'skein-control', 'skein-system');
    const monitor = find(objects, 'ServiceMonitor', 'skein-control', 'skein-system');
    expect(service.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(monitor.spec.namespaceSelector.matchNames).toContain('skein-system');
    expect(service.spec.ports.map((p: { name: string }) => p.name)).toContain(monitor.spec.endpoints[0].port);
  });

  it("runs proxies whose config the proxy accepts, that talk to control's Service, trace to Jaeger over OTLP/HTTP and are scraped", () => {
    const objects = objectsOf(dir);
    const proxies = podsOf(objects).flatMap((p) =>
      p.pod.containers.filter((c) => c.args?.[0] === 'proxy').map((c) => ({ ...p, container: c })),
    );
    expect(proxies.length).toBeGreaterThan(0);
    for (const { owner, pod, container } of proxies) {
      const where = `${owner.kind} ${owner.metadata.name}`;
      const args = container.args!;
      const known = Object.keys(PROXY_OPTIONS).map((k) => `--${k}`);
      for (const f of flagsIn(args)) expect(known, `${where} ${f}`).toContain(f);
      const { service } = serviceOfUrl(objects, flag(args, '--control')!);
      expect(service.metadata.name).toBe('skein-control');
      const configPath = flag(args, '--config')!;
      const mount = container.volumeMounts!.find((m) => configPath.startsWith(`${m.mountPath}/`))!;
      const cm = find(objects, 'ConfigMap', pod.volumes!.find((v) => v.name === mount.name)!.configMap!.name);
      const cfg = proxyConfig(cm);
      // The whole command line as the proxy parses it (flags that need each other, the config they need): the
      // ConfigMap's file in a temporary directory, Kubernetes' $(VAR) references filled in.
      const tmp = mkdtempSync(join(tmpdir(), 'skein-manifest-'));
      try {
        writeFileSync(join(tmp, 'config.yaml'), cm.data['config.yaml']);
        const argv = args
          .slice(1)
          .map((a) => (a === configPath ? join(tmp, 'config.yaml') : a.replace(/\$\((\w+)\)/g, 'value-of-$1')));
        expect(() => parseProxyArgs(argv), where).not.toThrow();
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      // Traces: OTLP/HTTP to the Jaeger Service's otlp-http port, which reaches Jaeger's 4318.
      expect(cfg.telemetry.tracing.enabled, where).toBe(true);
      const jaeger = serviceOfUrl(objects, cfg.telemetry.tracing.endpoint);
      expect(jaeger.service.metadata.name).toBe('jaeger');
      expect(new URL(cfg.telemetry.tracing.endpoint).pathname).toBe('/v1/traces');
      expect(targetOf(objects, jaeger.service, jaeger.port).port).toBe(4318);
      // The admin listener is on the pod's address, on the port the probes and the Service's `admin` name.
      const adminPort = container.ports!.find((p) => p.name === 'admin')!.containerPort;
      expect(cfg.admin?.address).toBe(`0.0.0.0:${adminPort}`);
      expect(container.readinessProbe?.httpGet).toEqual({ path: '/ready', port: 'admin' });
      expect(container.livenessProbe?.httpGet).toEqual({ path: '/live', port: 'admin' });
      // Scraped: a Service selecting the pods, labelled for the skein-proxy ServiceMonitor, with an `admin` port.
      const monitor = find(objects, 'ServiceMonitor', 'skein-proxy', 'skein-system');
      const scraped = objects.filter(
        (o) =>
          o.kind === 'Service' &&
          o.metadata.namespace === owner.metadata.namespace &&
          Object.entries(monitor.spec.selector.matchLabels as Record<string, string>).every(
            ([k, v]) => o.metadata.labels?.[k] === v,
          ),
      );
      expect(scraped.length, `${where} is behind a scraped Service`).toBe(1);
      const port = scraped[0].spec.ports.find((p: { name: string }) => p.name === monitor.spec.endpoints[0].port);
      expect(targetOf(objects, scraped[0], port.port).port).toBe(adminPort);
      expect(monitor.spec.namespaceSelector).toEqual({ any: true });
      // Grace period outlasts the drain, or SIGKILL cuts requests the drain would finish.
      expect((owner.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000).toBeGreaterThan(cfg.drainTimeoutMs);
    }
  });

  it('gives every container resources and the least privilege: no escalation, read-only root, no capability but the redirect’s', () => {
    for (const { owner, pod } of podsOf(objectsOf(dir))) {
      expect(pod.hostNetwork, `${owner.metadata.name}: no hostNetwork`).toBeUndefined();
      for (const c of containersOf(pod)) {
        const where = `${owner.metadata.name}/${c.name}`;
        expect(c.resources?.requests?.cpu, where).toBeTruthy();
        expect(c.resources?.requests?.memory, where).toBeTruthy();
        expect(c.resources?.limits?.memory, where).toBeTruthy();
        const sc = c.securityContext ?? {};
        expect(sc.allowPrivilegeEscalation, where).toBe(false);
        expect(sc.readOnlyRootFilesystem, where).toBe(true);
        expect(sc.capabilities?.drop, where).toEqual(['ALL']);
        const isRedirect = c.args?.[0] === 'redirect';
        expect(sc.capabilities?.add ?? [], where).toEqual(isRedirect ? ['NET_ADMIN', 'NET_RAW'] : []);
        const nonRoot = sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot;
        expect(nonRoot, where).toBe(!isRedirect);
      }
    }
  });
});

describe('manifests/overlays/sidecar', () => {
  const objects = objectsOf('overlays/sidecar');
  const deployment = find(objects, 'Deployment', 'sample-service', 'skein-demo');
  const pod = deployment.spec.template.spec as PodSpec;
  const proxy = pod.containers.find((c) => c.name === 'skein')!;
  const cfg = proxyConfig(find(objects, 'ConfigMap', 'sample-service-skein', 'skein-demo'));

  it('installs the traffic redirect in an init container, as root with NET_ADMIN and NET_RAW only, for the proxy’s uid and ports', () => {
    expect(pod.initContainers).toHaveLength(1);
    const redirect = pod.initContainers![0];
    expect(redirect.args?.slice(0, 2)).toEqual(['redirect', 'install']);
    for (const f of flagsIn(redirect.args!))
      expect(
        Object.keys(REDIRECT_OPTIONS).map((o) => `--${o}`),
        f,
      ).toContain(f);
    expect(redirect.securityContext).toMatchObject({
      runAsUser: 0,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
    });
    expect(Number(flag(redirect.args!, '--proxy-uid'))).toBe(proxy.securityContext?.runAsUser);
    const listenerPort = (name: string) =>
      Number(
        cfg.listeners
          .find((l) => l.name === name)!
          .address.split(':')
          .at(-1),
      );
    expect(Number(flag(redirect.args!, '--outbound-port'))).toBe(listenerPort('outbound'));
    expect(Number(flag(redirect.args!, '--inbound-port'))).toBe(listenerPort('inbound'));
    expect(cfg.listeners.find((l) => l.name === 'inbound')!.address.startsWith('0.0.0.0:')).toBe(true);
    // Only the proxy runs as the excluded uid: the app's traffic is always redirected.
    for (const c of pod.containers.filter((x) => x !== proxy))
      expect(c.securityContext?.runAsUser, c.name).not.toBe(proxy.securityContext?.runAsUser);
  });

  it('runs the app behind it and the proxy with no capability at all, both listeners routing by original destination', () => {
    expect(proxy.securityContext?.capabilities).toEqual({ drop: ['ALL'] });
    // Captured connections go where they were dialed: peers' to the app's port (the inbound listener's
    // original-dst cluster), the app's own to the cluster claiming the address, or through unchanged.
    for (const l of cfg.listeners) {
      expect(l.originalDst, l.name).toBe(true);
      expect(cfg.clusters.find((c) => c.name === l.cluster)?.discovery.type, l.name).toBe('original-dst');
    }
    const inbound = cfg.listeners.find((l) => l.direction === 'inbound')!;
    expect(inbound.mtls).toBe('permissive');
    expect(deployment.spec.template.metadata.labels.version, 'endpoints carry a version for canaries').toBeTruthy();
  });
});

describe('manifests/overlays/daemonset', () => {
  const objects = objectsOf('overlays/daemonset');

  it('runs one proxy per node behind a node-local Service, without hostNetwork', () => {
    const ds = find(objects, 'DaemonSet', 'skein-proxy', 'skein-system');
    const service = find(objects, 'Service', 'skein-proxy', 'skein-system');
    expect(service.spec.internalTrafficPolicy).toBe('Local');
    const cfg = proxyConfig(find(objects, 'ConfigMap', 'skein-proxy', 'skein-system'));
    const outbound = cfg.listeners.find((l) => l.direction === 'outbound')!;
    const port = service.spec.ports.find((p: { name: string }) => p.name === 'outbound').port;
    expect(outbound.address).toBe(`0.0.0.0:${targetOf(objects, service, port).port}`);
    expect(ds.spec.template.spec.hostNetwork).toBeUndefined();
    expect(ds.spec.template.spec.containers[0].securityContext.runAsUser).toBe(1337);
    expect(objects.some((o) => o.kind === 'Deployment' && o.metadata.namespace === 'skein-demo')).toBe(false);
  });
});

describe('manifests/bench/cilium-l7-policy.yaml (no schema package for Cilium: a structural check)', () => {
  it('is a CiliumNetworkPolicy selecting the bench origin in bench-cilium, with an HTTP rule on its port', () => {
    const [policy] = readObjects('bench/cilium-l7-policy.yaml');
    expect(policy).toMatchObject({ apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy' });
    const bench = objectsOf('bench');
    const ns = policy.metadata.namespace!;
    const origin = find(bench, 'Deployment', 'bench-origin', ns);
    expect(find(bench, 'Namespace', ns).metadata.labels?.['skein.io/bench-mesh']).toBe('cilium');
    expect(origin.spec.template.metadata.labels).toMatchObject(policy.spec.endpointSelector.matchLabels);
    expect(Object.keys(policy.spec).sort()).toEqual(['endpointSelector', 'ingress']);
    const [rule] = policy.spec.ingress;
    expect(Object.keys(rule).sort()).toEqual(['fromEntities', 'toPorts']);
    const port = origin.spec.template.spec.containers[0].ports[0].containerPort;
    expect(rule.toPorts).toEqual([{ ports: [{ port: String(port), protocol: 'TCP' }], rules: { http: [{}] } }]);
  });
});

describe('the schema check itself', () => {
  it('catches a wrong type, a missing required field and a misspelt field', () => {
    const bad = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x', namespace: 'y' },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: {
          spec: {
            containers: [{ name: 'c', image: 'i', readinesProbe: {}, ports: [{ containerPort: 'http' }] }],
          },
        },
      },
    } as unknown as K8sObject;
    const problems = schemaProblems(bad).join('\n');
    expect(problems).toMatch(/containerPort must be integer/);
    expect(problems).toMatch(/containers\[0\]\.readinesProbe: not a field/);
    expect(schemaProblems({ ...bad, spec: {} }).join('\n')).toMatch(/selector|template/);
    const monitor = {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'm', namespace: 'n' },
      spec: { selector: {}, endpoints: [{ port: 'admin', interval: 'often' }], namespaceSelectr: {} },
    } as unknown as K8sObject;
    expect(schemaProblems(monitor).join('\n')).toMatch(/interval must match pattern/);
    expect(schemaProblems(monitor).join('\n')).toMatch(/spec\.namespaceSelectr: not a field/);
  });
});
