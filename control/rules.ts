// Control's traffic model and what it compiles to. Services (with the `version` of each endpoint) and traffic
// rules in the seed's shape (id, name, priority, enabled, conditions, destinations, actions) are validated
// here at the API's edge; each rule compiles to one proxy route, checked with the proxy's own Route schema, and
// each service to a cluster plus one cluster per version (`<service>--<version>`). A proxy's overlay holds the
// enabled rules that apply to its service (sourceService conditions are decided here, per proxy, so a proxy
// receives only the rules for its own traffic) and the clusters those rules send to.
import { z } from 'zod';
import { formatIssues } from '../src/config/load.ts';
import type { Overlay } from '../src/config/overlay.ts';
import { FaultPolicy, Route } from '../src/config/schema.ts';
import { RateLimitPolicy } from '../src/config/rate-limit-schema.ts';
import { RetryPolicy } from '../src/config/retry-schema.ts';
import { NAME_PATTERN } from './store/types.ts';
import { type AuthorizationPolicyRecord, authorizationFor } from './authorization.ts';

const Name = z.string().regex(NAME_PATTERN, 'letters, digits, . _ - only (up to 128), starting with a letter or digit');
const ServiceName = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only');

function validRegex(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

export const CONDITION_TYPES = ['header', 'path', 'method', 'cookie', 'query', 'sourceService'] as const;
export const OPERATORS = ['equals', 'prefix', 'regex', 'present'] as const;

export const Condition = z
  .strictObject({
    type: z.enum(CONDITION_TYPES),
    /** The header, cookie or query parameter name (those types only). */
    field: z.string().min(1).optional(),
    operator: z.enum(OPERATORS).default('equals'),
    value: z.string().optional(),
    /** Match when the test fails instead (header, cookie, query and sourceService only). */
    invert: z.boolean().default(false),
  })
  .superRefine((c, ctx) => {
    const named = c.type === 'header' || c.type === 'cookie' || c.type === 'query';
    if (named && c.field === undefined)
      ctx.addIssue({ code: 'custom', path: ['field'], message: `a ${c.type} condition needs a field name` });
    if (!named && c.field !== undefined)
      ctx.addIssue({ code: 'custom', path: ['field'], message: `a ${c.type} condition has no field` });
    if (c.operator === 'present') {
      if (c.value !== undefined)
        ctx.addIssue({ code: 'custom', path: ['value'], message: 'operator present takes no value' });
      if (!named) ctx.addIssue({ code: 'custom', path: ['operator'], message: `a ${c.type} is always present` });
    } else if (c.value === undefined) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `operator ${c.operator} needs a value` });
    } else if (c.operator === 'regex' && !validRegex(c.value)) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'invalid regular expression' });
    }
    if (c.invert && (c.type === 'path' || c.type === 'method'))
      ctx.addIssue({ code: 'custom', path: ['invert'], message: `a ${c.type} condition cannot be inverted` });
    if (c.type === 'method' && c.operator !== 'equals')
      ctx.addIssue({ code: 'custom', path: ['operator'], message: 'a method condition only takes equals' });
  });
export type Condition = z.infer<typeof Condition>;

/** Where matching requests go: a version of a service control knows, or a cluster of the proxy's own config. */
export const Destination = z
  .strictObject({
    service: ServiceName.optional(),
    /** With service: only that version's endpoints (their `version`). */
    version: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .optional(),
    /** A cluster in the proxies' own config instead of a service (checked by each proxy, which NACKs if absent). */
    cluster: ServiceName.optional(),
    weight: z.number().int().min(0).max(1_000_000).default(100),
  })
  .refine((d) => (d.service === undefined) !== (d.cluster === undefined), {
    message: 'a destination names exactly one of service or cluster',
  })
  .refine((d) => d.version === undefined || d.service !== undefined, {
    message: 'version goes with service',
    path: ['version'],
  });
export type Destination = z.infer<typeof Destination>;

export const Actions = z.strictObject({
  headers: z
    .strictObject({
      add: z.record(z.string(), z.string()).default({}),
      remove: z.array(z.string()).default([]),
    })
    .optional(),
  /** Replace the path prefix the rule's `path` prefix condition matched. */
  rewrite: z.strictObject({ pathPrefix: z.string().startsWith('/') }).optional(),
  /** A copy of a share of the requests to another destination; its answer is discarded. */
  mirror: z
    .strictObject({
      service: ServiceName.optional(),
      version: z.string().optional(),
      cluster: ServiceName.optional(),
      percentage: z.number().min(0).max(100).default(100),
    })
    .refine((m) => (m.service === undefined) !== (m.cluster === undefined), {
      message: 'a mirror names exactly one of service or cluster',
    })
    .optional(),
  timeoutMs: z.number().int().positive().optional(),
  retries: RetryPolicy.optional(),
  fault: FaultPolicy.optional(),
  /** A local (or, with `global`, Redis-shared) rate limit on the rule's requests: the proxy's route shape. */
  rateLimit: RateLimitPolicy.optional(),
});

