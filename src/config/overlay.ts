// What control pushes to a proxy: an overlay on the proxy's own config (its file or quick form). The overlay
// holds the routes control's traffic rules compile to and the clusters they send to; the proxy puts the routes
// in front of every outbound HTTP listener's own routes and adds (or replaces, by name) the clusters, then
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
});
export type Overlay = z.infer<typeof Overlay>;

/** Names the overlay's content (its routes and clusters, not its version): equal content, equal hash. */
export function overlayHash(overlay: Pick<Overlay, 'routes' | 'clusters'>): string {
  return createHash('sha256')
    .update(canonicalJson({ routes: overlay.routes, clusters: overlay.clusters }))
    .digest('hex');
}

/**
 * The proxy's effective config: `base` with the overlay's routes in front of each outbound HTTP listener's
 * routes and its clusters added (an overlay cluster replaces the base's cluster of the same name). Throws a
 * ConfigError naming each field path and reason when the result is not a valid config.
 */
export function applyOverlay(base: Config, overlay: Overlay | null, source = 'control snapshot'): Config {
  if (overlay === null || (overlay.routes.length === 0 && overlay.clusters.length === 0)) return base;
  const replaced = new Set(overlay.clusters.map((c) => c.name));
  const merged = {
    ...base,
    listeners: base.listeners.map((l) =>
      l.direction === 'outbound' && l.protocol === 'http' ? { ...l, routes: [...overlay.routes, ...l.routes] } : l,
    ),
    clusters: [...base.clusters.filter((c) => !replaced.has(c.name)), ...overlay.clusters],
  };
  return parseConfig(merged, source);
}
