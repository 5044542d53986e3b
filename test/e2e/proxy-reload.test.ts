// The `skein proxy` process picking up changes without a restart: a rewritten config file, SIGHUP, a Kubernetes
// ConfigMap-style symlink swap, an endpoints file, and rejecting a bad edit while the last good config serves.

import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';
import { httpGet } from '../support/http-client.ts';
import { freePort, type RunningSkein, startSkeinProxy, processTestFixture } from '../support/process.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const BAD_REGEX_PROBLEM = 'listeners[0].routes[0].match.headers[0].regex: invalid regular expression';

const fixture = processTestFixture('skein-proxy-reload-');
const upstream = fixture.upstream;

/**
 * One listener on port 0 whose only route goes to cluster `to`; a static cluster per entry of `clusters`.
 * `badRegex` makes the route's header match an invalid regular expression.
 */
function routeConfig(adminPort: number, to: string, clusters: Record<string, string>, badRegex = false): ConfigInput {
  return {
    service: 'e2e',
    admin: { address: `127.0.0.1:${adminPort}` },
    listeners: [
      {
        name: 'main',
        address: '127.0.0.1:0',
        routes: [
          {
            name: 'all',
            cluster: to,
            ...(badRegex ? { match: { headers: [{ name: 'x-user', regex: '([a-z' }] } } : {}),
          },
        ],
      },
    ],
    clusters: Object.entries(clusters).map(([name, address]) => ({
      name,
      discovery: { type: 'static', endpoints: [{ address }] },
    })),
  };
}

async function servedBy(proxy: RunningSkein): Promise<string> {
  const res = await httpGet(`${proxy.url()}/which`);
  expect(res.status).toBe(200);
  return String(res.headers['x-served-by']);
}

async function configVersion(proxy: RunningSkein): Promise<number> {
  return JSON.parse((await httpGet(`${proxy.adminUrl}/config`)).body).version;
}

