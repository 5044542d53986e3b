// A listener's certificate replaced in place (same paths, new contents), as cert-manager or a mounted Secret
// does it: the proxy sees the files change, swaps the certificate into the running server, and keeps every
// open connection. A pair that does not match is rejected and the running certificate keeps serving.
import { copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makeSelfSignedCert, type TestCert } from '../support/certs.ts';
import { freePort, processTestFixture, startSkeinProxy } from '../support/process.ts';

const fixture = processTestFixture('skein-tls-rotation-');

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
function presentedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

/** GET over `agent` (keep-alive, one socket): the status, whether the socket was reused, and its certificate. */
function getOver(agent: https.Agent, port: number): Promise<{ status: number; reused: boolean; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent, rejectUnauthorized: false }, (res) => {
      // Read now: at the end of the response the socket goes back to the agent and leaves `res`.
      const fingerprint = (res.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, fingerprint }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error('no response within 5 s')));
    req.on('error', reject);
  });
}

/** Replace the served pair in place: same paths, the contents of `from`. */
async function overwrite(served: { certFile: string; keyFile: string }, from: TestCert) {
  await copyFile(from.certFile, served.certFile);
  await copyFile(from.keyFile, served.keyFile);
}

async function startTlsProxy(): Promise<{
  proxy: Awaited<ReturnType<typeof startSkeinProxy>>;
  served: { certFile: string; keyFile: string };
  a: TestCert;
  b: TestCert;
}> {
  const dir = fixture.dir();
  // The TLS files live beside, not in, the config's directory: the proxy must watch them where they are.
  await mkdir(join(dir, 'made'));
  await mkdir(join(dir, 'tls'));
  await mkdir(join(dir, 'conf'));
  const a = makeSelfSignedCert(join(dir, 'made'), 'a');
  const b = makeSelfSignedCert(join(dir, 'made'), 'b');
  const served = { certFile: join(dir, 'tls', 'server.crt'), keyFile: join(dir, 'tls', 'server.key') };
  await overwrite(served, a);
  const app = await fixture.upstream('app');
  const adminPort = await freePort();
  const file = join(dir, 'conf', 'skein.yaml');
  await writeFile(
    file,
    stringify({
      admin: { address: `127.0.0.1:${adminPort}` },
      listeners: [
        {
          name: 'secure',
          address: '127.0.0.1:0',
          tls: { certFile: '../tls/server.crt', keyFile: '../tls/server.key' },
          routes: [{ cluster: 'app' }],
        },
      ],
      clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: app.address }] } }],
    }),
  );
  const proxy = await startSkeinProxy(['--config', file], { adminPort });
  return { proxy, served, a, b };
}

describe('TLS certificate replaced in place', () => {
  it('new handshakes get the new certificate while an open keep-alive connection keeps working', async () => {
    const { proxy, served, a, b } = await startTlsProxy();
    const port = proxy.port();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await getOver(agent, port)).toEqual({ status: 200, reused: false, fingerprint: a.fingerprint256 });
      expect(await presentedFingerprint(port)).toBe(a.fingerprint256);

      await overwrite(served, b);
      const replaced = await proxy.waitForLog((l) => l.msg === 'tls certificate replaced', 10_000);
      expect(replaced.listener).toBe('secure');
      expect(await presentedFingerprint(port)).toBe(b.fingerprint256);
      // The connection opened before the swap is still up, still on the certificate it was made with.
      expect(await getOver(agent, port)).toEqual({ status: 200, reused: true, fingerprint: a.fingerprint256 });
      expect(proxy.port()).toBe(port);
    } finally {
      agent.destroy();
    }
  });

  it('rejects a certificate whose key is not the one beside it, and the running certificate keeps serving', async () => {
    const { proxy, served, a, b } = await startTlsProxy();
    const port = proxy.port();
    // b's certificate, a's key; renamed into place so the reload sees the whole certificate, never half of it.
    await copyFile(b.certFile, `${served.certFile}.new`);
    await rename(`${served.certFile}.new`, served.certFile);
    const rejected = await proxy.waitForLog((l) => l.msg.startsWith('config rejected'), 10_000);
    expect(rejected.problems).toEqual([
      `listeners[0].tls.keyFile: ${served.keyFile} is not the private key of the certificate in ${served.certFile}`,
    ]);
    expect(await presentedFingerprint(port)).toBe(a.fingerprint256);

    // SIGHUP after the key arrives too (the watcher would also see it): now the pair applies.
    await copyFile(b.keyFile, served.keyFile);
    proxy.signal('SIGHUP');
    await proxy.waitForLog((l) => l.msg === 'tls certificate replaced', 10_000);
    expect(await presentedFingerprint(port)).toBe(b.fingerprint256);
  });
});
