// Route matching: a listener's routes compiled once into an ordered table of predicates (regexes built,
// method sets made, priorities sorted), so a request costs a few string compares and no allocation.
// The destination of a matched route is a cluster, or a weighted split between clusters.
import type { NamedValueMatchConfig } from '../config/match-schema.ts';
import type { RouteConfig } from '../config/schema.ts';
import { parseCookies, parseQuery } from './request-values.ts';
import { buildWeightedTable, pickWeighted, type WeightedTable } from './weighted-pick.ts';

/** What matching reads from a request. The proxy's request context implements it (no extra object). */
export interface RoutableRequest {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** The query string as received, without '?'; '' when there is none. */
  readonly query: string;
  readonly isGrpc: boolean;
  /** The calling service: inbound, what the caller's proxy said (x-source-service); outbound, this proxy's. */
  readonly sourceService: string;
  /** Header value by lowercase name; repeated headers joined with ", ". */
  header(name: string): string | undefined;
  /** The Cookie header and the query as maps, filled in by the first cookie / query condition that runs on the
   *  request (request-values.ts); null until then, and for every request no such condition looks at. */
  parsedCookies: ReadonlyMap<string, string> | null;
  parsedQuery: ReadonlyMap<string, string> | null;
}

export type Predicate = (req: RoutableRequest) => boolean;

export interface CompiledRoute<C> {
  readonly name: string;
  readonly index: number;
  readonly matches: Predicate;
  readonly timeoutMs: number | undefined;
  /** pathPrefix routes with prefixRewrite: [prefix, replacement]. */
  readonly rewrite: readonly [string, string] | undefined;
  readonly setHeaders: readonly (readonly [string, string])[];
  readonly removeHeaders: ReadonlySet<string>;
  /** Destination: `r` in [0,1) picks within a weighted split; a single cluster ignores it. */
  pickCluster(r: number): C;
  readonly clusters: readonly C[];
  /** Copy this share (0–100) of the route's requests to a shadow cluster (proxy/stages/mirror.ts). */
  readonly mirror: { readonly cluster: C; readonly percentage: number } | undefined;
}

/** The value test of a named condition (match-schema.ts): undefined is "the field is absent". */
function valueTest(h: NamedValueMatchConfig): (v: string | undefined) => boolean {
  if (h.exact !== undefined) {
    const exact = h.exact;
    return (v) => v === exact;
  }
  if (h.prefix !== undefined) {
    const prefix = h.prefix;
    return (v) => v !== undefined && v.startsWith(prefix);
  }
  if (h.regex !== undefined) {
    const re = new RegExp(`^(?:${h.regex})$`);
    return (v) => v !== undefined && re.test(v);
  }
  if (h.present === false) return (v) => v === undefined;
  return (v) => v !== undefined;
}

/** A named condition on what `read` finds under its name; invert negates the whole test (absent included). */
function valuePredicate(
  h: NamedValueMatchConfig,
  read: (req: RoutableRequest, name: string) => string | undefined,
): Predicate {
  const { name, invert } = h;
  const test = valueTest(h);
  return invert ? (req) => !test(read(req, name)) : (req) => test(read(req, name));
}

const readCookie = (req: RoutableRequest, name: string) =>
  (req.parsedCookies ??= parseCookies(req.header('cookie'))).get(name);
const readQueryParam = (req: RoutableRequest, name: string) => (req.parsedQuery ??= parseQuery(req.query)).get(name);

/** Headers are read straight off the request (no reader in between: the most common condition stays cheapest). */
export function headerPredicate(h: NamedValueMatchConfig): Predicate {
  const { name, invert } = h;
  const test = valueTest(h);
  return invert ? (req) => !test(req.header(name)) : (req) => test(req.header(name));
}

function routePredicate(route: RouteConfig): Predicate {
  const m = route.match;
  const checks: Predicate[] = [];
  if (m.path !== undefined) {
    const path = m.path;
    checks.push((req) => req.path === path);
  } else if (m.pathPrefix !== undefined && m.pathPrefix !== '/') {
    const prefix = m.pathPrefix;
    checks.push((req) => req.path.startsWith(prefix));
  } else if (m.pathRegex !== undefined) {
    const re = new RegExp(`^(?:${m.pathRegex})$`);
    checks.push((req) => re.test(req.path));
  }
  if (m.methods && m.methods.length > 0) {
    const methods = new Set(m.methods);
    checks.push((req) => methods.has(req.method));
  }
  if (m.grpc !== undefined) {
    const grpc = m.grpc;
    checks.push((req) => req.isGrpc === grpc);
  }
  for (const h of m.headers) checks.push(headerPredicate(h));
  if (m.sourceServices !== undefined) {
    const sources = new Set(m.sourceServices);
    checks.push((req) => sources.has(req.sourceService));
  }
  // Last: the first of these on a request parses its Cookie header or query, which the checks above may spare.
  for (const c of m.cookies ?? []) checks.push(valuePredicate(c, readCookie));
  for (const q of m.queryParams ?? []) checks.push(valuePredicate(q, readQueryParam));
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0];
  return (req) => {
    for (let i = 0; i < checks.length; i++) if (!checks[i](req)) return false;
    return true;
  };
}

