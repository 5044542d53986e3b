// The `skein proxy` process end to end: its command line, refusing bad configs, serving the quick form, draining
// on SIGTERM and running worker processes. Each test spawns `node bin/skein.js` and kills it by PID afterwards.

import { writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PROXY_OPTIONS } from '../../proxy/cli.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { httpGet, tryConnect } from '../support/http-client.ts';
import { freePort, isAlive, runSkein, startSkeinProxy, processTestFixture } from '../support/process.ts';
import { type Upstream } from '../support/proxy.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const fixture = processTestFixture('skein-proxy-process-');
const upstream = fixture.upstream;

/** An upstream that answers `delayMs` after a request arrives; `received` counts the arrivals. */
async function slowUpstream(name: string, delayMs: number): Promise<Upstream & { received: () => number }> {
  let received = 0;
  const u = await upstream(name, (_req, res) => {
    received++;
    setTimeout(() => res.writeHead(200, { 'x-served-by': name }).end(`${name} done`), delayMs);
  });
  return Object.assign(u, { received: () => received });
}

async function writeConfig(name: string, config: ConfigInput): Promise<string> {
  const file = join(fixture.dir(), name);
  await writeFile(file, stringify(config));
  return file;
}

/** One listener on port 0 routing everything to cluster `app` at `endpoints`, admin on `adminPort`. */
function oneRouteConfig(adminPort: number, endpoints: string[]): ConfigInput {
  return {
    service: 'e2e',
    admin: { address: `127.0.0.1:${adminPort}` },
    listeners: [{ name: 'main', address: '127.0.0.1:0', routes: [{ name: 'all', cluster: 'app' }] }],
    clusters: [{ name: 'app', discovery: { type: 'static', endpoints: endpoints.map((address) => ({ address })) } }],
  };
}

