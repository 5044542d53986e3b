// `skein ca inspect`: what a certificate says (subject, SANs, validity, issuer, serial) and, given a CA
// directory, whether it chains to that CA's trust bundle through the intermediates the file or the CA holds.
import { X509Certificate } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pemBlocks } from './ca.ts';
import { caPaths, retiredPaths } from './store.ts';

export interface Inspection {
  readonly lines: readonly string[];
  /** undefined when no CA directory was given. */
  readonly chains: boolean | undefined;
}

function caIntermediates(dir: string): X509Certificate[] {
  const files = [caPaths(dir).intermediateCert];
  const retired = join(dir, 'retired');
  if (existsSync(retired))
    for (const generation of readdirSync(retired)) files.push(retiredPaths(dir, Number(generation)).intermediateCert);
  return files.filter((f) => existsSync(f)).map((f) => new X509Certificate(readFileSync(f)));
}

function signedBy(cert: X509Certificate, issuer: X509Certificate, now: Date): boolean {
  return (
    cert.checkIssued(issuer) &&
    cert.verify(issuer.publicKey) &&
    new Date(issuer.validFrom) <= now &&
    now <= new Date(issuer.validTo)
  );
}

/** Walks up from leaf through intermediates to one of roots (signatures, names and validity checked). */
export function chainsTo(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now = new Date(),
): string[] | undefined {
  if (now < new Date(leaf.validFrom) || now > new Date(leaf.validTo)) return undefined;
  const path = [leaf.subjectAltName ?? 'leaf'];
  let current = leaf;
  for (let depth = 0; depth < 5; depth++) {
    const root = roots.find((r) => signedBy(current, r, now));
    if (root !== undefined) return [...path, root.subject.replace(/\n/g, ', ')];
    const next = intermediates.find((i) => i.ca && i !== current && signedBy(current, i, now));
    if (next === undefined) return undefined;
    path.push(next.subject.replace(/\n/g, ', '));
    current = next;
  }
  return undefined;
}

export function inspectCertificate(pem: string, dir?: string): Inspection {
  const blocks = pemBlocks(pem);
  if (blocks.length === 0) throw new Error('not a PEM certificate (no BEGIN CERTIFICATE block)');
  const [leaf, ...rest] = blocks.map((block) => new X509Certificate(block));
  const lines = [
    `subject:    ${(leaf.subject ?? '').replace(/\n/g, ', ') || '(empty)'}`,
    `SANs:       ${leaf.subjectAltName ?? '(none)'}`,
    `not before: ${new Date(leaf.validFrom).toISOString()}`,
    `not after:  ${new Date(leaf.validTo).toISOString()}`,
    `issuer:     ${leaf.issuer.replace(/\n/g, ', ')}`,
    `serial:     ${leaf.serialNumber.toLowerCase().replace(/^0+(?=.)/, '')}`,
  ];
  if (dir === undefined) return { lines, chains: undefined };
  const bundle = caPaths(dir).bundle;
  if (!existsSync(bundle)) throw new Error(`${bundle} does not exist: is ${dir} a CA directory?`);
  const roots = pemBlocks(readFileSync(bundle, 'utf8')).map((block) => new X509Certificate(block));
  const now = new Date();
  const path = chainsTo(leaf, [...rest, ...caIntermediates(dir)], roots, now);
  const why =
    now > new Date(leaf.validTo) ? ' (it has expired)' : now < new Date(leaf.validFrom) ? ' (not valid yet)' : '';
  lines.push(
    path === undefined
      ? `chain:      does NOT chain to ${bundle}${why}`
      : `chain:      chains to ${bundle} (${path.join(' <- ')})`,
  );
  return { lines, chains: path !== undefined };
}