export function compileRoute<C>(route: RouteConfig, index: number, resolve: (cluster: string) => C): CompiledRoute<C> {
  let pickCluster: (r: number) => C;
  let clusters: C[];
  if (route.cluster !== undefined) {
    const c = resolve(route.cluster);
    clusters = [c];
    pickCluster = () => c;
  } else {
    const table: WeightedTable<C> = buildWeightedTable(
      route.weightedClusters!.map((w) => ({ item: resolve(w.cluster), weight: w.weight })),
    );
    clusters = [...table.items];
    pickCluster = table.items.length === 1 ? () => table.items[0] : (r) => pickWeighted(table, r);
  }
  const prefix = route.match.pathPrefix;
  return {
    name: route.name ?? `route-${index}`,
    index,
    matches: routePredicate(route),
    timeoutMs: route.timeoutMs,
    rewrite: prefix !== undefined && route.prefixRewrite !== undefined ? [prefix, route.prefixRewrite] : undefined,
    setHeaders: Object.entries(route.requestHeaders?.set ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    removeHeaders: new Set((route.requestHeaders?.remove ?? []).map((h) => h.toLowerCase())),
    pickCluster,
    clusters,
    mirror:
      route.mirror === undefined
        ? undefined
        : { cluster: resolve(route.mirror.cluster), percentage: route.mirror.percentage },
  };
}

export interface RouteTable<C> {
  readonly routes: readonly CompiledRoute<C>[];
  match(req: RoutableRequest): CompiledRoute<C> | undefined;
}

/**
 * Runs of at least this many consecutive routes that each require an exact value of the same header are
 * matched through an index (one header read and one map lookup) instead of one by one.
 */
const INDEX_MIN_RUN = 4;

/** A route's first exact, not inverted, header condition: [name, value], or undefined. */
function exactHeaderKey(route: RouteConfig): readonly [string, string] | undefined {
  for (const h of route.match.headers) if (h.exact !== undefined && !h.invert) return [h.name, h.exact];
  return undefined;
}

/** One step of the match loop: a route to test, or an indexed run of routes keyed by one header's value. */
type MatchStep<C> =
  | { readonly route: CompiledRoute<C>; readonly header?: undefined }
  | { readonly header: string; readonly byValue: ReadonlyMap<string, readonly CompiledRoute<C>[]> };

/**
 * Higher priority first; equal priorities keep their order in the file. Consecutive routes that all require an
 * exact value of one header (as control's per-user or per-tenant rules do) are indexed by that value: a request
 * reads the header once and tests only the routes of its value, in their order; the others could not match.
 */
export function compileRoutes<C>(routes: readonly RouteConfig[], resolve: (cluster: string) => C): RouteTable<C> {
  const sorted = routes.map((r, i) => ({ r, i })).sort((a, b) => b.r.priority - a.r.priority || a.i - b.i);
  const compiled = sorted.map(({ r, i }) => compileRoute(r, i, resolve));
  const steps: MatchStep<C>[] = [];
  for (let i = 0; i < sorted.length;) {
    const key = exactHeaderKey(sorted[i].r);
    let end = i + 1;
    if (key !== undefined) while (end < sorted.length && exactHeaderKey(sorted[end].r)?.[0] === key[0]) end++;
    if (key === undefined || end - i < INDEX_MIN_RUN) {
      for (; i < end; i++) steps.push({ route: compiled[i] });
      continue;
    }
    const byValue = new Map<string, CompiledRoute<C>[]>();
    for (let j = i; j < end; j++) {
      const value = exactHeaderKey(sorted[j].r)![1];
      const list = byValue.get(value);
      if (list === undefined) byValue.set(value, [compiled[j]]);
      else list.push(compiled[j]);
    }
    steps.push({ header: key[0], byValue });
    i = end;
  }
  const plain = steps.every((s) => s.header === undefined);
  return {
    routes: compiled,
    match: plain
      ? (req) => {
          for (let i = 0; i < compiled.length; i++) if (compiled[i].matches(req)) return compiled[i];
          return undefined;
        }
      : (req) => {
          for (let i = 0; i < steps.length; i++) {
            const step = steps[i];
            if (step.header === undefined) {
              if (step.route.matches(req)) return step.route;
              continue;
            }
            const value = req.header(step.header);
            const candidates = value === undefined ? undefined : step.byValue.get(value);
            if (candidates === undefined) continue;
            for (let j = 0; j < candidates.length; j++) if (candidates[j].matches(req)) return candidates[j];
          }
          return undefined;
        },
  };
}
