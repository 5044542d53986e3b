// `skein bench compare` on real files in a temporary directory: exit 0 without regressions, 1 with one, 2 on bad
// input (missing file, not a report, a report missing fields, bad options), the table and the JSON output.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCompare } from '../../../bench/report/compare-cli.ts';
import type { BenchReport } from '../../../bench/report/model.ts';
import { writeReport } from '../../../bench/report/write.ts';
import { makeReport } from './fixture.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'skein-compare-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function compare(argv: string[], cwd?: string) {
  let stdout = '';
  let stderr = '';
  const code = await runCompare(argv, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    cwd,
  });
  return { code, stdout, stderr };
}

/** The fixture with skein's http1-max p99 multiplied by `factor`, written as a full report directory. */
function writeVariant(name: string, factor: number): string {
  const r = makeReport();
  const report: BenchReport = {
    ...r,
    targets: r.targets.map((t) =>
      t.name !== 'skein'
        ? t
        : {
            ...t,
            results: t.results.map((x) =>
              x.scenario !== 'http1-max'
                ? x
                : {
                    ...x,
                    summary: { ...x.summary, p99Us: { ...x.summary.p99Us, median: x.summary.p99Us.median * factor } },
                  },
            ),
          },
    ),
  };
  const out = join(dir, name);
  writeReport(report, out);
  return out;
}

describe('skein bench compare', () => {
  it('exits 0 and calls everything stable when nothing moved beyond the threshold', async () => {
    const a = writeVariant('same-a', 1);
    const b = writeVariant('same-b', 1.05);
    const r = await compare(['--baseline', join(a, 'report.json'), '--current', b]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('| target | scenario | metric | baseline | current | change | verdict |');
    expect(r.stdout).toMatch(/\| skein \| http1-max \| p99 \| [\d.,]+ ms \| [\d.,]+ ms \| \+5\.0% \| stable \|/);
    expect(r.stdout).toMatch(/Result: 0 regressions, 0 improvements, \d+ stable\./);
  });

  it('exits 1 on a regression and names it', async () => {
    const a = writeVariant('reg-a', 1);
    const b = writeVariant('reg-b', 1.3);
    const r = await compare(['--baseline', a, '--current', b]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\| skein \| http1-max \| p99 \| .* \| \+30\.0% \| regression \(critical\) \|/);
    expect(r.stdout).toMatch(/^Performance regression: skein http1-max p99 \+30\.0% \(/m);
    // A higher threshold lets the same change pass.
    expect((await compare(['--baseline', a, '--current', b, '--threshold-pct', '40'])).code).toBe(0);
  });

  it('prints the comparison as JSON with --json', async () => {
    const a = writeVariant('json-a', 1);
    const b = writeVariant('json-b', 0.8);
    const r = await compare(['--baseline', a, '--current', b, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.thresholdPct).toBe(10);
    expect(out.baseline.file).toBe(join(a, 'report.json'));
    expect(out.current.createdAt).toBe('2025-06-01T10:00:00.000Z');
    expect(out.improvements).toBe(1);
    const row = out.rows.find(
      (x: { target: string; metric: string; scenario: string }) =>
        x.target === 'skein' && x.scenario === 'http1-max' && x.metric === 'p99Us',
    );
    expect(row).toMatchObject({ verdict: 'improvement', direction: 'lower-is-better' });
    expect(row.changePct).toBeCloseTo(-20, 6);
  });

  it('compares against the newest ./bench-results report when --current is not given', async () => {
    const cwd = join(dir, 'project');
    const older = writeVariant('project/bench-results/2025-01-01', 1.5);
    const newer = writeVariant('project/bench-results/2025-02-01', 1);
    utimesSync(join(older, 'report.json'), new Date(1_000_000), new Date(1_000_000));
    const r = await compare(['--baseline', newer], cwd);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain(`Comparing ${join(newer, 'report.json')} with the baseline`);
    const none = await compare(['--baseline', newer], join(dir, 'elsewhere'));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no --current given and no report found under');
  });

  it('exits 2 with a clear message on bad input', async () => {
    const good = writeVariant('good', 1);
    const missing = await compare(['--baseline', join(dir, 'nope.json'), '--current', good]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${join(dir, 'nope.json')}: cannot read (no such file)`);

    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ schema: 'k6-summary/1', metrics: {} }));
    const wrong = await compare(['--baseline', other, '--current', good]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('not a skein bench report (schema is "k6-summary/1", expected "skein-bench/1")');

    const broken = makeReport() as unknown as { targets: { results?: unknown }[] };
    delete broken.targets[1].results;
    mkdirSync(join(dir, 'broken'));
    writeFileSync(join(dir, 'broken', 'report.json'), JSON.stringify(broken));
    const invalid = await compare(['--baseline', good, '--current', join(dir, 'broken')]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/invalid report:\n {2}targets\[1\]\.results: /);

    const notJson = join(dir, 'garbage.json');
    writeFileSync(notJson, '{"schema": ');
    expect((await compare(['--baseline', notJson, '--current', good])).stderr).toContain('not JSON');

    const noBaseline = await compare(['--current', good]);
    expect(noBaseline.code).toBe(2);
    expect(noBaseline.stderr).toContain('--baseline FILE is required');
    expect(noBaseline.stderr).toContain('skein bench compare --help');
    expect((await compare(['--baseline', good, '--current', good, '--threshold-pct', 'ten'])).code).toBe(2);
    expect((await compare(['--baseline', good, '--frobnicate'])).code).toBe(2);
  });

  it('prints its help and exits 0', async () => {
    const r = await compare(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: skein bench compare --baseline FILE/);
    expect(r.stdout).toContain('Exit status: 0 no regression, 1 at least one regression, 2 bad input');
  });
});