describe('skein command line', () => {
  it('`skein proxy --help` describes every option the proxy accepts and exits 0', async () => {
    const r = await runSkein(['proxy', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: skein proxy');
    for (const [name, option] of Object.entries(PROXY_OPTIONS)) {
      expect(r.stdout).toContain(`--${name}`);
      if ('short' in option) expect(r.stdout).toContain(`-${option.short}, --${name}`);
    }
  });

  it('`skein --help` lists the subcommands and exits 0', async () => {
    const r = await runSkein(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['proxy', 'mesh', 'control', 'config', 'probe', 'bench'])
      expect(r.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('an unknown option exits 1 naming the option and pointing at --help', async () => {
    const r = await runSkein(['proxy', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--no-such-option']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Unknown option '--no-such-option'");
    expect(r.stderr).toContain('skein proxy --help');
  });
});

describe('numbers on the command line', () => {
  it.each([
    [
      ['--drain-timeout-ms', 'abc'],
      '--drain-timeout-ms: "abc" is not a number of milliseconds (expected an integer ≥ 0)',
    ],
    [['--workers', 'two'], '--workers: "two" is not a number of worker processes (expected an integer from 1 to 256)'],
    [['--workers', '0'], '--workers: "0" is out of range (expected an integer from 1 to 256)'],
  ])('%j exits 1 saying what was given and what is expected', async (flag, message) => {
    const r = await runSkein(['proxy', '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', ...flag]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`skein proxy: ${message}\n`);
  });
});

describe('refusing a bad config at startup', () => {
  it('exits 1 naming the field path of an invalid header regex', async () => {
    const config = oneRouteConfig(await freePort(), ['127.0.0.1:1']);
    config.listeners[0].routes = [{ cluster: 'app', match: { headers: [{ name: 'x-user', regex: '([a-z' }] } }];
    const r = await runSkein(['proxy', '--config', await writeConfig('skein.yaml', config)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('listeners[0].routes[0].match.headers[0].regex: invalid regular expression');
    expect(r.stderr).not.toContain('config applied');
  });

  it('exits 1 naming the field path of a route to an unknown cluster', async () => {
    const config = oneRouteConfig(await freePort(), ['127.0.0.1:1']);
    config.listeners[0].routes = [{ cluster: 'missing' }];
    const r = await runSkein(['proxy', '--config', await writeConfig('skein.yaml', config)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("listeners[0].routes[0].cluster: unknown cluster 'missing'");
  });

  it.each(['listen', 'admin'])(
    'exits 1 when the --%s address is already taken, leaving nothing running',
    async (which) => {
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const address = `127.0.0.1:${(taken.address() as AddressInfo).port}`;
      const addresses = { listen: '127.0.0.1:0', admin: '127.0.0.1:0', [which]: address };
      try {
        const r = await runSkein([
          'proxy',
          '--listen',
          addresses.listen,
          '--upstream',
          '127.0.0.1:1',
          '--admin',
          addresses.admin,
        ]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`cannot start: listen EADDRINUSE: address already in use ${address}`);
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    },
  );

  it('--check validates a good file, prints a summary and exits 0 without starting anything', async () => {
    const adminPort = await freePort();
    const file = await writeConfig('skein.yaml', oneRouteConfig(adminPort, ['127.0.0.1:1']));
    const r = await runSkein(['proxy', '--config', file, '--check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('config valid: 1 listener(s), 1 cluster(s)');
    expect(r.stderr).not.toContain('config applied');
  });

  it('--check and `config check` reject two listeners on one address and a missing TLS file, as the start would', async () => {
    const config = oneRouteConfig(await freePort(), ['127.0.0.1:1']);
    config.listeners.push({ name: 'second', address: '127.0.0.1:18443', routes: [{ cluster: 'app' }] });
    config.listeners.push({ name: 'third', address: '127.0.0.1:18443', routes: [{ cluster: 'app' }] });
    const duplicate = await writeConfig('duplicate.yaml', config);
    const tls = oneRouteConfig(await freePort(), ['127.0.0.1:1']);
    tls.listeners[0].tls = { certFile: 'missing.crt', keyFile: 'missing.key' };
    const missingTls = await writeConfig('tls.yaml', tls);
    const expected = {
      [duplicate]: ["listeners[2].address: 127.0.0.1:18443 is already used by listeners[1] ('second')"],
      [missingTls]: [
        `listeners[0].tls.certFile: cannot read ${join(fixture.dir(), 'missing.crt')} (ENOENT: no such file or directory)`,
        `listeners[0].tls.keyFile: cannot read ${join(fixture.dir(), 'missing.key')} (ENOENT: no such file or directory)`,
      ],
    };
    for (const [file, problems] of Object.entries(expected)) {
      for (const args of [
        ['proxy', '--config', file, '--check'],
        ['config', 'check', file],
        ['proxy', '--config', file],
      ]) {
        const r = await runSkein(args);
        expect(r.code, args.join(' ')).toBe(1);
        for (const p of problems) expect(r.stderr).toContain(p);
        expect(r.stdout).not.toContain('valid');
      }
    }
  });

  it('--check rejects a bad file with exit 1 and the field path', async () => {
    const config = oneRouteConfig(await freePort(), ['127.0.0.1:1']);
    config.listeners[0].routes = [{ cluster: 'app', match: { headers: [{ name: 'x-user', regex: '*' }] } }];
    const r = await runSkein(['proxy', '--config', await writeConfig('skein.yaml', config), '--check']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('listeners[0].routes[0].match.headers[0].regex: invalid regular expression');
  });
});

describe('serving', () => {
  it('the quick form --listen/--upstream/--admin serves requests and round-robins across two upstreams', async () => {
    const a = await upstream('a');
    const b = await upstream('b');
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      [
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        a.address,
        '--upstream',
        b.address,
        '--admin',
        `127.0.0.1:${adminPort}`,
      ],
      { adminPort },
    );
    const servedBy: Record<string, number> = {};
    for (let i = 0; i < 6; i++) {
      const res = await httpGet(`${proxy.url()}/hello`);
      expect(res.status).toBe(200);
      const server = String(res.headers['x-served-by']);
      servedBy[server] = (servedBy[server] ?? 0) + 1;
    }
    expect(servedBy).toEqual({ a: 3, b: 3 });
  });

  it('the quick form ejects an upstream that refuses connections after 5 failures (outlier detection on)', async () => {
    const live = await upstream('live');
    const dead = `127.0.0.1:${await freePort()}`;
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      ['--listen', '127.0.0.1:0', '--upstream', dead, '--upstream', live.address, '--admin', `127.0.0.1:${adminPort}`],
      { adminPort },
    );
    const flags: string[] = [];
    for (let i = 0; i < 30; i++) flags.push(String((await httpGet(`${proxy.url()}/`)).headers['x-skein-flags'] ?? ''));
    // At most 5 reach the client (none once the quick form retries connect failures); then only the live one.
    expect(flags.filter((f) => f === 'UF').length).toBeLessThanOrEqual(5);
    expect(flags.slice(10)).toEqual(Array(20).fill(''));
    const clusters = JSON.parse((await httpGet(`http://127.0.0.1:${adminPort}/clusters`)).body) as {
      clusters: { endpoints: { address: string; health: string; ejections: number }[] }[];
    };
    expect(clusters.clusters[0].endpoints.find((e) => e.address === dead)).toMatchObject({
      health: 'ejected',
      ejections: 1,
    });
  });
});

describe('draining on SIGTERM', () => {
  it('finishes the request in flight, refuses new connections, reports not ready and exits 0 before the deadline', async () => {
    const slow = await slowUpstream('slow', 1_000);
    const adminPort = await freePort();
    const drainTimeoutMs = 8_000;
    const file = await writeConfig('skein.yaml', { ...oneRouteConfig(adminPort, [slow.address]), drainTimeoutMs });
    const proxy = await startSkeinProxy(['--config', file], { adminPort });
    const port = proxy.port();

    const inFlight = httpGet(`${proxy.url()}/slow`);
    await waitFor(() => slow.received() === 1);
    const signalledAt = Date.now();
    proxy.signal('SIGTERM');

    const readyStatus = await waitForAsync(async () => {
      const r = await httpGet(`${proxy.adminUrl}/ready`, { timeoutMs: 500 });
      return r.status === 503 ? r : undefined;
    });
    expect(readyStatus.body).toBe('draining\n');
    await waitForAsync(async () => (await tryConnect(port)) === 'ECONNREFUSED');
    expect(proxy.exitStatus).toBeNull(); // still draining while the request is in flight

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.body).toBe('slow done');
    expect(await proxy.waitForExit(drainTimeoutMs)).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(drainTimeoutMs);
  });

  it('with --drain-timeout-ms 300 exits 0 soon after the deadline when the upstream never answers', async () => {
    const silent = await upstream('silent', () => {});
    const adminPort = await freePort();
    const file = await writeConfig('skein.yaml', oneRouteConfig(adminPort, [silent.address]));
    const proxy = await startSkeinProxy(['--config', file, '--drain-timeout-ms', '300'], { adminPort });

    const inFlight = httpGet(`${proxy.url()}/hang`).then(
      (r) => `status ${r.status}`,
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    await waitForAsync(async () =>
      (await httpGet(`${proxy.adminUrl}/metrics`)).body.includes('skein_requests_active 1'),
    );
    const signalledAt = Date.now();
    proxy.signal('SIGTERM');
    expect(await proxy.waitForExit(5_000)).toEqual({ code: 0, signal: null });
    const elapsedMs = Date.now() - signalledAt;
    expect(elapsedMs).toBeGreaterThanOrEqual(300);
    expect(elapsedMs).toBeLessThan(2_000);
    expect(await inFlight).toBe('ECONNRESET'); // cut at the deadline, not answered
    expect(proxy.stderr).toMatch(/"msg":"drained","cutRequests":1/);
  });
});

describe('--workers', () => {
  it('runs two worker processes that serve requests, and SIGTERM stops all of them', async () => {
    const echo = await upstream('echo');
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      ['--listen', '127.0.0.1:0', '--upstream', echo.address, '--admin', `127.0.0.1:${adminPort}`, '--workers', '2'],
      { adminPort },
    );
    await waitFor(() => new Set(proxy.logs.filter((l) => l.msg === 'config applied').map((l) => l.pid)).size === 2);
    const workerPids = [...new Set(proxy.logs.filter((l) => l.msg === 'config applied').map((l) => l.pid))];
    expect(workerPids).not.toContain(proxy.pid);
    for (const pid of workerPids) expect(isAlive(pid)).toBe(true);

    for (let i = 0; i < 10; i++) expect((await httpGet(`${proxy.url()}/w`)).status).toBe(200);

    proxy.signal('SIGTERM');
    expect(await proxy.waitForExit(5_000)).toEqual({ code: 0, signal: null });
    await waitFor(() => workerPids.every((pid) => !isAlive(pid)), 2_000);
  });

  it('SIGTERM just after a worker crashed still stops every process and starts no replacement', async () => {
    const slow = await slowUpstream('slow', 1_000);
    const adminPort = await freePort();
    const proxy = await startSkeinProxy(
      ['--listen', '127.0.0.1:0', '--upstream', slow.address, '--admin', `127.0.0.1:${adminPort}`, '--workers', '2'],
      { adminPort },
    );
    await waitFor(() => new Set(proxy.logs.filter((l) => l.msg === 'config applied').map((l) => l.pid)).size === 2);
    const [crashed, survivor] = [...new Set(proxy.logs.filter((l) => l.msg === 'config applied').map((l) => l.pid))];
    // The primary spreads connections over the workers, so (almost surely) both hold slow requests.
    const requests = Array.from({ length: 8 }, () =>
      httpGet(`${proxy.url()}/slow`).then(
        (r) => r.status,
        () => 'cut',
      ),
    );
    await waitFor(() => slow.received() === 8);

    process.kill(crashed, 'SIGKILL');
    await proxy.waitForLog((l) => l.msg.startsWith('worker exited'));
    proxy.signal('SIGTERM');
    expect(await proxy.waitForExit(5_000)).toEqual({ code: 0, signal: null });
    // The survivor drained its requests (so it outlived the 500 ms restart delay); the crashed worker's were cut.
    const outcomes = await Promise.all(requests);
    expect(outcomes).toContain(200);
    for (const outcome of outcomes) expect([200, 'cut']).toContain(outcome);
    await waitFor(() => proxy.pids().every((pid) => !isAlive(pid)), 2_000);
    expect(proxy.logs.filter((l) => l.msg === 'config applied').map((l) => l.pid)).toEqual([crashed, survivor]);
  });
});
