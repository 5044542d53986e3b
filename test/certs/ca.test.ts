import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initCa, issueForId, issueFromCsr } from '../../certs/ca.ts';
import { eachCaDir, openssl, opensslCsr, read, writeLeaf } from './openssl.ts';

const ID = 'spiffe://cluster.local/ns/default/sa/web';

describe('the CA directory', () => {
  let dir: string;
  let ca: string;
  eachCaDir((d, c) => {
    dir = d;
    ca = c;
  });

  function verify(chainPem: string, name: string) {
    const leaf = writeLeaf(chainPem, join(dir, `${name}.pem`));
    return openssl('verify', '-CAfile', join(ca, 'root.crt'), '-untrusted', join(ca, 'intermediate.crt'), leaf);
  }

  it('issues a leaf for a SPIFFE id that openssl verifies through the intermediate to the root', async () => {
    await initCa(ca);
    const issued = await issueForId(ca, ID, { dnsNames: ['web.default.svc'] });
    const result = verify(issued.chainPem, 'leaf');
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/: OK$/m);

    const text = openssl('x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')).stdout;
    expect(text).toMatch(
      /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/web, DNS:web\.default\.svc/,
    );
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/ASN1 OID: prime256v1/);
    // 24 h by default (5 minutes of backdating for clock skew).
    const notAfter = Date.parse(
      openssl('x509', '-noout', '-enddate', '-in', join(dir, 'leaf.pem')).stdout.split('=')[1],
    );
    expect(Math.abs(notAfter - Date.now() - 24 * 3_600_000)).toBeLessThan(60_000);
    // The chain file is the leaf then the intermediate.
    expect(issued.chainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(issued.chainPem.split('-----END CERTIFICATE-----')[1]).toContain(
      read(join(ca, 'intermediate.crt')).trim().split('\n')[1],
    );
  });

  it('keeps private keys mode 0600 and refuses to overwrite an existing CA', async () => {
    await initCa(ca);
    for (const key of ['root.key', 'intermediate.key']) expect(statSync(join(ca, key)).mode & 0o777).toBe(0o600);
    const before = read(join(ca, 'root.crt'));
    await expect(initCa(ca)).rejects.toThrow(/already holds a CA/);
    expect(read(join(ca, 'root.crt'))).toBe(before);
  });

  it('gives every certificate a different positive 128-bit serial', async () => {
    await initCa(ca);
    const serials = new Set<string>();
    let highBit = false;
    for (let i = 0; i < 24; i++) {
      const issued = await issueForId(ca, ID);
      writeLeaf(issued.chainPem, join(dir, 'leaf.pem'));
      const serial = openssl('x509', '-noout', '-serial', '-in', join(dir, 'leaf.pem')).stdout.trim().split('=')[1];
      // Answered without leading zeros (as revoked.json and the CRL readers have it), whatever the first byte.
      expect(serial.toLowerCase().replace(/^0+/, '')).toBe(issued.serial);
      expect(serial).toMatch(/^[0-9A-F]{32}$/); // 128 bits
      if (Number.parseInt(serial[0], 16) >= 8) {
        highBit = true;
        expect(openssl('x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')).stdout).not.toMatch(/Negative/);
      }
      serials.add(serial);
    }
    expect(serials.size).toBe(24);
    // Half the serials have their top bit set; openssl reads them as positive numbers all the same.
    expect(highBit).toBe(true);
  });

  it('makes RSA CAs on request, and RSA leaves carry keyEncipherment', async () => {
    await initCa(ca, { keyType: 'rsa2048', trustDomain: 'prod.example' });
    const issued = await issueForId(ca, 'spiffe://prod.example/ns/a/sa/b', { validHours: 2 });
    expect(verify(issued.chainPem, 'leaf').stdout).toMatch(/: OK$/m);
    const text = openssl('x509', '-noout', '-text', '-in', join(dir, 'leaf.pem')).stdout;
    expect(text).toMatch(/Public-Key: \(2048 bit\)/);
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
    expect(openssl('x509', '-noout', '-text', '-in', join(ca, 'root.crt')).stdout).toMatch(/sha256WithRSAEncryption/);
  });

  it('refuses an id of another trust domain or a malformed one', async () => {
    await initCa(ca);
    await expect(issueForId(ca, 'spiffe://other.local/ns/a/sa/b')).rejects.toThrow(/trust domain 'other.local'/);
    await expect(issueForId(ca, 'spiffe://cluster.local/a/b')).rejects.toThrow(/\/ns\/<namespace>/);
  });

  it('signs a CSR made by openssl, and the result verifies with the key openssl kept', async () => {
    await initCa(ca);
    const [csr, key] = opensslCsr(dir, 'w', 'spiffe://cluster.local/ns/shop/sa/cart');
    const issued = await issueFromCsr(ca, read(csr));
    expect(issued.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/cart');
    expect(verify(issued.chainPem, 'csr-leaf').stdout).toMatch(/: OK$/m);
    const text = openssl('x509', '-noout', '-text', '-in', join(dir, 'csr-leaf.pem')).stdout;
    expect(text).toContain('URI:spiffe://cluster.local/ns/shop/sa/cart');
    // The certificate holds the CSR's public key.
    const certKey = openssl('x509', '-noout', '-pubkey', '-in', join(dir, 'csr-leaf.pem')).stdout;
    const ownKey = openssl('pkey', '-pubout', '-in', key).stdout;
    expect(certKey).toBe(ownKey);
  });

  it('refuses a CSR for another trust domain', async () => {
    await initCa(ca);
    const [csr] = opensslCsr(dir, 'foreign', 'spiffe://evil.example/ns/a/sa/b');
    await expect(issueFromCsr(ca, read(csr))).rejects.toThrow(
      /trust domain 'evil.example', not this CA's 'cluster.local'/,
    );
  });

  it('refuses a CSR whose signed content was changed', async () => {
    await initCa(ca);
    const [csr] = opensslCsr(dir, 't', 'spiffe://cluster.local/ns/a/sa/b', 'tamperme');
    const der = Buffer.from(
      read(csr)
        .replace(/-----[A-Z ]+-----/g, '')
        .replace(/\s+/g, ''),
      'base64',
    );
    const at = der.indexOf('tamperme');
    expect(at).toBeGreaterThan(0);
    der.write('tamperm3', at);
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    writeFileSync(join(dir, 'tampered.csr'), tampered);
    // openssl agrees the signature no longer verifies.
    // (openssl 3.0 exits 0 here but says so on stderr.)
    expect(openssl('req', '-verify', '-noout', '-in', join(dir, 'tampered.csr')).stderr).toMatch(/verify failure/);
    await expect(issueFromCsr(ca, tampered)).rejects.toThrow(/signature does not verify/);
  });

  it('refuses a CSR whose key is weak or of a kind peers may not handle', async () => {
    await initCa(ca);
    for (const [newkey, message] of [
      [['-newkey', 'rsa:1024'], /RSASSA-PKCS1-v1_5 1024 bits\) is not ECDSA P-256\/P-384 or RSA >= 2048 bits/],
      [['-newkey', 'ed25519'], /\(Ed25519\) is not ECDSA/],
    ] as const) {
      const csr = join(dir, 'weak.csr');
      const made = openssl(
        'req',
        '-new',
        ...newkey,
        '-nodes',
        '-keyout',
        join(dir, 'weak.key'),
        '-out',
        csr,
        '-subj',
        '/CN=x',
        '-addext',
        'subjectAltName=URI:spiffe://cluster.local/ns/a/sa/b',
      );
      expect(made.status).toBe(0);
      await expect(issueFromCsr(ca, read(csr))).rejects.toThrow(message);
    }
    const [p384] = opensslCsr(dir, 'p384', 'spiffe://cluster.local/ns/a/sa/b', 'x', 'P-384');
    expect(verify((await issueFromCsr(ca, read(p384))).chainPem, 'p384-leaf').stdout).toMatch(/: OK$/m);
    expect(openssl('x509', '-noout', '-text', '-in', join(dir, 'p384-leaf.pem')).stdout).toMatch(/NIST CURVE: P-384/);
  });

  it('refuses a CSR without a SPIFFE URI SAN', async () => {
    await initCa(ca);
    const csr = join(dir, 'plain.csr');
    const r = openssl(
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'plain.key'),
      '-out',
      csr,
      '-subj',
      '/CN=x',
    );
    expect(r.status).toBe(0);
    await expect(issueFromCsr(ca, read(csr))).rejects.toThrow(/exactly one URI SAN/);
  });
});
