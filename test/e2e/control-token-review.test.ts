// Certificates for proxies in a cluster: `skein control --kubeconfig` (here pointed at test/support/kube-api.ts, a
// fake API server, because no Kubernetes API server runs on this machine) takes a service-account token in place
// of the bootstrap token, has the API server review it (TokenReview, audience skein-control), and signs only
// the caller's own SPIFFE id. A real proxy gets its identity that way.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { opensslCsr, read, tempDir } from '../certs/openssl.ts';
import { api, type RunningControl, startSkeinControl } from '../support/control.ts';
import { httpGet } from '../support/http-client.ts';
import { FakeKubeApi } from '../support/kube-api.ts';
import { freePort, killAllSkein, startSkeinProxy } from '../support/process.ts';

const { dir, cleanup } = tempDir();
let fake: FakeKubeApi;
let control: RunningControl;
let bootstrap: string;

beforeAll(async () => {
  fake = await FakeKubeApi.start(dir, { services: [], endpointslices: [], pods: [] });
  fake.allowToken('sa-token-web', 'shop', 'web');
  fake.allowToken('sa-token-for-vault', 'shop', 'web', ['vault']);
  control = await startSkeinControl(join(dir, 'control'), [
    '--kubeconfig',
    fake.writeKubeconfig(join(dir, 'kubeconfig')),
    '--ca-dir',
    join(dir, 'ca'),
  ]);
  bootstrap = readFileSync(join(dir, 'control', 'bootstrap-token'), 'utf8').trim();
});

afterAll(async () => {
  await killAllSkein();
  await control?.kill();
  await fake?.close();
  cleanup();
});

const sign = (id: string, token: string) =>
  api<Record<string, string>>(
    control.url,
    'POST',
    '/v1/certificates',
    { csr: read(opensslCsr(dir, `c${Math.random()}`, id)[0]) },
    { token },
  );

describe('certificates for Kubernetes service accounts', () => {
  it('signs a service account’s own id, refuses it another, and refuses a token made for another audience', async () => {
    const own = await sign('spiffe://cluster.local/ns/shop/sa/web', 'sa-token-web');
    expect(own.status).toBe(201);
    expect(own.body.spiffeId).toBe('spiffe://cluster.local/ns/shop/sa/web');
    const other = await sign('spiffe://cluster.local/ns/shop/sa/admin', 'sa-token-web');
    expect(other.status).toBe(403);
    expect(JSON.stringify(other.body)).toContain('may only have spiffe://cluster.local/ns/shop/sa/web');
    expect((await sign('spiffe://cluster.local/ns/shop/sa/web', 'sa-token-for-vault')).status).toBe(401);
    expect((await sign('spiffe://cluster.local/ns/shop/sa/web', 'made-up')).status).toBe(401);
    // The bootstrap token still works, for any id of the trust domain.
    expect((await sign('spiffe://cluster.local/ns/shop/sa/admin', bootstrap)).status).toBe(201);
  });

  it('a proxy presenting its service-account token gets its identity', async () => {
    const tokenFile = join(dir, 'sa-token');
    writeFileSync(tokenFile, 'sa-token-web\n');
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      [
        ...['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--mtls', 'permissive'],
        ...['--admin', `127.0.0.1:${adminPort}`, '--control', control.url],
        ...['--bootstrap-token-file', tokenFile, '--spiffe-id', 'spiffe://cluster.local/ns/shop/sa/web'],
      ],
      { adminPort },
    );
    const certs = JSON.parse((await httpGet(`${proxy.adminUrl}/certs`)).body);
    expect(certs.id).toBe('spiffe://cluster.local/ns/shop/sa/web');
  });
});
