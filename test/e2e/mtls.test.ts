// mTLS between two Skein proxies with identities from the mesh's CA (files from `skein ca issue`): the
// outbound proxy calls the inbound one over mTLS, the inbound one checks the caller's certificate (chain,
// dates, revocation, trust domain) and tells the app who called; a caller it refuses is counted and logged by
// reason. Real processes, real handshakes; openssl s_client plays the foreign and the plaintext callers.
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { mkdtempSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, processTestFixture, runSkein, startSkeinProxy, type RunningSkein } from '../support/process.ts';
import { httpGet } from '../support/http-client.ts';
import { sampleSum, scrape } from '../support/metrics.ts';
import { waitFor } from '../support/wait-for.ts';
import { echoClient, startGrpcUpstream, unary } from '../support/grpc-echo.ts';

const fixture = processTestFixture('skein-mtls-');
const TD = 'cluster.local';

async function ca(dir: string, name = 'ca'): Promise<string> {
  const caDir = join(dir, name);
  const r = await runSkein(['ca', 'init', '--dir', caDir, '--trust-domain', TD]);
  expect(r.code, r.stderr).toBe(0);
  return caDir;
}

async function issue(caDir: string, id: string, out: string, extra: string[] = []): Promise<string> {
  const r = await runSkein(['ca', 'issue', '--dir', caDir, '--id', id, '--out', out, ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

interface Pair {
  /** The pair's directory: its CA, certificates (server, client), CRL and configs. */
  dir: string;
  inbound: RunningSkein;
  outbound: RunningSkein;
  caDir: string;
  seen: { xfcc: string | undefined; mtls: string | undefined }[];
}

/** app ← inbound proxy (mTLS strict) ← outbound proxy (mTLS always) ← the test. */
async function startPair(
  opts: {
    mode?: 'strict' | 'permissive';
    appAddress?: string;
    serverIds?: string[];
    /** The outbound cluster's mtls mode (default always), and the labels of its one endpoint. */
    clusterMode?: 'auto' | 'always';
    endpointLabels?: Record<string, string>;
  } = {},
): Promise<Pair> {
  // Its own directory: a test may start two pairs.
  const dir = mkdtempSync(join(fixture.dir(), 'pair-'));
  const caDir = await ca(dir);
  const seen: Pair['seen'] = [];
  const app = await fixture.upstream('app', (req, res) => {
    seen.push({ xfcc: req.headers['x-forwarded-client-cert'] as string, mtls: req.headers['x-mesh-mtls'] as string });
    res.end('hello from app');
  });
  const server = await issue(caDir, `spiffe://${TD}/ns/shop/sa/server`, join(dir, 'server'));
  const client = await issue(caDir, `spiffe://${TD}/ns/shop/sa/client`, join(dir, 'client'));
  const mtlsBlock = (prefix: string) => ({
    trustDomain: TD,
    certFile: `${prefix}.crt`,
    keyFile: `${prefix}.key`,
    trustBundleFile: join(caDir, 'bundle.pem'),
    crlFile: join(dir, 'crl.pem'),
  });
  execFileSync(process.execPath, [
    join(process.cwd(), 'bin/skein.js'),
    'ca',
    'crl',
    '--dir',
    caDir,
    '--out',
    join(dir, 'crl.pem'),
  ]);
  const inAdmin = await freePort();
  await writeFile(
    join(dir, 'in.yaml'),
    stringify({
      service: 'server',
      admin: { address: `127.0.0.1:${inAdmin}` },
      mtls: mtlsBlock(server),
      listeners: [
        {
          name: 'inbound',
          direction: 'inbound',
          address: '127.0.0.1:0',
          mtls: opts.mode ?? 'strict',
          routes: [{ cluster: 'app' }],
        },
      ],
      clusters: [
        { name: 'app', discovery: { type: 'static', endpoints: [{ address: opts.appAddress ?? app.address }] } },
      ],
    }),
  );
  const inbound = await startSkeinProxy(['--config', join(dir, 'in.yaml')], { adminPort: inAdmin });
  const outAdmin = await freePort();
  await writeFile(
    join(dir, 'out.yaml'),
    stringify({
      service: 'client',
      admin: { address: `127.0.0.1:${outAdmin}` },
      mtls: mtlsBlock(client),
      listeners: [{ name: 'outbound', address: '127.0.0.1:0', routes: [{ cluster: 'server' }] }],
      clusters: [
        {
          name: 'server',
          mtls: { mode: opts.clusterMode ?? 'always', serverIds: opts.serverIds ?? [`spiffe://${TD}/ns/shop/sa/*`] },
          discovery: {
            type: 'static',
            endpoints: [{ address: `127.0.0.1:${inbound.port()}`, labels: opts.endpointLabels ?? {} }],
          },
        },
      ],
    }),
  );
  const outbound = await startSkeinProxy(['--config', join(dir, 'out.yaml')], { adminPort: outAdmin });
  return { dir, inbound, outbound, caDir, seen };
}

/** A client handshake with `certPrefix`'s certificate (or none): whether the inbound proxy answers over it. */
function handshake(port: number, caDir: string, certPrefix: string | null): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(join(caDir, 'bundle.pem')),
      ...(certPrefix === null
        ? {}
        : { cert: readFileSync(`${certPrefix}.crt`), key: readFileSync(`${certPrefix}.key`) }),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    let body = '';
    socket.on('secureConnect', () => socket.write('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
    socket.on('data', (d) => (body += d.toString()));
    socket.on('error', () => resolve(body === '' ? 'refused' : body));
    socket.on('close', () => resolve(body === '' ? 'refused' : body));
  });
}

describe('mTLS between two proxies', () => {
  it('carries requests over mTLS both ways checked, and counts the handshakes', async () => {
    const { inbound, outbound } = await startPair();
    for (let i = 0; i < 5; i++) {
      const r = await httpGet(outbound.url());
      expect(r.status, `${r.body}\n${outbound.stderr}\n${inbound.stderr}`).toBe(200);
      expect(r.body).toBe('hello from app');
    }
    const inMetrics = (await httpGet(`${inbound.adminUrl}/metrics`)).body;
    expect(
      sampleSum(inMetrics, 'skein_mtls_handshakes_total', 'direction="inbound",result="ok"'),
    ).toBeGreaterThanOrEqual(1);
    const outMetrics = (await httpGet(`${outbound.adminUrl}/metrics`)).body;
    expect(
      sampleSum(outMetrics, 'skein_mtls_handshakes_total', 'direction="outbound",result="ok"'),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleSum(outMetrics, 'service_mesh_certificate_expiry_days', `identity="spiffe://${TD}/ns/shop/sa/client"`),
    ).toBeGreaterThan(0.5);
    // `ca issue`'s certificates: 24 hours, plus the CA's 5-minute backdate of notBefore (X.509 dates are to the
    // second, hence 4 places: ±4 s).
    expect(
      sampleSum(outMetrics, 'skein_certificate_validity_days', `identity="spiffe://${TD}/ns/shop/sa/client"`),
    ).toBeCloseTo(1 + 5 / (24 * 60), 4);
  });

  it('refuses a caller with no certificate, a foreign CA, a revoked one and plaintext; says why', async () => {
    const { inbound, caDir, dir } = await startPair();
    const port = inbound.port();
    expect(await handshake(port, caDir, null)).toBe('refused');
    const foreignCa = await ca(dir, 'foreign');
    const foreign = await issue(foreignCa, `spiffe://${TD}/ns/shop/sa/client`, join(dir, 'foreign'));
    expect(await handshake(port, caDir, foreign)).toBe('refused');
    const good = await issue(caDir, `spiffe://${TD}/ns/shop/sa/other`, join(dir, 'good'));
    expect(await handshake(port, caDir, good)).toMatch(/^HTTP\/1.1 200/);
    // Revoked, and the CRL replaced in place: the proxy reloads it and refuses the serial from then on.
    expect((await runSkein(['ca', 'revoke', '--dir', caDir, '--cert', `${good}.crt`])).code).toBe(0);
    expect((await runSkein(['ca', 'crl', '--dir', caDir, '--out', join(dir, 'crl.pem')])).code).toBe(0);
    await inbound.waitForLog((l) => l.msg === 'config reloaded', 10_000);
    expect(await handshake(port, caDir, good)).toBe('refused');
    // A fresh certificate for the same identity is accepted.
    const fresh = await issue(caDir, `spiffe://${TD}/ns/shop/sa/other`, join(dir, 'fresh'));
    expect(await handshake(port, caDir, fresh)).toMatch(/^HTTP\/1.1 200/);
    const plain = await httpGet(`http://127.0.0.1:${port}/`).catch((e: Error) => ({ status: 0, body: e.message }));
    expect(plain.status).toBe(0);
    const m = (await httpGet(`${inbound.adminUrl}/metrics`)).body;
    for (const reason of ['no-certificate', 'untrusted-chain', 'revoked', 'plaintext'])
      expect(sampleSum(m, 'skein_mtls_handshakes_total', `result="${reason}"`), reason).toBeGreaterThanOrEqual(1);
    const logged = inbound.logs.filter((l) => l.msg === 'mtls: connection refused').map((l) => l.reason);
    expect(logged).toEqual(expect.arrayContaining(['no-certificate', 'untrusted-chain', 'revoked', 'plaintext']));
  });

  it('permissive: mTLS and plaintext on one port', async () => {
    const { inbound, outbound, caDir } = await startPair({ mode: 'permissive' });
    expect((await httpGet(outbound.url())).status).toBe(200);
    expect((await httpGet(inbound.url())).status).toBe(200);
    expect(await handshake(inbound.port(), caDir, null)).toBe('refused');
  });

  it('refuses an expired certificate, and one of another trust domain even when its root is trusted', async () => {
    const { inbound, caDir, dir } = await startPair();
    const port = inbound.port();
    const expired = await issue(caDir, `spiffe://${TD}/ns/shop/sa/late`, join(dir, 'late'), [
      '--valid-hours',
      '0.0003',
    ]);
    await new Promise((r) => setTimeout(r, 1_500)); // its second of life is over
    expect(await handshake(port, caDir, expired)).toBe('refused');

    const otherCa = join(dir, 'other');
    expect((await runSkein(['ca', 'init', '--dir', otherCa, '--trust-domain', 'other.example'])).code).toBe(0);
    const stranger = await issue(otherCa, 'spiffe://other.example/ns/shop/sa/client', join(dir, 'stranger'));
    // The other CA's root joins the bundle (replaced in place: the proxy reloads it): the chain now verifies,
    // and only the trust domain is wrong.
    await writeFile(
      join(caDir, 'bundle.pem'),
      readFileSync(join(caDir, 'bundle.pem'), 'utf8') + readFileSync(join(otherCa, 'bundle.pem'), 'utf8'),
    );
    await inbound.waitForLog((l) => l.msg === 'config reloaded', 10_000);
    expect(await handshake(port, caDir, stranger)).toBe('refused');
    const m = (await httpGet(`${inbound.adminUrl}/metrics`)).body;
    expect(sampleSum(m, 'skein_mtls_handshakes_total', 'result="expired"')).toBe(1);
    expect(sampleSum(m, 'skein_mtls_handshakes_total', 'result="wrong-trust-domain"')).toBe(1);
  });

  it('carries gRPC over HTTP/2 under mTLS (ALPN h2 between the proxies)', async () => {
    const grpcApp = await startGrpcUpstream();
    try {
      const { outbound } = await startPair({ appAddress: grpcApp.address });
      const client = echoClient(`127.0.0.1:${outbound.port()}`);
      try {
        expect(await unary(client, { message: 'over mtls' })).toMatchObject({ message: 'over mtls' });
      } finally {
        client.close();
      }
    } finally {
      await grpcApp.close();
    }
  });

  it('a server whose id the cluster does not accept gets no request: 503 UF, counted as unexpected-identity', async () => {
    const { outbound, seen } = await startPair({ serverIds: [`spiffe://${TD}/ns/payments/sa/*`] });
    const r = await httpGet(outbound.url());
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/unexpected-identity/);
    expect(seen).toEqual([]);
    const m = (await httpGet(`${outbound.adminUrl}/metrics`)).body;
    expect(
      sampleSum(m, 'skein_mtls_handshakes_total', 'direction="outbound",result="unexpected-identity"'),
    ).toBeGreaterThanOrEqual(1);
  });

  it('root rotation: certificates of the old and the new root talk both ways through the overlap', async () => {
    const { inbound, outbound, caDir, dir } = await startPair();
    const oldGen = await issue(caDir, `spiffe://${TD}/ns/shop/sa/old`, join(dir, 'old'));
    expect((await runSkein(['ca', 'rotate-root', '--dir', caDir])).code).toBe(0);
    // bundle.pem now holds both roots; both proxies reload it (the file is theirs, replaced in place).
    await inbound.waitForLog((l) => l.msg === 'config reloaded', 10_000);
    await outbound.waitForLog((l) => l.msg === 'config reloaded', 10_000);
    const newGen = await issue(caDir, `spiffe://${TD}/ns/shop/sa/new`, join(dir, 'new'));
    // The inbound proxy still holds a certificate of the old root: a caller of the new root gets through…
    expect(await handshake(inbound.port(), caDir, newGen)).toMatch(/^HTTP\/1.1 200/);
    expect(await handshake(inbound.port(), caDir, oldGen)).toMatch(/^HTTP\/1.1 200/);
    // …and so does the outbound proxy once it renews onto the new root (its files replaced in place).
    const client = join(dir, 'client');
    execFileSync('cp', [`${newGen}.crt`, `${client}.crt`]);
    execFileSync('cp', [`${newGen}.key`, `${client}.key`]);
    await waitFor(() => outbound.logs.filter((l) => l.msg === 'config reloaded').length >= 2 || undefined, 10_000);
    expect((await httpGet(outbound.url())).status).toBe(200);
  });

  it('speaks TLS 1.2 and 1.3 only, with the configured suites (openssl s_client from outside)', async () => {
    const { inbound, caDir, dir } = await startPair();
    const c = await issue(caDir, `spiffe://${TD}/ns/shop/sa/probe`, join(dir, 'probe'));
    const sClient = (...args: string[]) =>
      spawnSync(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${inbound.port()}`,
          '-CAfile',
          join(caDir, 'bundle.pem'),
          '-cert',
          `${c}.crt`,
          '-key',
          `${c}.key`,
          ...args,
        ],
        { input: '', encoding: 'utf8', timeout: 10_000 },
      );
    const ok = sClient('-tls1_3', '-ciphersuites', 'TLS_AES_256_GCM_SHA384');
    expect(ok.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(ok.stdout).toMatch(/TLSv1\.3/);
    expect(ok.stdout).toMatch(/Certificate chain\n 0 s:\s*\n[\s\S]* 1 s:.*Intermediate/i); // leaf, then intermediate
    expect(sClient('-tls1_2').stdout).toMatch(/Protocol\s*: TLSv1\.2/);
    // TLS 1.1 and a TLS 1.3 suite outside the list: no handshake.
    expect(sClient('-tls1_1').stdout).toMatch(/Cipher is \(NONE\)/);
    expect(sClient('-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256').stdout).toMatch(/Cipher is \(NONE\)/);
  });

  it('auto: mTLS to an endpoint labelled mesh=true, plaintext to one without (which a strict listener refuses)', async () => {
    const meshed = await startPair({ clusterMode: 'auto', endpointLabels: { mesh: 'true' } });
    expect((await httpGet(meshed.outbound.url())).status).toBe(200);
    expect(
      sampleSum(
        await scrape(meshed.outbound.adminUrl),
        'skein_mtls_handshakes_total',
        'direction="outbound",result="ok"',
      ),
    ).toBeGreaterThanOrEqual(1);
    const plain = await startPair({ clusterMode: 'auto', mode: 'permissive' });
    expect((await httpGet(plain.outbound.url())).status).toBe(200);
    expect(plain.seen.at(-1)?.mtls).toBe('false'); // the app sees the call came in plaintext
    expect(sampleSum(await scrape(plain.outbound.adminUrl), 'skein_mtls_handshakes_total')).toBe(0);
  });
});
