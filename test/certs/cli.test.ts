// `skein ca` end to end through bin/skein.js (needs `npm run build`): exit codes, messages and the files it writes.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openssl, opensslCsr, eachCaDir } from './openssl.ts';

const SKEIN_BIN = fileURLToPath(new URL('../../bin/skein.js', import.meta.url));

function skeinCa(...args: string[]) {
  const r = spawnSync(process.execPath, [SKEIN_BIN, 'ca', ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('skein ca', () => {
  let dir: string;
  let ca: string;
  eachCaDir((d, c) => {
    dir = d;
    ca = c;
  });

  it('init, issue, inspect, revoke and crl work together and openssl agrees with each step', () => {
    const init = skeinCa('init', '--dir', ca, '--trust-domain', 'prod.example');
    expect(init).toMatchObject({ code: 0, stderr: '' });
    expect(init.stdout).toMatch(/initialized CA for trust domain prod\.example \(ec\)/);
    expect(statSync(join(ca, 'root.key')).mode & 0o777).toBe(0o600);

    const again = skeinCa('init', '--dir', ca);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^skein ca init: --dir: .* already holds a CA .*refusing to overwrite it\n$/);

    const web = join(dir, 'web');
    const issue = skeinCa(
      'issue',
      '--dir',
      ca,
      '--id',
      'spiffe://prod.example/ns/shop/sa/web',
      '--dns',
      'web.shop.svc',
      '--dns',
      'web',
      '--valid-hours',
      '2',
      '--out',
      web,
    );
    expect(issue.code).toBe(0);
    expect(issue.stdout).toMatch(
      /^issued spiffe:\/\/prod\.example\/ns\/shop\/sa\/web \(serial [0-9a-f]+, valid until .*\): .*web\.crt and .*web\.key\n$/,
    );
    expect(statSync(`${web}.key`).mode & 0o777).toBe(0o600);
    const verified = openssl('verify', '-CAfile', join(ca, 'root.crt'), '-untrusted', `${web}.crt`, `${web}.crt`);
    expect(verified.stdout).toMatch(/: OK$/m);
    expect(openssl('x509', '-noout', '-ext', 'subjectAltName', '-in', `${web}.crt`).stdout).toMatch(
      /URI:spiffe:\/\/prod\.example\/ns\/shop\/sa\/web, DNS:web\.shop\.svc, DNS:web/,
    );
    // The key matches the certificate.
    expect(openssl('pkey', '-pubout', '-in', `${web}.key`).stdout).toBe(
      openssl('x509', '-noout', '-pubkey', '-in', `${web}.crt`).stdout,
    );

    const inspect = skeinCa('inspect', `${web}.crt`, '--dir', ca);
    expect(inspect.code).toBe(0);
    const serial = openssl('x509', '-noout', '-serial', '-in', `${web}.crt`).stdout.trim().split('=')[1].toLowerCase();
    expect(inspect.stdout).toContain(`serial:     ${serial.replace(/^0+/, '')}`);
    expect(inspect.stdout).toContain('SANs:       URI:spiffe://prod.example/ns/shop/sa/web, DNS:web.shop.svc, DNS:web');
    expect(inspect.stdout).toMatch(/issuer: +CN=Skein Intermediate CA 1, O=prod\.example/);
    expect(inspect.stdout).toMatch(/chain: +chains to .*bundle\.pem/);

    const other = join(dir, 'other');
    skeinCa('init', '--dir', other, '--trust-domain', 'prod.example');
    const foreign = skeinCa('inspect', `${web}.crt`, '--dir', other);
    expect(foreign.code).toBe(1);
    expect(foreign.stdout).toMatch(/chain: +does NOT chain to .*other\/bundle\.pem/);

    const revoke = skeinCa('revoke', '--dir', ca, '--cert', `${web}.crt`, '--reason', 'keyCompromise');
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toMatch(new RegExp(`revoked serial ${serial.replace(/^0+/, '')} \\(keyCompromise\\)`));

    const crl = join(dir, 'crl.pem');
    const crlRun = skeinCa('crl', '--dir', ca, '--out', crl);
    expect(crlRun).toMatchObject({ code: 0, stdout: `wrote CRL number 1 (1 revoked) to ${crl}\n` });
    expect(openssl('crl', '-in', crl, '-noout', '-text').stdout.toLowerCase()).toContain(`serial number: ${serial}`);
    const check = openssl(
      'verify',
      '-crl_check',
      '-CAfile',
      join(ca, 'root.crt'),
      '-untrusted',
      `${web}.crt`,
      '-CRLfile',
      crl,
      `${web}.crt`,
    );
    expect(check.stdout + check.stderr).toMatch(/certificate revoked/);
    expect(skeinCa('crl', '--dir', ca, '--out', crl).stdout).toMatch(/CRL number 2/);

    const rotate = skeinCa('rotate-root', '--dir', ca);
    expect(rotate).toMatchObject({ code: 0 });
    expect(rotate.stdout).toMatch(
      /rotated to root generation 2; .*bundle\.pem holds the new root and 1 older one\(s\) still in use\n$/,
    );
    expect(skeinCa('inspect', `${web}.crt`, '--dir', ca).code).toBe(0);
  });

  it('signs an openssl CSR and refuses a foreign or unreadable one', () => {
    skeinCa('init', '--dir', ca);
    const [csr] = opensslCsr(dir, 'w', 'spiffe://cluster.local/ns/a/sa/b');
    const signed = skeinCa('issue', '--dir', ca, '--csr', csr, '--out', join(dir, 'w'));
    expect(signed.code).toBe(0);
    expect(existsSync(join(dir, 'w.crt'))).toBe(true);
    expect(
      openssl('verify', '-CAfile', join(ca, 'bundle.pem'), '-untrusted', join(dir, 'w.crt'), join(dir, 'w.crt')).stdout,
    ).toMatch(/: OK$/m);

    const [foreign] = opensslCsr(dir, 'f', 'spiffe://other.example/ns/a/sa/b');
    const refused = skeinCa('issue', '--dir', ca, '--csr', foreign, '--out', join(dir, 'f'));
    expect(refused).toMatchObject({ code: 1, stdout: '' });
    expect(refused.stderr).toBe(
      `skein ca issue: --csr: SPIFFE id 'spiffe://other.example/ns/a/sa/b' is in trust domain 'other.example', not this CA's 'cluster.local'\n`,
    );
    expect(existsSync(join(dir, 'f.crt'))).toBe(false);

    writeFileSync(join(dir, 'junk.csr'), 'not a csr');
    expect(skeinCa('issue', '--dir', ca, '--csr', join(dir, 'junk.csr'), '--out', join(dir, 'j')).stderr).toMatch(
      /^skein ca issue: --csr: not a PEM certificate request/,
    );
    expect(skeinCa('issue', '--dir', ca, '--csr', join(dir, 'missing.csr'), '--out', join(dir, 'j')).stderr).toMatch(
      /^skein ca issue: --csr: cannot read .*missing\.csr: ENOENT\n$/,
    );
  });

  it.each([
    [['init'], /^skein ca init: --dir is required\n$/],
    [['init', '--dir', 'x', '--key', 'dsa'], /^skein ca init: --key must be ec, rsa2048, rsa3072, got 'dsa'\n$/],
    [
      ['init', '--dir', 'x', '--trust-domain', 'Prod:80'],
      /^skein ca init: --trust-domain: trust domain 'Prod:80' may only hold/,
    ],
    [['issue', '--dir', 'CA', '--out', 'x'], /^skein ca issue: give exactly one of --id and --csr\n$/],
    [['issue', '--dir', 'CA', '--id', 'spiffe://cluster.local/ns/a/sa/b'], /^skein ca issue: --out is required\n$/],
    [
      ['issue', '--dir', 'CA', '--id', 'spiffe://cluster.local/web', '--out', 'x'],
      /^skein ca issue: --id: SPIFFE id .* must have the path \/ns\/<namespace>\/sa\/<service-account>\n$/,
    ],
    [
      ['issue', '--dir', 'CA', '--id', 'spiffe://cluster.local/ns/a/sa/b', '--valid-hours', 'soon', '--out', 'x'],
      /^skein ca issue: --valid-hours must be a number > 0, got 'soon'\n$/,
    ],
    [
      ['issue', '--dir', 'CA', '--id', 'spiffe://cluster.local/ns/a/sa/b', '--dns', 'bad name', '--out', 'x'],
      /^skein ca issue: --dns: 'bad name' is not a valid DNS name\n$/,
    ],
    [['revoke', '--dir', 'CA'], /^skein ca revoke: --cert is required\n$/],
    [
      ['revoke', '--dir', 'CA', '--cert', 'x', '--reason', 'bored'],
      /^skein ca revoke: --reason must be one of unspecified, keyCompromise/,
    ],
    [['crl', '--dir', 'CA'], /^skein ca crl: --out is required\n$/],
    [['crl', '--dir', 'nowhere', '--out', 'x'], /^skein ca crl: --dir: nowhere is not a CA directory/],
    [['inspect'], /^skein ca inspect: FILE is required/],
    [
      ['rotate-root', '--dir', 'CA', '--id', 'x'],
      /^skein ca rotate-root: --id is not an option of skein ca rotate-root\n$/,
    ],
    [['mint'], /^skein ca mint: unknown command/],
  ])('skein ca %j exits 1 with one line naming the problem', (args, message) => {
    if (args.includes('CA')) skeinCa('init', '--dir', ca);
    const r = skeinCa(...args.map((a) => (a === 'CA' ? ca : a === 'x' || a === 'nowhere' ? join(dir, a) : a)));
    expect(r.code).toBe(1);
    expect(r.stderr.replace(dir + '/', '')).toMatch(message);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('inspect says a certificate past its notAfter does not chain, and why', async () => {
    skeinCa('init', '--dir', ca);
    const short = join(dir, 'short');
    // 0.0003 h is about a second.
    expect(
      skeinCa(
        'issue',
        '--dir',
        ca,
        '--id',
        'spiffe://cluster.local/ns/a/sa/b',
        '--valid-hours',
        '0.0003',
        '--out',
        short,
      ).code,
    ).toBe(0);
    await new Promise((r) => setTimeout(r, 2100));
    const r = skeinCa('inspect', `${short}.crt`, '--dir', ca);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/chain: +does NOT chain to .*bundle\.pem \(it has expired\)\n$/);
    expect(
      openssl('verify', '-CAfile', join(ca, 'root.crt'), '-untrusted', `${short}.crt`, `${short}.crt`).stderr,
    ).toMatch(/certificate has expired/);
  });

  it('prints its help, which README shows', () => {
    const r = skeinCa('--help');
    expect(r.code).toBe(0);
    expect(readFileSync(new URL('../../README.md', import.meta.url), 'utf8')).toContain(r.stdout.trimEnd());
  });
});
