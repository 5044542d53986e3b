// `skein probe run --pid PID[,PID] --duration-s N [--json]`: measures what the given processes cost in the
// kernel (TCP connections, socket bytes and calls, on-CPU time, retransmits, RTT) for N seconds and prints
// one block per process. Ctrl-C stops early and still prints.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ProbeError, type ProbeResult, runProbe } from './runner.ts';
import type { HistogramBucket, ProcessFigures } from './report.ts';

export const PROBE_HELP = `Usage: skein probe run --pid PID[,PID...] --duration-s N [--json]

Attach eBPF probes (bpftrace) to the given processes for N seconds and print per-process figures:
TCP connects/accepts/closes and connection lifetimes, bytes and calls through TCP sockets, on-CPU time,
retransmits and smoothed RTT. Processes that were already running count fully: accepts on listeners they
opened earlier, and connections already open at attach once they send or receive. Needs root, bpftrace
(apt-get install -y bpftrace) and a mounted tracefs.

Options:
  --pid PID[,PID...]   Processes to measure (repeatable); every thread of each counts.
  --duration-s N       How long to measure (default 10). Ctrl-C stops early and still prints.
  --json               Print the figures as JSON.
  -h, --help           Show this help.`;

export function parsePids(values: readonly string[]): number[] {
  const pids = values.flatMap((value) => value.split(',')).map((part) => part.trim());
  return pids.map((part) => {
    const pid = Number(part);
    if (!/^\d+$/.test(part) || !Number.isSafeInteger(pid) || pid <= 0) throw new Error(`--pid: not a PID: '${part}'`);
    return pid;
  });
}

function histogramLines(buckets: readonly HistogramBucket[]): string[] {
  const total = buckets.reduce((sum, b) => sum + b.count, 0);
  return buckets
    .filter((b) => b.count > 0)
    .map((b) => {
      const range = `[${b.min ?? '-inf'}, ${b.max ?? 'inf'}]`.padEnd(22);
      const bar = '#'.repeat(Math.max(1, Math.round((b.count / total) * 40)));
      return `      ${range} ${String(b.count).padStart(7)} ${bar}`;
    });
}

export function formatFigures(p: ProcessFigures, seconds: number): string {
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  const lines = [
    `pid ${p.pid}`,
    `  tcp      connects ${p.tcp.connects}  accepts ${p.tcp.accepts}  open before ${p.tcp.openedBefore}  closes ${p.tcp.closes}  failed connects ${p.tcp.connectFailures}  retransmits ${p.tcp.retransmits}`,
    `  rtt      ${p.tcp.srttUsAvg === null ? 'no samples' : `srtt avg ${p.tcp.srttUsAvg.toFixed(0)} µs  max ${p.tcp.srttUsMax} µs  (${p.tcp.srttSamples} samples)`}`,
    `  send     ${p.io.sendBytes} bytes in ${p.io.sendCalls} calls (${p.io.sendErrors} errors)`,
    `  recv     ${p.io.recvBytes} bytes in ${p.io.recvCalls} calls (${p.io.recvErrors} errors)`,
    `  cpu      ${ms(p.cpu.onCpuNs)} ms on CPU (${seconds > 0 ? ((p.cpu.onCpuNs / 1e9 / seconds) * 100).toFixed(1) : '0'}% of one core)`,
  ];
  if (p.tcp.durationUs.length > 0) lines.push('  connection lifetimes (µs):', ...histogramLines(p.tcp.durationUs));
  return lines.join('\n');
}

export function formatResult(result: ProbeResult): string {
  const seconds = result.attachedMs / 1000;
  const head = [`measured for ${seconds.toFixed(1)} s`];
  if (result.lostEvents > 0) head.push(`WARNING: bpftrace lost ${result.lostEvents} events; figures undercount`);
  for (const warning of result.warnings) head.push(`note: ${warning}`);
  return [head.join('\n'), ...result.processes.map((p) => formatFigures(p, seconds))].join('\n\n');
}

export async function main(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub !== 'run') {
    const unknown = sub !== undefined && !['-h', '--help'].includes(sub);
    (unknown ? process.stderr : process.stdout).write(
      `${unknown ? `skein probe: unknown subcommand '${sub}'\n\n` : ''}${PROBE_HELP}\n`,
    );
    return sub === undefined || unknown ? 1 : 0;
  }
  let pids: number[];
  let durationS: number;
  let json: boolean;
  try {
    const { values } = parseArgs({
      args: rest,
      options: {
        pid: { type: 'string', multiple: true },
        'duration-s': { type: 'string', default: '10' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) {
      process.stdout.write(`${PROBE_HELP}\n`);
      return 0;
    }
    if (values.pid === undefined) throw new Error('--pid is required');
    pids = parsePids(values.pid);
    const gone = pids.filter((pid) => !existsSync(`/proc/${pid}`));
    if (gone.length > 0) throw new Error(`--pid: no process with PID ${gone.join(', ')}`);
    durationS = Number(values['duration-s']);
    if (!Number.isFinite(durationS) || durationS <= 0) throw new Error(`--duration-s: not a positive number`);
    json = values.json;
  } catch (err) {
    process.stderr.write(`skein probe: ${(err as Error).message}\n\n${PROBE_HELP}\n`);
    return 1;
  }
  // Ctrl-C reaches bpftrace too (same process group); either way the run stops and prints what it has.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    const result = await runProbe({ pids, durationS, signal: stop.signal });
    process.stdout.write(`${json ? JSON.stringify(result, null, 2) : formatResult(result)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ProbeError)) throw err;
    process.stderr.write(`skein probe: ${err.message}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}
