// Identities from control, rotated under load. Two proxies get their certificates from `skein control --ca-dir`
// (each makes its key and sends a CSR with the bootstrap token), with certificates that live 3.6 seconds, so
// each renews about every 1.8 s. Steady requests flow client → outbound proxy → mTLS → inbound proxy → app the
// whole time, on connections that close when idle (so new handshakes keep happening with the new
// certificates), and not one request fails. And revocation: a certificate revoked through control's API reaches
// the other proxy in the pushed CRL, which refuses it from its next handshake on.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { api, startSkeinControl } from '../support/control.ts';
import { waitFor } from '../support/wait-for.ts';
import { httpGet } from '../support/http-client.ts';
import { sampleSum } from '../support/metrics.ts';
import { freePort, processTestFixture, startSkeinProxy } from '../support/process.ts';

const fixture = processTestFixture('skein-mtls-rotation-');
const TD = 'cluster.local';

/** One GET on a fresh agent-less connection per call (the client side of the load). */
function get(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(5_000, () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** Control with a CA; app ← inbound proxy (strict) ← mTLS ← outbound proxy, both identities from control. */
async function startMesh(certHours: number) {
  const dir = fixture.dir();
  const dataDir = join(dir, 'control');
  const control = await startSkeinControl(dataDir, ['--ca-dir', join(dir, 'ca'), '--cert-hours', String(certHours)]);
  const tokenFile = join(dataDir, 'bootstrap-token');
  expect(readFileSync(tokenFile, 'utf8').trim()).not.toBe('');
  const fingerprints = new Set<string>();
  const app = await fixture.upstream('app', (req, res) => {
    const fp = req.headers['x-mesh-cert-fingerprint'];
    if (typeof fp === 'string') fingerprints.add(fp);
    res.end('ok');
  });

  const inAdmin = await freePort();
  const inPort = await freePort();
  await writeFile(
    join(dir, 'in.yaml'),
    stringify({
      service: 'server',
      admin: { address: `127.0.0.1:${inAdmin}` },
      mtls: { trustDomain: TD },
      listeners: [
        {
          name: 'inbound',
          direction: 'inbound',
          address: `127.0.0.1:${inPort}`,
          mtls: 'strict',
          routes: [{ cluster: 'app' }],
        },
      ],
      clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: app.address }] } }],
    }),
  );
  const mesh = ['--control', control.url, '--bootstrap-token-file', tokenFile];
  const inbound = await startSkeinProxy(
    ['--config', join(dir, 'in.yaml'), ...mesh, '--spiffe-id', `spiffe://${TD}/ns/shop/sa/server`],
    { adminPort: inAdmin },
  );
  const outAdmin = await freePort();
  await writeFile(
    join(dir, 'out.yaml'),
    stringify({
      service: 'client',
      admin: { address: `127.0.0.1:${outAdmin}` },
      mtls: { trustDomain: TD },
      listeners: [
        { name: 'outbound', address: '127.0.0.1:0', routes: [{ cluster: 'server', retries: { maxRetries: 0 } }] },
      ],
      clusters: [
        {
          name: 'server',
          mtls: { mode: 'always', serverIds: [`spiffe://${TD}/ns/shop/sa/server`] },
          // Idle upstream connections close quickly: the load keeps making new mTLS handshakes.
          timeouts: { idleMs: 100 },
          discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${inPort}` }] },
        },
      ],
    }),
  );
  const outbound = await startSkeinProxy(['--config', join(dir, 'out.yaml'), ...mesh], { adminPort: outAdmin });

  return { control, inbound, outbound, fingerprints };
}

describe('mTLS identities from control, rotated under load', () => {
  it('renews every couple of seconds on both proxies and no request fails', async () => {
    const { inbound, outbound, fingerprints } = await startMesh(0.001);
    // Bounded load: 4 callers for 9 seconds, each pausing 0–200 ms between requests.
    const statuses: number[] = [];
    const until = Date.now() + 9_000;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < until) {
          statuses.push(await get(outbound.port()));
          await new Promise((r) => setTimeout(r, Math.random() * 200));
        }
      }),
    );
    expect(statuses.length).toBeGreaterThan(100);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const p of [inbound, outbound]) {
      const installed = p.logs.filter((l) => l.msg === 'mtls: certificate installed');
      expect(installed.length).toBeGreaterThanOrEqual(4);
      expect(new Set(installed.map((l) => l.serial)).size).toBe(installed.length);
    }
    // The inbound proxy met several of the outbound's certificates (one per rotation it handshook under).
    expect(fingerprints.size).toBeGreaterThanOrEqual(3);
    const m = (await httpGet(`${inbound.adminUrl}/metrics`)).body;
    expect(sampleSum(m, 'skein_mtls_handshakes_total', 'result="ok"')).toBeGreaterThanOrEqual(3);
    expect(m).not.toMatch(/skein_mtls_handshakes_total\{direction="inbound",result="(?!ok")/);
  });

  it('a certificate revoked through control is refused by the other proxy at once; its renewal is accepted', async () => {
    const { control, inbound, outbound } = await startMesh(0.003); // 10.8 s certificates, renewed every 5.4 s
    const get1 = async () => (await httpGet(outbound.url())).status;
    expect(await get1()).toBe(200);
    // Revoke right after a renewal, so the next one is seconds away.
    const renewals = () => outbound.logs.filter((l) => l.msg === 'mtls: certificate installed');
    const before = renewals().length;
    await waitFor(() => renewals().length > before || undefined, 15_000);
    const serial = String(renewals().at(-1)!.serial);
    const revoked = await api(control.url, 'POST', '/v1/certificates/revocations', { serial, reason: 'keyCompromise' });
    expect(revoked.status).toBe(201);
    await inbound.waitForLog(
      (l) => l.msg === 'mtls: trust from control applied' && Number(l.revokedSerials) >= 1,
      10_000,
    );
    await new Promise((r) => setTimeout(r, 300)); // the outbound's idle connection (idleMs 100) is gone
    expect(await get1()).toBe(503);
    const refused = await inbound.waitForLog(
      (l) => l.msg === 'mtls: connection refused' && l.reason === 'revoked',
      5_000,
    );
    expect(String(refused.detail)).toContain(serial);
    // The next renewal is a new serial: accepted.
    const now = renewals().length;
    await waitFor(() => renewals().length > now || undefined, 15_000);
    expect(await get1()).toBe(200);
    const m = (await httpGet(`${inbound.adminUrl}/metrics`)).body;
    expect(sampleSum(m, 'skein_mtls_handshakes_total', 'direction="inbound",result="revoked"')).toBeGreaterThanOrEqual(
      1,
    );
  });
});
