// Transparent capture end to end, as a pod would run it: two network namespaces joined by a veth pair (the
// "client pod" A at 10.200.0.1, the "server pod" B at 10.200.0.2), each with a Skein proxy running as uid 1337
// and `skein redirect install` applied. An unchanged curl in A calls the server's address (and a Service's
// cluster IP that only proxy A knows); the call goes app → A's outbound capture listener (routed by the original
// destination) → B's inbound capture listener → the server, visible in both proxies' access logs; the Service's
// hop is mTLS with identities from `skein ca` (B's listener is permissive: the passthrough's hop is plaintext).
// The same over IPv6 (ip6tables, dual-stack listeners). A non-HTTP client takes the same path as TCP passthrough.
// `skein redirect remove` then leaves no SKEIN_* chain behind, and the namespaces (with their veth pair) are
// deleted, also when a test fails. Needs root (namespaces, iptables).
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait-for.ts';

const IS_ROOT = process.getuid?.() === 0;
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SKEIN = join(REPO, 'bin/skein.js');
const ADDON = join(REPO, 'native/original-dst.node');
const PROXY_UID = 1337;
const run = promisify(execFile);

if (!IS_ROOT) console.warn('transparent-capture: skipped: needs root (network namespaces, veth, iptables)');

const tag = `${process.pid % 100_000}`;
const NS_A = `skein-cap-a-${tag}`;
const NS_B = `skein-cap-b-${tag}`;
const VETH_A = `skcapa${tag}`.slice(0, 15);
const VETH_B = `skcapb${tag}`.slice(0, 15);
const A_IP = '10.200.0.1';
const B_IP = '10.200.0.2';
/** IPv6 too (ip6tables, IP6T_SO_ORIGINAL_DST); the proxies listen dual-stack, so IPv4 comes to them v4-mapped. */
const A_IP6 = 'fd00:200::1';
const B_IP6 = 'fd00:200::2';
/** A Service's cluster IP: no host has it; only proxy A's config maps it to the server. */
const SERVICE_IP = '10.96.0.10';

const children: ChildProcess[] = [];

interface Child {
  readonly proc: ChildProcess;
  out(): string;
}

