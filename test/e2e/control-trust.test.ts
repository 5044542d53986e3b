// Trust distribution and revocation with `skein control --ca-dir` as a real process (needs `npm run build`):
// every push stream starts with a trust message (the bundle, the CRLs, their hash), which a proxy's control
// client hands to onTrust; `skein ca revoke` and `skein ca rotate-root` run by an operator on the same directory
// reach the proxies as new trust messages (the CRL listing the serial, the bundle holding both roots), checked
// from outside with openssl; the revocation API records, lists and pushes; with --tls and --writer-ids a client
// certificate of a writer id writes without the token, another id gets 403, a revoked one 401, and the token
// still works. Processes are killed by PID.
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlClient, type ControlTrust } from '../../proxy/control-client.ts';
import { createLogger } from '../../src/log.ts';
import { openssl, tempDir } from '../certs/openssl.ts';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';
import { killAllSkein } from '../support/process.ts';
import { waitFor } from '../support/wait-for.ts';

const SKEIN_BIN = fileURLToPath(new URL('../../bin/skein.js', import.meta.url));

let dir: string;
let cleanup: () => void;
let caDir: string;
let clients: ControlClient[];
let streams: http.ClientRequest[];

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  caDir = join(dir, 'ca');
  clients = [];
  streams = [];
});

afterEach(async () => {
  for (const c of clients) c.close();
  for (const s of streams) s.destroy();
  await killAllSkein();
  cleanup();
});

