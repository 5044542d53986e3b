// Kubernetes objects → control's services: pure functions, no I/O. The watches (list-watch.ts) hold the last
// known Services, EndpointSlices and versioned Pods; this turns them into the Skein services the traffic model
// compiles to clusters (`<id>` and `<id>--<version>`, rules.ts). The rules it applies, in one place:
//   - id: a Service `name` in namespace `ns` is the Skein service `name.ns` (unique across namespaces, within
//     the store's NAME_PATTERN since both parts are DNS labels of at most 63 characters, and the start of the
//     DNS name `name.ns.svc` apps already use).
//   - port: the Service port named by the annotation `skein.io/port` (a port name or number), else its only
//     port, else the one named `http`, else its first TCP port. The address is the pod IP and that port's number
//     in each EndpointSlice (slices carry the Service port's name with the resolved target port, so a named
//     targetPort is resolved per pod by Kubernetes itself).
//   - conditions: endpoints that are ready (an absent `ready` counts as ready, as the API says to read it); when
//     a Service has none ready, the ones still serving while terminating (kube-proxy's fallback), so a rollout
//     that replaces every pod drains instead of dropping traffic.
//   - addresses: the Service's cluster IPs with its port (not for headless Services): proxies that capture
//     traffic route connections dialed to them to the service's cluster (serviceAddresses).
//   - mesh: a Service annotated skein.io/mesh: "true" has a Skein proxy in front of every pod, so its endpoints
//     are called over mTLS (per Service, not per pod: a Service whose pods are half meshed during a migration
//     stays unannotated, and reaches the meshed ones through their permissive inbound listeners in plaintext).
//   - version: the `version` label of the endpoint's Pod (its targetRef), the label Istio-style canaries put on
//     pods. EndpointSlices do not carry pod labels, so control watches Pods too (list/watch, read only, and only
//     pods that have a `version` label: labelSelector=version).
import type { Service } from '../rules.ts';

/** The fields read from a v1 Service (the client's V1Service and raw watch JSON both fit). */
export interface KubeService {
  readonly metadata?: KubeMeta;
  readonly spec?: {
    readonly type?: string;
    readonly clusterIP?: string;
    readonly clusterIPs?: readonly string[];
    readonly ports?: readonly {
      readonly name?: string;
      readonly port: number;
      readonly protocol?: string;
      readonly appProtocol?: string;
    }[];
  };
}

/** The fields read from a discovery.k8s.io/v1 EndpointSlice. */
export interface KubeEndpointSlice {
  readonly metadata?: KubeMeta;
  readonly addressType?: string;
  readonly endpoints?: readonly {
    readonly addresses: readonly string[];
    readonly conditions?: { readonly ready?: boolean; readonly serving?: boolean; readonly terminating?: boolean };
    readonly targetRef?: { readonly kind?: string; readonly name?: string; readonly namespace?: string };
  }[];
  readonly ports?: readonly { readonly name?: string; readonly port?: number; readonly protocol?: string }[];
}

export interface KubeMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
export const PORT_ANNOTATION = 'skein.io/port';
export const VERSION_LABEL = 'version';
/** On a Service: every pod behind it runs a Skein sidecar (injected namespace-wide, say), so callers' proxies
 *  use mTLS to its endpoints (`mesh: true`, the clusters' `mtls: auto`). */
export const MESH_ANNOTATION = 'skein.io/mesh';
const VERSION_PATTERN = /^[A-Za-z0-9_.-]+$/;

/** The Skein service id of the Kubernetes Service `name` in `namespace`. */
export function serviceId(name: string, namespace: string): string {
  return `${name}.${namespace}`;
}

/** `namespace/name`: how the watches key every object. */
export function objectKey(meta: KubeMeta | undefined): string {
  return `${meta?.namespace ?? ''}/${meta?.name ?? ''}`;
}

type ServicePort = NonNullable<NonNullable<KubeService['spec']>['ports']>[number];

