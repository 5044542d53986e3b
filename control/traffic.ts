// The traffic model control holds: services, rules and authorization policies in the store, a config version
// that every change bumps, and the audit log (who changed what, when, version before and after). Reads come
// from memory (loaded once at start); each write goes to the store before it is visible, then listeners hear of
// it (the push hub recomputes the overlays of connected proxies). Not a hot path: API writes by people and CI.
import type { z } from 'zod';
import { ApiError, parseWith } from './http.ts';
import { overlayFor, Rule, routeProblems, Service } from './rules.ts';
import { AuthorizationPolicyRecord } from './authorization.ts';
import { type RecordStore, VersionConflict } from './store/types.ts';
import { canonicalJson } from '../src/config/compile.ts';
import type { Overlay } from '../src/config/overlay.ts';

const RULES = 'rules';
const SERVICES = 'services';
const POLICIES = 'authorization-policies';
const META = 'meta';
const AUDIT = 'audit';

export type Kind = 'rule' | 'service' | 'authorization-policy';
type Collection = typeof RULES | typeof SERVICES | typeof POLICIES;
type Held = Rule | Service | AuthorizationPolicyRecord;
const COLLECTIONS = { rule: RULES, service: SERVICES, 'authorization-policy': POLICIES } as const;
const PATHS = {
  rule: '/v1/rules',
  service: '/v1/services',
  'authorization-policy': '/v1/authorization-policies',
} as const;
const KIND_OF: Record<Collection, Kind> = {
  rules: 'rule',
  services: 'service',
  'authorization-policies': 'authorization-policy',
};
const SCHEMAS: Record<Collection, z.ZodType<Held>> = {
  rules: Rule,
  services: Service,
  'authorization-policies': AuthorizationPolicyRecord,
};

export interface AuditEntry {
  readonly id: string;
  readonly at: string;
  readonly actor: string;
  readonly action: 'create' | 'replace' | 'delete';
  readonly kind: Kind;
  readonly objectId: string;
  /** Control's config version before and after the change. */
  readonly versionBefore: number;
  readonly versionAfter: number;
}

interface Meta {
  readonly id: 'config';
  readonly version: number;
}

export type ChangeListener = (version: number, at: number) => void;

/** How a write may replace what is stored: create only, replace only over a version (If-Match), or either. */
export interface WriteMode {
  readonly create: boolean;
  /** The id in the path (PUT): the body's id must equal it. */
  readonly id?: string;
  /** The version the writer read (an ETag given back in If-Match): the write is refused (409) if it changed. */
  readonly ifVersion?: number;
}

/** `"3"` (or `W/"3"`, or `3`) → 3; anything else is a 400. */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(header.trim());
  if (m === null)
    throw new ApiError('SKEIN_BAD_REQUEST', 'invalid If-Match', [
      `If-Match: expected a version ETag like "3", got ${header}`,
    ]);
  return Number(m[1]);
}

export class TrafficModel {
  readonly #store: RecordStore;
  readonly #rules = new Map<string, Rule>();
  readonly #services = new Map<string, Service>();
  /** Services from a discovery source (Kubernetes), by source: held in memory only, never in the store. */
  readonly #discovered = new Map<string, ReadonlyMap<string, Service>>();
  readonly #policies = new Map<string, AuthorizationPolicyRecord>();
  readonly #listeners = new Set<ChangeListener>();
  /** Store versions of the records held (ETags). */
  readonly #versions = new Map<string, number>();
  readonly #unwatch: (() => void)[] = [];
  /** Records this process is writing now: their change notifications are its own. */
  readonly #writing = new Set<string>();
  /** Change notifications that came while this process was writing the record: looked at again after. */
  readonly #missed = new Set<string>();
  #version = 0;
  #auditSeq = 0;
  /** Writes run one at a time, so version numbers and the audit log follow the order of the writes. */
  #tail: Promise<unknown> = Promise.resolve();

  private constructor(store: RecordStore) {
    this.#store = store;
  }

