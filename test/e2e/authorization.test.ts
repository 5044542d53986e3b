// Authorization between real proxies over mTLS: two outbound proxies with different identities (an allowed and
// a denied caller) call one inbound proxy whose listener has authorization policies; HTTP and gRPC; the app
// sees who called in x-forwarded-client-cert (and never what a caller forged); a plaintext caller on the
// permissive listener has no identity; denials answer 403 RBAC (gRPC PERMISSION_DENIED) and are counted.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, processTestFixture, runSkein, startSkeinProxy, type RunningSkein } from '../support/process.ts';
import { httpGet } from '../support/http-client.ts';
import { waitForAsync } from '../support/wait-for.ts';
import { echoClient, type GrpcUpstream, grpcError, startGrpcUpstream, unary } from '../support/grpc-echo.ts';

const fixture = processTestFixture('skein-authz-');
const TD = 'cluster.local';
const SERVER_ID = `spiffe://${TD}/ns/pay/sa/api`;
const CART_ID = `spiffe://${TD}/ns/shop/sa/cart`;
const BATCH_ID = `spiffe://${TD}/ns/ops/sa/batch`;
const FORGED = {
  'x-forwarded-client-cert': `By=x;Hash=00;URI=${CART_ID}`,
  'x-mesh-mtls': 'true',
  'x-mesh-cert-fingerprint': '00',
};

let grpcUpstream: GrpcUpstream | null = null;
let tcpEcho: net.Server | null = null;
afterEach(async () => {
  await grpcUpstream?.close();
  grpcUpstream = null;
  tcpEcho?.close();
  tcpEcho = null;
});

