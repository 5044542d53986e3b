// `skein control --ca-dir` as a real process (needs `npm run build`) signing a proxy's CSR made by openssl: the
// chain it answers verifies with openssl against the CA's bundle, the leaf carries the CSR's key (the private key
// never left the test), foreign trust domains and missing or wrong bootstrap tokens are refused, and the trust
// bundle and CRL routes serve what openssl reads.
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';
import { waitFor } from '../support/wait-for.ts';
import { openssl, opensslCsr, read, tempDir } from '../certs/openssl.ts';

const SKEIN_BIN = fileURLToPath(new URL('../../bin/skein.js', import.meta.url));
const WEB = 'spiffe://cluster.local/ns/default/sa/web';

const { dir, cleanup } = tempDir();
const caDir = join(dir, 'ca');
const dataDir = join(dir, 'data');
let control: RunningControl;
let bootstrap: string;

beforeAll(async () => {
  control = await startSkeinControl(dataDir, ['--ca-dir', caDir, '--cert-hours', '2']);
  bootstrap = readFileSync(join(dataDir, 'bootstrap-token'), 'utf8').trim();
});

afterAll(async () => {
  await control?.kill();
  cleanup();
});

const sign = (body: unknown, token: string | null = bootstrap) =>
  api<Record<string, string>>(control.url, 'POST', '/v1/certificates', body, { token });

/** Splits a PEM chain into one file per certificate under dir; returns their paths, leaf first. */
function splitChain(chain: string, name: string): string[] {
  const blocks = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block, i) => {
    const path = join(dir, `${name}.${i}.pem`);
    writeFileSync(path, `${block}\n`);
    return path;
  });
}

