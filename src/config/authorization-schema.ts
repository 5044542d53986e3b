// Authorization policies (Istio's AuthorizationPolicy, reduced): who may call an inbound listener, on which
// paths, with which methods. A listener's `stages.authorization`, plus the policies control pushes for the
// proxy's service (control/rules.ts → src/config/overlay.ts). Decided by src/identity/authorization.ts.
import { z } from 'zod';

const POLICY_NAME = /^[A-Za-z0-9_.:-]+$/;

/** `*` matches any run of characters (none included); without one, the value must be equal. */
export const SourcePattern = z
  .string()
  .regex(/^(spiffe:\/\/|\*)\S*$/, 'a SPIFFE id pattern: spiffe://<trust-domain>/... or one starting with *');
export const PathPattern = z.string().regex(/^[/*]\S*$/, 'a path pattern: /exact, /prefix/*, *.suffix or *');
export const MethodName = z
  .string()
  .toUpperCase()
  .regex(/^([A-Z]+|\*)$/, 'an HTTP method (GET, POST, …) or *');

export const AuthorizationPolicy = z.strictObject({
  /** Named in problems and by control; unique within a listener's list. */
  name: z.string().regex(POLICY_NAME, 'letters, digits, _ . : - only'),
  action: z.enum(['allow', 'deny']),
  /** The caller's verified SPIFFE id (its mTLS certificate) matches one of these. A request without a verified
   *  peer (plaintext, on a permissive listener) has no id and matches none of them. */
  sources: z.array(SourcePattern).min(1).max(1000).optional(),
  /** The request's path (without the query; dot segments resolved, unreserved %-escapes decoded) matches one. */
  paths: z.array(PathPattern).min(1).max(1000).optional(),
  /** The request's method is one of these. */
  methods: z.array(MethodName).min(1).max(100).optional(),
});

export const Authorization = z
  .strictObject({
    /** A policy's fields must all match (values within a field: any); absent fields match every request. */
    policies: z.array(AuthorizationPolicy).max(10_000).default([]),
    /**
     * What a request no policy matched gets. Absent: deny when there is an allow policy, else allow (Istio).
     * `deny` with no allow policy refuses everything; `allow` beside allow policies would void them (refused).
     */
    default: z.enum(['allow', 'deny']).optional(),
  })
  .superRefine((a, ctx) => {
    const seen = new Set<string>();
    a.policies.forEach((p, i) => {
      if (seen.has(p.name))
        ctx.addIssue({ code: 'custom', path: ['policies', i, 'name'], message: `duplicate policy name '${p.name}'` });
      seen.add(p.name);
    });
    if (a.default === 'allow' && a.policies.some((p) => p.action === 'allow'))
      ctx.addIssue({
        code: 'custom',
        path: ['default'],
        message: 'default allow beside allow policies would let every request through; leave default out',
      });
  });

export type AuthorizationPolicyConfig = z.infer<typeof AuthorizationPolicy>;
export type AuthorizationConfig = z.infer<typeof Authorization>;

/**
 * Where a listener's `stages.authorization` cannot apply, as issues under the listener: on an outbound listener
 * (callers are checked by the proxy they call), and a path or method on a TCP listener (it sees no request).
 */
export function authorizationPlacementIssues(l: {
  readonly direction: string;
  readonly protocol: string;
  readonly stages?: Readonly<Record<string, unknown>>;
}): { path: (string | number)[]; message: string }[] {
  const a = l.stages?.authorization as AuthorizationConfig | undefined;
  if (a === undefined) return [];
  if (l.direction !== 'inbound')
    return [{ path: ['stages', 'authorization'], message: 'authorization applies to inbound listeners only' }];
  if (l.protocol !== 'tcp') return [];
  const out: { path: (string | number)[]; message: string }[] = [];
  a.policies.forEach((p, i) => {
    for (const field of ['paths', 'methods'] as const)
      if (p[field] !== undefined)
        out.push({
          path: ['stages', 'authorization', 'policies', i, field],
          message: `a tcp listener has no requests to match ${field} on; only sources apply`,
        });
  });
  return out;
}
