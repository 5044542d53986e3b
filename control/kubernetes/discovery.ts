// Control's discovery from the Kubernetes API (`skein control --kubernetes | --kubeconfig FILE`): Services,
// EndpointSlices and versioned Pods kept by three list-watches (list-watch.ts), turned into Skein services
// (translate.ts) and handed to the traffic model as one source, which pushes them to the proxies whose rules
// name them. Nothing is handed over before all three lists have completed once, and after that only whole,
// recomputed sets: a watch that breaks keeps its last known objects, so it never empties a service.
// Access needed (least privilege): get/list/watch on services, pods (core) and endpointslices (discovery.k8s.io).
import { CoreV1Api, DiscoveryV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import type { Service } from '../rules.ts';
import { ListWatch, type ListWatchStatus } from './list-watch.ts';
import { discoveredServices, type KubeEndpointSlice, type KubeService, objectKey, VERSION_LABEL } from './translate.ts';

export interface KubernetesSourceOptions {
  /** A kubeconfig file (its current context); absent: in-cluster (the pod's service account). */
  readonly kubeconfig?: string;
  /** Only this namespace; absent: all namespaces. */
  readonly namespace?: string;
  /** In-cluster: where the service account's files are mounted, before /var/run/secrets/... (default ''). */
  readonly serviceAccountRoot?: string;
  /** First wait after a failed list or a broken watch (default 500 ms, doubling to 30 s). */
  readonly retryBaseMs?: number;
}

export interface KubernetesStatus {
  readonly server: string;
  readonly namespace: string | null;
  /** All three lists have completed once: services are being handed over. */
  readonly synced: boolean;
  readonly resources: ListWatchStatus[];
}

/** Takes the whole discovered set each time it changes. */
export type DiscoverySink = (services: Service[]) => Promise<void>;

const PAGE = 500;

/** The kubeconfig file's current context, or the pod's service account in a cluster; throws outside a pod. */
export function loadKubeConfig(opts: Pick<KubernetesSourceOptions, 'kubeconfig' | 'serviceAccountRoot'>): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig !== undefined) kc.loadFromFile(opts.kubeconfig);
  else {
    if (process.env.KUBERNETES_SERVICE_HOST === undefined || process.env.KUBERNETES_SERVICE_PORT === undefined)
      throw new Error(
        'not in a Kubernetes pod (KUBERNETES_SERVICE_HOST and _PORT are not set): use --kubeconfig FILE from outside',
      );
    kc.loadFromCluster(opts.serviceAccountRoot);
  }
  return kc;
}

export class KubernetesDiscovery {
  readonly #server: string;
  readonly #namespace: string | undefined;
  readonly #services: ListWatch<KubeService>;
  readonly #slices: ListWatch<KubeEndpointSlice>;
  readonly #pods: ListWatch<{ metadata?: KubeService['metadata'] }>;
  readonly #sink: DiscoverySink;
  readonly #log: (level: 'info' | 'warn' | 'error', message: string) => void;
  #scheduled = false;
  #closed = false;
  #pending: Promise<void> = Promise.resolve();

  constructor(
    opts: KubernetesSourceOptions,
    sink: DiscoverySink,
    log: (level: 'info' | 'warn' | 'error', message: string) => void,
  ) {
    const kc = loadKubeConfig(opts);
    const cluster = kc.getCurrentCluster();
    if (cluster === null) throw new Error(`${opts.kubeconfig ?? 'in-cluster config'}: no current cluster`);
    this.#server = cluster.server;
    this.#namespace = opts.namespace;
    this.#sink = sink;
    this.#log = log;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const watch = new Watch(kc);
    const ns = opts.namespace;
    const base = { watch, log, retryBaseMs: opts.retryBaseMs, onChange: () => this.#schedule() };
    const page = (cont: string | undefined) => ({ limit: PAGE, _continue: cont });
    this.#services = new ListWatch<KubeService>({
      ...base,
      name: 'services',
      watchPath: ns === undefined ? '/api/v1/services' : `/api/v1/namespaces/${ns}/services`,
      list: (cont) =>
        ns === undefined
          ? core.listServiceForAllNamespaces(page(cont))
          : core.listNamespacedService({ namespace: ns, ...page(cont) }),
    });
    this.#slices = new ListWatch<KubeEndpointSlice>({
      ...base,
      name: 'endpointslices',
      watchPath:
        ns === undefined
          ? '/apis/discovery.k8s.io/v1/endpointslices'
          : `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      list: (cont) =>
        ns === undefined
          ? discovery.listEndpointSliceForAllNamespaces(page(cont))
          : discovery.listNamespacedEndpointSlice({ namespace: ns, ...page(cont) }),
    });
    // Only pods with a version label: the one field read from a pod.
    const labelSelector = VERSION_LABEL;
    this.#pods = new ListWatch({
      ...base,
      name: 'pods',
      watchPath: ns === undefined ? '/api/v1/pods' : `/api/v1/namespaces/${ns}/pods`,
      watchQuery: { labelSelector },
      list: (cont) =>
        ns === undefined
          ? core.listPodForAllNamespaces({ labelSelector, ...page(cont) })
          : core.listNamespacedPod({ namespace: ns, labelSelector, ...page(cont) }),
    });
    log(
      'info',
      `kubernetes discovery from ${this.#server} (${ns === undefined ? 'all namespaces' : `namespace ${ns}`})`,
    );
  }

  get synced(): boolean {
    return this.#services.synced && this.#slices.synced && this.#pods.synced;
  }

  status(): KubernetesStatus {
    return {
      server: this.#server,
      namespace: this.#namespace ?? null,
      synced: this.synced,
      resources: [this.#services.status(), this.#slices.status(), this.#pods.status()],
    };
  }

  /** Resolves when every hand-over started so far is done (tests, and close). */
  settled(): Promise<void> {
    return this.#pending;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#services.close(), this.#slices.close(), this.#pods.close()]);
    await this.#pending;
  }

  /** Many events in one turn (a list, a burst of pod changes) make one recompute. */
  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#closed || !this.synced) return;
      const versions = new Map<string, string>();
      for (const pod of this.#pods.items.values()) {
        const v = pod.metadata?.labels?.[VERSION_LABEL];
        if (v !== undefined) versions.set(objectKey(pod.metadata), v);
      }
      const services = discoveredServices(this.#services.items.values(), this.#slices.items.values(), versions);
      this.#pending = this.#pending
        .then(() => this.#sink(services))
        .catch((err: unknown) =>
          this.#log('error', `kubernetes discovery: could not apply services: ${(err as Error).message}`),
        );
    });
  }
}