/** Runs openssl, which must exit 0; its stdout. */
function ok(args: string[]): string {
  const r = openssl(...args);
  expect(r.status, `openssl ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

describe('skein control --ca-dir', () => {
  it('creates the CA and a 0600 bootstrap token apart from the API token, and says so', async () => {
    // Printed after the "listening on" line the start waits for: read once they have arrived.
    const out = await waitFor(() => (/new bootstrap token in/.test(control.stdout) ? control.stdout : undefined));
    expect(out).toMatch(/held no CA: created one for trust domain cluster\.local/);
    expect(out).toMatch(/new bootstrap token in \S+bootstrap-token: \S+/);
    expect(statSync(join(caDir, 'ca.json')).isFile()).toBe(true);
    expect(statSync(join(dataDir, 'bootstrap-token')).mode & 0o777).toBe(0o600);
    expect(bootstrap.length).toBeGreaterThanOrEqual(16);
    expect(bootstrap).not.toBe(control.token);
  });

  it("signs an openssl CSR: the chain verifies against bundle.pem and the leaf holds the CSR's key", async () => {
    const [csr, key] = opensslCsr(dir, 'web', WEB);
    const res = await sign({ csr: read(csr), dnsNames: ['web.default.svc'] });
    expect(res.status).toBe(201);
    expect(res.body.spiffeId).toBe(WEB);
    expect(res.body.serial).toMatch(/^[0-9a-f]+$/);
    const [leaf, intermediate, ...rest] = splitChain(res.body.chain, 'web');
    expect(rest).toEqual([]);
    expect(ok(['verify', '-CAfile', join(caDir, 'bundle.pem'), '-untrusted', intermediate, leaf])).toMatch(/: OK/);
    expect(ok(['x509', '-in', leaf, '-noout', '-pubkey'])).toBe(ok(['pkey', '-in', key, '-pubout']));
    const text = ok(['x509', '-in', leaf, '-noout', '-text', '-serial']);
    expect(text).toContain(`URI:${WEB}`);
    expect(text).toContain('DNS:web.default.svc');
    expect(
      text
        .match(/serial=([0-9A-F]+)/)?.[1]
        .toLowerCase()
        .replace(/^0+/, ''),
    ).toBe(res.body.serial);
    // --cert-hours 2: openssl's notAfter is the one answered, about two hours from now.
    const notAfter = Date.parse(ok(['x509', '-in', leaf, '-noout', '-enddate']).trim().replace('notAfter=', ''));
    expect(notAfter).toBe(Date.parse(res.body.notAfter) - (Date.parse(res.body.notAfter) % 1000));
    expect(Math.abs(notAfter - Date.now() - 2 * 3_600_000)).toBeLessThan(5 * 60_000);
    expect(control.logs.some((l) => l.msg.includes(res.body.serial) && l.msg.includes(WEB))).toBe(true);
  });

  it('refuses a CSR for another trust domain with a 400 naming it', async () => {
    const [csr] = opensslCsr(dir, 'other', 'spiffe://other.example/ns/default/sa/web');
    const res = await sign({ csr: read(csr) });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toMatch(/other\.example.*cluster\.local/);
  });

  it('answers 401 without the bootstrap token, with a wrong one, or with the API token', async () => {
    const [csr] = opensslCsr(dir, 'noauth', WEB);
    for (const token of [null, 'not-the-bootstrap-token', control.token]) {
      const res = await sign({ csr: read(csr) }, token);
      expect(`${token}: ${res.status}`).toBe(`${token}: 401`);
      expect(res.body).toMatchObject({ error: { code: 'SKEIN_UNAUTHORIZED' } });
    }
  });

  it('serves bundle.pem and a CRL openssl reads, which lists a certificate revoked with skein ca revoke', async () => {
    const bundle = await api<string>(control.url, 'GET', '/v1/trust-bundle');
    expect(bundle.status).toBe(200);
    expect(bundle.body).toBe(readFileSync(join(caDir, 'bundle.pem'), 'utf8'));

    const [csr] = opensslCsr(dir, 'revoked', WEB);
    const issued = await sign({ csr: read(csr) });
    expect(issued.status).toBe(201);
    const [leaf, intermediate] = splitChain(issued.body.chain, 'revoked');

    const before = await api<string>(control.url, 'GET', '/v1/crl');
    expect(before.status).toBe(200);
    const crlPath = join(dir, 'before.crl');
    writeFileSync(crlPath, before.body);
    const beforeText = ok(['crl', '-in', crlPath, '-noout', '-text']);
    expect(beforeText).toMatch(/No Revoked Certificates/);
    ok(['crl', '-in', crlPath, '-noout', '-CAfile', intermediate]);

    const revoke = spawnSync(process.execPath, [SKEIN_BIN, 'ca', 'revoke', '--dir', caDir, '--cert', leaf], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(revoke.stderr).toBe('');
    expect(revoke.status).toBe(0);
    const after = await api<string>(control.url, 'GET', '/v1/crl');
    writeFileSync(crlPath, after.body);
    const afterText = ok(['crl', '-in', crlPath, '-noout', '-text']);
    // openssl prints the serial's bytes (a leading 0 when the first is under 0x10); the API answers it without.
    const listed = [
      ...afterText
        .replace(/\s/g, '')
        .toLowerCase()
        .matchAll(/serialnumber:([0-9a-f]+)/g),
    ];
    expect(listed.map((m) => m[1].replace(/^0+/, ''))).toContain(issued.body.serial);
    // With the same revocations the CRL is answered again rather than re-signed on every read.
    expect((await api<string>(control.url, 'GET', '/v1/crl')).body).toBe(after.body);
  });
});

describe('skein control --ca-dir with a CA made by skein ca init', () => {
  it('keeps that CA and its trust domain, reads --bootstrap-token-file, and refuses a bad --cert-hours', async () => {
    const { dir: own, cleanup: done } = tempDir();
    const skein = (...args: string[]) =>
      spawnSync(process.execPath, [SKEIN_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
    let other: RunningControl | undefined;
    try {
      const ca = join(own, 'ca');
      expect(skein('ca', 'init', '--dir', ca, '--trust-domain', 'prod.example').status).toBe(0);
      const rootBefore = readFileSync(join(ca, 'root.crt'), 'utf8');
      const bad = skein('control', '--listen', '127.0.0.1:0', '--data-dir', own, '--ca-dir', ca, '--cert-hours', '0');
      expect(bad.status).toBe(1);
      expect(bad.stderr).toMatch(/--cert-hours must be a number > 0/);

      const tokenFile = join(own, 'boot.token');
      writeFileSync(tokenFile, 'a-bootstrap-token-chosen-by-the-operator\n', { mode: 0o600 });
      other = await startSkeinControl(join(own, 'data'), ['--ca-dir', ca, '--bootstrap-token-file', tokenFile]);
      // Printed after the listening line startSkeinControl waits for.
      await waitFor(() => /signing certificates for prod\.example/.test(other!.stdout) || undefined, 10_000);
      expect(other.stdout).not.toMatch(/held no CA/);
      expect(other.stdout).not.toMatch(/new bootstrap token/);
      expect(readFileSync(join(ca, 'root.crt'), 'utf8')).toBe(rootBefore);

      const [csr, key] = opensslCsr(own, 'api', 'spiffe://prod.example/ns/shop/sa/api');
      const res = await api<Record<string, string>>(
        other.url,
        'POST',
        '/v1/certificates',
        { csr: read(csr) },
        { token: 'a-bootstrap-token-chosen-by-the-operator' },
      );
      expect(res.status).toBe(201);
      const [leaf, intermediate] = splitChain(res.body.chain, 'prod');
      expect(ok(['verify', '-CAfile', join(ca, 'bundle.pem'), '-untrusted', intermediate, leaf])).toMatch(/: OK/);
      expect(ok(['x509', '-in', leaf, '-noout', '-pubkey'])).toBe(ok(['pkey', '-in', key, '-pubout']));
      // Default validity: 24 hours.
      expect(Math.abs(Date.parse(res.body.notAfter) - Date.now() - 24 * 3_600_000)).toBeLessThan(5 * 60_000);
      // A cluster.local id is foreign to this CA.
      const [local] = opensslCsr(own, 'local', WEB);
      const refused = await api(
        other.url,
        'POST',
        '/v1/certificates',
        { csr: read(local) },
        { token: 'a-bootstrap-token-chosen-by-the-operator' },
      );
      expect(refused.status).toBe(400);
      expect(JSON.stringify(refused.body)).toMatch(/cluster\.local.*prod\.example/);
    } finally {
      await other?.kill();
      done();
    }
  });
});
