// A fake Kubernetes API server, because no API server runs on this machine. It speaks the real list/watch
// protocol for the three resources control's discovery reads — v1 Services, discovery.k8s.io/v1 EndpointSlices
// and v1 Pods (with a labelSelector) — starting from recorded list responses (test/fixtures/kubernetes/*.json,
// shaped exactly like API server output): a list answers `{kind: XList, apiVersion, metadata: {resourceVersion,
// continue?}, items}` (items without kind/apiVersion, paged by limit/continue); `?watch=true|1&resourceVersion=N
// &allowWatchBookmarks=true` answers a chunked stream of newline-delimited JSON events (ADDED, MODIFIED, DELETED,
// BOOKMARK) — first the events after N from its event log, like the API server's watch cache, then live ones —
// and, for an N older than what was compacted, a 410 ERROR event with an Expired Status (the API server's answer).
// HTTPS with its own certificate (in the kubeconfig's certificate-authority-data) and bearer-token auth, like
// a real server (401 without the token). Tests change objects, drop watch connections, compact,
// make lists fail, and read every request made (its path and query) to assert what the client asked for. It also
// answers TokenReviews (authentication.k8s.io/v1) for the service-account tokens a test allows.
import type http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { makeSelfSignedCert } from './certs.ts';

export type Kind = 'services' | 'endpointslices' | 'pods';

