// The one traffic rule a canary writes per service, `canary-<service>`: the split between the two versions at the
// current stage, and at the end everything on one of them.
//
// Which requests the rule takes: those whose Host header names the service (`app`, `app:8080`), a whole-value
// regex condition on `host`. Apps reach a service through their sidecar by its name, so the Host header is what
// says "this call is for app" in the existing route model (which has no destination-service match), and it
// leaves the proxies' other traffic alone. A `host` condition reads HTTP/2's :authority too.
import type { CanaryRecord } from './canary-schema.ts';

/** Above any rule people are likely to write, so the split is what the service's traffic meets first. */
export const CANARY_RULE_PRIORITY = 1_000_000;

export function canaryRuleId(service: string): string {
  return `canary-${service}`;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The rule that sends `weight` % of the service's traffic to `to` and the rest to `from`. */
export function canaryRule(c: Pick<CanaryRecord, 'service' | 'from' | 'to'>, weight: number): Record<string, unknown> {
  const destinations =
    weight >= 100
      ? [{ service: c.service, version: c.to, weight: 100 }]
      : weight <= 0
        ? [{ service: c.service, version: c.from, weight: 100 }]
        : [
            { service: c.service, version: c.from, weight: 100 - weight },
            { service: c.service, version: c.to, weight },
          ];
  return {
    id: canaryRuleId(c.service),
    name: `canary ${c.service}: ${weight}% to ${c.to}`,
    priority: CANARY_RULE_PRIORITY,
    conditions: [{ type: 'header', field: 'host', operator: 'regex', value: `${escapeRegex(c.service)}(:[0-9]+)?` }],
    destinations,
  };
}
