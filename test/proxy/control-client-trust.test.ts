// The proxy's control client receiving trust messages from a stand-in control (a real HTTP or HTTPS server on
// port 0 writing the push stream by hand): a valid message reaches onTrust once per hash, a malformed one or one
// whose hash does not name its content is logged and ignored; against an https control the client verifies the
// server with the CA it is given and presents the certificate tls() answers at each new connection (acks and
// the stream alike), so a rotated certificate is used from the next connection on.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { initCa, issueForId } from '../../certs/ca.ts';
import { createCrl } from '../../certs/crl.ts';
import { caPaths } from '../../certs/store.ts';
import { ControlClient, type ControlTrust } from '../../proxy/control-client.ts';
import { overlayHash } from '../../src/config/overlay.ts';
import type { Logger } from '../../src/log.ts';
import { trustHash } from '../../src/trust-message.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

let dir: string;
let server: http.Server | https.Server | undefined;
let client: ControlClient | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skein-ctl-trust-'));
});

afterEach(async () => {
  client?.close();
  client = undefined;
  if (server !== undefined) {
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
    server = undefined;
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Logged {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

function recordingLogger(): { log: Logger; lines: Logged[] } {
  const lines: Logged[] = [];
  const at = (level: string) => (msg: string, fields?: Record<string, unknown>) => lines.push({ level, msg, fields });
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

/** A stand-in control: every push stream gets `lines` then stays open; acks and stats are recorded. */
function standIn(lines: () => string[], peers: string[]) {
  const acks: unknown[] = [];
  const streams: http.ServerResponse[] = [];
  const streamQueries: URLSearchParams[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const cert = (req.socket as tls.TLSSocket).getPeerX509Certificate?.();
    peers.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname} ${cert?.serialNumber ?? '-'}`);
    if (req.url?.startsWith('/v1/push?')) {
      streamQueries.push(new URL(req.url, 'http://x').searchParams);
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      for (const line of lines()) res.write(`${line}\n`);
      streams.push(res);
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/v1/push/ack') acks.push(JSON.parse(body));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"recorded":true}');
    });
  };
  return { handler, acks, streams, streamQueries };
}

async function listening(s: http.Server | https.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

async function ca(): Promise<{ caDir: string; bundle: string; crl: string }> {
  const caDir = join(dir, 'ca');
  await initCa(caDir);
  return { caDir, bundle: readFileSync(caPaths(caDir).bundle, 'utf8'), crl: (await createCrl(caDir)).pem };
}

const trustLine = (bundle: string, crl: string, hash = trustHash(bundle, crl)) =>
  JSON.stringify({ type: 'trust', hash, bundle, crl });

describe('the control client and trust messages', () => {
  it('hands a valid trust message to onTrust once per hash; malformed ones and wrong hashes are logged and ignored', async () => {
    const { bundle, crl } = await ca();
    const good = trustLine(bundle, crl);
    const lines = [
      '{"type":"ping"}',
      JSON.stringify({ type: 'trust', hash: 'x', bundle: 42 }),
      trustLine(bundle, crl, 'f'.repeat(64)),
      good,
      good,
      '{"type":"something-newer","x":1}',
    ];
    const peers: string[] = [];
    const fake = standIn(() => lines, peers);
    server = http.createServer(fake.handler);
    const port = await listening(server);
    const seen: ControlTrust[] = [];
    const { log, lines: logged } = recordingLogger();
    client = new ControlClient(
      {
        url: `http://127.0.0.1:${port}`,
        node: 'n1',
        service: 'web',
        stateFile: null,
        apply: async () => {},
        log,
        onTrust: (t) => seen.push(t),
        backoffMinMs: 20,
        backoffMaxMs: 50,
      },
      null,
    );
    client.start();
    await waitFor(() => seen.length === 1);
    await sleep(100);
    expect(seen).toEqual([{ bundle, crl, hash: trustHash(bundle, crl) }]);
    expect(client.trustHash).toBe(trustHash(bundle, crl));
    const warnings = logged.filter((l) => l.level === 'warn').map((l) => l.msg);
    expect(warnings).toContain('control sent a malformed trust message; ignored');
    expect(warnings).toContain('control sent a trust message whose hash does not name its content; ignored');
    const malformed = logged.find((l) => l.msg === 'control sent a malformed trust message; ignored');
    expect(JSON.stringify(malformed?.fields)).toMatch(/bundle/);

    // The reconnect says which trust it has (control then sends it nothing); one that brings the same trust
    // anyway does not re-apply it.
    expect(fake.streamQueries[0].get('haveTrust')).toBeNull();
    fake.streams[0].destroy();
    await waitFor(() => fake.streams.length === 2);
    expect(fake.streamQueries[1].get('haveTrust')).toBe(trustHash(bundle, crl));
    await sleep(100);
    expect(seen).toHaveLength(1);
  });

  it('retries a trust message onTrust refused when it comes again', async () => {
    const { bundle, crl } = await ca();
    const peers: string[] = [];
    const fake = standIn(() => [trustLine(bundle, crl)], peers);
    server = http.createServer(fake.handler);
    const port = await listening(server);
    let calls = 0;
    const { log } = recordingLogger();
    client = new ControlClient(
      {
        url: `http://127.0.0.1:${port}`,
        node: 'n1',
        service: 'web',
        stateFile: null,
        apply: async () => {},
        log,
        onTrust: () => {
          calls++;
          if (calls === 1) throw new Error('not now');
        },
        backoffMinMs: 20,
        backoffMaxMs: 50,
      },
      null,
    );
    client.start();
    await waitFor(() => calls === 1);
    expect(client.trustHash).toBe('');
    fake.streams[0].destroy();
    await waitFor(() => calls === 2);
    expect(client.trustHash).toBe(trustHash(bundle, crl));
  });

  it('talks to an https control with the CA and client certificate tls() gives, read again for each new connection', async () => {
    const { caDir, bundle, crl } = await ca();
    const serving = await issueForId(caDir, 'spiffe://cluster.local/ns/skein-system/sa/skein-control', {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    const first = await issueForId(caDir, 'spiffe://cluster.local/ns/default/sa/web');
    const second = await issueForId(caDir, 'spiffe://cluster.local/ns/default/sa/web');
    const overlay = { version: 3, routes: [], clusters: [] };
    const peers: string[] = [];
    const fake = standIn(
      () => [trustLine(bundle, crl), JSON.stringify({ type: 'snapshot', hash: overlayHash(overlay), overlay })],
      peers,
    );
    server = https.createServer(
      { key: serving.keyPem, cert: serving.chainPem, ca: bundle, requestCert: true, rejectUnauthorized: true },
      fake.handler,
    );
    const port = await listening(server);
    let material = first;
    const seen: ControlTrust[] = [];
    const { log } = recordingLogger();
    client = new ControlClient(
      {
        url: `https://127.0.0.1:${port}`,
        node: 'n1',
        service: 'web',
        stateFile: null,
        apply: async () => {},
        log,
        onTrust: (t) => seen.push(t),
        tls: () => ({ ca: bundle, cert: material.chainPem, key: material.keyPem }),
        backoffMinMs: 20,
        backoffMaxMs: 50,
      },
      null,
    );
    client.start();
    await waitFor(() => fake.acks.length === 1 && seen.length === 1);
    const serial = (c: { chainPem: string }) => new X509Certificate(c.chainPem).serialNumber;
    expect(peers).toEqual([`GET /v1/push ${serial(first)}`, `POST /v1/push/ack ${serial(first)}`]);
    expect(fake.acks[0]).toMatchObject({ node: 'n1', version: 3, ok: true });

    // Rotated: the next stream and the next ack go out with the new certificate.
    material = second;
    // Only the stream is cut: the ack connection stays open and idle, and still the next ack goes out on a new
    // connection with the new certificate (the agent pools connections by their TLS material).
    for (const s of fake.streams) s.destroy();
    await waitFor(() => peers.length >= 4, 5_000);
    expect(peers.slice(2)).toEqual([`GET /v1/push ${serial(second)}`, `POST /v1/push/ack ${serial(second)}`]);
    expect(seen).toHaveLength(1); // the same trust again: not re-applied
  });

  it('does not connect to an https control whose certificate the given CA does not verify', async () => {
    const { caDir, bundle } = await ca();
    const other = join(dir, 'other');
    await initCa(other);
    const serving = await issueForId(caDir, 'spiffe://cluster.local/ns/skein-system/sa/skein-control', {
      ipAddresses: ['127.0.0.1'],
    });
    const peers: string[] = [];
    const fake = standIn(() => [], peers);
    server = https.createServer({ key: serving.keyPem, cert: serving.chainPem }, fake.handler);
    const port = await listening(server);
    const { log, lines } = recordingLogger();
    client = new ControlClient(
      {
        url: `https://127.0.0.1:${port}`,
        node: 'n1',
        service: 'web',
        stateFile: null,
        apply: async () => {},
        log,
        tls: () => ({ ca: readFileSync(caPaths(other).bundle, 'utf8') }),
        backoffMinMs: 20,
        backoffMaxMs: 50,
      },
      null,
    );
    client.start();
    await waitFor(() => lines.find((l) => l.msg === 'control TLS handshake failed'));
    expect(peers).toEqual([]);
    expect(bundle).not.toBe(readFileSync(caPaths(other).bundle, 'utf8'));
  });
});