const META: Record<Kind, { kind: string; apiVersion: string; prefix: string }> = {
  services: { kind: 'Service', apiVersion: 'v1', prefix: '/api/v1' },
  endpointslices: { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', prefix: '/apis/discovery.k8s.io/v1' },
  pods: { kind: 'Pod', apiVersion: 'v1', prefix: '/api/v1' },
};

export interface KubeObject {
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface RecordedRequest {
  readonly kind: Kind;
  readonly namespace: string | null;
  readonly watch: boolean;
  readonly query: URLSearchParams;
}

interface WatchEvent {
  readonly rv: number;
  readonly kind: Kind;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObject;
}

interface OpenWatch {
  readonly kind: Kind;
  readonly namespace: string | null;
  readonly selector: (o: KubeObject) => boolean;
  readonly res: http.ServerResponse;
}

export const FIXTURES = new URL('../fixtures/kubernetes/', import.meta.url);

/** A recorded list response (`services`, `endpointslices`, `pods`), parsed afresh each call. */
export function fixtureList(kind: Kind): { metadata: { resourceVersion: string }; items: KubeObject[] } {
  return JSON.parse(readFileSync(new URL(`${kind}.json`, FIXTURES), 'utf8')) as {
    metadata: { resourceVersion: string };
    items: KubeObject[];
  };
}

const TOKEN = 'fake-api-token';

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  readonly #objects: Record<Kind, Map<string, KubeObject>> = {
    services: new Map(),
    endpointslices: new Map(),
    pods: new Map(),
  };
  readonly #log: WatchEvent[] = [];
  readonly #watches = new Set<OpenWatch>();
  readonly #sockets = new Set<net.Socket>();
  #rv: number;
  /** Watches from a resourceVersion below this get 410 Gone. */
  #compactedRv = 0;
  #failLists = 0;
  readonly #server: https.Server;
  readonly #caPem: string;
  url = '';

  private constructor(dir: string, initial: Partial<Record<Kind, readonly KubeObject[]>>, rv: number) {
    this.#rv = rv;
    const cert = makeSelfSignedCert(dir, 'kube-apiserver');
    this.#caPem = readFileSync(cert.certFile, 'utf8');
    for (const kind of Object.keys(initial) as Kind[])
      for (const o of initial[kind] ?? []) this.#objects[kind].set(key(o), structuredClone(o));
    this.#server = https.createServer({ cert: this.#caPem, key: readFileSync(cert.keyFile) }, (req, res) =>
      this.#handle(req, res),
    );
    this.#server.on('secureConnection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  /**
   * Starts with the given objects (default: the recorded fixtures) at the fixtures' resourceVersion; its
   * certificate and key go in `dir`.
   */
  static async start(dir: string, initial?: Partial<Record<Kind, readonly KubeObject[]>>): Promise<FakeKubeApi> {
    const lists = {
      services: fixtureList('services'),
      endpointslices: fixtureList('endpointslices'),
      pods: fixtureList('pods'),
    };
    const api = new FakeKubeApi(
      dir,
      initial ?? { services: lists.services.items, endpointslices: lists.endpointslices.items, pods: lists.pods.items },
      Number(lists.services.metadata.resourceVersion),
    );
    await new Promise<void>((r) => api.#server.listen(0, '127.0.0.1', r));
    api.url = `https://127.0.0.1:${(api.#server.address() as AddressInfo).port}`;
    return api;
  }

  /** A kubeconfig (JSON is YAML) whose current context points here with the bearer token. */
  writeKubeconfig(file: string, token = TOKEN): string {
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'fake',
            cluster: {
              server: this.url,
              'certificate-authority-data': Buffer.from(this.#caPem).toString('base64'),
            },
          },
        ],
        users: [{ name: 'skein', user: { token } }],
        contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'skein', namespace: 'default' } }],
        'current-context': 'fake',
      }),
    );
    return file;
  }

  /** The bearer token it accepts, and its certificate (PEM): what a pod's service account files hold. */
  get token(): string {
    return TOKEN;
  }

  get caPem(): string {
    return this.#caPem;
  }

  get resourceVersion(): number {
    return this.#rv;
  }

  /** Creates or replaces an object (ADDED or MODIFIED to matching watches), at the next resourceVersion. */
  upsert(kind: Kind, object: KubeObject): void {
    const o = structuredClone(object);
    const type = this.#objects[kind].has(key(o)) ? 'MODIFIED' : 'ADDED';
    o.metadata.resourceVersion = String(++this.#rv);
    this.#objects[kind].set(key(o), o);
    this.#emit({ rv: this.#rv, kind, type, object: o });
  }

  remove(kind: Kind, namespace: string, name: string): void {
    const old = this.#objects[kind].get(`${namespace}/${name}`);
    if (old === undefined) throw new Error(`no ${kind} ${namespace}/${name}`);
    this.#objects[kind].delete(key(old));
    const o = structuredClone(old);
    o.metadata.resourceVersion = String(++this.#rv);
    this.#emit({ rv: this.#rv, kind, type: 'DELETED', object: o });
  }

  get(kind: Kind, namespace: string, name: string): KubeObject {
    const o = this.#objects[kind].get(`${namespace}/${name}`);
    if (o === undefined) throw new Error(`no ${kind} ${namespace}/${name}`);
    return structuredClone(o);
  }

  /** A BOOKMARK with the current resourceVersion to every open watch. */
  bookmark(): void {
    // A bookmark's object is the watched kind with only metadata.resourceVersion (#send adds kind/apiVersion).
    for (const w of this.#watches) this.#send(w, 'BOOKMARK', { metadata: { resourceVersion: String(this.#rv) } });
  }

  /** Ends every open watch's connection abruptly (a dropped connection, not a clean end). */
  dropWatches(): void {
    for (const w of this.#watches) w.res.socket?.destroy();
    this.#watches.clear();
  }

  /** Forgets the event log up to now: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.#compactedRv = this.#rv;
    this.#log.length = 0;
  }

  /** The next `n` list requests answer 500 (an API server in trouble). */
  failLists(n: number): void {
    this.#failLists = n;
  }

  /** Open watch streams of a kind. */
  openWatches(kind: Kind): number {
    return [...this.#watches].filter((w) => w.kind === kind).length;
  }

  watchRequests(kind: Kind): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === kind && r.watch);
  }

  listRequests(kind: Kind): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === kind && !r.watch);
  }

  close(): Promise<void> {
    for (const w of this.#watches) w.res.destroy();
    this.#watches.clear();
    for (const s of this.#sockets) s.destroy();
    return new Promise((r) => this.#server.close(() => r()));
  }

  #emit(e: WatchEvent): void {
    this.#log.push(e);
    for (const w of this.#watches)
      if (w.kind === e.kind && inNamespace(e.object, w.namespace) && w.selector(e.object))
        this.#send(w, e.type, e.object);
  }

  #send(w: OpenWatch, type: string, object: KubeObject | Record<string, unknown>): void {
    const m = META[w.kind];
    const full = type === 'ERROR' ? object : { kind: m.kind, apiVersion: m.apiVersion, ...object };
    w.res.write(`${JSON.stringify({ type, object: full })}\n`);
  }

  /** Service-account tokens the TokenReview endpoint accepts: token → user name and the audiences it is for. */
  readonly #reviewable = new Map<string, { username: string; audiences: string[] }>();

  /** Makes `token` review as `system:serviceaccount:NS:SA` for `audiences` (a projected token, as kubelet mints). */
  allowToken(token: string, namespace: string, serviceAccount: string, audiences = ['skein-control']): void {
    this.#reviewable.set(token, { username: `system:serviceaccount:${namespace}:${serviceAccount}`, audiences });
  }

  /** TokenReview as the API server answers it: authenticated with the user and the audiences the token and the
   *  request share, or not authenticated with an error. */
  #tokenReview(req: http.IncomingMessage, res: http.ServerResponse): void {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      const review = JSON.parse(text) as { spec: { token: string; audiences?: string[] } };
      const known = this.#reviewable.get(review.spec.token);
      const wanted = review.spec.audiences ?? [];
      const shared = known?.audiences.filter((a) => wanted.length === 0 || wanted.includes(a)) ?? [];
      const status =
        known !== undefined && shared.length > 0
          ? {
              authenticated: true,
              user: { username: known.username, groups: ['system:serviceaccounts'] },
              audiences: shared,
            }
          : { authenticated: false, error: '[invalid bearer token, token audiences do not match]' };
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          metadata: {},
          spec: review.spec,
          status,
        }),
      );
    });
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = parsePath(url.pathname);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews')
      return this.#tokenReview(req, res);
    if (route === null || req.method !== 'GET')
      return status(res, 404, 'NotFound', `the server could not find the requested resource`);
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    this.requests.push({ kind: route.kind, namespace: route.namespace, watch, query: url.searchParams });
    const selector = parseSelector(url.searchParams.get('labelSelector') ?? '');
    const matching = [...this.#objects[route.kind].values()]
      .filter((o) => inNamespace(o, route.namespace) && selector(o))
      .sort((a, b) => (key(a) < key(b) ? -1 : 1));
    if (!watch) {
      if (this.#failLists > 0) {
        this.#failLists--;
        return status(res, 500, 'InternalError', 'etcdserver: request timed out');
      }
      const limit = Number(url.searchParams.get('limit') ?? 0);
      const start = Number(url.searchParams.get('continue') ?? 0) || 0;
      const page = limit > 0 ? matching.slice(start, start + limit) : matching.slice(start);
      const more = limit > 0 && start + limit < matching.length;
      const m = META[route.kind];
      const body = {
        kind: `${m.kind}List`,
        apiVersion: m.apiVersion,
        metadata: { resourceVersion: String(this.#rv), ...(more && { continue: String(start + limit) }) },
        items: page,
      };
      res.writeHead(200, { 'content-type': 'application/json', 'audit-id': `fake-${this.requests.length}` });
      return void res.end(JSON.stringify(body));
    }
    // A watch: 200 with a chunked body that stays open (no content-length).
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: OpenWatch = { kind: route.kind, namespace: route.namespace, selector, res };
    const from = Number(url.searchParams.get('resourceVersion') ?? '0');
    if (from > 0 && from < this.#compactedRv) {
      this.#send(w, 'ERROR', {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${from} (${this.#compactedRv})`,
        reason: 'Expired',
        code: 410,
      });
      return void res.end();
    }
    this.#watches.add(w);
    res.on('close', () => this.#watches.delete(w));
    if (from === 0) for (const o of matching) this.#send(w, 'ADDED', o);
    else
      for (const e of this.#log)
        if (e.rv > from && e.kind === route.kind && inNamespace(e.object, route.namespace) && selector(e.object))
          this.#send(w, e.type, e.object);
  }
}

function key(o: KubeObject): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}

