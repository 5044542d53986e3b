// End to end, as root with bpftrace: known workloads in child processes, measured by a probe filtered to the
// child's PID. Skipped, with the reason printed, where probes cannot run (not root, no bpftrace, no tracefs).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SCRIPT_NAMES } from '../../probes/program.ts';
import { preflight } from '../../probes/preflight.ts';
import { ProbeRun } from '../../probes/runner.ts';

const problems = preflight(SCRIPT_NAMES).problems;
if (problems.length > 0) console.warn(`test/probes/runner.test.ts skipped:\n  ${problems.join('\n  ')}`);

const WORKLOAD = fileURLToPath(new URL('./fixtures/workload.ts', import.meta.url));
const PROBE_PARENT = fileURLToPath(new URL('./fixtures/probe-parent.ts', import.meta.url));
/** Linux reports utime/stime in clock ticks of 1/100 s (USER_HZ) on every architecture we run on. */
const NS_PER_TICK = 1e9 / 100;

const children: ChildProcess[] = [];
const probes: ProbeRun[] = [];
const servers: net.Server[] = [];

afterEach(async () => {
  await Promise.all(probes.splice(0).map((probe) => probe.kill()));
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

function start(script: string, args: string[]): { child: ChildProcess; line: () => Promise<string> } {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  children.push(child);
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  return {
    child,
    line: () => {
      const ready = lines.shift();
      return ready !== undefined ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

function cpuTicks(pid: number): number {
  // Fields after the command name, which may contain spaces: utime and stime are fields 14 and 15.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z'); // dead, not yet reaped
  } catch {
    return true;
  }
}

describe.skipIf(problems.length > 0)('probe runner (bpftrace, as root)', () => {
  it('counts the TCP connections a process opens and closes and the bytes and socket calls it sends', async () => {
    const CONNECTIONS = 5;
    const BYTES = 200_000;
    let received = 0;
    const server = net.createServer((socket) => {
      socket.on('data', (chunk: Buffer) => (received += chunk.length)).on('end', () => socket.end());
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const { child, line } = start(WORKLOAD, ['tcp', String(port), String(CONNECTIONS), String(BYTES)]);

    const probe = await ProbeRun.start({ pids: [child.pid!] });
    probes.push(probe);
    child.stdin!.write('go\n');
    expect(await line()).toBe('done');
    await new Promise((resolve) => setTimeout(resolve, 200)); // last FIN/ACK exchange
    const result = await probe.stop();

    expect(received).toBe(BYTES);
    expect(result.processes).toHaveLength(1);
    const [figures] = result.processes;
    expect(figures.pid).toBe(child.pid);
    expect(figures.tcp.connects).toBe(CONNECTIONS);
    expect(figures.tcp.closes).toBe(CONNECTIONS);
    expect(figures.tcp.accepts).toBe(0);
    expect(figures.tcp.openedBefore).toBe(0); // reading the server's FIN after TIME_WAIT claims nothing
    expect(figures.tcp.connectFailures).toBe(0);
    expect(figures.tcp.durationUs.reduce((sum, b) => sum + b.count, 0)).toBe(CONNECTIONS);
    expect(figures.io.sendBytes).toBeGreaterThanOrEqual(BYTES);
    expect(figures.io.sendCalls).toBeGreaterThanOrEqual(CONNECTIONS);
    expect(figures.io.recvCalls).toBeGreaterThanOrEqual(CONNECTIONS); // each reads the server's FIN (0 bytes)
    expect(figures.tcp.srttSamples).toBeGreaterThan(0);
    expect(figures.cpu.onCpuNs).toBeGreaterThan(0);
    expect(probe.running).toBe(false);
  }, 40_000);

  it('attributes connections accepted on a listener to the listening process, with the bytes it received', async () => {
    const CONNECTIONS = 4;
    const BYTES_EACH = 10_000;
    const { child, line } = start(WORKLOAD, ['serve']);
    const probe = await ProbeRun.start({ pids: [child.pid!] });
    probes.push(probe);
    child.stdin!.write('go\n');
    const port = Number(await line());
    for (let i = 0; i < CONNECTIONS; i++) {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(Buffer.alloc(BYTES_EACH)));
        socket.on('error', reject).on('close', () => resolve());
        socket.resume();
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const [figures] = (await probe.stop()).processes;

    expect(figures.tcp.accepts).toBe(CONNECTIONS);
    expect(figures.tcp.connects).toBe(0);
    expect(figures.tcp.openedBefore).toBe(0);
    expect(figures.tcp.closes).toBe(CONNECTIONS);
    expect(figures.io.recvBytes).toBe(CONNECTIONS * BYTES_EACH);
  }, 40_000);

  it('measures on-CPU time of a busy process within 10% of its /proc utime+stime', async () => {
    const { child, line } = start(WORKLOAD, ['burn', '1000']);
    const probe = await ProbeRun.start({ pids: [child.pid!], scripts: ['oncpu'] });
    probes.push(probe);
    const before = cpuTicks(child.pid!);
    child.stdin!.write('go\n');
    expect(await line()).toBe('done');
    await new Promise((resolve) => setTimeout(resolve, 50)); // let it go idle, so its last slice is charged
    const procNs = (cpuTicks(child.pid!) - before) * NS_PER_TICK;
    const result = await probe.stop();

    const probeNs = result.processes[0].cpu.onCpuNs;
    expect(procNs).toBeGreaterThan(0.9e9);
    expect(Math.abs(probeNs - procNs) / procNs).toBeLessThan(0.1);
  }, 40_000);

  it('stops the probe, leaving no bpftrace process, when the process that started it dies', async () => {
    const { child, line } = start(PROBE_PARENT, []);
    const bpftracePid = Number(await line());
    expect(bpftracePid).toBeGreaterThan(0);
    expect(processGone(bpftracePid)).toBe(false);

    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (!processGone(bpftracePid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(processGone(bpftracePid)).toBe(true);
  }, 40_000);
});
