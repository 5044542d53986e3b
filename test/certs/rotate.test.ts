import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initCa, issueForId } from '../../certs/ca.ts';
import { createCrl, revoke } from '../../certs/crl.ts';
import { rotateRoot } from '../../certs/rotate.ts';
import { openssl, eachCaDir, writeLeaf } from './openssl.ts';

describe('root rotation', () => {
  let dir: string;
  let ca: string;
  eachCaDir((d, c) => {
    dir = d;
    ca = c;
  });

  function verifyWith(caFile: string, chainPem: string, name: string, extra: string[] = []) {
    const chain = join(dir, `${name}-chain.pem`);
    writeFileSync(chain, chainPem);
    return openssl(
      'verify',
      ...extra,
      '-CAfile',
      caFile,
      '-untrusted',
      chain,
      writeLeaf(chainPem, join(dir, `${name}.pem`)),
    );
  }

  it('keeps the old root in bundle.pem so leaves of the old and the new intermediate both verify', async () => {
    await initCa(ca);
    const oldRoot = readFileSync(join(ca, 'root.crt'), 'utf8');
    const before = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/old');
    const meta = await rotateRoot(ca);
    expect(meta.generation).toBe(2);
    const after = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/new');

    const bundle = join(ca, 'bundle.pem');
    const roots = readFileSync(bundle, 'utf8');
    expect(roots.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(roots).toContain(oldRoot.trim());
    expect(readFileSync(join(ca, 'root.crt'), 'utf8')).not.toBe(oldRoot);
    expect(verifyWith(bundle, before.chainPem, 'old').stdout).toMatch(/: OK$/m);
    expect(verifyWith(bundle, after.chainPem, 'new').stdout).toMatch(/: OK$/m);
    // The new intermediate chains to the new root only; the old leaf needs the old root.
    expect(verifyWith(join(ca, 'root.crt'), before.chainPem, 'old-vs-new-root').status).not.toBe(0);
    expect(openssl('x509', '-noout', '-issuer', '-in', join(dir, 'new.pem')).stdout).toMatch(/Intermediate CA 2/);
  });

  it('drops a retired root that has no certificate left in use at the next rotation', async () => {
    await initCa(ca);
    await rotateRoot(ca); // generation 1 issued nothing: nothing needs its root
    expect(readFileSync(join(ca, 'bundle.pem'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(1);
  });

  it('still revokes leaves of the retired intermediate, in a CRL that intermediate signs', async () => {
    await initCa(ca);
    const before = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/old');
    await rotateRoot(ca);
    await revoke(ca, before.chainPem, 'superseded');
    const crl = join(dir, 'crl.pem');
    const result = await createCrl(ca);
    writeFileSync(crl, result.pem);
    expect(result.pem.match(/BEGIN X509 CRL/g)).toHaveLength(2);
    const refused = verifyWith(join(ca, 'bundle.pem'), before.chainPem, 'old', ['-crl_check', '-CRLfile', crl]);
    expect(refused.stdout + refused.stderr).toMatch(/certificate revoked/);
    const fresh = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/new');
    expect(verifyWith(join(ca, 'bundle.pem'), fresh.chainPem, 'new', ['-crl_check', '-CRLfile', crl]).status).toBe(0);
  });
});