function inNamespace(o: KubeObject, namespace: string | null): boolean {
  return namespace === null || o.metadata.namespace === namespace;
}

/** `/api/v1[/namespaces/NS]/services|pods`, `/apis/discovery.k8s.io/v1[/namespaces/NS]/endpointslices`. */
function parsePath(path: string): { kind: Kind; namespace: string | null } | null {
  const m =
    /^\/api\/v1(?:\/namespaces\/([a-z0-9-]+))?\/(services|pods)$/.exec(path) ??
    /^\/apis\/discovery\.k8s\.io\/v1(?:\/namespaces\/([a-z0-9-]+))?\/(endpointslices)$/.exec(path);
  return m === null ? null : { kind: m[2] as Kind, namespace: m[1] ?? null };
}

/** Equality-based selectors: `key`, `!key`, `key=value`, `key!=value`, comma-separated (all must hold). */
function parseSelector(text: string): (o: KubeObject) => boolean {
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  return (o) =>
    terms.every((t) => {
      const labels = o.metadata.labels ?? {};
      const ne = /^([^!=]+)!=(.*)$/.exec(t);
      if (ne !== null) return labels[ne[1]] !== ne[2];
      const eq = /^([^!=]+)==?(.*)$/.exec(t);
      if (eq !== null) return labels[eq[1]] === eq[2];
      if (t.startsWith('!')) return !(t.slice(1) in labels);
      return t in labels;
    });
}

function status(res: http.ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}