export const Rule = z
  .strictObject({
    id: Name,
    name: z.string().default(''),
    /** Higher first; rules come before the proxy's own routes of equal priority. */
    priority: z.number().int().default(0),
    enabled: z.boolean().default(true),
    /** All must hold. */
    conditions: z.array(Condition).default([]),
    destinations: z.array(Destination).min(1),
    actions: Actions.default({}),
  })
  .superRefine((r, ctx) => {
    const paths = r.conditions.filter((c) => c.type === 'path');
    if (paths.length > 1)
      ctx.addIssue({ code: 'custom', path: ['conditions'], message: 'at most one path condition per rule' });
    if (r.actions.rewrite !== undefined && paths[0]?.operator !== 'prefix')
      ctx.addIssue({
        code: 'custom',
        path: ['actions', 'rewrite'],
        message: 'a rewrite needs a path condition with operator prefix',
      });
    if (!r.destinations.some((d) => d.weight > 0))
      ctx.addIssue({ code: 'custom', path: ['destinations'], message: 'at least one destination needs a weight > 0' });
  });
export type Rule = z.infer<typeof Rule>;
export type RuleInput = z.input<typeof Rule>;

export const ServiceEndpoint = z.strictObject({
  address: z.string().min(1),
  version: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .optional(),
  weight: z.number().int().min(1).max(10_000).default(1),
  /** A Skein proxy answers at this address (its inbound listener): callers' proxies use mTLS to it when they
   *  have an identity (the cluster's `mtls: auto`; the endpoint is labelled `mesh: "true"`). */
  mesh: z.boolean().optional(),
});

export const Service = z.strictObject({
  id: Name,
  /** The service's own addresses, ip:port (a Kubernetes Service's cluster IP and port): a connection a proxy
   *  captured on its way to one of them goes to this service's cluster (the cluster's `serviceAddresses`), so
   *  every proxy gets this service's cluster, rule or not. */
  addresses: z.array(z.string().min(1)).min(1).optional(),
  protocol: z.enum(['auto', 'http1', 'http2']).default('auto'),
  lb: z.enum(['round-robin', 'least-request', 'random']).default('round-robin'),
  endpoints: z.array(ServiceEndpoint).default([]),
});
export type Service = z.infer<typeof Service>;
export type ServiceInput = z.input<typeof Service>;

/** The cluster a destination sends to. */
export function clusterName(d: { service?: string; version?: string; cluster?: string }): string {
  if (d.cluster !== undefined) return d.cluster;
  return d.version === undefined ? d.service! : `${d.service}--${d.version}`;
}

function valueMatch(c: Condition): Record<string, unknown> {
  const test =
    c.operator === 'present'
      ? { present: true }
      : c.operator === 'equals'
        ? { exact: c.value }
        : c.operator === 'prefix'
          ? { prefix: c.value }
          : { regex: c.value };
  return { name: c.field!, ...test, ...(c.invert && { invert: true }) };
}

/** The proxy route a rule compiles to (route input, before the proxy's schema applies its defaults). */
export function ruleToRoute(rule: Rule): Record<string, unknown> {
  const match: Record<string, unknown> = {};
  const headers: unknown[] = [];
  const cookies: unknown[] = [];
  const queryParams: unknown[] = [];
  for (const c of rule.conditions) {
    switch (c.type) {
      case 'header':
        headers.push(valueMatch(c));
        break;
      case 'cookie':
        cookies.push(valueMatch(c));
        break;
      case 'query':
        queryParams.push(valueMatch(c));
        break;
      case 'path':
        match[c.operator === 'equals' ? 'path' : c.operator === 'prefix' ? 'pathPrefix' : 'pathRegex'] = c.value;
        break;
      case 'method':
        match.methods = c.value!.split(',').map((m) => m.trim().toUpperCase());
        break;
      case 'sourceService':
        break; // decided by control per proxy (appliesTo)
    }
  }
  if (headers.length > 0) match.headers = headers;
  if (cookies.length > 0) match.cookies = cookies;
  if (queryParams.length > 0) match.queryParams = queryParams;
  const route: Record<string, unknown> = { name: `rule:${rule.id}`, priority: rule.priority, match };
  const live = rule.destinations;
  if (live.length === 1) route.cluster = clusterName(live[0]);
  else route.weightedClusters = live.map((d) => ({ cluster: clusterName(d), weight: d.weight }));
  const a = rule.actions;
  if (a.headers !== undefined) route.requestHeaders = { set: a.headers.add, remove: a.headers.remove };
  if (a.rewrite !== undefined) route.prefixRewrite = a.rewrite.pathPrefix;
  if (a.mirror !== undefined) route.mirror = { cluster: clusterName(a.mirror), percentage: a.mirror.percentage };
  if (a.timeoutMs !== undefined) route.timeoutMs = a.timeoutMs;
  if (a.retries !== undefined) route.retries = a.retries;
  if (a.fault !== undefined) route.fault = a.fault;
  if (a.rateLimit !== undefined) route.rateLimit = a.rateLimit;
  return route;
}