/** What a TCP connection through `port` gets back for `text` before it closes ('' when closed at once). */
function tcpRoundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let got = '';
    socket.on('connect', () => socket.write(text));
    socket.on('data', (d) => {
      got += d.toString();
      if (got.length >= text.length) socket.end();
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(got));
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

async function issue(caDir: string, id: string, out: string): Promise<string> {
  const r = await runSkein(['ca', 'issue', '--dir', caDir, '--id', id, '--out', out]);
  expect(r.code, r.stderr).toBe(0);
  return out;
}

/** The certificate's SHA-256 as the proxy writes it: lowercase hex. */
function sha256Of(prefix: string): string {
  return new X509Certificate(readFileSync(`${prefix}.crt`)).fingerprint256.replace(/:/g, '').toLowerCase();
}

interface Mesh {
  dir: string;
  inbound: RunningSkein;
  cart: RunningSkein;
  batch: RunningSkein;
  cartSha256: string;
  seen: IncomingHttpHeaders[];
  grpcSeen: grpc.Metadata[];
}

/** app + gRPC app ← inbound proxy (mTLS permissive, policies) ← outbound proxies of cart and batch. */
async function startMesh(): Promise<Mesh> {
  const dir = fixture.dir();
  const caDir = join(dir, 'ca');
  const init = await runSkein(['ca', 'init', '--dir', caDir, '--trust-domain', TD]);
  expect(init.code, init.stderr).toBe(0);
  const crl = join(dir, 'crl.pem');
  execFileSync(process.execPath, [join(process.cwd(), 'bin/skein.js'), 'ca', 'crl', '--dir', caDir, '--out', crl]);
  const mtls = (prefix: string) => ({
    trustDomain: TD,
    certFile: `${prefix}.crt`,
    keyFile: `${prefix}.key`,
    trustBundleFile: join(caDir, 'bundle.pem'),
    crlFile: crl,
  });
  const seen: IncomingHttpHeaders[] = [];
  const app = await fixture.upstream('app', (req, res) => {
    seen.push(req.headers);
    res.end('hello from app');
  });
  const grpcSeen: grpc.Metadata[] = [];
  grpcUpstream = await startGrpcUpstream({
    Unary(call, callback) {
      grpcSeen.push(call.metadata);
      callback(null, { message: call.request.message, index: 0 });
    },
  });
  tcpEcho = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => tcpEcho!.listen(0, '127.0.0.1', resolve));
  const tcpEchoAddress = `127.0.0.1:${(tcpEcho.address() as net.AddressInfo).port}`;
  const server = await issue(caDir, SERVER_ID, join(dir, 'server'));
  const cartCert = await issue(caDir, CART_ID, join(dir, 'cart'));
  const batchCert = await issue(caDir, BATCH_ID, join(dir, 'batch'));

  const inAdmin = await freePort();
  await writeFile(
    join(dir, 'in.yaml'),
    stringify({
      service: 'pay',
      admin: { address: `127.0.0.1:${inAdmin}` },
      telemetry: { accessLog: { enabled: true, path: join(dir, 'access.log') } },
      mtls: mtls(server),
      listeners: [
        {
          name: 'inbound',
          direction: 'inbound',
          address: '127.0.0.1:0',
          mtls: 'permissive',
          stages: {
            authorization: {
              policies: [
                { name: 'shop', action: 'allow', sources: [`spiffe://${TD}/ns/shop/sa/*`] },
                { name: 'public', action: 'allow', paths: ['/public/*'] },
                { name: 'no-admin', action: 'deny', paths: ['/admin/*'] },
              ],
            },
          },
          routes: [{ match: { grpc: true }, cluster: 'grpc-app' }, { cluster: 'app' }],
        },
        {
          name: 'inbound-tcp',
          direction: 'inbound',
          protocol: 'tcp',
          address: '127.0.0.1:0',
          mtls: 'strict',
          cluster: 'echo',
          stages: { authorization: { policies: [{ name: 'shop', action: 'allow', sources: [`*/ns/shop/*`] }] } },
        },
      ],
      clusters: [
        { name: 'app', discovery: { type: 'static', endpoints: [{ address: app.address }] } },
        { name: 'grpc-app', discovery: { type: 'static', endpoints: [{ address: grpcUpstream.address }] } },
        { name: 'echo', discovery: { type: 'static', endpoints: [{ address: tcpEchoAddress }] } },
      ],
    }),
  );
  const inbound = await startSkeinProxy(['--config', join(dir, 'in.yaml')], { adminPort: inAdmin });
  const outbound = async (name: string, prefix: string) => {
    const admin = await freePort();
    await writeFile(
      join(dir, `${name}.yaml`),
      stringify({
        service: name,
        admin: { address: `127.0.0.1:${admin}` },
        mtls: mtls(prefix),
        listeners: [
          { name: 'outbound', address: '127.0.0.1:0', routes: [{ cluster: 'pay' }] },
          { name: 'tcp', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'pay-tcp' },
        ],
        clusters: [
          {
            name: 'pay',
            mtls: { mode: 'always', serverIds: [SERVER_ID] },
            discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${inbound.port('inbound')}` }] },
          },
          {
            name: 'pay-tcp',
            mtls: { mode: 'always', serverIds: [SERVER_ID] },
            discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${inbound.port('inbound-tcp')}` }] },
          },
        ],
      }),
    );
    return startSkeinProxy(['--config', join(dir, `${name}.yaml`)], { adminPort: admin });
  };
  const [cart, batch] = await Promise.all([outbound('cart', cartCert), outbound('batch', batchCert)]);
  return { dir, inbound, cart, batch, cartSha256: sha256Of(cartCert), seen, grpcSeen };
}

