// Reads what the kernel already counts about a process tree and the CPUs, from /proc (Linux only):
// CPU time (utime+stime, all threads) and peak RSS (VmHWM) of a process and its descendants, and per-CPU busy time.
// Sampled before and after a load run so the proxy is measured from outside, with no cooperation from it.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Kernel clock ticks per second (the unit of utime/stime); 100 on practically every Linux. */
export function clockTicksPerSecond(): number {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

interface StatFields {
  readonly ppid: number;
  /** utime + stime in clock ticks, summed over all threads of the process. */
  readonly cpuTicks: number;
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited between listing and reading
  }
  // The command name (field 2) may contain spaces and parentheses; everything after the last ')' is fixed.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]) };
}

/** `rootPid` and every live descendant of it (a shell wrapper, nginx's worker, forked helpers). */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat === undefined) continue;
    const list = children.get(stat.ppid);
    if (list === undefined) children.set(stat.ppid, [pid]);
    else list.push(pid);
  }
  const tree: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree.filter((pid) => readStat(pid) !== undefined);
}

/** Summed utime+stime (clock ticks) of the given processes; ones that have exited count 0. */
export function cpuTicksOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) total += readStat(pid)?.cpuTicks ?? 0;
  return total;
}

/** utime+stime (clock ticks) of each of the given processes, in order; 0 for one that has exited. */
export function cpuTicksEach(pids: readonly number[]): number[] {
  return pids.map((pid) => readStat(pid)?.cpuTicks ?? 0);
}

/**
 * A short name for a process of a target's tree, for the report: the config file it was started with
 * (`skein-mtls-inbound` for `… proxy --config /tmp/…/skein-mtls-inbound.yaml`), else its executable's name.
 */
export function processLabel(pid: number): string {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return `pid ${pid}`;
  }
  const config = argv.indexOf('--config');
  const file = config >= 0 ? argv[config + 1] : undefined;
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  if (file !== undefined) return base(file).replace(/\.(ya?ml|json)$/, '');
  return base(argv[0] ?? `pid ${pid}`);
}

/** Summed VmHWM (peak resident set, kB) of the given processes; shared pages count once per process. */
export function peakRssKbOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      // exited: nothing to add
    }
  }
  return total;
}

/** Cumulative jiffies of one CPU from /proc/stat, split the way "busy %" needs them. */
export interface CpuTimes {
  readonly total: number;
  readonly idle: number;
  readonly steal: number;
}

export function readCpuTimes(cpu: number): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) throw new Error(`/proc/stat has no line for cpu${cpu}`);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  return { total: v.reduce((a, b) => a + b, 0), idle: v[3] + v[4], steal: v[7] };
}

/** Share of the interval the CPU ran anything (ours or not), and the share the hypervisor took (steal), in %. */
export function cpuBusyBetween(before: CpuTimes, after: CpuTimes): { busyPct: number; stealPct: number } {
  const total = after.total - before.total;
  if (total <= 0) return { busyPct: Number.NaN, stealPct: Number.NaN };
  const idle = after.idle - before.idle;
  const steal = after.steal - before.steal;
  return { busyPct: (100 * (total - idle - steal)) / total, stealPct: (100 * steal) / total };
}
