// Authorization policies control holds per destination service (`/v1/authorization-policies`): who may call
// the service's proxies, on which paths, with which methods. Validated here at the API's edge with the proxy's
// own pattern schemas; the policies of a service go into the overlay of every proxy of that service, which adds
// them to its inbound HTTP listeners' `stages.authorization` (src/config/overlay.ts, proxy/stages/authorization.ts).
import { z } from 'zod';
import { MethodName, PathPattern, SourcePattern } from '../src/config/authorization-schema.ts';
import { NAME_PATTERN } from './store/types.ts';

export const AuthorizationPolicyRecord = z.strictObject({
  id: z.string().regex(NAME_PATTERN, 'letters, digits, . _ - only (up to 128), starting with a letter or digit'),
  /** The destination service: proxies whose `service` is this one enforce the policy on their inbound listeners. */
  service: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  action: z.enum(['allow', 'deny']),
  /** Callers' SPIFFE ids (`*` matches any run of characters); a caller without a verified certificate matches none. */
  sources: z.array(SourcePattern).min(1).max(1000).optional(),
  /** Request paths: exact, `/prefix/*`, `*.suffix` or `*`. */
  paths: z.array(PathPattern).min(1).max(1000).optional(),
  methods: z.array(MethodName).min(1).max(100).optional(),
});
export type AuthorizationPolicyRecord = z.infer<typeof AuthorizationPolicyRecord>;

/** Names a control policy takes in a proxy's list, apart from the proxy's own policies. */
export const CONTROL_POLICY_PREFIX = 'control:';

/** The policies of `service` as a proxy's listener takes them (by id, so every proxy sees one order). */
export function authorizationFor(
  service: string,
  policies: readonly AuthorizationPolicyRecord[],
): Record<string, unknown>[] {
  return policies
    .filter((p) => p.service === service)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((p) => ({
      name: `${CONTROL_POLICY_PREFIX}${p.id}`,
      action: p.action,
      ...(p.sources !== undefined && { sources: p.sources }),
      ...(p.paths !== undefined && { paths: p.paths }),
      ...(p.methods !== undefined && { methods: p.methods }),
    }));
}
