// Control's eBPF probe API end to end, as root with bpftrace: `skein control` as a real process attaches probes
// to a workload with known traffic and returns the figures; an early stop keeps them; bpftrace never outlives
// its run or control. A control that is not root says so. Skipped, with the reason, where probes cannot run.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeRunRecord } from '../../control/probe-runs.ts';
import { preflight } from '../../probes/preflight.ts';
import { SCRIPT_NAMES } from '../../probes/program.ts';
import type { ProbeResult } from '../../probes/runner.ts';
import { alive, api, descendantsOf, type RunningControl, startSkeinControl, useToken } from '../support/control.ts';
import { waitFor, waitForAsync } from '../support/wait-for.ts';

const problems = preflight(SCRIPT_NAMES).problems;
if (problems.length > 0) console.warn(`test/e2e/control-probes.test.ts skipped:\n  ${problems.join('\n  ')}`);

const WORKLOAD = fileURLToPath(new URL('../probes/fixtures/workload.ts', import.meta.url));
const SKEIN_BIN = fileURLToPath(new URL('../../bin/skein.js', import.meta.url));
const dirs: string[] = [];
const controls: RunningControl[] = [];
const children: ChildProcess[] = [];

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skein-control-probes-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(async () => {
  for (const c of controls) await c.kill();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The workload fixture serving on a free port; resolves with its PID and a function that starts it. */
function server(): { pid: number; go: () => Promise<number> } {
  const child = spawn(process.execPath, [WORKLOAD, 'serve'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  children.push(child);
  return {
    pid: child.pid!,
    go: () =>
      new Promise((resolve) => {
        child.stdout!.setEncoding('utf8').once('data', (port: string) => resolve(Number(port.trim())));
        child.stdin!.write('go\n');
      }),
  };
}

async function send(port: number, connections: number, bytesEach: number): Promise<void> {
  for (let i = 0; i < connections; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.alloc(bytesEach)));
      socket.on('error', reject).on('close', () => resolve());
      socket.resume();
    });
  }
  await new Promise((resolve) => setTimeout(resolve, 200)); // the last FIN/ACK exchange
}

function bpftraceUnder(pid: number): number[] {
  return descendantsOf(pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('bpftrace');
    } catch {
      return false;
    }
  });
}

