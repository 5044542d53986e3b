// Authorization decisions, as Istio's AuthorizationPolicy makes them: a matching deny policy refuses the
// request; otherwise a matching allow policy lets it through; otherwise the default (deny when any allow
// policy exists, else allow). A policy matches when each of its fields does (sources AND paths AND methods),
// a field when any of its values does. Compiled once per listener and Snapshot; a decision allocates nothing.
import type { AuthorizationConfig, AuthorizationPolicyConfig } from '../config/authorization-schema.ts';
import { compilePatterns, type PatternTest } from './patterns.ts';

export interface AuthorizationDecision {
  readonly allowed: boolean;
  /** The policy that decided; '' when the default did. */
  readonly policy: string;
}

interface CompiledPolicy {
  readonly sources: PatternTest | null;
  readonly paths: PatternTest | null;
  readonly methods: ReadonlySet<string> | null;
  readonly decision: AuthorizationDecision;
}

/** What one request is judged on. */
export interface AuthorizationRequest {
  /** The verified peer's SPIFFE id; null (or '') when the connection has no verified peer. */
  readonly sourceId: string | null;
  readonly method: string;
  /** Path without the query, as received. */
  readonly path: string;
}

const ALLOWED_BY_DEFAULT: AuthorizationDecision = Object.freeze({ allowed: true, policy: '' });
const DENIED_BY_DEFAULT: AuthorizationDecision = Object.freeze({ allowed: false, policy: '' });

function compilePolicy(p: AuthorizationPolicyConfig): CompiledPolicy {
  return {
    sources: p.sources === undefined ? null : compilePatterns(p.sources),
    paths: p.paths === undefined ? null : compilePatterns(p.paths),
    methods: p.methods === undefined || p.methods.includes('*') ? null : new Set(p.methods),
    decision: Object.freeze({ allowed: p.action === 'allow', policy: p.name }),
  };
}

function matches(p: CompiledPolicy, sourceId: string | null, method: string, path: string): boolean {
  if (p.methods !== null && !p.methods.has(method)) return false;
  if (p.sources !== null && (sourceId === null || sourceId === '' || !p.sources(sourceId))) return false;
  if (p.paths !== null && !p.paths(path)) return false;
  return true;
}

export class CompiledAuthorization {
  readonly #deny: readonly CompiledPolicy[];
  readonly #allow: readonly CompiledPolicy[];
  readonly #otherwise: AuthorizationDecision;
  /** Some policy reads the path: only then is a path normalized. */
  readonly #readsPath: boolean;

  constructor(config: AuthorizationConfig) {
    const compiled = config.policies.map(compilePolicy);
    this.#deny = compiled.filter((p) => !p.decision.allowed);
    this.#allow = compiled.filter((p) => p.decision.allowed);
    const def = config.default ?? (this.#allow.length > 0 ? 'deny' : 'allow');
    this.#otherwise = def === 'allow' ? ALLOWED_BY_DEFAULT : DENIED_BY_DEFAULT;
    this.#readsPath = compiled.some((p) => p.paths !== null);
  }

  /** Nothing to decide: no policy, and the default lets everything through. */
  get allowsEverything(): boolean {
    return this.#deny.length === 0 && this.#allow.length === 0 && this.#otherwise.allowed;
  }

  decide(sourceId: string | null, method: string, rawPath: string): AuthorizationDecision {
    const path = this.#readsPath ? normalizePath(rawPath) : rawPath;
    const deny = this.#deny;
    for (let i = 0; i < deny.length; i++) if (matches(deny[i], sourceId, method, path)) return deny[i].decision;
    const allow = this.#allow;
    for (let i = 0; i < allow.length; i++) if (matches(allow[i], sourceId, method, path)) return allow[i].decision;
    return this.#otherwise;
  }
}

const PERCENT = 37;
const SLASH = 47;
const DOT = 46;

/**
 * The path policies are matched against, so a deny on `/admin/*` is not passed by `/%61dmin/x`, `/a/../admin/x`
 * or `//admin/x`: percent-escapes of unreserved characters decoded (RFC 3986 §2.3; `%2F` stays), `.` and `..`
 * segments resolved (§5.2.4), runs of slashes merged. The request goes upstream as it came. The same string when
 * the path has none of `%`, `/.`, `//` (nearly every request: one scan, no copy).
 */
export function normalizePath(path: string): string {
  let odd = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (
      c === PERCENT ||
      (c === SLASH && i + 1 < path.length && (path.charCodeAt(i + 1) === DOT || path.charCodeAt(i + 1) === SLASH))
    ) {
      odd = true;
      break;
    }
  }
  if (!odd) return path;
  const decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (m: string, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9._~-]/.test(ch) ? ch : m.toUpperCase();
  });
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === '..') out.pop();
    else if (s !== '.' && s !== '') out.push(s);
  }
  const last = segments[segments.length - 1];
  const trailing = segments.length > 1 && (last === '' || last === '.' || last === '..') && out.length > 0;
  return `/${out.join('/')}${trailing ? '/' : ''}`;
}