/** `cmd` inside namespace `ns` (as `uid` when given); stdout and stderr kept together. */
function spawnIn(ns: string, argv: string[], uid?: number): Child {
  const asUser = uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  const proc = spawn('ip', ['netns', 'exec', ns, ...asUser, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  children.push(proc);
  let text = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (text += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (text += s));
  return { proc, out: () => text };
}

function sh(argv: string[]): string {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function netnsList(): string {
  return sh(['ip', 'netns', 'list']);
}

function skeinIn(ns: string, args: string[]): string {
  return sh(['ip', 'netns', 'exec', ns, process.execPath, SKEIN, ...args]);
}

function natRules(ns: string): string {
  return sh(['ip', 'netns', 'exec', ns, 'iptables-save', '-t', 'nat']);
}

/** Kill what the test started (by PID) and delete the namespaces; the veth pair goes with them. */
async function cleanUp(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(
    children.map((c) =>
      c.exitCode !== null || c.signalCode !== null ? null : new Promise((done) => c.once('close', done)),
    ),
  );
  children.length = 0;
  for (const ns of [NS_A, NS_B])
    if (
      netnsList()
        .split('\n')
        .some((l) => l.split(' ')[0] === ns)
    )
      sh(['ip', 'netns', 'del', ns]);
}

type LogLine = Record<string, string | number>;

function accessLines(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as LogLine);
}

const SERVER = `
const http = require('node:http'), net = require('node:net');
const answer = (req, res) => {
  const body = JSON.stringify({ path: req.url, host: req.headers.host, source: req.headers['x-source-service'] ?? null });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};
http.createServer(answer).listen(8080, '${B_IP}', () => console.log('http ready'));
http.createServer(answer).listen(8080, '${B_IP6}', () => console.log('http6 ready'));
net.createServer((s) => s.on('data', (d) => s.write('echo:' + d))).listen(9000, '${B_IP}', () => console.log('tcp ready'));
net.createServer((s) => s.end('220 server speaks first\\r\\n')).listen(2525, '${B_IP}', () => console.log('smtp ready'));
`;

/** A client of a server-first protocol (SMTP's greeting): it sends nothing until it has read the server's line. */
const SMTP_CLIENT = `
const s = require('node:net').connect(2525, '${B_IP}');
s.setTimeout(5000, () => { console.log('timeout'); process.exit(1); });
s.on('data', (d) => { console.log(JSON.stringify(d.toString())); process.exit(0); });
`;

/** A client that speaks first with bytes that are not HTTP (a database handshake, say). */
const TCP_CLIENT = `
const s = require('node:net').connect(9000, '${B_IP}', () => s.write('\\x00\\x01binary hello'));
s.setTimeout(5000, () => { console.log('timeout'); process.exit(1); });
s.on('data', (d) => { console.log(JSON.stringify(d.toString('latin1'))); process.exit(0); });
`;

describe.skipIf(!IS_ROOT)(
  'transparent capture: iptables redirect + original destination (network namespaces, root)',
  () => {
    let dir: string;
    let logA: string;
    let logB: string;
    let proxyA: Child;
    let proxyB: Child;

    beforeAll(async () => {
      expect(existsSync(ADDON), `${ADDON} is missing: npm run build compiles it (needs cc)`).toBe(true);
      await cleanUp(); // namespaces left by a killed earlier run of this process id
      dir = mkdtempSync(join(tmpdir(), 'skein-capture-'));
      chmodSync(dir, 0o777); // the proxies run as uid 1337 and write their access logs here
      logA = join(dir, 'a-access.log');
      logB = join(dir, 'b-access.log');

      sh(['ip', 'netns', 'add', NS_A]);
      sh(['ip', 'netns', 'add', NS_B]);
      sh(['ip', 'link', 'add', VETH_A, 'netns', NS_A, 'type', 'veth', 'peer', 'name', VETH_B, 'netns', NS_B]);
      for (const [ns, dev, ip, ip6] of [
        [NS_A, VETH_A, A_IP, A_IP6],
        [NS_B, VETH_B, B_IP, B_IP6],
      ]) {
        sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
        sh(['ip', '-n', ns, 'addr', 'add', `${ip}/24`, 'dev', dev]);
        sh(['ip', '-n', ns, 'addr', 'add', `${ip6}/64`, 'dev', dev, 'nodad']);
        sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
      }
      // Cluster IPs route out of the pod like everything else (the redirect happens after the routing decision).
      sh(['ip', '-n', NS_A, 'route', 'add', 'default', 'dev', VETH_A]);

      const server = spawnIn(NS_B, [process.execPath, '-e', SERVER]);
      await waitFor(() => ['http', 'http6', 'tcp', 'smtp'].every((p) => server.out().includes(`${p} ready`)), 10_000);

      // The mesh's identities (skein ca): A calls the Service over mTLS, B's inbound capture listener terminates it.
      const caDir = join(dir, 'ca');
      sh([process.execPath, SKEIN, 'ca', 'init', '--dir', caDir]);
      sh([process.execPath, SKEIN, 'ca', 'crl', '--dir', caDir, '--out', join(dir, 'crl.pem')]);
      const mtls = (sa: string) => {
        const prefix = join(dir, sa);
        sh([
          process.execPath,
          SKEIN,
          'ca',
          'issue',
          '--dir',
          caDir,
          '--id',
          `spiffe://cluster.local/ns/default/sa/${sa}`,
          '--out',
          prefix,
        ]);
        for (const f of ['crt', 'key']) chownSync(`${prefix}.${f}`, PROXY_UID, PROXY_UID); // keys are 0600
        const bundle = join(dir, 'bundle.pem'); // the CA directory itself is root's alone
        copyFileSync(join(caDir, 'bundle.pem'), bundle);
        return {
          certFile: `${prefix}.crt`,
          keyFile: `${prefix}.key`,
          trustBundleFile: bundle,
          crlFile: join(dir, 'crl.pem'),
        };
      };

      const configA = {
        service: 'client-app',
        mtls: mtls('client-app'),
        admin: { address: '127.0.0.1:15000' },
        telemetry: { accessLog: { enabled: true, path: logA } },
        listeners: [
          {
            name: 'outbound-capture',
            address: '[::]:15001',
            direction: 'outbound',
            originalDst: true,
            cluster: 'passthrough',
            protocolDetectionTimeoutMs: 300,
          },
        ],
        clusters: [
          { name: 'passthrough', discovery: { type: 'original-dst' } },
          {
            name: 'server',
            serviceAddresses: [`${SERVICE_IP}:80`],
            discovery: { type: 'static', endpoints: [{ address: `${B_IP}:8080` }] },
            mtls: { mode: 'always' }, // a meshed service: the passthrough cluster's calls stay plaintext
          },
        ],
      };
      const configB = {
        service: 'server-app',
        mtls: mtls('server-app'),
        admin: { address: '127.0.0.1:15000' },
        telemetry: { accessLog: { enabled: true, path: logB } },
        listeners: [
          {
            name: 'inbound-capture',
            address: '[::]:15006',
            direction: 'inbound',
            originalDst: true,
            cluster: 'local-app',
            protocolDetectionTimeoutMs: 300,
            mtls: 'permissive', // mTLS from a peer's proxy, plaintext from the passthrough
          },
        ],
        clusters: [{ name: 'local-app', discovery: { type: 'original-dst' } }],
      };
      writeFileSync(join(dir, 'a.json'), JSON.stringify(configA));
      writeFileSync(join(dir, 'b.json'), JSON.stringify(configB));
      proxyA = spawnIn(NS_A, [process.execPath, SKEIN, 'proxy', '--config', join(dir, 'a.json')], PROXY_UID);
      proxyB = spawnIn(NS_B, [process.execPath, SKEIN, 'proxy', '--config', join(dir, 'b.json')], PROXY_UID);
      for (const p of [proxyA, proxyB])
        await waitFor(() => {
          if (p.proc.exitCode !== null) throw new Error(`proxy exited: ${p.out()}`);
          return p.out().includes('config applied');
        }, 15_000);

      for (const ns of [NS_A, NS_B])
        skeinIn(ns, [
          'redirect',
          'install',
          '--proxy-uid',
          String(PROXY_UID),
          '--outbound-port',
          '15001',
          '--inbound-port',
          '15006',
          '--ipv6',
        ]);
    }, 60_000);

    afterAll(async () => {
      await cleanUp();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      expect(netnsList()).not.toContain(NS_A);
      expect(netnsList()).not.toContain(NS_B);
    }, 30_000);

    it('installs its own chains, jumped to from PREROUTING and OUTPUT, with the proxy uid exempt', () => {
      const rules = natRules(NS_A);
      for (const chain of ['SKEIN_INBOUND', 'SKEIN_IN_REDIRECT', 'SKEIN_OUTPUT', 'SKEIN_REDIRECT'])
        expect(rules).toContain(`:${chain} `);
      expect(rules).toContain('-A OUTPUT -p tcp -j SKEIN_OUTPUT');
      expect(rules).toContain('-A PREROUTING -p tcp -j SKEIN_INBOUND');
      expect(rules).toMatch(/-A SKEIN_OUTPUT -m owner --uid-owner 1337 -j RETURN/);
      expect(rules).toMatch(/-A SKEIN_REDIRECT -p tcp -j REDIRECT --to-ports 15001/);
    });

    it("an unchanged app's call to the server's address goes through both proxies, routed by original destination", async () => {
      const { stdout } = await run('ip', [
        'netns',
        'exec',
        NS_A,
        'curl',
        '-sS',
        '-m',
        '5',
        `http://${B_IP}:8080/hello`,
      ]);
      const body = JSON.parse(stdout) as { path: string; host: string; source: string | null };
      expect(body).toEqual({ path: '/hello', host: `${B_IP}:8080`, source: 'client-app' });
      const a = await waitFor(() => accessLines(logA).find((l) => l.path === '/hello'), 5_000);
      expect(a).toMatchObject({
        listener: 'outbound-capture',
        direction: 'outbound',
        response_code: 200,
        response_flags: '-',
        route_name: 'original-dst:passthrough',
        upstream_cluster: 'passthrough',
        upstream_host: `${B_IP}:8080`,
      });
      const b = await waitFor(() => accessLines(logB).find((l) => l.path === '/hello'), 5_000);
      expect(b).toMatchObject({
        listener: 'inbound-capture',
        direction: 'inbound',
        response_code: 200,
        route_name: 'original-dst:local-app',
        upstream_host: `${B_IP}:8080`,
        source_service: 'client-app',
      });
      expect(b.x_request_id).toBe(a.x_request_id);
    });

    it("a Service's cluster IP goes to the cluster whose serviceAddresses claim it", async () => {
      const { stdout } = await run('ip', ['netns', 'exec', NS_A, 'curl', '-sS', '-m', '5', `http://${SERVICE_IP}/svc`]);
      expect(JSON.parse(stdout)).toMatchObject({ path: '/svc', host: SERVICE_IP, source: 'client-app' });
      const a = await waitFor(() => accessLines(logA).find((l) => l.path === '/svc'), 5_000);
      expect(a).toMatchObject({
        route_name: 'original-dst:server',
        upstream_cluster: 'server',
        upstream_host: `${B_IP}:8080`,
      });
      await waitFor(() => accessLines(logB).find((l) => l.path === '/svc'), 5_000);
      // That hop was mTLS: B's inbound capture listener terminated it (a verified peer), then routed it by the
      // original destination; the /hello call above came in plaintext (permissive) through A's passthrough.
      const metrics = sh(['ip', 'netns', 'exec', NS_B, 'curl', '-sS', '-m', '3', 'http://127.0.0.1:15000/metrics']);
      expect(metrics).toMatch(/skein_mtls_handshakes_total\{direction="inbound",result="ok"\} [1-9]/);
    });

    it('h2c (prior knowledge) on the captured port is HTTP/2 to the proxy and routed by original destination', async () => {
      const url = `http://${SERVICE_IP}/h2c`;
      const args = ['netns', 'exec', NS_A, 'curl', '-sS', '-m', '5', '--http2-prior-knowledge', url];
      const { stdout } = await run('ip', args);
      expect(JSON.parse(stdout)).toMatchObject({ path: '/h2c', source: 'client-app' });
      const a = await waitFor(() => accessLines(logA).find((l) => l.path === '/h2c'), 5_000);
      expect(a).toMatchObject({ protocol: 'HTTP/2', route_name: 'original-dst:server' });
    });

    it('IPv6 too: ip6tables redirects, and the original destination is read with IP6T_SO_ORIGINAL_DST', async () => {
      const url = `http://[${B_IP6}]:8080/v6`;
      // Neighbour discovery first (ICMPv6 is not redirected): under a loaded machine the proxy's first connect
      // would otherwise also wait for it, within its 1 s connect timeout.
      await run('ip', ['netns', 'exec', NS_A, 'ping', '-6', '-c', '1', '-W', '3', B_IP6]).catch(() => undefined);
      const { stdout } = await run('ip', ['netns', 'exec', NS_A, 'curl', '-sS', '-g', '-m', '5', url]);
      expect(stdout.startsWith('{'), stdout).toBe(true);
      expect(JSON.parse(stdout)).toEqual({ path: '/v6', host: `[${B_IP6}]:8080`, source: 'client-app' });
      const a = await waitFor(() => accessLines(logA).find((l) => l.path === '/v6'), 5_000);
      expect(a).toMatchObject({ route_name: 'original-dst:passthrough', upstream_host: `[${B_IP6}]:8080` });
      const b = await waitFor(() => accessLines(logB).find((l) => l.path === '/v6'), 5_000);
      expect(b).toMatchObject({ route_name: 'original-dst:local-app', upstream_host: `[${B_IP6}]:8080` });
    });

    it('a client that does not speak HTTP is passed through as TCP to where it was going', async () => {
      const { stdout } = await run('ip', ['netns', 'exec', NS_A, process.execPath, '-e', TCP_CLIENT]);
      expect(JSON.parse(stdout.trim())).toBe('echo:\u0000\u0001binary hello');
    });

    it('a server-first protocol is passed through as TCP once the client stays silent past the detection timeout', async () => {
      const t0 = performance.now();
      const { stdout } = await run('ip', ['netns', 'exec', NS_A, process.execPath, '-e', SMTP_CLIENT]);
      expect(JSON.parse(stdout.trim())).toBe('220 server speaks first\r\n');
      // Both proxies waited for the client's first bytes (300 ms each) before passing it through.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(600);
    });

    it('the proxy reaches what it dials directly: its own uid is not redirected (no loop)', () => {
      // Both proxies are up and served the calls above; a loop would have exhausted them with connections to
      // themselves. Their admin listeners (excluded inbound port 15000) still answer.
      const ready = sh(['ip', 'netns', 'exec', NS_B, 'curl', '-sS', '-m', '3', 'http://127.0.0.1:15000/ready']);
      expect(ready).toMatch(/ready/i);
      const listeners = JSON.parse(
        sh(['ip', 'netns', 'exec', NS_A, 'curl', '-sS', '-m', '3', 'http://127.0.0.1:15000/listeners']),
      ) as { name: string; originalDst: unknown }[];
      expect(listeners.find((l) => l.name === 'outbound-capture')?.originalDst).toEqual({
        serviceAddresses: { [`${SERVICE_IP}:80`]: 'server' },
        fallback: 'passthrough',
        addon: 'loaded',
      });
      expect(proxyA.proc.exitCode).toBeNull();
      expect(proxyB.proc.exitCode).toBeNull();
    });

    it('skein redirect remove takes out exactly its chains and jumps, and the app then connects directly', async () => {
      for (const ns of [NS_A, NS_B]) {
        sh([
          'ip',
          'netns',
          'exec',
          ns,
          'iptables',
          '-t',
          'nat',
          '-A',
          'OUTPUT',
          '-p',
          'tcp',
          '--dport',
          '9',
          '-j',
          'RETURN',
        ]);
        expect(skeinIn(ns, ['redirect', 'remove', '--ipv6'])).toContain('IPv6: removed');
        const rules = natRules(ns);
        expect(rules).not.toContain('SKEIN_');
        expect(sh(['ip', 'netns', 'exec', ns, 'ip6tables-save', '-t', 'nat'])).not.toContain('SKEIN_');
        expect(rules).toContain('--dport 9 -j RETURN'); // someone else's rule stays
      }
      const before = accessLines(logA).length;
      const { stdout } = await run('ip', [
        'netns',
        'exec',
        NS_A,
        'curl',
        '-sS',
        '-m',
        '5',
        `http://${B_IP}:8080/direct`,
      ]);
      expect(JSON.parse(stdout)).toEqual({ path: '/direct', host: `${B_IP}:8080`, source: null });
      expect(accessLines(logA).length).toBe(before);
    });
  },
);
