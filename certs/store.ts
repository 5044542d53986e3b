// The CA directory's layout and its small JSON records. Private keys are written mode 0600; every file is
// written to a temporary name and renamed, so a crash never leaves half a key or half a record behind.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyType } from './keys.ts';

export interface CaPaths {
  readonly dir: string;
  readonly meta: string;
  readonly rootCert: string;
  readonly rootKey: string;
  readonly intermediateCert: string;
  readonly intermediateKey: string;
  readonly bundle: string;
  readonly revoked: string;
}

export function caPaths(dir: string): CaPaths {
  return {
    dir,
    meta: join(dir, 'ca.json'),
    rootCert: join(dir, 'root.crt'),
    rootKey: join(dir, 'root.key'),
    intermediateCert: join(dir, 'intermediate.crt'),
    intermediateKey: join(dir, 'intermediate.key'),
    bundle: join(dir, 'bundle.pem'),
    revoked: join(dir, 'revoked.json'),
  };
}

/** Where a rotated-out generation's root and intermediate go: D/retired/<generation>/. */
export function retiredPaths(dir: string, generation: number): CaPaths {
  return { ...caPaths(join(dir, 'retired', String(generation))), revoked: caPaths(dir).revoked };
}

export interface RetiredGeneration {
  readonly generation: number;
  readonly retiredAt: string;
  /** The old root stays in bundle.pem until this time: the last notAfter of a leaf its intermediate issued. */
  readonly trustedUntil: string;
}

export interface CaMeta {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  /** Counts root rotations; 1 after init. */
  readonly generation: number;
  /** The last CRL number handed out; the next CRL gets one more. */
  readonly crlNumber: number;
  /** The latest notAfter of any leaf the current intermediate issued (ISO), or undefined before the first. */
  readonly lastLeafNotAfter?: string;
  readonly retired: readonly RetiredGeneration[];
}

export interface RevokedEntry {
  /** Hexadecimal, lowercase, as printed by openssl without colons. */
  readonly serial: string;
  readonly revokedAt: string;
  readonly reason: string;
  /**
   * The generation of the intermediate that issued the certificate (its CRL lists it); null when revoked by
   * serial alone: every live intermediate's CRL lists it.
   */
  readonly generation: number | null;
}

export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function readMeta(paths: CaPaths): CaMeta {
  if (!existsSync(paths.meta))
    throw new Error(`${paths.dir} is not a CA directory (no ca.json): run \`skein ca init\``);
  return JSON.parse(readFileSync(paths.meta, 'utf8')) as CaMeta;
}

export function writeMeta(paths: CaPaths, meta: CaMeta): void {
  writeFileAtomic(paths.meta, `${JSON.stringify(meta, null, 2)}\n`, 0o644);
}

export function readRevoked(paths: CaPaths): RevokedEntry[] {
  if (!existsSync(paths.revoked)) return [];
  return JSON.parse(readFileSync(paths.revoked, 'utf8')) as RevokedEntry[];
}

export function writeRevoked(paths: CaPaths, entries: readonly RevokedEntry[]): void {
  writeFileAtomic(paths.revoked, `${JSON.stringify(entries, null, 2)}\n`, 0o644);
}
