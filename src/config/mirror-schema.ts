// A route's request mirroring (shadowing): a share of its requests is copied to another cluster, fire and forget
// (proxy/stages/mirror.ts). The cluster must exist: Config's cross-reference check names the field.
import { z } from 'zod';

export const MirrorPolicy = z.strictObject({
  /** The shadow cluster; its answers are read and dropped, its failures never reach the client. */
  cluster: z.string().min(1),
  /** Share of the route's requests copied, 0–100 (each request draws at random). */
  percentage: z.number().min(0).max(100).default(100),
});

export type MirrorPolicyConfig = z.infer<typeof MirrorPolicy>;