/** What a rule compiles to must be a valid proxy route: the proxy's problems, as `(route).field: reason`. */
export function routeProblems(rule: Rule): string[] {
  const result = Route.safeParse(ruleToRoute(rule));
  return result.success ? [] : formatIssues(result.error.issues).map((p) => `(route).${p}`);
}

/** Whether the rule's sourceService conditions let it apply to a proxy of `service`. */
export function appliesTo(rule: Rule, service: string): boolean {
  for (const c of rule.conditions) {
    if (c.type !== 'sourceService') continue;
    const v = c.value!;
    const hit =
      c.operator === 'equals'
        ? service === v
        : c.operator === 'prefix'
          ? service.startsWith(v)
          : new RegExp(`^(?:${v})$`).test(service);
    if (hit === c.invert) return false;
  }
  return true;
}

/**
 * A service's clusters: all its endpoints, and one per version label, plus one (empty when no endpoint has
 * it) for each version in `named` (the versions rules send to): a version whose pods are gone makes 503s (UH)
 * at the proxies, never a snapshot they refuse for a missing cluster.
 */
export function serviceClusters(s: Service, named: Iterable<string> = []): Record<string, unknown>[] {
  const cluster = (name: string, endpoints: Service['endpoints']) => ({
    name,
    service: s.id,
    protocol: s.protocol,
    lb: { policy: s.lb },
    discovery: {
      type: 'static',
      endpoints: endpoints.map((e) => ({
        address: e.address,
        weight: e.weight,
        ...((e.version !== undefined || e.mesh === true) && {
          labels: { ...(e.version !== undefined && { version: e.version }), ...(e.mesh === true && { mesh: 'true' }) },
        }),
      })),
    },
  });
  const out: Record<string, unknown>[] = [
    { ...cluster(s.id, s.endpoints), ...(s.addresses !== undefined && { serviceAddresses: s.addresses }) },
  ];
  const versions = [
    ...new Set([...s.endpoints.flatMap((e) => (e.version === undefined ? [] : [e.version])), ...named]),
  ].sort();
  for (const v of versions)
    out.push(
      cluster(
        clusterName({ service: s.id, version: v }),
        s.endpoints.filter((e) => e.version === v),
      ),
    );
  return out;
}

/**
 * The overlay for a proxy of `service`: the enabled rules that apply to it, by priority (stable by id), and
 * the clusters of the services they name (destinations and mirrors). A service control does not know sends
 * nothing extra: the proxy's own config must have that cluster, or it refuses the overlay. The authorization
 * policies whose destination is `service` ride along (authorization.ts); none: no `authorization` field.
 */
export function overlayFor(
  service: string,
  rules: readonly Rule[],
  services: ReadonlyMap<string, Service>,
  version: number,
  policies: readonly AuthorizationPolicyRecord[] = [],
): Overlay {
  const applied = rules
    .filter((r) => r.enabled && appliesTo(r, service))
    .sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  /** Service → the versions the rules name. */
  const wanted = new Map<string, Set<string>>();
  const want = (service: string | undefined, version: string | undefined) => {
    if (service === undefined) return;
    const versions = wanted.get(service) ?? new Set<string>();
    if (version !== undefined) versions.add(version);
    wanted.set(service, versions);
  };
  for (const r of applied) {
    for (const d of r.destinations) want(d.service, d.version);
    want(r.actions.mirror?.service, r.actions.mirror?.version);
  }
  const clusters: Record<string, unknown>[] = [];
  // Services with addresses of their own: every proxy needs their cluster to route what it captures (without a
  // rule, the service's cluster as a whole).
  for (const [name, svc] of services) if (svc.addresses !== undefined && !wanted.has(name)) want(name, undefined);
  for (const name of [...wanted.keys()].sort()) {
    const s = services.get(name);
    if (s !== undefined) clusters.push(...serviceClusters(s, wanted.get(name)));
  }
  const authorization = authorizationFor(service, policies);
  return {
    version,
    routes: applied.map(ruleToRoute),
    clusters,
    ...(authorization.length > 0 && { authorization }),
  };
}
