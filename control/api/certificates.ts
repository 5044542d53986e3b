// Certificates for proxies, signed by the mesh's CA (certs/): a proxy POSTs a CSR with the bootstrap token and
// gets its chain back (its private key never leaves it); anyone reads the trust bundle and the CRL; a writer
// (API token or an mTLS writer identity) revokes certificates, and the new CRL reaches every proxy on the push
// stream. Every CA write runs through the CA's queue (control/ca.ts), one at a time.
import type http from 'node:http';
import { z } from 'zod';
import { IdentityMismatch, issueFromCsr } from '../../certs/ca.ts';
import { REVOCATION_REASONS, revoke, revokeSerial } from '../../certs/crl.ts';
import { caPaths, readRevoked } from '../../certs/store.ts';
import type { ControlCa } from '../ca.ts';
import { ApiError, parseWith, type Route } from '../http.ts';
import { PEM_TYPE } from '../openapi.ts';
import type { TrustWatcher } from '../trust.ts';

const CertificateRequest = z.strictObject({
  csr: z
    .string()
    .min(1)
    .max(64 * 1024),
  dnsNames: z.array(z.string().min(1).max(253)).max(100).optional(),
});

const IssuedChain = z.object({
  chain: z.string().describe('PEM: the leaf, then the intermediate that signed it'),
  serial: z.string().describe('Hexadecimal, lowercase'),
  notAfter: z.string().describe('ISO 8601'),
  spiffeId: z.string(),
});