/** The Service port whose endpoints become the service's addresses (rules above); undefined if it has none. */
export function chosenPort(svc: KubeService): ServicePort | undefined {
  const ports = (svc.spec?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP');
  const wanted = svc.metadata?.annotations?.[PORT_ANNOTATION];
  if (wanted !== undefined) return ports.find((p) => p.name === wanted || String(p.port) === wanted);
  if (ports.length <= 1) return ports[0];
  return ports.find((p) => p.name === 'http') ?? ports[0];
}

function protocolOf(port: ServicePort): Service['protocol'] {
  const app = port.appProtocol?.toLowerCase();
  return app === 'kubernetes.io/h2c' || app === 'h2c' || app === 'grpc' ? 'http2' : 'auto';
}

function hostPort(address: string, port: number, type: string | undefined): string {
  return type === 'IPv6' ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The services the cluster's objects describe, sorted by id, each with its endpoints sorted by address (equal
 * state, equal JSON: nothing is pushed for a change that changes nothing). `podVersions` maps `namespace/name`
 * to the pod's version label.
 */
export function discoveredServices(
  services: Iterable<KubeService>,
  slices: Iterable<KubeEndpointSlice>,
  podVersions: ReadonlyMap<string, string>,
): Service[] {
  const slicesByService = new Map<string, KubeEndpointSlice[]>();
  for (const s of slices) {
    const owner = s.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (owner === undefined) continue;
    const key = objectKey({ namespace: s.metadata?.namespace, name: owner });
    slicesByService.set(key, [...(slicesByService.get(key) ?? []), s]);
  }
  const out: Service[] = [];
  for (const svc of services) {
    const name = svc.metadata?.name;
    const namespace = svc.metadata?.namespace;
    if (name === undefined || namespace === undefined || svc.spec?.type === 'ExternalName') continue;
    const port = chosenPort(svc);
    if (port === undefined) continue;
    const meshed = svc.metadata?.annotations?.[MESH_ANNOTATION] === 'true';
    // The cluster IPs (one per family), with the Service's port: what a captured connection was dialed to.
    // Headless Services (clusterIP None) have none: their clients dial pod IPs.
    const ips = (svc.spec?.clusterIPs ?? (svc.spec?.clusterIP === undefined ? [] : [svc.spec.clusterIP])).filter(
      (ip) => ip !== 'None' && ip !== '',
    );
    const addresses = ips.map((ip) => hostPort(ip, port.port, ip.includes(':') ? 'IPv6' : 'IPv4'));
    const ready = new Map<string, Service['endpoints'][number]>();
    const draining = new Map<string, Service['endpoints'][number]>();
    for (const slice of slicesByService.get(objectKey(svc.metadata)) ?? []) {
      if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
      const slicePort = slice.ports?.find((p) => (p.name ?? '') === (port.name ?? ''));
      if (slicePort?.port === undefined || (slicePort.protocol ?? 'TCP') !== 'TCP') continue;
      for (const e of slice.endpoints ?? []) {
        const ip = e.addresses[0];
        if (ip === undefined) continue;
        const isReady = e.conditions?.ready ?? true;
        const serving = e.conditions?.serving ?? isReady;
        const terminating = e.conditions?.terminating ?? false;
        const target = isReady ? ready : serving && terminating ? draining : undefined;
        if (target === undefined) continue;
        const ref = e.targetRef;
        const version =
          ref?.kind === 'Pod' && ref.name !== undefined
            ? podVersions.get(objectKey({ namespace: ref.namespace ?? namespace, name: ref.name }))
            : undefined;
        const address = hostPort(ip, slicePort.port, slice.addressType);
        target.set(address, {
          address,
          weight: 1,
          ...(meshed && { mesh: true }),
          ...(version !== undefined && VERSION_PATTERN.test(version) && { version }),
        });
      }
    }
    const chosen = ready.size > 0 ? ready : draining;
    out.push({
      id: serviceId(name, namespace),
      ...(addresses.length > 0 && { addresses }),
      protocol: protocolOf(port),
      lb: 'round-robin',
      endpoints: [...chosen.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)),
    });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
