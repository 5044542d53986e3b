// The push stream's trust message (control/push.ts → proxy/control-client.ts): the mesh's trust bundle and the
// CRLs of its live intermediates, named by one hash so a proxy can tell a repeat from a change. Shared by both
// ends so they agree on the shape and on what the hash covers.
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** sha256 (hex) of bundle + '\n' + crl: what a trust message's `hash` must be. */
export function trustHash(bundle: string, crl: string): string {
  return createHash('sha256').update(`${bundle}\n${crl}`).digest('hex');
}

export const TrustMessage = z.strictObject({
  type: z.literal('trust'),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** PEM: the roots to trust (several during a root rotation's overlap). */
  bundle: z.string().regex(/-----BEGIN CERTIFICATE-----/, 'must hold at least one PEM certificate'),
  /** PEM: one X509 CRL per live intermediate. */
  crl: z.string().regex(/-----BEGIN X509 CRL-----/, 'must hold at least one PEM X509 CRL'),
});
export type TrustMessage = z.infer<typeof TrustMessage>;
