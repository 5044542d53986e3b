// A listener with `tls`: ALPN picks HTTP/2 or HTTP/1.1 per connection on one port. Real clients (curl,
// node:http2, node:https) against a certificate made for the test by the openssl CLI.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSelfSignedCert } from '../support/certs.ts';
import { runCurl } from '../support/curl.ts';
import {
  type RunningProxy,
  startEchoUpstream,
  startH2EchoUpstream,
  startProxy,
  type Upstream,
} from '../support/proxy.ts';

describe('TLS listener with ALPN', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skein-tls-'));
  const { certFile, keyFile } = makeSelfSignedCert(dir, 'skein-test');
  let ca: Buffer;
  let h1: Upstream;
  let h2: Upstream;
  let proxy: RunningProxy;

  beforeAll(async () => {
    ca = readFileSync(certFile);
    h1 = await startEchoUpstream('h1-app');
    h2 = await startH2EchoUpstream('h2-app');
    proxy = await startProxy({
      service: 'tls-client',
      listeners: [
        {
          name: 'secure',
          address: '127.0.0.1:0',
          tls: { certFile, keyFile },
          routes: [{ name: 'default', cluster: 'app' }],
        },
      ],
      // protocol auto: an h2 caller goes upstream as h2c, so this proxy fronts the h2c app; the HTTP/1.1
      // test below uses a second proxy in front of the HTTP/1.1 app.
      clusters: [
        {
          name: 'app',
          discovery: { type: 'static', endpoints: [{ address: h2.address }] },
        },
      ],
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await h1?.close();
    await h2?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('speaks HTTP/2 to a client that offers h2 in ALPN', async () => {
    const session = http2.connect(`https://127.0.0.1:${proxy.port()}`, { ca, servername: '127.0.0.1' });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('connect', () => resolve());
        session.once('error', reject);
      });
      expect(session.alpnProtocol).toBe('h2');
      const req = session.request({ ':path': '/over-tls' });
      const chunks: Buffer[] = [];
      const status = await new Promise<number>((resolve, reject) => {
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.on('error', reject);
      });
      for await (const c of req) chunks.push(c as Buffer);
      expect(status).toBe(200);
      const body = JSON.parse(Buffer.concat(chunks).toString());
      expect(body).toMatchObject({ server: 'h2-app', url: '/over-tls' });
      expect(body.headers['x-forwarded-proto']).toBe('https');
    } finally {
      session.close();
    }
  });

  it('negotiates h2 with curl and verifies the certificate', async () => {
    const run = await runCurl([
      '--http2',
      '--cacert',
      certFile,
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      `https://127.0.0.1:${proxy.port()}/curl`,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout.toString()).toBe('2 200');
  });

  it('speaks HTTP/1.1 to a client that offers only http/1.1, on the same port', async () => {
    const h1proxy = await startProxy({
      listeners: [
        { name: 'secure1', address: '127.0.0.1:0', tls: { certFile, keyFile }, routes: [{ cluster: 'app1' }] },
      ],
      clusters: [{ name: 'app1', discovery: { type: 'static', endpoints: [{ address: h1.address }] } }],
    });
    try {
      const { status, body, alpn } = await new Promise<{ status: number; body: string; alpn: string | false | null }>(
        (resolve, reject) => {
          const req = https.get(
            {
              host: '127.0.0.1',
              port: h1proxy.port(),
              path: '/h1-over-tls',
              agent: new https.Agent({ ca, ALPNProtocols: ['http/1.1'] }),
            },
            (res) => {
              const alpn = (res.socket as import('node:tls').TLSSocket).alpnProtocol;
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (text += c));
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  body: text,
                  alpn,
                }),
              );
            },
          );
          req.on('error', reject);
        },
      );
      expect(alpn).toBe('http/1.1');
      expect(status).toBe(200);
      expect(JSON.parse(body)).toMatchObject({ server: 'h1-app', url: '/h1-over-tls' });
    } finally {
      await h1proxy.close();
    }
  });
});
