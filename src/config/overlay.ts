// What control pushes to a proxy: an overlay on the proxy's own config (its file or quick form). The overlay
// holds the routes control's traffic rules compile to and the clusters they send to, and the authorization
// policies of the proxy's service; the proxy puts the routes in front of every outbound HTTP listener's own
// routes, adds (or replaces, by name) the clusters and adds the policies to every inbound HTTP listener's, then
// validates the result with the one config schema. An overlay it cannot apply is refused whole (NACK) and the
// running config stays. Overlays are plain JSON; overlayHash names the content, so equal ones are not re-sent.
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { canonicalJson } from './compile.ts';
import { parseConfig } from './load.ts';
import type { Config } from './schema.ts';

export const Overlay = z.strictObject({
  /** Control's config version this overlay was computed at (one more on every write to control's model). */
  version: z.number().int().min(0),
  /** Routes for outbound HTTP listeners, highest priority first as in any route list (validated on merge). */
  routes: z.array(z.record(z.string(), z.unknown())).default([]),
  /** Clusters the routes send to that the proxy's own config may not have (validated on merge). */
  clusters: z.array(z.record(z.string(), z.unknown())).default([]),
  /** Authorization policies for inbound HTTP listeners (authorization-schema.ts; validated on merge). Absent
   *  when control has none for the service, so an overlay without them is what it was before they existed. */
  authorization: z.array(z.record(z.string(), z.unknown())).optional(),
});
export type Overlay = z.infer<typeof Overlay>;

/** Names the overlay's content (its routes, clusters and policies, not its version): equal content, equal hash.
 *  No policies hash as they did before overlays could carry them. */
export function overlayHash(overlay: Pick<Overlay, 'routes' | 'clusters' | 'authorization'>): string {
  const authorization = overlay.authorization ?? [];
  return createHash('sha256')
    .update(
      canonicalJson({
        routes: overlay.routes,
        clusters: overlay.clusters,
        ...(authorization.length > 0 && { authorization }),
      }),
    )
    .digest('hex');
}

/**
 * The proxy's effective config: `base` with the overlay's routes in front of each outbound HTTP listener's
 * routes, its clusters added (an overlay cluster replaces the base's cluster of the same name) and its
 * authorization policies after each inbound HTTP listener's own (its `default` stays). Throws a ConfigError
 * naming each field path and reason when the result is not a valid config.
 */
export function applyOverlay(base: Config, overlay: Overlay | null, source = 'control snapshot'): Config {
  const policies = overlay?.authorization ?? [];
  if (overlay === null || (overlay.routes.length === 0 && overlay.clusters.length === 0 && policies.length === 0))
    return base;
  const replaced = new Set(overlay.clusters.map((c) => c.name));
  const merged = {
    ...base,
    listeners: base.listeners.map((l) => {
      if (l.protocol !== 'http') return l;
      if (l.direction === 'outbound') return { ...l, routes: [...overlay.routes, ...l.routes] };
      if (policies.length === 0) return l;
      const own = l.stages?.authorization as { policies: unknown[] } | undefined;
      const authorization = { ...own, policies: [...(own?.policies ?? []), ...policies] };
      return { ...l, stages: { ...l.stages, authorization } };
    }),
    clusters: [...base.clusters.filter((c) => !replaced.has(c.name)), ...overlay.clusters],
  };
  return parseConfig(merged, source);
}
