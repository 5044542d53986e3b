// Probes attached to servers that were already serving: nginx (master and one worker, the probe on the worker)
// and a Node server, each started, listening and answering connections before bpftrace attaches. Every
// connection opened after the attach must count as one accept and one close. As root with bpftrace and nginx;
// skipped, with the reason printed, where they are missing.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts } from '../../bench/lib/ports.ts';
import { SCRIPT_NAMES } from '../../probes/program.ts';
import { preflight } from '../../probes/preflight.ts';
import { ProbeRun } from '../../probes/runner.ts';
import { descendantsOf } from '../support/control.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const problems = preflight(SCRIPT_NAMES).problems;
const nginxMissing = spawnSync('nginx', ['-v']).error !== undefined;
if (problems.length > 0) console.warn(`test/probes/running-process.test.ts skipped:\n  ${problems.join('\n  ')}`);
else if (nginxMissing) console.warn('test/probes/running-process.test.ts: nginx not installed; its case is skipped');

const WORKLOAD = fileURLToPath(new URL('./fixtures/workload.ts', import.meta.url));
/** Generous: bpftrace's exit after SIGINT waits for RCU grace periods, slow on a loaded 2-CPU machine. */
const STOP_TIMEOUT_MS = 60_000;
const REQUEST = 'GET / HTTP/1.1\r\nHost: probe-test\r\nConnection: close\r\n\r\n';

const children: ChildProcess[] = [];
const probes: ProbeRun[] = [];
const dirs: string[] = [];
/** nginx workers: they outlive a SIGKILLed master, so they are ended by PID too. */
const workers: number[] = [];

afterEach(async () => {
  await Promise.all(probes.splice(0).map((probe) => probe.kill()));
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  for (const pid of workers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** One connection: send `payload` (and half-close if `end`), read until the server closes; returns what came back. */
function exchange(port: number, payload: string, end: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = net.connect(port, '127.0.0.1', () => (end ? socket.end(payload) : socket.write(payload)));
    socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    socket.on('error', reject).on('close', () => resolve(answer));
  });
}

/** A keep-alive connection to nginx: one request at a time, each answered ("ok\n") before the next is sent. */
async function keepAliveConnection(port: number): Promise<{ request(): Promise<void>; close(): Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  let answered = 0;
  let onAnswer: (() => void) | undefined;
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    text += chunk;
    const complete = text.match(/\r\n\r\nok\n/g)?.length ?? 0;
    if (complete > answered) {
      answered = complete;
      onAnswer?.();
    }
  });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  return {
    request: () =>
      new Promise<void>((resolve) => {
        const want = answered + 1;
        onAnswer = () => answered >= want && resolve();
        socket.write('GET / HTTP/1.1\r\nHost: probe-test\r\n\r\n');
      }),
    close: async () => {
      socket.end();
      await closed;
    },
  };
}

/**
 * Server-side TCP sockets on `port` that have not reached CLOSE yet: anything but the listener and TIME_WAIT
 * (a socket entering TIME_WAIT has already passed CLOSE, which is what the probe counts).
 */
function unclosedServerSockets(port: number): number {
  const LISTEN = '0A';
  const TIME_WAIT = '06';
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length > 3 && parseInt(f[1].split(':')[1], 16) === port && ![LISTEN, TIME_WAIT].includes(f[3]))
    .length;
}

async function allClosed(port: number): Promise<void> {
  await waitFor(() => unclosedServerSockets(port) === 0, 30_000, 20);
}

