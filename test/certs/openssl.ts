// Test helpers: run the real openssl on the CA's output, and make throwaway directories.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function openssl(...args: string[]): Run {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'skein-ca-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A fresh temporary directory per test, with the CA directory path inside it (`<dir>/ca`, not created), removed
 * after each test: `set` hears both before each test.
 */
export function eachCaDir(set: (dir: string, ca: string) => void): void {
  let cleanup: () => void = () => {};
  beforeEach(() => {
    const t = tempDir();
    cleanup = t.cleanup;
    set(t.dir, join(t.dir, 'ca'));
  });
  afterEach(() => cleanup());
}

/** Writes only the first certificate of a chain file (the leaf) to path, for `openssl verify`. */
export function writeLeaf(chainPem: string, path: string): string {
  const leaf = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
  if (leaf === undefined) throw new Error('no certificate in chain');
  writeFileSync(path, `${leaf}\n`);
  return path;
}

/** An openssl-made CSR with an EC key (P-256 unless told) and the given URI SAN; returns [csr path, key path]. */
export function opensslCsr(dir: string, name: string, uri: string, cn = 'x', curve = 'P-256'): [string, string] {
  const csr = join(dir, `${name}.csr`);
  const key = join(dir, `${name}.key`);
  const r = openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    `ec_paramgen_curve:${curve}`,
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    `/CN=${cn}`,
    '-addext',
    `subjectAltName=URI:${uri}`,
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return [csr, key];
}

export function read(path: string): string {
  return readFileSync(path, 'utf8');
}
