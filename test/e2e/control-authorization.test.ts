// Authorization policies from control reach the proxies of their service: a policy written through the API is
// pushed in the overlay and enforced by the proxy's inbound listener (403 RBAC), one for another service
// changes nothing there, and a deleted one stops applying. Real processes, killed by PID.
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { api, startSkeinControl } from '../support/control.ts';
import { httpGet } from '../support/http-client.ts';
import { freePort, killAllSkein, startSkeinProxy } from '../support/process.ts';
import { startEchoUpstream, type Upstream } from '../support/proxy.ts';
import { waitForAsync } from '../support/wait-for.ts';

let dir: string;
let app: Upstream | null = null;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'skein-authz-push-'));
});

afterEach(async () => {
  await killAllSkein();
  await app?.close();
  app = null;
  rmSync(dir, { recursive: true, force: true });
});

describe('authorization policies from control', () => {
  it("are enforced by the inbound listeners of their service's proxies, and stop applying once deleted", async () => {
    const control = await startSkeinControl(join(dir, 'control'));
    app = await startEchoUpstream('app');
    const adminPort = await freePort();
    await writeFile(
      join(dir, 'pay.yaml'),
      stringify({
        service: 'pay',
        admin: { address: `127.0.0.1:${adminPort}` },
        listeners: [{ name: 'inbound', direction: 'inbound', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
        clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: app.address }] } }],
      }),
    );
    const pay = await startSkeinProxy(
      ['--config', join(dir, 'pay.yaml'), '--control', control.url, '--state-dir', join(dir, 'state')],
      { adminPort },
    );
    const status = async (path: string) => (await httpGet(`${pay.url()}${path}`)).status;
    expect(await status('/blocked/x')).toBe(200);

    const other = await api(control.url, 'POST', '/v1/authorization-policies', {
      id: 'orders-deny-all',
      service: 'orders',
      action: 'deny',
    });
    expect(other.status).toBe(201);
    const created = await api(control.url, 'POST', '/v1/authorization-policies', {
      id: 'no-blocked',
      service: 'pay',
      action: 'deny',
      paths: ['/blocked/*'],
    });
    expect(created.status).toBe(201);
    await waitForAsync(async () => ((await status('/blocked/x')) === 403 ? true : undefined), 10_000);
    const r = await httpGet(`${pay.url()}/blocked/x`);
    expect(r.headers['x-skein-flags']).toBe('RBAC');
    expect(await status('/open')).toBe(200);

    expect((await api(control.url, 'DELETE', '/v1/authorization-policies/no-blocked')).status).toBe(200);
    await waitForAsync(async () => ((await status('/blocked/x')) === 200 ? true : undefined), 10_000);
  });
});