export interface CertificateRouteOptions {
  readonly ca: ControlCa;
  /** The bundle and CRL the proxies are pushed; the read routes answer the same. */
  readonly trust: TrustWatcher;
  /** Leaf validity in hours. */
  readonly certHours: number;
  /** Checks the bootstrap token (Authorization: Bearer); throws a 401 ApiError. */
  readonly authorize: (req: http.IncomingMessage) => string | Promise<string>;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

const Revocation = z
  .strictObject({
    serial: z
      .string()
      .regex(/^(0x)?[0-9A-Fa-f:]{1,60}$/, 'hexadecimal, as openssl prints it (colons allowed)')
      .optional()
      .describe("The serial of a certificate this CA issued; it goes on every live intermediate's CRL"),
    certificate: z
      .string()
      .min(1)
      .max(64 * 1024)
      .optional()
      .describe('PEM: the certificate (the first block of a chain); it must have been issued by this CA'),
    reason: z
      .enum(REVOCATION_REASONS as [string, ...string[]])
      .default('unspecified')
      .describe('An RFC 5280 reason: keyCompromise, superseded, cessationOfOperation, ...'),
  })
  .refine((r) => (r.serial === undefined) !== (r.certificate === undefined), {
    message: 'give exactly one of serial and certificate',
    path: ['serial'],
  });

const RevokedRecord = z.object({
  serial: z.string().describe('Hexadecimal, lowercase, no leading zeros'),
  revokedAt: z.string().describe('ISO 8601'),
  reason: z.string(),
  generation: z
    .number()
    .nullable()
    .describe("The issuing intermediate's generation; null when revoked by serial (listed on every live CRL)"),
});

const RevocationAnswer = RevokedRecord.extend({
  alreadyRevoked: z.boolean().describe('true when the serial was revoked before: nothing changed'),
  crlNumber: z.number().describe('The number of the CRL that now lists it (pushed to the proxies)'),
});

/** The actor a service-account token review answers (control/kubernetes/token-review.ts). */
export const SERVICE_ACCOUNT_ACTOR = /^system:serviceaccount:([a-z0-9.-]+):([a-z0-9.-]+)$/;

/** The SPIFFE id a service-account caller may have; undefined for other callers (the bootstrap token). */
function serviceAccountId(actor: string | undefined, trustDomain: string): string | undefined {
  const m = SERVICE_ACCOUNT_ACTOR.exec(actor ?? '');
  return m === null ? undefined : `spiffe://${trustDomain}/ns/${m[1]}/sa/${m[2]}`;
}

export function certificateRoutes(opts: CertificateRouteOptions): Route[] {
  const { ca, trust } = opts;
  return [
    {
      method: 'POST',
      path: '/v1/certificates',
      open: true,
      authorize: opts.authorize,
      doc: {
        summary:
          "Sign a proxy's CSR (PEM, one URI SAN: a SPIFFE id of the CA's trust domain); needs the bootstrap token, " +
          'or (control with --kubernetes) a Kubernetes service-account token, which gets only its own id',
        body: CertificateRequest,
        response: IssuedChain,
      },
      handle: async (req) => {
        const body = parseWith(CertificateRequest, req.body);
        let issued;
        try {
          // A caller proven by a Kubernetes service-account token gets only its own identity.
          const requireId = serviceAccountId(req.actor, ca.trustDomain);
          issued = await ca.run(() =>
            issueFromCsr(ca.dir, body.csr, { dnsNames: body.dnsNames, validHours: opts.certHours, requireId }),
          );
        } catch (err) {
          // System errors (the CA directory unreadable) are control's problem, not the caller's: a 500.
          if ((err as NodeJS.ErrnoException).code !== undefined || !(err instanceof Error)) throw err;
          if (/outlive the intermediate/.test(err.message)) throw new ApiError('SKEIN_UNAVAILABLE', err.message);
          if (err instanceof IdentityMismatch) throw new ApiError('SKEIN_FORBIDDEN', err.message);
          throw new ApiError('SKEIN_BAD_REQUEST', `cannot sign the certificate request: ${err.message}`);
        }
        opts.log(
          'info',
          `issued certificate serial ${issued.serial} for ${issued.spiffeId} (until ${issued.notAfter.toISOString()}, by ${req.actor ?? 'anonymous'})`,
        );
        return {
          status: 201,
          json: {
            chain: issued.chainPem,
            serial: issued.serial,
            notAfter: issued.notAfter.toISOString(),
            spiffeId: issued.spiffeId,
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/trust-bundle',
      doc: { summary: "The roots peers trust (the CA's bundle.pem, PEM)", response: 'pem' },
      handle: async () => ({ body: (await trust.refresh()).bundle, contentType: PEM_TYPE }),
    },
    {
      method: 'GET',
      path: '/v1/crl',
      doc: {
        summary:
          'The CRLs of the intermediates in use (PEM), re-signed when revocations or the intermediate change, and hourly',
        response: 'pem',
      },
      handle: async () => ({ body: (await trust.refresh()).crl, contentType: PEM_TYPE }),
    },
    {
      method: 'GET',
      path: '/v1/certificates/revocations',
      doc: { summary: "The CA's revocations (D/revoked.json), oldest first", response: z.array(RevokedRecord) },
      handle: async () => ({ json: (await trust.refresh()).revocations }),
    },
    {
      method: 'POST',
      path: '/v1/certificates/revocations',
      doc: {
        summary: 'Revoke a certificate this CA issued, by serial or PEM; the new CRL is pushed to every proxy at once',
        body: Revocation,
        response: RevocationAnswer,
      },
      handle: async (req) => {
        const body = parseWith(Revocation, req.body);
        const { entry, already } = await ca.run(async () => {
          const before = new Set(readRevoked(caPaths(ca.dir)).map((e) => e.serial));
          let e;
          try {
            e =
              body.certificate !== undefined
                ? await revoke(ca.dir, body.certificate, body.reason)
                : revokeSerial(ca.dir, (body.serial ?? '').replace(/^0x/i, ''), body.reason);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== undefined || !(err instanceof Error)) throw err;
            throw new ApiError('SKEIN_BAD_REQUEST', `cannot revoke: ${err.message}`);
          }
          return { entry: e, already: before.has(e.serial) };
        });
        // Signs the new CRL and pushes it (the trust watcher's listeners) before answering.
        const state = await trust.refresh();
        if (!already)
          opts.log(
            'info',
            `revoked certificate serial ${entry.serial} (${entry.reason}) by ${req.actor ?? 'anonymous'}; CRL number ${state.crlNumber} pushed`,
          );
        return {
          status: already ? 200 : 201,
          json: { ...entry, alreadyRevoked: already, crlNumber: state.crlNumber },
        };
      },
    },
  ];
}