describe.skipIf(problems.length > 0)('skein control: eBPF probe API (as root)', () => {
  let control: RunningControl;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tmp();
    control = await startSkeinControl(dataDir);
    controls.push(control);
  });

  it('measures a workload for the requested duration and returns its figures', async () => {
    const CONNECTIONS = 4;
    const BYTES_EACH = 10_000;
    const target = server();
    const started = await api<ProbeRunRecord>(control.url, 'POST', '/ebpf/probe/start', {
      pids: [target.pid],
      durationS: 4,
      scripts: ['tcp-lifecycle', 'socket-io'],
    });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    expect(started.body.status).toBe('running'); // attached: what we send now is measured
    const status = await api<{ available: boolean; running: { id: string }[] }>(
      control.url,
      'GET',
      '/ebpf/probe/status',
    );
    expect(status.status).toBe(200);
    expect(status.body.available).toBe(true);
    expect(status.body.running.map((r) => r.id)).toContain(started.body.id);
    expect((await api(control.url, 'GET', `/ebpf/probe/runs/${started.body.id}/result`)).status).toBe(409);

    await send(await target.go(), CONNECTIONS, BYTES_EACH);
    const done = await waitForAsync(
      async () => {
        const r = (await api<ProbeRunRecord>(control.url, 'GET', `/ebpf/probe/runs/${started.body.id}`)).body;
        return r.status === 'running' ? undefined : r;
      },
      75_000, // bpftrace's exit can be slow on a loaded machine (STOP_TIMEOUT_MS in control/probe-runs.ts)
      100,
    );
    expect(done.status, done.error).toBe('succeeded');
    const result = (await api<ProbeResult>(control.url, 'GET', `/ebpf/probe/runs/${started.body.id}/result`)).body;
    const [figures] = result.processes;
    expect(figures.pid).toBe(target.pid);
    expect(figures.tcp.accepts).toBe(CONNECTIONS);
    expect(figures.tcp.closes).toBe(CONNECTIONS);
    expect(figures.io.recvBytes).toBe(CONNECTIONS * BYTES_EACH);
    expect(bpftraceUnder(control.pid)).toEqual([]);
    const recent = await api<{ recent: { id: string }[] }>(control.url, 'GET', '/ebpf/probe/status');
    expect(recent.body.recent.map((r) => r.id)).toContain(started.body.id);
  }, 100_000);

  it('stops a long probe early on DELETE, keeps the figures so far and leaves no bpftrace behind', async () => {
    const target = server();
    const started = await api<ProbeRunRecord>(control.url, 'POST', '/ebpf/probe/start', {
      pids: [target.pid],
      durationS: 3600,
      scripts: ['tcp-lifecycle'],
    });
    expect(started.status).toBe(201);
    const tracers = bpftraceUnder(control.pid);
    expect(tracers).toHaveLength(1);
    await send(await target.go(), 2, 100);
    const stopped = await api<ProbeRunRecord>(control.url, 'DELETE', `/ebpf/probe/runs/${started.body.id}`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.status).toBe('stopped');
    expect(stopped.body.result?.processes[0].tcp.accepts).toBe(2);
    expect(alive(tracers[0])).toBe(false);
    expect((await api(control.url, 'DELETE', `/ebpf/probe/runs/${started.body.id}`)).status).toBe(409);
  }, 100_000);

  it('refuses a PID no process has, naming the field', async () => {
    const res = await api<{ error: { problems: string[] } }>(control.url, 'POST', '/ebpf/probe/start', {
      pids: [4_194_303],
    });
    expect(res.status).toBe(400);
    expect(res.body.error.problems).toEqual(['pids[0]: no process with PID 4194303']);
  });

  it('takes bpftrace down with a killed control and marks the run interrupted at the next start', async () => {
    const target = server();
    const started = await api<ProbeRunRecord>(control.url, 'POST', '/ebpf/probe/start', {
      pids: [target.pid],
      durationS: 3600,
      scripts: ['oncpu'],
    });
    expect(started.status).toBe(201);
    const tracers = bpftraceUnder(control.pid);
    expect(tracers).toHaveLength(1);
    control.signal('SIGKILL');
    await control.waitForExit();
    await waitFor(() => !alive(tracers[0]), 10_000);
    control = await startSkeinControl(dataDir);
    controls.push(control);
    const after = (await api<ProbeRunRecord>(control.url, 'GET', `/ebpf/probe/runs/${started.body.id}`)).body;
    expect(after.status).toBe('interrupted');
  }, 40_000);

  it('answers 503 naming root when control does not run as root', async () => {
    const dir = tmp();
    chmodSync(dir, 0o777);
    const child = spawn(
      'setpriv',
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        SKEIN_BIN,
        'control',
        '--listen',
        '127.0.0.1:0',
        '--data-dir',
        join(dir, 'data'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } },
    );
    children.push(child);
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    const url = await waitFor(() => /listening on (http:\/\/\S+)/.exec(out)?.[1], 10_000);
    useToken(url, await waitFor(() => /new API token in \S+: (\S+)/.exec(out)?.[1], 10_000));
    const res = await api<{ error: { code: string; problems: string[] } }>(url, 'POST', '/ebpf/probe/start', {
      pids: [process.pid],
    });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('SKEIN_UNAVAILABLE');
    expect(res.body.error.problems.join('\n')).toMatch(/need root/);
    const status = await api<{ available: boolean; error: { code: string; problems: string[] } }>(
      url,
      'GET',
      '/ebpf/probe/status',
    );
    expect(status.status).toBe(503);
    expect(status.body.available).toBe(false);
    expect(status.body.error.code).toBe('SKEIN_UNAVAILABLE');
    expect(status.body.error.problems.join('\n')).toMatch(/need root/);
  }, 30_000);
});
