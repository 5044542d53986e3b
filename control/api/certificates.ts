// Certificates for proxies, signed by the mesh's CA (certs/): a proxy POSTs a CSR with the bootstrap token and
// gets its chain back (its private key never leaves it); anyone reads the trust bundle and the CRL. Issuance and
// CRL signing run one at a time, since both rewrite the CA directory's ca.json.
import { readFileSync, statSync } from 'node:fs';
import type http from 'node:http';
import { z } from 'zod';
import { issueFromCsr } from '../../certs/ca.ts';
import { createCrl } from '../../certs/crl.ts';
import { caPaths } from '../../certs/store.ts';
import { ApiError, parseWith, type Route } from '../http.ts';
import { PEM_TYPE } from '../openapi.ts';

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

/** A CRL answered again within this long of its signing, unless revocations or the intermediate changed. */
const CRL_REUSE_MS = 60 * 60_000;

export interface CertificateRouteOptions {
  readonly caDir: string;
  /** Leaf validity in hours. */
  readonly certHours: number;
  /** Checks the bootstrap token (Authorization: Bearer); throws a 401 ApiError. */
  readonly authorize: (req: http.IncomingMessage) => string;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

export function certificateRoutes(opts: CertificateRouteOptions): Route[] {
  const paths = caPaths(opts.caDir);
  let queue: Promise<unknown> = Promise.resolve();
  /** Runs CA operations one at a time, in arrival order. */
  const serialized = <T>(work: () => Promise<T>): Promise<T> => {
    const run = queue.then(work, work);
    queue = run.catch(() => undefined);
    return run;
  };
  let crl: { pem: string; signedAt: number; key: string } | undefined;
  const crlKey = () => `${mtime(paths.revoked)}:${mtime(paths.intermediateCert)}`;

  return [
    {
      method: 'POST',
      path: '/v1/certificates',
      open: true,
      authorize: opts.authorize,
      doc: {
        summary:
          "Sign a proxy's CSR (PEM, one URI SAN: a SPIFFE id of the CA's trust domain); needs the bootstrap token",
        body: CertificateRequest,
        response: IssuedChain,
      },
      handle: async (req) => {
        const body = parseWith(CertificateRequest, req.body);
        let issued;
        try {
          issued = await serialized(() =>
            issueFromCsr(opts.caDir, body.csr, { dnsNames: body.dnsNames, validHours: opts.certHours }),
          );
        } catch (err) {
          // System errors (the CA directory unreadable) are control's problem, not the caller's: a 500.
          if ((err as NodeJS.ErrnoException).code !== undefined || !(err instanceof Error)) throw err;
          if (/outlive the intermediate/.test(err.message)) throw new ApiError('SKEIN_UNAVAILABLE', err.message);
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
      handle: () => ({ body: readFileSync(paths.bundle, 'utf8'), contentType: PEM_TYPE }),
    },
    {
      method: 'GET',
      path: '/v1/crl',
      doc: {
        summary: 'The CRLs of the intermediates in use (PEM), re-signed when revocations change or after an hour',
        response: 'pem',
      },
      handle: async () => {
        const pem = await serialized(async () => {
          const key = crlKey();
          if (crl === undefined || crl.key !== key || Date.now() - crl.signedAt > CRL_REUSE_MS) {
            const result = await createCrl(opts.caDir);
            crl = { pem: result.pem, signedAt: Date.now(), key };
          }
          return crl.pem;
        });
        return { body: pem, contentType: PEM_TYPE };
      },
    },
  ];
}