  static async open(store: RecordStore): Promise<TrafficModel> {
    const m = new TrafficModel(store);
    for (const r of await store.list<Rule>(RULES)) m.#rules.set(r.id, Rule.parse(r));
    for (const s of await store.list<Service>(SERVICES)) m.#services.set(s.id, Service.parse(s));
    for (const p of await store.list<AuthorizationPolicyRecord>(POLICIES))
      m.#policies.set(p.id, AuthorizationPolicyRecord.parse(p));
    for (const [coll, map] of [
      [RULES, m.#rules],
      [SERVICES, m.#services],
      [POLICIES, m.#policies],
    ] as const)
      for (const id of map.keys()) m.#versions.set(`${coll}/${id}`, (await store.getVersioned(coll, id))?.version ?? 1);
    m.#version = (await store.get<Meta>(META, 'config'))?.version ?? 0;
    // Writes through another control replica (same Redis) reach this one's proxies too.
    m.#unwatch.push(
      store.watch(RULES, (id) => void m.#reload(RULES, id)),
      store.watch(SERVICES, (id) => void m.#reload(SERVICES, id)),
      store.watch(POLICIES, (id) => void m.#reload(POLICIES, id)),
    );
    return m;
  }

  close(): void {
    for (const u of this.#unwatch.splice(0)) u();
  }

  /** The store version of a rule, service or policy: its ETag. */
  etag(kind: Kind, id: string): string {
    return `"${this.#versions.get(`${COLLECTIONS[kind]}/${id}`) ?? 0}"`;
  }

  /** A record changed in the store: if not by this process's own write, take it in and tell the listeners. */
  async #reload(collection: Collection, id: string): Promise<void> {
    try {
      const key = `${collection}/${id}`;
      // During this process's own write, the notification may be that write's or another replica's that beat it
      // (a conflict): decided once the write is over, by the versions.
      if (this.#writing.has(key)) return void this.#missed.add(key);
      const got = await this.#store.getVersioned<Held>(collection, id);
      if (this.#writing.has(key)) return void this.#missed.add(key);
      const map = this.#held<Held>(KIND_OF[collection]);
      const held = map.get(id);
      if (got === undefined) {
        if (held === undefined) return;
        map.delete(id);
        this.#versions.delete(key);
      } else {
        if ((this.#versions.get(key) ?? 0) >= got.version) return; // this process wrote it (or a newer one)
        const parsed = SCHEMAS[collection].parse(got.record);
        this.#versions.set(key, got.version);
        if (held !== undefined && canonicalJson(held) === canonicalJson(parsed)) return;
        map.set(id, parsed);
      }
      this.#version = Math.max(this.#version, (await this.#store.get<Meta>(META, 'config'))?.version ?? 0);
      const at = Date.now();
      for (const l of this.#listeners) l(this.#version, at);
    } catch {
      // The store is closing, or the record does not parse (written by a newer control): the next write retries.
    }
  }

  get version(): number {
    return this.#version;
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  rules(): Rule[] {
    return [...this.#rules.values()];
  }

  rule(id: string): Rule {
    const r = this.#rules.get(id);
    if (r === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no rule '${id}'`);
    return r;
  }

  services(): Service[] {
    return [...this.#services.values()];
  }

  service(id: string): Service {
    const s = this.#services.get(id);
    if (s === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no service '${id}'`);
    return s;
  }

  authorizationPolicies(): AuthorizationPolicyRecord[] {
    return [...this.#policies.values()];
  }

  authorizationPolicy(id: string): AuthorizationPolicyRecord {
    const p = this.#policies.get(id);
    if (p === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no authorization-policy '${id}'`);
    return p;
  }

  /** The overlay a proxy of `service` gets now. */
  overlayFor(service: string): Overlay {
    return overlayFor(service, this.rules(), this.#effective(), this.#version, this.authorizationPolicies());
  }

  /**
   * Every service rules can send to: the API-written ones, and the discovered ones whose id no API-written
   * service takes. An operator's service is never replaced by a discovered one of the same id; it shadows it
   * (GET /v1/discovery shows which), and deleting it lets the discovered one through.
   */
  #effective(): Map<string, Service> {
    const out = new Map<string, Service>();
    for (const source of this.#discovered.values()) for (const [id, s] of source) if (!out.has(id)) out.set(id, s);
    for (const [id, s] of this.#services) out.set(id, s);
    return out;
  }

  /** A service rules may name, API-written or discovered (API-written first). */
  lookupService(id: string): Service | undefined {
    return this.#effective().get(id);
  }

  /** The services a discovery source holds now, each with whether an API-written service shadows it. */
  discovered(source: string): (Service & { shadowed: boolean })[] {
    return [...(this.#discovered.get(source)?.values() ?? [])].map((s) => ({
      ...s,
      shadowed: this.#services.has(s.id),
    }));
  }

  /**
   * A discovery source's whole current set replaces its previous one. When anything changed, control's
   * version goes up and the listeners (push) hear of it, as for a write, but without an audit entry: endpoint
   * churn is the cluster's doing, not a person's, and would drown the log. Answers the ids that API-written
   * services shadow.
   */
  setDiscovered(source: string, services: readonly Service[]): Promise<string[]> {
    const run = this.#tail.then(async () => {
      const next = new Map(services.map((s) => [s.id, Service.parse(s)] as const));
      const held = this.#discovered.get(source) ?? new Map<string, Service>();
      // A service gone from the source while a rule still sends to it stays, with no endpoints (503s at the
      // proxies), until no rule names it: dropping it would make every proxy refuse snapshots for a missing cluster.
      const named = new Set(
        this.rules().flatMap((r) => [...r.destinations.map((d) => d.service), r.actions.mirror?.service]),
      );
      for (const [id, s] of held) if (!next.has(id) && named.has(id)) next.set(id, { ...s, endpoints: [] });
      const same =
        held.size === next.size &&
        [...next].every(([id, s]) => held.has(id) && canonicalJson(held.get(id)) === canonicalJson(s));
      const shadowed = [...next.keys()].filter((id) => this.#services.has(id));
      if (same) return shadowed;
      this.#discovered.set(source, next);
      const at = Date.now();
      const after = await this.#bumpVersion();
      for (const l of this.#listeners) l(after, at);
      return shadowed;
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Validates and stores an authorization policy for a destination service (it need not be registered). */
  putAuthorizationPolicy(body: unknown, actor: string, mode: WriteMode): Promise<AuthorizationPolicyRecord> {
    return this.#put(
      'authorization-policy',
      this.#parse(AuthorizationPolicyRecord, 'authorization-policy', body, mode),
      actor,
      mode,
    );
  }

  deleteAuthorizationPolicy(id: string, actor: string): Promise<AuthorizationPolicyRecord> {
    return this.#remove('authorization-policy', id, actor);
  }

  /** Validates and stores a rule. `create`: refuse one that exists (409); else create or replace. */
  putRule(body: unknown, actor: string, mode: WriteMode): Promise<Rule> {
    const rule = this.#parse(Rule, 'rule', body, mode);
    const problems = routeProblems(rule);
    if (problems.length > 0) throw new ApiError('SKEIN_BAD_REQUEST', 'invalid rule', problems);
    return this.#put('rule', rule, actor, mode);
  }

  deleteRule(id: string, actor: string): Promise<Rule> {
    return this.#remove('rule', id, actor);
  }

  putService(body: unknown, actor: string, mode: WriteMode): Promise<Service> {
    return this.#put('service', this.#parse(Service, 'service', body, mode), actor, mode);
  }

  deleteService(id: string, actor: string): Promise<Service> {
    return this.#remove('service', id, actor, () => {
      // A discovered service of the same id takes over: the rules keep a destination.
      if ([...this.#discovered.values()].some((source) => source.has(id))) return;
      const users = this.rules().filter(
        (r) => r.destinations.some((d) => d.service === id) || r.actions.mirror?.service === id,
      );
      if (users.length > 0)
        throw new ApiError('SKEIN_CONFLICT', `service '${id}' is used by rules: ${users.map((r) => r.id).join(', ')}`);
    });
  }

  #parse<T extends { id: string }>(schema: z.ZodType<T>, kind: Kind, body: unknown, mode: WriteMode): T {
    const value = parseWith(schema, body, kind);
    if (mode.id !== undefined && value.id !== mode.id)
      throw new ApiError('SKEIN_BAD_REQUEST', `invalid ${kind}`, [
        `id: '${value.id}' differs from the path's '${mode.id}'`,
      ]);
    return value;
  }

  #held<T>(kind: Kind): Map<string, T> {
    return (kind === 'rule' ? this.#rules : kind === 'service' ? this.#services : this.#policies) as Map<string, T>;
  }

  #put<T extends Held>(kind: Kind, value: T, actor: string, mode: WriteMode): Promise<T> {
    const map = this.#held<T>(kind);
    return this.#write(async () => {
      const exists = map.has(value.id);
      if (mode.create && exists)
        throw new ApiError(
          'SKEIN_CONFLICT',
          `${kind} '${value.id}' exists; PUT ${PATHS[kind]}/${value.id} replaces it`,
        );
      await this.#save(COLLECTIONS[kind], value, mode);
      map.set(value.id, value);
      return { result: value, kind, objectId: value.id, action: exists ? 'replace' : 'create' };
    }, actor);
  }

  /** Deletes a rule, service or policy; `check` may refuse it (it throws). */
  #remove<T extends Held>(kind: Kind, id: string, actor: string, check?: () => void): Promise<T> {
    const map = this.#held<T>(kind);
    return this.#write(async () => {
      const value = map.get(id);
      if (value === undefined) throw new ApiError('SKEIN_NOT_FOUND', `no ${kind} '${id}'`);
      check?.();
      const key = `${COLLECTIONS[kind]}/${id}`;
      this.#writing.add(key);
      try {
        await this.#store.delete(COLLECTIONS[kind], id);
        map.delete(id);
        this.#versions.delete(key);
      } finally {
        this.#settled(COLLECTIONS[kind], id);
      }
      return { result: value, kind, objectId: id, action: 'delete' };
    }, actor);
  }

  /**
   * Writes a record with compare-and-set on its store version: a create only where none exists, a write with
   * If-Match only over that version, any other write over the version this process holds — so a write never
   * silently replaces one another control replica made meanwhile (409 with the current version instead).
   */
  async #save(collection: Collection, record: Held, mode: WriteMode): Promise<void> {
    const key = `${collection}/${record.id}`;
    const expected = mode.create ? 0 : (mode.ifVersion ?? this.#versions.get(key) ?? 0);
    this.#writing.add(key);
    try {
      this.#versions.set(key, await this.#store.putIf(collection, record, expected));
    } catch (err) {
      if (!(err instanceof VersionConflict)) throw err;
      throw new ApiError(
        'SKEIN_CONFLICT',
        `${KIND_OF[collection]} '${record.id}' changed meanwhile: it is at version ${err.current}, not ${expected}; read it again (GET gives its ETag) and retry`,
      );
    } finally {
      this.#settled(collection, record.id);
    }
  }

  /** This process's write of a record is over: a notification that came meanwhile is looked at now. */
  #settled(collection: Collection, id: string): void {
    const key = `${collection}/${id}`;
    this.#writing.delete(key);
    if (this.#missed.delete(key)) void this.#reload(collection, id);
  }

  /** The audit log, newest first. */
  async audit(limit: number): Promise<AuditEntry[]> {
    const all = await this.#store.list<AuditEntry>(AUDIT);
    return all.reverse().slice(0, limit);
  }

  /** One more on control's config version, shared by every replica over the store (compare-and-set, retried). */
  async #bumpVersion(): Promise<number> {
    for (;;) {
      const meta = await this.#store.getVersioned<Meta>(META, 'config');
      const next = Math.max(meta?.record.version ?? 0, this.#version) + 1;
      try {
        await this.#store.putIf<Meta>(META, { id: 'config', version: next }, meta?.version ?? 0);
        this.#version = next;
        return next;
      } catch (err) {
        if (!(err instanceof VersionConflict)) throw err;
      }
    }
  }

  #write<T>(
    change: () => Promise<{ result: T; kind: AuditEntry['kind']; objectId: string; action: AuditEntry['action'] }>,
    actor: string,
  ): Promise<T> {
    const run = this.#tail.then(async () => {
      const at = Date.now();
      const done = await change();
      const before = this.#version;
      const after = await this.#bumpVersion();
      const entry: AuditEntry = {
        id: `${at.toString(36)}-${(this.#auditSeq++).toString(36)}`,
        at: new Date(at).toISOString(),
        actor,
        action: done.action,
        kind: done.kind,
        objectId: done.objectId,
        versionBefore: before,
        versionAfter: after,
      };
      await this.#store.put(AUDIT, entry);
      for (const l of this.#listeners) l(after, at);
      return done.result;
    });
    this.#tail = run.catch(() => {});
    return run;
  }
}