/** nginx with a master and one worker on a free port; resolves with the worker's PID once it answers. */
async function startNginx(): Promise<{ port: number; workerPid: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'skein-probe-nginx-'));
  dirs.push(dir);
  const [port] = await freePorts(1);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok\\n"; }
  }
}
`,
  );
  const master = spawn('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.push(master);
  const workerPid = await waitFor(() => descendantsOf(master.pid!)[0], 15_000, 20);
  workers.push(workerPid);
  await waitForAsync(() => exchange(port, REQUEST, false).then((answer) => answer.startsWith('HTTP/1.1 200')), 15_000);
  return { port, workerPid };
}

describe.skipIf(problems.length > 0)('probes on a process that was serving before they attached (as root)', () => {
  it.skipIf(nginxMissing)(
    'counts every connection an nginx worker accepts and closes after the attach',
    async () => {
      const WARMUP = 20;
      const CONNECTIONS = 150;
      const { port, workerPid } = await startNginx();
      for (let i = 0; i < WARMUP; i++) expect(await exchange(port, REQUEST, false)).toMatch(/^HTTP\/1.1 200/);
      await allClosed(port);

      const probe = await ProbeRun.start({ pids: [workerPid] }); // every script
      probes.push(probe);
      for (let i = 0; i < CONNECTIONS; i++) expect(await exchange(port, REQUEST, false)).toMatch(/^HTTP\/1.1 200/);
      await allClosed(port);
      const [figures] = (await probe.stop(STOP_TIMEOUT_MS)).processes;

      expect(figures.pid).toBe(workerPid);
      expect(figures.tcp.accepts).toBe(CONNECTIONS);
      expect(figures.tcp.closes).toBe(CONNECTIONS);
      expect(figures.tcp.connects).toBe(0);
      expect(figures.tcp.openedBefore).toBe(0);
      expect(figures.tcp.durationUs.reduce((sum, b) => sum + b.count, 0)).toBe(CONNECTIONS);
      expect(figures.io.recvBytes).toBeGreaterThanOrEqual(CONNECTIONS * REQUEST.length);
      expect(figures.io.sendCalls).toBeGreaterThanOrEqual(CONNECTIONS);
    },
    120_000,
  );

  it.skipIf(nginxMissing)(
    'claims a keep-alive connection that was open before the attach at its first request: RTT and close count',
    async () => {
      const REQUESTS = 5;
      const { port, workerPid } = await startNginx();
      const connection = await keepAliveConnection(port);
      await connection.request(); // open and serving before the probe exists

      const probe = await ProbeRun.start({ pids: [workerPid], scripts: ['tcp-existing', 'tcp-rtt'] });
      probes.push(probe);
      for (let i = 0; i < REQUESTS; i++) await connection.request();
      await connection.close();
      await allClosed(port);
      const [figures] = (await probe.stop(STOP_TIMEOUT_MS)).processes;

      expect(figures.tcp.openedBefore).toBe(1);
      expect(figures.tcp.accepts).toBe(0);
      expect(figures.tcp.closes).toBe(1);
      // Requests 2 to 5 arrive after the worker claimed the socket at its recv of request 1.
      expect(figures.tcp.srttSamples).toBeGreaterThanOrEqual(REQUESTS - 1);
      expect(figures.tcp.durationUs).toEqual([]); // its lifetime is unknown: it opened before the probe
    },
    120_000,
  );

  it('counts every connection a Node server accepts and closes after the attach', async () => {
    const WARMUP = 5;
    const CONNECTIONS = 30;
    const BYTES_EACH = 1000;
    const child = spawn(process.execPath, [WORKLOAD, 'serve'], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    children.push(child);
    const port = await new Promise<number>((resolve) => {
      child.stdout!.setEncoding('utf8').once('data', (line: string) => resolve(Number(line.trim())));
      child.stdin!.write('go\n'); // it listens now, before the probe exists
    });
    for (let i = 0; i < WARMUP; i++) await exchange(port, 'x'.repeat(BYTES_EACH), true);
    await allClosed(port);

    const probe = await ProbeRun.start({ pids: [child.pid!] }); // every script
    probes.push(probe);
    for (let i = 0; i < CONNECTIONS; i++) await exchange(port, 'x'.repeat(BYTES_EACH), true);
    await allClosed(port);
    const [figures] = (await probe.stop(STOP_TIMEOUT_MS)).processes;

    expect(figures.tcp.accepts).toBe(CONNECTIONS);
    expect(figures.tcp.closes).toBe(CONNECTIONS);
    expect(figures.tcp.connects).toBe(0);
    expect(figures.tcp.openedBefore).toBe(0);
    expect(figures.io.recvBytes).toBe(CONNECTIONS * BYTES_EACH);
  }, 120_000);
});