function rbacCount(metrics: string): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith('service_mesh_requests_total{') && l.includes('response_flag="RBAC"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('authorization over mTLS', () => {
  it('lets the allowed caller through, refuses the others with 403 RBAC, and tells the app who called', async () => {
    const m = await startMesh();
    const ok = await httpGet(`${m.cart.url()}/hello`, { headers: FORGED });
    expect(ok.status, `${ok.body}\n${m.cart.stderr}\n${m.inbound.stderr}`).toBe(200);
    expect(ok.body).toBe('hello from app');
    const h = m.seen.at(-1)!;
    expect(h['x-forwarded-client-cert']).toBe(`By=${SERVER_ID};Hash=${m.cartSha256};URI=${CART_ID}`);
    expect(h['x-mesh-mtls']).toBe('true');
    expect(h['x-mesh-cert-fingerprint']).toBe(m.cartSha256);

    // Deny wins over the caller's allow.
    const admin = await httpGet(`${m.cart.url()}/admin/users`);
    expect([admin.status, admin.headers['x-skein-flags']]).toEqual([403, 'RBAC']);
    const escaped = await httpGet(`${m.cart.url()}/%61dmin/users`);
    expect(escaped.status).toBe(403);

    // Another identity: no allow policy matches it, except the path one.
    const denied = await httpGet(`${m.batch.url()}/hello`);
    expect([denied.status, denied.headers['x-skein-flags'], denied.body.trim()]).toEqual([
      403,
      'RBAC',
      'RBAC: access denied',
    ]);
    expect((await httpGet(`${m.batch.url()}/public/x`)).status).toBe(200);
    expect(m.seen.at(-1)!['x-forwarded-client-cert']).toMatch(new RegExp(`;URI=${BATCH_ID}$`));

    // Plaintext on the permissive listener: no identity, so only the path policy lets it in; forged fields dropped.
    expect((await httpGet(`${m.inbound.url()}/hello`, { headers: FORGED })).status).toBe(403);
    const plain = await httpGet(`${m.inbound.url()}/public/x`, { headers: FORGED });
    expect(plain.status).toBe(200);
    const p = m.seen.at(-1)!;
    expect([p['x-mesh-mtls'], p['x-forwarded-client-cert'], p['x-mesh-cert-fingerprint']]).toEqual([
      'false',
      undefined,
      undefined,
    ]);

    const metrics = (await httpGet(`${m.inbound.adminUrl}/metrics`)).body;
    expect(rbacCount(metrics)).toBe(4);
    // The access log names the flag on each refused request (written asynchronously).
    const denials = await waitForAsync(async () => {
      const lines = (await readFile(join(m.dir, 'access.log'), 'utf8').catch(() => '')).split('\n');
      const rbac = lines.filter((l) => l.includes('"response_flags":"RBAC"'));
      return rbac.length === 4 ? rbac.map((l) => JSON.parse(l) as { path: string; response_code: number }) : undefined;
    }, 5_000);
    expect(denials.map((d) => `${d.response_code} ${d.path}`)).toEqual([
      '403 /admin/users',
      '403 /%61dmin/users',
      '403 /hello',
      '403 /hello',
    ]);
  });

  it('answers a denied gRPC caller PERMISSION_DENIED and lets the allowed one through with its identity', async () => {
    const m = await startMesh();
    const forged = new grpc.Metadata();
    forged.set('x-forwarded-client-cert', FORGED['x-forwarded-client-cert']);
    const cart = echoClient(`127.0.0.1:${m.cart.port()}`);
    const batch = echoClient(`127.0.0.1:${m.batch.port()}`);
    try {
      const reply = await unary(cart, { message: 'hi' }, forged);
      expect(reply.message).toBe('hi');
      const md = m.grpcSeen.at(-1)!;
      expect(md.get('x-forwarded-client-cert')).toEqual([`By=${SERVER_ID};Hash=${m.cartSha256};URI=${CART_ID}`]);
      expect(md.get('x-mesh-mtls')).toEqual(['true']);
      const err = await grpcError(unary(batch, { message: 'hi' }));
      expect(err.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(m.grpcSeen).toHaveLength(1);
    } finally {
      cart.close();
      batch.close();
    }
  });

  it('decides a TCP connection once, on the caller alone: the allowed one is piped, the denied one closed', async () => {
    const m = await startMesh();
    expect(await tcpRoundTrip(m.cart.port('tcp'), 'ping over mTLS')).toBe('ping over mTLS');
    expect(await tcpRoundTrip(m.batch.port('tcp'), 'ping over mTLS')).toBe('');
    const counted = await waitForAsync(async () => {
      const metrics = (await httpGet(`${m.inbound.adminUrl}/metrics`)).body;
      return /skein_tcp_connections_total\{listener="inbound-tcp",response_flag="RBAC"\} 1\b/.test(metrics)
        ? metrics
        : undefined;
    }, 5_000);
    expect(counted).toMatch(/skein_tcp_connections_total\{listener="inbound-tcp",response_flag=""\} 1\b/);
  });
});
