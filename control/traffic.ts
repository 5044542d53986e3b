// The traffic model control holds: services and rules in the store, a config version that every change bumps,
// and the audit log (who changed what, when, version before and after). Reads come from memory (loaded once at
// start); each write goes to the store before it is visible, then listeners hear of it (the push hub recomputes
// the overlays of connected proxies). Not a hot path: API writes by people and CI.
import { ApiError, parseWith } from './http.ts';
import { overlayFor, Rule, routeProblems, Service } from './rules.ts';
import type { RecordStore } from './store/types.ts';
import type { Overlay } from '../src/config/overlay.ts';

const RULES = 'rules';
const SERVICES = 'services';
const META = 'meta';
const AUDIT = 'audit';

export interface AuditEntry {
  readonly id: string;
  readonly at: string;
  readonly actor: string;
  readonly action: 'create' | 'replace' | 'delete';
  readonly kind: 'rule' | 'service';
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

export class TrafficModel {
  readonly #store: RecordStore;
  readonly #rules = new Map<string, Rule>();
  readonly #services = new Map<string, Service>();
  readonly #listeners = new Set<ChangeListener>();
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
    m.#version = (await store.get<Meta>(META, 'config'))?.version ?? 0;
    return m;
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

  /** The overlay a proxy of `service` gets now. */
  overlayFor(service: string): Overlay {
    return overlayFor(service, this.rules(), this.#services, this.#version);
  }

  /** Validates and stores a rule. `create`: refuse one that exists (409); else create or replace. */
  putRule(body: unknown, actor: string, mode: { create: boolean; id?: string }): Promise<Rule> {
    const rule = parseWith(Rule, body, 'rule');
    if (mode.id !== undefined && rule.id !== mode.id)
      throw new ApiError('SKEIN_BAD_REQUEST', 'invalid rule', [
        `id: '${rule.id}' differs from the path's '${mode.id}'`,
      ]);
    const problems = routeProblems(rule);
    if (problems.length > 0) throw new ApiError('SKEIN_BAD_REQUEST', 'invalid rule', problems);
    return this.#write(async () => {
      const exists = this.#rules.has(rule.id);
      if (mode.create && exists)
        throw new ApiError('SKEIN_CONFLICT', `rule '${rule.id}' exists; PUT /v1/rules/${rule.id} replaces it`);
      await this.#store.put(RULES, rule);
      this.#rules.set(rule.id, rule);
      return {
        result: rule,
        kind: 'rule' as const,
        objectId: rule.id,
        action: exists ? ('replace' as const) : ('create' as const),
      };
    }, actor);
  }

  deleteRule(id: string, actor: string): Promise<Rule> {
    return this.#write(async () => {
      const rule = this.rule(id);
      await this.#store.delete(RULES, id);
      this.#rules.delete(id);
      return { result: rule, kind: 'rule' as const, objectId: id, action: 'delete' as const };
    }, actor);
  }

  putService(body: unknown, actor: string, mode: { create: boolean; id?: string }): Promise<Service> {
    const service = parseWith(Service, body, 'service');
    if (mode.id !== undefined && service.id !== mode.id)
      throw new ApiError('SKEIN_BAD_REQUEST', 'invalid service', [
        `id: '${service.id}' differs from the path's '${mode.id}'`,
      ]);
    return this.#write(async () => {
      const exists = this.#services.has(service.id);
      if (mode.create && exists)
        throw new ApiError(
          'SKEIN_CONFLICT',
          `service '${service.id}' exists; PUT /v1/services/${service.id} replaces it`,
        );
      await this.#store.put(SERVICES, service);
      this.#services.set(service.id, service);
      return {
        result: service,
        kind: 'service' as const,
        objectId: service.id,
        action: exists ? ('replace' as const) : ('create' as const),
      };
    }, actor);
  }

  deleteService(id: string, actor: string): Promise<Service> {
    return this.#write(async () => {
      const service = this.service(id);
      const users = this.rules().filter(
        (r) => r.destinations.some((d) => d.service === id) || r.actions.mirror?.service === id,
      );
      if (users.length > 0)
        throw new ApiError('SKEIN_CONFLICT', `service '${id}' is used by rules: ${users.map((r) => r.id).join(', ')}`);
      await this.#store.delete(SERVICES, id);
      this.#services.delete(id);
      return { result: service, kind: 'service' as const, objectId: id, action: 'delete' as const };
    }, actor);
  }

  /** The audit log, newest first. */
  async audit(limit: number): Promise<AuditEntry[]> {
    const all = await this.#store.list<AuditEntry>(AUDIT);
    return all.reverse().slice(0, limit);
  }

  #write<T>(
    change: () => Promise<{ result: T; kind: AuditEntry['kind']; objectId: string; action: AuditEntry['action'] }>,
    actor: string,
  ): Promise<T> {
    const run = this.#tail.then(async () => {
      const at = Date.now();
      const done = await change();
      const before = this.#version;
      const after = before + 1;
      await this.#store.put<Meta>(META, { id: 'config', version: after });
      this.#version = after;
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
