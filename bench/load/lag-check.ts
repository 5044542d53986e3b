// `node bench/load/lag-check.ts`: how late the built-in generator leaves its own timetable on this machine.
// Runs open-loop HTTP/1.1 at each rate against an origin (nginx when installed, else the bench origin) and prints
// the generator's lag beside the latency it measured. A rate whose p99 lag reaches 1 ms is marked untrustworthy.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { waitForHttpOk } from '../lib/http-check.ts';
import { originNginxArgv } from '../lib/origin.ts';
import { freePorts } from '../lib/ports.ts';
import { missingTools } from '../lib/prereqs.ts';
import { cleanUpOnExit, ProcessSupervisor } from '../lib/processes.ts';
import { runBuiltin } from './builtin.ts';
import { DEFAULT_TUNING, type GeneratorTuning } from './generator.ts';

const USAGE = `usage: node bench/load/lag-check.ts [--rates 1000,5000,10000] [--duration-s 10] [--connections 16]
       [--origin nginx|node] [--generator-cpu N] [--origin-cpu N] [--spin-window-ms 2]`;

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '1000,2000,5000,10000,20000' },
    'duration-s': { type: 'string', default: '10' },
    connections: { type: 'string', default: '16' },
    origin: { type: 'string' },
    'generator-cpu': { type: 'string' },
    'origin-cpu': { type: 'string' },
    'spin-window-ms': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const cpu = (v: string | undefined) => (v === undefined ? undefined : Number(v));
const originKind = values.origin ?? (missingTools({ nginx: 'nginx' }).length === 0 ? 'nginx' : 'node');
const runDir = mkdtempSync(join(tmpdir(), 'skein-lag-check-'));
const supervisor = new ProcessSupervisor(runDir);
cleanUpOnExit(supervisor, () => supervisor.stopAll());

const [port] = await freePorts(1);
const originArgv =
  originKind === 'nginx'
    ? originNginxArgv(port, runDir)
    : [process.execPath, fileURLToPath(new URL('../origin/main.ts', import.meta.url)), '--port', String(port)];
const origin = supervisor.start(`origin-${originKind}`, originArgv, { cpu: cpu(values['origin-cpu']) });
const err = await waitForHttpOk(port, 10_000, origin.hasExited);
if (err !== undefined) throw new Error(`origin did not come up: ${err}`);

const tuning: GeneratorTuning = {
  spinWindowMs: Number(values['spin-window-ms'] ?? DEFAULT_TUNING.spinWindowMs),
};
process.stdout.write(
  `origin: ${originKind} on 127.0.0.1:${port}; ${values.connections} connections; spin window ${tuning.spinWindowMs} ms\n`,
);
process.stdout.write(
  'rate/s    achieved/s  lag p50 µs  lag p99 µs  lag max µs  trusted  lat p50 µs  lat p99 µs  gen CPU\n',
);
try {
  for (const rate of values.rates.split(',').map(Number)) {
    const durationS = Number(values['duration-s']);
    const r = await runBuiltin(
      {
        url: `http://127.0.0.1:${port}/`,
        protocol: 'http1',
        mode: 'open',
        engine: 'builtin',
        ratePerS: rate,
        connections: Number(values.connections),
        durationS,
        warmupS: 2,
        cpu: cpu(values['generator-cpu']),
      },
      undefined,
      tuning,
    );
    const lag = r.lag!;
    const genCpu =
      r.generatorCpuSeconds === undefined ? '?' : `${((100 * r.generatorCpuSeconds) / (durationS + 2)).toFixed(0)}%`;
    const cols = [
      rate,
      r.throughputPerS.toFixed(0),
      lag.p50Us,
      lag.p99Us,
      lag.maxUs,
      lag.trustworthy ? 'yes' : 'NO',
      r.latencyUs.p50,
      r.latencyUs.p99,
      genCpu,
    ];
    process.stdout.write(`${cols.map((c, i) => String(c).padStart(i === 0 ? 6 : 10)).join('  ')}\n`);
  }
} finally {
  await supervisor.stopAll();
  rmSync(runDir, { recursive: true, force: true });
}
