// `skein bench` end to end: the command line through bin/skein.js (help, usage errors), and one short real run
// (1 round, 1 s, direct and skein) that writes the three report files with both measured targets in them (the
// report of a target that cannot run: assemble.test.ts). Every process is killed by PID after.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RUN_HELP } from '../../bench/run/options.ts';
import type { BenchReport } from '../../bench/report/model.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const dirs: string[] = [];
const running = new Set<ChildProcess>();

afterAll(() => {
  for (const c of running) if (c.exitCode === null && c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv with the test's Node in its own process group (so a hung run can be killed whole), at most `timeoutMs`. */
function run(argv: string[], timeoutMs = 20_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

const BIN = join(ROOT, 'bin/skein.js');

describe('skein bench command line', () => {
  it('prints its help through bin/skein.js (the built CLI) and lists bench among the commands', async () => {
    expect(existsSync(join(ROOT, 'dist/bench/cli.js')), 'run `npm run build` first').toBe(true);
    const help = await run([BIN, 'bench', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.trim()).toBe(RUN_HELP);
    expect((await run([BIN, 'bench', 'run', '-h'])).stdout.trim()).toBe(RUN_HELP);
    const top = await run([BIN, '--help']);
    expect(top.stdout).toMatch(/^ {2}bench +Benchmark proxies side by side/m);
    const origin = await run([BIN, 'bench', 'origin', '--help']);
    expect(origin.code).toBe(0);
    expect(origin.stdout).toContain('Usage: skein bench origin [--listen HOST:PORT]');
  });

  it('fails fast with the option named and a pointer to --help', async () => {
    const r = await run([BIN, 'bench', '--local-targets', 'direct,envoy']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("skein bench: --local-targets: unknown target 'envoy'");
    expect(r.stderr).toContain('Run `skein bench --help` for usage.');
    const bad = await run([BIN, 'bench', 'frobnicate']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("unknown subcommand 'frobnicate'");
  });
});

describe('a short skein bench run', () => {
  it('measures direct and skein side by side and writes report.json, report.md and report.html', async () => {
    const out = mkdtempSync(join(tmpdir(), 'skein-bench-e2e-'));
    dirs.push(out);
    const r = await run(
      [
        'bench/cli.ts',
        'run',
        '--local-targets',
        'direct,skein',
        '--rounds',
        '1',
        '--duration-s',
        '1',
        '--warmup-s',
        '0.5',
        '--first-warmup-s',
        '0',
        '--rate',
        '200',
        '--no-probes',
        '--out',
        out,
      ],
      45_000,
    );
    // Sized to take 10–20 s (two targets, two 1 s scenarios, one round); the 45 s kill is only a backstop.
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['report.json', 'report.md', 'report.html']) expect(existsSync(join(out, f)), f).toBe(true);

    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as BenchReport;
    expect(report.scenarios.map((s) => s.id)).toEqual(['http1-max', 'http1-200rps']);
    const byName = new Map(report.targets.map((t) => [t.name, t]));
    for (const name of ['direct', 'skein']) {
      const t = byName.get(name)!;
      expect(t.available, name).toBe(true);
      expect(t.results.map((x) => x.scenario)).toEqual(['http1-max', 'http1-200rps']);
      for (const x of t.results) {
        expect(x.rounds).toHaveLength(1);
        expect(x.rounds[0].requests, `${name} ${x.scenario}`).toBeGreaterThan(0);
        expect(x.summary.throughputPerS.median).toBeGreaterThan(0);
      }
    }
    const skeinMax = byName.get('skein')!.results[0].rounds[0];
    expect(skeinMax.cpuSecondsPer1k).toBeGreaterThan(0);
    expect(skeinMax.peakRssMb).toBeGreaterThan(10);
    expect(byName.get('direct')!.results[0].rounds[0].cpuSecondsPer1k).toBeUndefined();
    expect(report.settings).toMatchObject({ rounds: 1 });

    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('skein');
    expect(r.stdout).toContain('| ');
    expect(r.stdout).toContain('skein');
    // stderr is not a terminal here: progress comes as lines with a percentage and an ETA.
    expect(r.stderr).toMatch(/\] +\d+% ETA \S+ round 1\/1 http1-max: skein/);
  }, 60_000);
});
