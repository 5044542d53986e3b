// `skein mesh` (what `npm start` runs) end to end on free ports: a request through the outbound and inbound
// listeners reaches the sample service, control's API answers beside it with its store under --data-dir, and
// SIGTERM stops the whole thing with exit status 0.
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, useToken } from '../support/control.ts';
import { spawnSkein, type SkeinProcess } from '../support/process.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const dir = mkdtempSync(join(tmpdir(), 'skein-mesh-e2e-'));
let mesh: SkeinProcess | undefined;
afterAll(async () => {
  await mesh?.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** Ports free right now (held open together so they differ, then released for the mesh to take). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve) => {
          const s = net.createServer();
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

describe('skein mesh', () => {
  it('serves the sample service through the sidecar, runs control beside it, and stops on SIGTERM', async () => {
    const [admin, outbound, inbound, app, control] = await freePorts(5);
    const config = readFileSync(new URL('../../examples/mesh.yaml', import.meta.url), 'utf8')
      .replaceAll('127.0.0.1:15000', `127.0.0.1:${admin}`)
      .replaceAll('127.0.0.1:15001', `127.0.0.1:${outbound}`)
      .replaceAll('127.0.0.1:15006', `127.0.0.1:${inbound}`)
      .replaceAll('127.0.0.1:18080', `127.0.0.1:${app}`);
    const configFile = join(dir, 'mesh.yaml');
    writeFileSync(configFile, config);
    const dataDir = join(dir, 'control');
    mesh = spawnSkein([
      'mesh',
      '--config',
      configFile,
      '--app',
      `127.0.0.1:${app}`,
      '--control',
      `127.0.0.1:${control}`,
      '--data-dir',
      dataDir,
    ]);
    const m = mesh;
    await waitFor(() => {
      if (m.exitStatus !== null) throw new Error(`exited: ${m.stderr}`);
      return m.stdout.includes('Skein local mesh is up.');
    }, 15_000);
    expect(m.stdout).toContain(`control API         http://127.0.0.1:${control}/v1/rules`);

    const hello = await fetch(`http://127.0.0.1:${outbound}/hello`);
    expect(hello.status).toBe(200);
    expect(((await hello.json()) as { service: string }).service).toBe('sample-service');

    const base = `http://127.0.0.1:${control}`;
    useToken(base, readFileSync(join(dataDir, 'api-token'), 'utf8').trim());
    // The sidecar takes its rules from the embedded control: a rule written there changes what it does.
    const rule = await api(base, 'POST', '/v1/rules', {
      id: 'beta',
      priority: 20,
      conditions: [{ type: 'header', field: 'x-beta', value: '1' }],
      destinations: [{ cluster: 'sample-service' }],
      actions: { headers: { add: { 'x-route': 'beta-rule' } } },
    });
    expect(rule.status).toBe(201);
    const seen = await waitForAsync(async () => {
      const r = await fetch(`http://127.0.0.1:${outbound}/hello`, { headers: { 'x-beta': '1' } });
      const body = (await r.json()) as { headers: Record<string, string> };
      return body.headers['x-route'] === 'beta-rule' ? body : undefined;
    }, 10_000);
    expect(seen.headers['x-source-service']).toBe('frontend');
    expect((await api<{ service: string; connected: boolean }[]>(base, 'GET', '/proxies')).body).toEqual([
      expect.objectContaining({ service: 'frontend', connected: true }),
    ]);
    expect((await api(base, 'GET', '/benchmarks/jobs')).body).toEqual([]);
    const bad = await api<{ error: { problems: string[] } }>(base, 'POST', '/benchmarks/start', { rounds: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.problems[0]).toMatch(/^rounds: /);
    expect(existsSync(join(dataDir, 'store'))).toBe(true);

    m.signal('SIGTERM');
    expect((await m.waitForExit(15_000)).code).toBe(0);
  }, 40_000);
});
