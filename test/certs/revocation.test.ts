import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initCa, issueForId } from '../../certs/ca.ts';
import { createCrl, revoke } from '../../certs/crl.ts';
import { readRevoked, caPaths } from '../../certs/store.ts';
import { openssl, eachCaDir, writeLeaf } from './openssl.ts';

describe('revocation and CRLs', () => {
  let dir: string;
  let ca: string;
  eachCaDir((d, c) => {
    dir = d;
    ca = c;
  });

  function crlCheck(leaf: string, crl: string) {
    return openssl(
      'verify',
      '-crl_check',
      '-CAfile',
      join(ca, 'root.crt'),
      '-untrusted',
      join(ca, 'intermediate.crt'),
      '-CRLfile',
      crl,
      leaf,
    );
  }

  it('lists a revoked serial in a CRL openssl reads, and openssl then rejects that leaf but not another', async () => {
    await initCa(ca);
    // A serial whose first bit is set (encoded with a leading 00) must be listed as the same positive number.
    let bad = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/bad');
    for (let i = 0; i < 64 && Number.parseInt(bad.serial[0], 16) < 8; i++)
      bad = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/bad');
    expect(Number.parseInt(bad.serial[0], 16)).toBeGreaterThanOrEqual(8);
    const good = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/good');
    const entry = await revoke(ca, bad.chainPem, 'keyCompromise');
    expect(entry.serial).toBe(bad.serial.replace(/^0+/, ''));
    expect(readRevoked(caPaths(ca))).toHaveLength(1);

    const crl = join(dir, 'crl.pem');
    writeFileSync(crl, (await createCrl(ca)).pem);
    const text = openssl('crl', '-in', crl, '-noout', '-text');
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/Version 2/);
    expect(text.stdout).toMatch(/Issuer: CN = Skein Intermediate CA 1, O = cluster.local/);
    expect(text.stdout).toMatch(/Next Update: /);
    // openssl prints the serial's bytes (a leading 0 when the first is under 0x10); ours have no leading zeros.
    const listed = [...text.stdout.toLowerCase().matchAll(/serial number: ([0-9a-f]+)/g)].map((m) =>
      m[1]!.replace(/^0+/, ''),
    );
    expect(listed).toContain(bad.serial.toLowerCase());
    expect(text.stdout).toMatch(/Key Compromise/);
    // The intermediate signed it.
    expect(openssl('crl', '-in', crl, '-noout', '-CAfile', join(ca, 'intermediate.crt')).stderr).toMatch(/verify OK/);

    const badLeaf = writeLeaf(bad.chainPem, join(dir, 'bad.pem'));
    const goodLeaf = writeLeaf(good.chainPem, join(dir, 'good.pem'));
    const refused = crlCheck(badLeaf, crl);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/certificate revoked/);
    expect(crlCheck(goodLeaf, crl).status).toBe(0);
  });

  it('numbers CRLs upwards, and thisUpdate/nextUpdate follow the requested validity', async () => {
    await initCa(ca);
    const numbers: number[] = [];
    for (let i = 0; i < 3; i++) {
      const crl = join(dir, `crl${i}.pem`);
      writeFileSync(crl, (await createCrl(ca, 6)).pem);
      numbers.push(Number(openssl('crl', '-in', crl, '-noout', '-crlnumber').stdout.trim().split('=')[1]));
      const last = Date.parse(openssl('crl', '-in', crl, '-noout', '-lastupdate').stdout.split('=')[1]);
      const next = Date.parse(openssl('crl', '-in', crl, '-noout', '-nextupdate').stdout.split('=')[1]);
      expect(next - last).toBe(6 * 3_600_000);
    }
    expect(numbers).toEqual([1, 2, 3]);
  });

  it('refuses to revoke a certificate another CA issued and an unknown reason', async () => {
    await initCa(ca);
    await initCa(join(dir, 'other'));
    const foreign = await issueForId(join(dir, 'other'), 'spiffe://cluster.local/ns/a/sa/b');
    await expect(revoke(ca, foreign.chainPem)).rejects.toThrow(/not issued by this CA/);
    const own = await issueForId(ca, 'spiffe://cluster.local/ns/a/sa/b');
    await expect(revoke(ca, own.chainPem, 'because')).rejects.toThrow(/unknown revocation reason 'because'/);
  });
});
