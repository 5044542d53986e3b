// Root rotation. `rotateRoot` makes a new root and intermediate (the next generation) and retires the old pair
// to D/retired/<generation>/. The overlap rule: an old root stays in D/bundle.pem until the last leaf its
// intermediate issued has expired (recorded as trustedUntil), so every certificate in use keeps verifying;
// each rotation and each `writeBundle` drop roots whose time has passed.
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createGeneration } from './ca.ts';
import {
  type CaMeta,
  caPaths,
  ensureDir,
  readMeta,
  type RetiredGeneration,
  retiredPaths,
  writeFileAtomic,
  writeMeta,
} from './store.ts';

/** The roots a peer should trust now: the current root, then every retired root still within its overlap. */
export function trustedRootPems(dir: string, meta: CaMeta, now = Date.now()): string[] {
  const pems = [readFileSync(caPaths(dir).rootCert, 'utf8')];
  for (const old of meta.retired)
    if (Date.parse(old.trustedUntil) > now) pems.push(readFileSync(retiredPaths(dir, old.generation).rootCert, 'utf8'));
  return pems;
}

/** Rewrites D/bundle.pem from the current and still-trusted roots; returns how many roots it holds. */
export function writeBundle(dir: string, meta: CaMeta = readMeta(caPaths(dir))): number {
  const pems = trustedRootPems(dir, meta);
  writeFileAtomic(caPaths(dir).bundle, pems.map((pem) => pem.trimEnd() + '\n').join(''), 0o644);
  return pems.length;
}

const KEY_FILES = ['rootCert', 'rootKey', 'intermediateCert', 'intermediateKey'] as const;

export async function rotateRoot(dir: string): Promise<CaMeta> {
  const paths = caPaths(dir);
  const meta = readMeta(paths);
  const generation = meta.generation + 1;
  // The new pair is made beside the CA first (key generation is the slow, fallible part); only renames follow.
  const staging = caPaths(join(dir, `.staging-${generation}`));
  rmSync(staging.dir, { recursive: true, force: true });
  await createGeneration(staging, meta.trustDomain, meta.keyType, generation);
  const old = retiredPaths(dir, meta.generation);
  ensureDir(old.dir);
  for (const file of KEY_FILES) renameSync(paths[file], old[file]);
  for (const file of KEY_FILES) renameSync(staging[file], paths[file]);
  rmSync(staging.dir, { recursive: true, force: true });
  const now = new Date();
  const retired: RetiredGeneration = {
    generation: meta.generation,
    retiredAt: now.toISOString(),
    trustedUntil:
      meta.lastLeafNotAfter !== undefined && Date.parse(meta.lastLeafNotAfter) > now.getTime()
        ? meta.lastLeafNotAfter
        : now.toISOString(),
  };
  const next: CaMeta = {
    trustDomain: meta.trustDomain,
    keyType: meta.keyType,
    generation,
    crlNumber: meta.crlNumber,
    retired: [...meta.retired.filter((r) => Date.parse(r.trustedUntil) > now.getTime()), retired],
  };
  writeMeta(paths, next);
  writeBundle(dir, next);
  return next;
}
