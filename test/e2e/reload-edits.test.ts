// A reload applies every edit in the file: the admin address, the service name and the drain timeout too,
// and only the flags actually given on the command line stay fixed. Each test runs the `skein proxy` process.
import { rename, writeFile as writeFileInPlace } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';
import { httpGet, tryConnect } from '../support/http-client.ts';
import { freePort, processTestFixture, startSkeinProxy } from '../support/process.ts';
import type { EchoBody } from '../support/proxy.ts';
import { waitForAsync } from '../support/wait-for.ts';

const fixture = processTestFixture('skein-reload-edits-');

/** Write-and-rename, as editors do: the watcher never sees a half-written file and the reload sees the whole edit. */
async function writeFile(file: string, text: string): Promise<void> {
  await writeFileInPlace(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

function config(adminPort: number, upstream: string, extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    admin: { address: `127.0.0.1:${adminPort}` },
    listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: [{ address: upstream }] } }],
    ...extra,
  };
}

async function runningConfig(adminUrl: string): Promise<{ version: number; config: Record<string, unknown> }> {
  return JSON.parse((await httpGet(`${adminUrl}/config`)).body);
}

/** The x-source-service an outbound request through the proxy carries to the upstream. */
async function sourceService(url: string): Promise<unknown> {
  const res = await httpGet(`${url}/who`);
  expect(res.status).toBe(200);
  return (JSON.parse(res.body) as EchoBody).headers['x-source-service'];
}

describe('reload applies edits the first config used to pin', () => {
  it('moves the admin listener, renames the service and takes the new drain timeout', async () => {
    const app = await fixture.upstream('app');
    const [adminPort, newAdminPort] = [await freePort(), await freePort()];
    const file = join(fixture.dir(), 'skein.yaml');
    await writeFile(file, stringify(config(adminPort, app.address, { service: 'one', drainTimeoutMs: 1_000 })));
    const proxy = await startSkeinProxy(['--config', file], { adminPort });
    expect(await sourceService(proxy.url())).toBe('one');

    await writeFile(file, stringify(config(newAdminPort, app.address, { service: 'two', drainTimeoutMs: 2_500 })));
    const newAdminUrl = `http://127.0.0.1:${newAdminPort}`;
    const moved = await waitForAsync(async () => {
      const r = await httpGet(`${newAdminUrl}/config`).catch(() => undefined);
      return r?.status === 200
        ? (JSON.parse(r.body) as { version: number; config: Record<string, unknown> })
        : undefined;
    }, 10_000);
    expect(moved.version).toBe(2);
    expect(moved.config).toMatchObject({
      service: 'two',
      drainTimeoutMs: 2_500,
      admin: { address: `127.0.0.1:${newAdminPort}` },
    });
    expect(await sourceService(proxy.url())).toBe('two');
    expect(await tryConnect(adminPort)).toBe('ECONNREFUSED');
    expect(proxy.logs.find((l) => l.msg === 'admin listener moved')).toMatchObject({
      from: `127.0.0.1:${adminPort}`,
      to: `127.0.0.1:${newAdminPort}`,
    });
  });

  it('keeps what a flag set over every reload, while the fields no flag set follow the file', async () => {
    const app = await fixture.upstream('app');
    const adminPort = await freePort();
    const file = join(fixture.dir(), 'skein.yaml');
    await writeFile(file, stringify(config(adminPort, app.address, { service: 'file-one', drainTimeoutMs: 1_000 })));
    const proxy = await startSkeinProxy(['--config', file, '--service', 'from-flag'], { adminPort });
    expect(await sourceService(proxy.url())).toBe('from-flag');

    await writeFile(file, stringify(config(adminPort, app.address, { service: 'file-two', drainTimeoutMs: 3_000 })));
    const running = await waitForAsync(async () => {
      const c = await runningConfig(proxy.adminUrl);
      return c.version === 2 ? c : undefined;
    }, 10_000);
    expect(running.config).toMatchObject({ service: 'from-flag', drainTimeoutMs: 3_000 });
    expect(await sourceService(proxy.url())).toBe('from-flag');
  });

  it('rejects a reload whose new admin address is taken, and the admin keeps answering where it was', async () => {
    const app = await fixture.upstream('app');
    const adminPort = await freePort();
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const takenPort = (taken.address() as AddressInfo).port;
    try {
      const file = join(fixture.dir(), 'skein.yaml');
      await writeFile(file, stringify(config(adminPort, app.address, { service: 'one' })));
      const proxy = await startSkeinProxy(['--config', file], { adminPort });

      await writeFile(file, stringify(config(takenPort, app.address, { service: 'two' })));
      const rejected = await proxy.waitForLog((l) => l.msg.startsWith('config rejected'), 10_000);
      expect(rejected.problems).toEqual([`listen EADDRINUSE: address already in use 127.0.0.1:${takenPort}`]);
      expect((await runningConfig(proxy.adminUrl)).config).toMatchObject({ service: 'one' });
      expect(await sourceService(proxy.url())).toBe('one');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('closes the admin listener when the config no longer has one', async () => {
    const app = await fixture.upstream('app');
    const adminPort = await freePort();
    const file = join(fixture.dir(), 'skein.yaml');
    await writeFile(file, stringify(config(adminPort, app.address, { service: 'one' })));
    const proxy = await startSkeinProxy(['--config', file], { adminPort });
    const port = proxy.port();

    const { admin: _, ...withoutAdmin } = config(adminPort, app.address, { service: 'two' });
    await writeFile(file, stringify(withoutAdmin));
    await proxy.waitForLog((l) => l.msg === 'config reloaded', 10_000);
    expect(await tryConnect(adminPort)).toBe('ECONNREFUSED');
    expect(await sourceService(`http://127.0.0.1:${port}`)).toBe('two');
  });
});