async function metric(proxy: RunningSkein, name: string): Promise<number | undefined> {
  const body = (await httpGet(`${proxy.adminUrl}/metrics`)).body;
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('config file reload', () => {
  it('applies a rewritten config file without a restart: traffic moves from A to B, /config reports version 2', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const adminPort = await freePort();
    const file = join(fixture.dir(), 'skein.yaml');
    await writeFile(file, stringify(routeConfig(adminPort, 'a', { a: a.address, b: b.address })));
    const proxy = await startSkeinProxy(['--config', file], { adminPort });
    expect(await servedBy(proxy)).toBe('a');

    await writeFile(file, stringify(routeConfig(adminPort, 'b', { a: a.address, b: b.address })));
    await waitForAsync(async () => (await servedBy(proxy)) === 'b');
    expect(await configVersion(proxy)).toBe(2);
    expect(proxy.exitStatus).toBeNull();
    expect(new Set(proxy.logs.map((l) => l.pid))).toEqual(new Set([proxy.pid]));
  });

  it('rejects an invalid edit, keeps serving the last good config, and applies the file once it is fixed', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const adminPort = await freePort();
    const clusters = { a: a.address, b: b.address };
    const file = join(fixture.dir(), 'skein.yaml');
    await writeFile(file, stringify(routeConfig(adminPort, 'b', clusters)));
    const proxy = await startSkeinProxy(['--config', file], { adminPort });
    expect(await servedBy(proxy)).toBe('b');

    await writeFile(file, stringify(routeConfig(adminPort, 'a', clusters, true)));
    const rejected = await proxy.waitForLog((l) => l.msg.startsWith('config rejected'));
    expect(rejected.level).toBe('error');
    expect(rejected.problems).toContain(BAD_REGEX_PROBLEM);
    expect(proxy.stderr).toContain(BAD_REGEX_PROBLEM);
    expect(await metric(proxy, 'skein_config_reload_failures_total')).toBe(1);
    expect(await servedBy(proxy)).toBe('b');
    expect(await configVersion(proxy)).toBe(1);

    await writeFile(file, stringify(routeConfig(adminPort, 'a', clusters)));
    await waitForAsync(async () => (await servedBy(proxy)) === 'a');
    expect(await configVersion(proxy)).toBe(2);
    expect(await metric(proxy, 'skein_config_reload_failures_total')).toBe(1);
  });

  it('SIGHUP reloads a change the file watcher cannot see (the config is a symlink to a file elsewhere)', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const adminPort = await freePort();
    const clusters = { a: a.address, b: b.address };
    await mkdir(join(fixture.dir(), 'watched'));
    await mkdir(join(fixture.dir(), 'real'));
    const realFile = join(fixture.dir(), 'real', 'skein.yaml');
    const link = join(fixture.dir(), 'watched', 'skein.yaml');
    await writeFile(realFile, stringify(routeConfig(adminPort, 'a', clusters)));
    await symlink(realFile, link);
    const proxy = await startSkeinProxy(['--config', link], { adminPort });
    expect(await servedBy(proxy)).toBe('a');

    await writeFile(realFile, stringify(routeConfig(adminPort, 'b', clusters, true)));
    proxy.signal('SIGHUP');
    const rejected = await proxy.waitForLog((l) => l.msg.startsWith('config rejected'));
    expect(rejected).toMatchObject({ why: 'SIGHUP', problems: [BAD_REGEX_PROBLEM] });
    expect(await metric(proxy, 'skein_config_reload_failures_total')).toBe(1);
    expect(await servedBy(proxy)).toBe('a');

    await writeFile(realFile, stringify(routeConfig(adminPort, 'b', clusters)));
    proxy.signal('SIGHUP');
    const reloaded = await proxy.waitForLog((l) => l.msg === 'config reloaded');
    expect(reloaded).toMatchObject({ why: 'SIGHUP', version: 2 });
    expect(await servedBy(proxy)).toBe('b');
  });

  it('applies a Kubernetes ConfigMap-style update, where only the ..data symlink is swapped', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const adminPort = await freePort();
    const clusters = { a: a.address, b: b.address };
    // The kubelet's layout: skein.yaml → ..data/skein.yaml, ..data → a timestamped directory it replaces atomically.
    await mkdir(join(fixture.dir(), '..v1'));
    await writeFile(join(fixture.dir(), '..v1', 'skein.yaml'), stringify(routeConfig(adminPort, 'a', clusters)));
    await symlink('..v1', join(fixture.dir(), '..data'));
    await symlink(join('..data', 'skein.yaml'), join(fixture.dir(), 'skein.yaml'));
    const proxy = await startSkeinProxy(['--config', join(fixture.dir(), 'skein.yaml')], { adminPort });
    expect(await servedBy(proxy)).toBe('a');

    await mkdir(join(fixture.dir(), '..v2'));
    await writeFile(join(fixture.dir(), '..v2', 'skein.yaml'), stringify(routeConfig(adminPort, 'b', clusters)));
    await symlink('..v2', join(fixture.dir(), '..data_tmp'));
    await rename(join(fixture.dir(), '..data_tmp'), join(fixture.dir(), '..data'));
    await waitForAsync(async () => (await servedBy(proxy)) === 'b');
    expect(await configVersion(proxy)).toBe(2);
  });

  it('a reload that removes the cluster of a request in flight lets that request complete with 200', async () => {
    let slowReceived = 0;
    const slow = await upstream('slow', (_req, res) => {
      slowReceived++;
      setTimeout(() => res.writeHead(200, { 'x-served-by': 'slow' }).end('slow done'), 800);
    });
    const fast = await upstream('fast');
    const adminPort = await freePort();
    const file = join(fixture.dir(), 'skein.yaml');
    await writeFile(file, stringify(routeConfig(adminPort, 'slow', { slow: slow.address })));
    const proxy = await startSkeinProxy(['--config', file], { adminPort });

    const inFlight = httpGet(`${proxy.url()}/slow`);
    await waitFor(() => slowReceived === 1);
    await writeFile(file, stringify(routeConfig(adminPort, 'fast', { fast: fast.address })));
    await waitForAsync(async () => (await configVersion(proxy)) === 2);
    expect(slowReceived).toBe(1);
    expect(await servedBy(proxy)).toBe('fast'); // the new config serves while the old request is still out

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toBe('slow done');
  });
});

describe('file discovery', () => {
  it('moves traffic to the endpoint a rewritten endpoints file names, without a config reload', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const adminPort = await freePort();
    const config: ConfigInput = {
      admin: { address: `127.0.0.1:${adminPort}` },
      listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ cluster: 'app' }] }],
      // Relative: resolved against the config file's directory.
      clusters: [{ name: 'app', discovery: { type: 'file', path: 'endpoints.yaml' } }],
    };
    await writeFile(join(fixture.dir(), 'skein.yaml'), stringify(config));
    await writeFile(join(fixture.dir(), 'endpoints.yaml'), stringify([{ address: a.address }]));
    const proxy = await startSkeinProxy(['--config', join(fixture.dir(), 'skein.yaml')], { adminPort });
    await waitForAsync(async () => (await servedBy(proxy)) === 'a');

    await writeFile(join(fixture.dir(), 'endpoints.yaml'), stringify([{ address: b.address }]));
    await waitForAsync(async () => (await servedBy(proxy)) === 'b');
    expect(await servedBy(proxy)).toBe('b');
    expect(await configVersion(proxy)).toBe(1);
  });
});
