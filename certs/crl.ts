// Revocation: `revoke` records a certificate this CA issued in D/revoked.json; `createCrl` turns the records into
// X.509 v2 CRLs, one per intermediate that still has leaves in use (the current one and any retired generation
// still in the trust bundle), each signed by that intermediate and numbered from one counter that only grows.
import { existsSync } from 'node:fs';
import { type Signer, loadSigner, pemBlocks, serialHex } from './ca.ts';
import {
  type CaMeta,
  caPaths,
  readMeta,
  readRevoked,
  type RevokedEntry,
  retiredPaths,
  writeMeta,
  writeRevoked,
} from './store.ts';
import {
  AuthorityKeyIdentifierExtension,
  Extension,
  X509Certificate,
  X509CrlGenerator,
  X509CrlReason,
} from './x509.ts';
import { signingAlgorithm } from './keys.ts';

export const DEFAULT_CRL_VALID_HOURS = 24;
const OID_CRL_NUMBER = '2.5.29.20';

export const REVOCATION_REASONS = Object.keys(X509CrlReason).filter((k) => Number.isNaN(Number(k)));

/** Lowercase hex without leading zeros: the same serial however a tool printed it. */
export function normalizeSerial(serial: string): string {
  return serial
    .replace(/:/g, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');
}

/** The intermediates whose leaves may still be in use: the current generation, then retired ones still trusted. */
export async function liveSigners(dir: string, meta: CaMeta, now = Date.now()): Promise<Map<number, Signer>> {
  const signers = new Map<number, Signer>();
  signers.set(meta.generation, await loadSigner(caPaths(dir), meta));
  for (const old of meta.retired) {
    const paths = retiredPaths(dir, old.generation);
    if (Date.parse(old.trustedUntil) > now && existsSync(paths.intermediateKey))
      signers.set(old.generation, await loadSigner(paths, meta));
  }
  return signers;
}

/** Which live intermediate issued cert (name and signature), or undefined when none of them did. */
export async function findIssuer(cert: X509Certificate, signers: Map<number, Signer>): Promise<number | undefined> {
  for (const [generation, signer] of signers) {
    if (cert.issuer !== signer.certificate.subject) continue;
    if (await cert.verify({ publicKey: signer.certificate.publicKey, signatureOnly: true })) return generation;
  }
  return undefined;
}

function checkReason(reason: string): void {
  if (!REVOCATION_REASONS.includes(reason))
    throw new Error(`unknown revocation reason '${reason}' (one of ${REVOCATION_REASONS.join(', ')})`);
}

/** Adds an entry to D/revoked.json unless its serial is there already (then answers the existing one). */
function record(dir: string, entry: RevokedEntry): RevokedEntry {
  const paths = caPaths(dir);
  const revoked = readRevoked(paths);
  const existing = revoked.find((e) => e.serial === entry.serial);
  if (existing !== undefined) return existing;
  writeRevoked(paths, [...revoked, entry]);
  return entry;
}

/** Records the revocation of the first certificate in certPem; refuses a certificate this CA did not issue. */
export async function revoke(dir: string, certPem: string, reason = 'unspecified'): Promise<RevokedEntry> {
  checkReason(reason);
  const block = pemBlocks(certPem)[0];
  if (block === undefined) throw new Error('not a PEM certificate (no BEGIN CERTIFICATE block)');
  const cert = new X509Certificate(block);
  const paths = caPaths(dir);
  const meta = readMeta(paths);
  const generation = await findIssuer(cert, await liveSigners(dir, meta));
  if (generation === undefined)
    throw new Error(`the certificate was not issued by this CA's intermediate (issuer ${cert.issuer})`);
  const serial = normalizeSerial(cert.serialNumber);
  return record(dir, { serial, revokedAt: new Date().toISOString(), reason, generation });
}

/**
 * Records the revocation of a serial (hex, any case, colons allowed) without the certificate: which intermediate
 * issued it is unknown, so it goes on the CRL of every live intermediate (generation null). The CA's serials are
 * 128 random bits, so listing one on an intermediate that never issued it revokes nothing else.
 */
export function revokeSerial(dir: string, serial: string, reason = 'unspecified'): RevokedEntry {
  checkReason(reason);
  const normal = normalizeSerial(serial.trim());
  if (!/^[0-9a-f]{1,40}$/.test(normal))
    throw new Error(`'${serial}' is not a serial number (hexadecimal, up to 20 bytes)`);
  readMeta(caPaths(dir)); // a CA directory, or a clear error
  return record(dir, { serial: normal, revokedAt: new Date().toISOString(), reason, generation: null });
}

/** DER INTEGER of a non-negative number (the CRL number extension's value). */
function derInteger(value: number): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if (bytes[0] & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}

export interface CrlResult {
  /** One PEM CRL per live intermediate, current generation first. */
  readonly pem: string;
  readonly crlNumber: number;
  readonly revokedCount: number;
}

/** Signs fresh CRLs (thisUpdate now, nextUpdate validHours later) with the next CRL number. */
export async function createCrl(dir: string, validHours = DEFAULT_CRL_VALID_HOURS): Promise<CrlResult> {
  if (!(validHours > 0) || !Number.isFinite(validHours))
    throw new Error(`CRL validity must be hours > 0, got ${validHours}`);
  const paths = caPaths(dir);
  const meta = readMeta(paths);
  const crlNumber = meta.crlNumber + 1;
  const revoked = readRevoked(paths);
  const thisUpdate = new Date();
  const nextUpdate = new Date(thisUpdate.getTime() + validHours * 3_600_000);
  const pems: string[] = [];
  let revokedCount = 0;
  for (const [generation, signer] of await liveSigners(dir, meta, thisUpdate.getTime())) {
    const entries = revoked
      .filter((entry) => entry.generation === generation || entry.generation === null)
      .map((entry) => ({
        serialNumber: serialHex(entry.serial),
        revocationDate: new Date(entry.revokedAt),
        reason: X509CrlReason[entry.reason as keyof typeof X509CrlReason],
      }));
    revokedCount += entries.length;
    const crl = await X509CrlGenerator.create({
      issuer: signer.certificate.subjectName,
      thisUpdate,
      nextUpdate,
      entries,
      signingKey: signer.key,
      signingAlgorithm: signingAlgorithm(meta.keyType),
      extensions: [
        await AuthorityKeyIdentifierExtension.create(signer.certificate, false),
        new Extension(OID_CRL_NUMBER, false, derInteger(crlNumber)),
      ],
    });
    // OpenSSL and every other reader expect the RFC 7468 label X509 CRL, not the plain CRL this library writes.
    pems.push(crl.toString('pem').replace(/-----(BEGIN|END) CRL-----/g, '-----$1 X509 CRL-----'));
  }
  writeMeta(paths, { ...meta, crlNumber });
  return { pem: `${pems.join('\n')}\n`, crlNumber, revokedCount };
}