function skein(...args: string[]): string {
  const r = spawnSync(process.execPath, [SKEIN_BIN, ...args], { encoding: 'utf8', timeout: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

/** `skein ca issue --id`: PREFIX.crt (leaf then intermediate) and PREFIX.key; answers the serial. */
function issue(id: string, name: string): { crt: string; key: string; serial: string } {
  const prefix = join(dir, name);
  const out = skein('ca', 'issue', '--dir', caDir, '--id', id, '--out', prefix);
  return { crt: `${prefix}.crt`, key: `${prefix}.key`, serial: /serial ([0-9a-f]+)/.exec(out)![1] };
}

interface TrustLine {
  type: string;
  hash: string;
  bundle: string;
  crl: string;
}

/** Reads control's push stream from outside and keeps its trust messages (raw objects, as sent). */
function watchTrust(url: string, ca?: string, haveTrust?: string): TrustLine[] {
  const seen: TrustLine[] = [];
  const target = new URL(`/v1/push?node=outside-${streams.length}&service=watcher`, url);
  if (haveTrust !== undefined) target.searchParams.set('haveTrust', haveTrust);
  const get = target.protocol === 'https:' ? https.get : http.get;
  const req = get(target, { agent: false, ...(ca !== undefined && { ca }) }, (res) => {
    let buffered = '';
    res.setEncoding('utf8').on('data', (s: string) => {
      buffered += s;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const msg = JSON.parse(buffered.slice(0, nl)) as TrustLine;
        buffered = buffered.slice(nl + 1);
        if (msg.type === 'trust') seen.push(msg);
      }
    });
  });
  req.on('error', () => {});
  streams.push(req);
  return seen;
}

/** A proxy's control client (in this process) whose onTrust records what it is given. */
function proxyClient(url: string, tls?: () => { ca?: string; cert?: string; key?: string }): ControlTrust[] {
  const seen: ControlTrust[] = [];
  const client = new ControlClient(
    {
      url,
      node: `web-${clients.length}`,
      service: 'web',
      stateFile: null,
      apply: async () => {},
      log: createLogger('error'),
      onTrust: (t) => seen.push(t),
      ...(tls !== undefined && { tls }),
    },
    null,
  );
  client.start();
  clients.push(client);
  return seen;
}

const crlBlocks = (pem: string) => pem.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? [];
const certBlocks = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

/** openssl's reading of one CRL, after checking its signature against `issuerFile` (must pass). */
function opensslCrl(crlPem: string | undefined, issuerFile: string, name: string): string {
  if (crlPem === undefined) throw new Error('no CRL where one was expected');
  const file = join(dir, `${name}.crl`);
  writeFileSync(file, `${crlPem}\n`);
  const r = openssl('crl', '-in', file, '-CAfile', issuerFile, '-verify', '-noout', '-text');
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr + r.stdout).toMatch(/verify OK/);
  return r.stdout;
}

const listsSerial = (text: string, serial: string) =>
  // openssl prints the serial's bytes (a leading 0 when the first is under 0x10); skein prints it without.
  [
    ...text
      .replace(/\s/g, '')
      .toLowerCase()
      .matchAll(/serialnumber:([0-9a-f]+)/g),
  ]
    .map((m) => m[1].replace(/^0+/, ''))
    .includes(serial);

describe('trust distribution from control', () => {
  it('sends trust on connect, and pushes the CRL after skein ca revoke and both roots after skein ca rotate-root', async () => {
    const control = await startSkeinControl(join(dir, 'data'), ['--ca-dir', caDir]);
    const received = proxyClient(control.url);
    const raw = watchTrust(control.url);
    await waitFor(() => received.length === 1 && raw.length === 1, 10_000);

    // The message's exact shape, and the hash over bundle + '\n' + crl.
    const first = raw[0];
    expect(Object.keys(first).sort()).toEqual(['bundle', 'crl', 'hash', 'type']);
    expect(first.hash).toBe(createHash('sha256').update(`${first.bundle}\n${first.crl}`).digest('hex'));
    expect(received[0]).toEqual({ bundle: first.bundle, crl: first.crl, hash: first.hash });
    expect(first.bundle).toBe(readFileSync(join(caDir, 'bundle.pem'), 'utf8'));
    expect(crlBlocks(first.crl)).toHaveLength(1);
    expect(opensslCrl(crlBlocks(first.crl)[0], join(caDir, 'intermediate.crt'), 'first')).toMatch(
      /No Revoked Certificates/,
    );

    // An operator revokes with the CLI on the same directory: control notices and pushes within seconds.
    const web = issue('spiffe://cluster.local/ns/default/sa/web', 'web');
    skein('ca', 'revoke', '--dir', caDir, '--cert', web.crt, '--reason', 'keyCompromise');
    const revokedAt = Date.now();
    await waitFor(() => received.length === 2 && raw.length === 2, 15_000);
    expect(Date.now() - revokedAt).toBeLessThan(8_000); // a 2 s poll, with room for a loaded machine
    const afterRevoke = received[1];
    expect(afterRevoke.bundle).toBe(first.bundle);
    const text = opensslCrl(crlBlocks(afterRevoke.crl)[0], join(caDir, 'intermediate.crt'), 'revoked');
    expect(listsSerial(text, web.serial)).toBe(true);
    expect(text).toMatch(/Key Compromise/);
    expect(raw[1].hash).toBe(afterRevoke.hash);

    // A root rotation: the old root stays trusted while its leaves live, so the bundle holds both roots and
    // the old intermediate's CRL (still listing the serial) comes beside the new one.
    const oldRoot = readFileSync(join(caDir, 'root.crt'), 'utf8').trim();
    skein('ca', 'rotate-root', '--dir', caDir);
    await waitFor(() => received.find((t) => certBlocks(t.bundle).length === 2), 10_000);
    // A CRL signed half-way through the rotation is refused by control, so the last message is what counts.
    await waitFor(() => (raw.at(-1)!.hash === received.at(-1)!.hash ? true : undefined), 10_000);
    const rotated = received.at(-1)!;
    const roots = certBlocks(rotated.bundle);
    expect(roots).toHaveLength(2);
    expect(roots).toContain(oldRoot);
    expect(roots).toContain(readFileSync(join(caDir, 'root.crt'), 'utf8').trim());
    const [current, retired] = crlBlocks(rotated.crl);
    expect(opensslCrl(current, join(caDir, 'intermediate.crt'), 'current')).toMatch(/No Revoked Certificates/);
    expect(
      listsSerial(opensslCrl(retired, join(caDir, 'retired', '1', 'intermediate.crt'), 'retired'), web.serial),
    ).toBe(true);
    // A stream that says it has the current trust is not sent it again; one with an older hash is.
    const upToDate = watchTrust(control.url, undefined, rotated.hash);
    const stale = watchTrust(control.url, undefined, first.hash);
    await waitFor(() => stale.length === 1, 5_000);
    expect(stale[0].hash).toBe(rotated.hash);
    expect(upToDate).toEqual([]);
    // The read routes answer what was pushed.
    expect((await api<string>(control.url, 'GET', '/v1/trust-bundle')).body).toBe(rotated.bundle);
    expect((await api<string>(control.url, 'GET', '/v1/crl')).body).toBe(rotated.crl);
  });

  it('revokes through the API (token needed, by serial or certificate), lists revocations and pushes the CRL', async () => {
    const control = await startSkeinControl(join(dir, 'data'), ['--ca-dir', caDir]);
    const received = proxyClient(control.url);
    await waitFor(() => received.length === 1, 10_000);
    const a = issue('spiffe://cluster.local/ns/default/sa/a', 'a');
    const b = issue('spiffe://cluster.local/ns/default/sa/b', 'b');

    const noToken = await api(
      control.url,
      'POST',
      '/v1/certificates/revocations',
      { serial: a.serial },
      { token: null },
    );
    expect(noToken.status).toBe(401);

    const bySerial = await api(control.url, 'POST', '/v1/certificates/revocations', {
      serial: a.serial.toUpperCase(),
      reason: 'superseded',
    });
    expect(bySerial.status).toBe(201);
    expect(bySerial.body).toMatchObject({
      serial: a.serial,
      reason: 'superseded',
      generation: null,
      alreadyRevoked: false,
    });
    // Written to the stream before the answer; the proxy reads it a moment later.
    await waitFor(() => received.length === 2, 5_000);
    expect(
      listsSerial(opensslCrl(crlBlocks(received[1].crl)[0], join(caDir, 'intermediate.crt'), 'api'), a.serial),
    ).toBe(true);

    const byCert = await api(control.url, 'POST', '/v1/certificates/revocations', {
      certificate: readFileSync(b.crt, 'utf8'),
    });
    expect(byCert.status).toBe(201);
    expect(byCert.body).toMatchObject({ serial: b.serial, reason: 'unspecified', generation: 1 });
    const again = await api(control.url, 'POST', '/v1/certificates/revocations', { serial: b.serial });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ serial: b.serial, alreadyRevoked: true });

    // Refused: both or neither of serial and certificate, an unknown reason, a certificate of another CA.
    const other = join(dir, 'other');
    skein('ca', 'init', '--dir', other);
    skein('ca', 'issue', '--dir', other, '--id', 'spiffe://cluster.local/ns/x/sa/y', '--out', join(dir, 'foreign'));
    for (const body of [
      {},
      { serial: a.serial, certificate: readFileSync(b.crt, 'utf8') },
      { serial: a.serial, reason: 'bored' },
      { serial: 'not-hex' },
      { certificate: readFileSync(join(dir, 'foreign.crt'), 'utf8') },
    ]) {
      const r = await api<{ error: { code: string } }>(control.url, 'POST', '/v1/certificates/revocations', body);
      expect(`${JSON.stringify(body).slice(0, 40)} ${r.status}`).toBe(`${JSON.stringify(body).slice(0, 40)} 400`);
    }

    const list = await api<{ serial: string; reason: string }[]>(control.url, 'GET', '/v1/certificates/revocations');
    expect(list.body.map((e) => `${e.serial} ${e.reason}`)).toEqual([
      `${a.serial} superseded`,
      `${b.serial} unspecified`,
    ]);
    await control.waitForLog((l) => l.msg.includes(`revoked certificate serial ${b.serial}`), 5_000);
    const openapi = (await api<{ paths: Record<string, unknown> }>(control.url, 'GET', '/openapi.json')).body;
    expect(Object.keys(openapi.paths)).toContain('/v1/certificates/revocations');
  });
});

interface Answer {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
}

/** One HTTPS request to control, trusting `ca`, with an optional client certificate and token. */
function call(
  url: string,
  ca: string,
  method: string,
  path: string,
  opts: { body?: unknown; cert?: { crt: string; key: string }; token?: string } = {},
): Promise<Answer> {
  const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, url),
      {
        method,
        agent: false,
        ca,
        ...(opts.cert !== undefined && { cert: readFileSync(opts.cert.crt), key: readFileSync(opts.cert.key) }),
        headers: {
          ...(data !== undefined && { 'content-type': 'application/json' }),
          ...(opts.token !== undefined && { authorization: `Bearer ${opts.token}` }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => (text += s));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? {} : JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

describe('skein control --tls --writer-ids', () => {
  it('serves HTTPS with its own certificate; a writer id writes without the token, other ids and revoked certificates are refused, the token still works', async () => {
    skein('ca', 'init', '--dir', caDir);
    const bundle = readFileSync(join(caDir, 'bundle.pem'), 'utf8');
    const admin = issue('spiffe://cluster.local/ns/ops/sa/admin', 'admin');
    const gone = issue('spiffe://cluster.local/ns/ops/sa/gone', 'gone');
    const web = issue('spiffe://cluster.local/ns/default/sa/web', 'web');
    const control = await startSkeinControl(join(dir, 'data'), [
      '--ca-dir',
      caDir,
      '--tls',
      '--writer-ids',
      'spiffe://cluster.local/ns/ops/sa/*,spiffe://cluster.local/ns/ci/sa/deployer',
    ]);
    expect(control.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // Printed after the "listening on" line the start waits for.
    await waitFor(() => /serving HTTPS as/.test(control.stdout));
    expect(control.stdout).toMatch(
      /serving HTTPS as spiffe:\/\/cluster\.local\/ns\/skein-system\/sa\/skein-control; writers by client certificate: spiffe:\/\/cluster\.local\/ns\/ops\/sa\/\*, spiffe:\/\/cluster\.local\/ns\/ci\/sa\/deployer/,
    );

    // openssl, from outside: the server certificate verifies against the bundle for the address and names control.
    const port = new URL(control.url).port;
    const s = spawnSync(
      'openssl',
      [
        's_client',
        '-connect',
        `127.0.0.1:${port}`,
        '-CAfile',
        join(caDir, 'bundle.pem'),
        '-verify_return_error',
        '-verify_ip',
        '127.0.0.1',
        '-showcerts',
      ],
      { input: '', encoding: 'utf8', timeout: 15_000 },
    );
    expect(s.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    const served = new X509Certificate(certBlocks(s.stdout)[0] ?? '');
    expect(served.subjectAltName).toContain('URI:spiffe://cluster.local/ns/skein-system/sa/skein-control');
    expect(served.subjectAltName).toContain('DNS:localhost');

    const service = (id: string) => ({ id, endpoints: [{ address: '127.0.0.1:1' }] });
    const byAdmin = await call(control.url, bundle, 'POST', '/v1/services', { body: service('a'), cert: admin });
    expect(byAdmin.status).toBe(201);

    const byWeb = await call(control.url, bundle, 'POST', '/v1/services', { body: service('b'), cert: web });
    expect(byWeb.status).toBe(403);
    expect(byWeb.body.error?.code).toBe('SKEIN_FORBIDDEN');
    expect(byWeb.body.error?.message).toContain('spiffe://cluster.local/ns/default/sa/web');

    // The writer revokes a certificate through the API with its own identity; that certificate is refused.
    const revoke = await call(control.url, bundle, 'POST', '/v1/certificates/revocations', {
      body: { serial: gone.serial, reason: 'keyCompromise' },
      cert: admin,
    });
    expect(revoke.status).toBe(201);
    const byGone = await call(control.url, bundle, 'POST', '/v1/services', { body: service('c'), cert: gone });
    expect(byGone.status).toBe(401);
    expect(byGone.body.error?.message).toMatch(/revoked/);

    // A certificate from another CA does not verify: 401 without the token.
    const other = join(dir, 'other');
    skein('ca', 'init', '--dir', other);
    skein(
      'ca',
      'issue',
      '--dir',
      other,
      '--id',
      'spiffe://cluster.local/ns/ops/sa/admin',
      '--out',
      join(dir, 'forged'),
    );
    const forged = { crt: join(dir, 'forged.crt'), key: join(dir, 'forged.key') };
    const byForged = await call(control.url, bundle, 'POST', '/v1/services', { body: service('d'), cert: forged });
    expect(byForged.status).toBe(401);

    // The token still works, with no certificate or with one that may not write.
    expect(
      (await call(control.url, bundle, 'POST', '/v1/services', { body: service('e'), token: control.token })).status,
    ).toBe(201);
    expect(
      (await call(control.url, bundle, 'POST', '/v1/services', { body: service('f'), cert: web, token: control.token }))
        .status,
    ).toBe(201);
    expect((await call(control.url, bundle, 'POST', '/v1/services', { body: service('g') })).status).toBe(401);
    // Reads stay open.
    expect((await call(control.url, bundle, 'GET', '/v1/services')).status).toBe(200);

    // The audit log names the certificate's SPIFFE id as the actor.
    const audit = await new Promise<{ actor: string; objectId: string }[]>((resolve, reject) => {
      https
        .get(new URL('/v1/audit', control.url), { ca: bundle, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => resolve(JSON.parse(text)));
        })
        .on('error', reject);
    });
    expect(audit.map((e) => `${e.objectId} ${e.actor}`).reverse()).toEqual([
      'a spiffe://cluster.local/ns/ops/sa/admin',
      'e token',
      'f token',
    ]);

    // A proxy's control client over HTTPS, with the bundle and its own certificate: it gets the trust message,
    // whose CRL lists the revoked serial.
    const received = proxyClient(control.url, () => ({
      ca: bundle,
      cert: readFileSync(web.crt, 'utf8'),
      key: readFileSync(web.key, 'utf8'),
    }));
    await waitFor(() => received.length === 1, 10_000);
    expect(received[0].bundle).toBe(bundle);
    expect(
      listsSerial(opensslCrl(crlBlocks(received[0].crl)[0], join(caDir, 'intermediate.crt'), 'tls'), gone.serial),
    ).toBe(true);
  });

  it('after a root rotation control serves a certificate from the new intermediate and takes writers of either root', async () => {
    skein('ca', 'init', '--dir', caDir);
    const admin = issue('spiffe://cluster.local/ns/ops/sa/admin', 'admin');
    const control = await startSkeinControl(join(dir, 'data'), [
      '--ca-dir',
      caDir,
      '--tls',
      '--writer-ids',
      'spiffe://cluster.local/ns/ops/sa/*',
    ]);
    skein('ca', 'rotate-root', '--dir', caDir);
    await control.waitForLog((l) => l.msg.includes('control TLS certificate renewed (a new intermediate)'), 15_000);
    const bundle = readFileSync(join(caDir, 'bundle.pem'), 'utf8');
    expect(certBlocks(bundle)).toHaveLength(2);
    const port = new URL(control.url).port;
    const s = spawnSync(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', join(caDir, 'bundle.pem'), '-verify_return_error'],
      { input: '', encoding: 'utf8', timeout: 15_000 },
    );
    expect(s.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(s.stdout).toMatch(/Skein Intermediate CA 2/);
    const after = issue('spiffe://cluster.local/ns/ops/sa/after', 'after');
    const service = (id: string) => ({ id, endpoints: [{ address: '127.0.0.1:1' }] });
    // Written with the new intermediate's certificate (trusted through the new root), and the old one's.
    expect((await call(control.url, bundle, 'POST', '/v1/services', { body: service('x'), cert: after })).status).toBe(
      201,
    );
    expect((await call(control.url, bundle, 'POST', '/v1/services', { body: service('y'), cert: admin })).status).toBe(
      201,
    );
  });

  it("re-issues control's certificate at half its life; new connections get the new one", async () => {
    skein('ca', 'init', '--dir', caDir);
    const bundle = readFileSync(join(caDir, 'bundle.pem'), 'utf8');
    // 0.003 h = 10.8 s: renewed about 5.4 s after start.
    const control = await startSkeinControl(join(dir, 'data'), ['--ca-dir', caDir, '--tls', '--cert-hours', '0.003']);
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const req = https.get(new URL('/healthz', control.url), { ca: bundle, agent: false }, (res) => {
          const cert = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate();
          res.resume();
          resolve(cert?.serialNumber ?? '');
        });
        req.on('error', reject);
      });
    const first = await served();
    await control.waitForLog((l) => l.msg.includes('control TLS certificate renewed (half its life)'), 15_000);
    const second = await served();
    expect(second).not.toBe(first);
    expect(second).toMatch(/^[0-9A-F]+$/);
  });

  it('refuses --writer-ids without --tls, --tls without --ca-dir, and a pattern that is not a SPIFFE id', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [SKEIN_BIN, 'control', '--listen', '127.0.0.1:0', '--data-dir', dir, ...args], {
        encoding: 'utf8',
        timeout: 30_000,
      });
    const cases: [string[], RegExp][] = [
      [['--ca-dir', caDir, '--writer-ids', 'spiffe://cluster.local/ns/ops/sa/*'], /--writer-ids needs --tls/],
      [['--tls'], /--tls needs --ca-dir/],
      [
        ['--ca-dir', caDir, '--tls', '--writer-ids', 'ops-admin'],
        /--writer-ids: 'ops-admin' is not a SPIFFE id pattern/,
      ],
      [
        ['--ca-dir', caDir, '--tls', '--tls-dns-names', 'bad_name!'],
        /--tls-dns-names: 'bad_name!' is not a valid DNS name/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = run(...args);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });
});
