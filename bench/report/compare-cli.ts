// `skein bench compare`: reads two report.json files, prints baseline, current, change and verdict per target ×
// scenario × metric (a Markdown table, or JSON with --json) and exits 1 on any regression, 0 otherwise, 2 when the
// input is unusable. The judgement itself is compare.ts.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatMicros, formatNumber, formatSigned, renderTable } from '../lib/markdown.ts';
import { type Comparison, type ComparisonRow, compareReports, DEFAULT_THRESHOLD_PCT } from './compare.ts';
import { readReport, ReportInputError } from './read.ts';

export const COMPARE_HELP = `Usage: skein bench compare --baseline FILE [--current FILE|DIR] [--threshold-pct ${DEFAULT_THRESHOLD_PCT}] [--json]

Compare two \`skein bench\` reports: for every target × scenario × metric both have, the baseline and current
medians, the change in percent and a verdict. Throughput: higher is better; latency, added latency, CPU per
request, peak RSS and error rate: lower is better. Worse by more than the threshold is a regression, better by more
an improvement, within ±threshold stable; a regression beyond twice the threshold is marked critical. Metrics,
scenarios and targets present on one side only are listed as skipped, not failures.

Options:
  --baseline FILE|DIR      The reference report (report.json, or the directory holding it).
  --current FILE|DIR       The report to judge (default: the newest ./bench-results/*/report.json).
  --threshold-pct N        Percent change that counts (default ${DEFAULT_THRESHOLD_PCT}).
  --json                   Print the comparison as JSON instead of a table.
  -h, --help               Show this help.

Exit status: 0 no regression, 1 at least one regression, 2 bad input (missing file, not a report, bad option).`;

export interface CompareIo {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  /** Where ./bench-results is looked for when --current is not given. */
  readonly cwd?: string;
}

class UsageError extends Error {}

/** The newest report under DIR/bench-results (what `skein bench` writes by default). */
function newestReport(cwd: string): string {
  const root = join(cwd, 'bench-results');
  let newest: { file: string; mtimeMs: number } | undefined;
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch {
    // No results directory: reported below.
  }
  for (const name of entries) {
    const file = join(root, name, 'report.json');
    try {
      const { mtimeMs } = statSync(file);
      if (newest === undefined || mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
    } catch {
      // A directory without a report (a run that failed early) is not a candidate.
    }
  }
  if (newest === undefined) throw new UsageError(`no --current given and no report found under ${root}`);
  return newest.file;
}

function formatValue(row: Pick<ComparisonRow, 'unit'>, v: number): string {
  switch (row.unit) {
    case 'req/s':
      return `${formatNumber(v)}/s`;
    case 'µs':
      return formatMicros(v);
    case 's/1k':
      return `${formatNumber(v, 3)} s`;
    case 'MB':
      return `${formatNumber(v, 1)} MB`;
    case 'ratio':
      return `${formatNumber(v * 100, 2)}%`;
  }
}

const formatChange = (row: ComparisonRow) =>
  row.changePct === null ? 'new (was 0)' : `${formatSigned(row.changePct, 1)}%`;
const formatVerdict = (row: ComparisonRow) => (row.critical ? 'regression (critical)' : row.verdict);

export function renderComparison(c: Comparison, baselineFile: string, currentFile: string): string {
  const out = [
    `Comparing ${currentFile} with the baseline ${baselineFile}: medians, threshold ±${c.thresholdPct}%.`,
    '',
  ];
  if (c.rows.length === 0) out.push('Nothing to compare: the reports share no target × scenario with figures.');
  else
    out.push(
      renderTable(
        ['target', 'scenario', 'metric', 'baseline', 'current', 'change', 'verdict'],
        c.rows.map((r) => [
          r.target,
          r.scenario,
          r.label,
          formatValue(r, r.baseline),
          formatValue(r, r.current),
          formatChange(r),
          formatVerdict(r),
        ]),
      ),
    );
  if (c.skipped.length > 0)
    out.push('', 'Skipped (present on one side only; not failures):', ...c.skipped.map((s) => `- ${s}`));
  const critical = c.rows.filter((r) => r.critical).length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  out.push(
    '',
    `Result: ${plural(c.regressions, 'regression')}${critical > 0 ? ` (${critical} critical)` : ''}, ` +
      `${plural(c.improvements, 'improvement')}, ${c.stable} stable.`,
  );
  for (const r of c.rows.filter((x) => x.verdict === 'regression'))
    out.push(
      `Performance regression: ${r.target} ${r.scenario} ${r.label} ${formatChange(r)} ` +
        `(${formatValue(r, r.baseline)} → ${formatValue(r, r.current)})`,
    );
  return out.join('\n');
}

function parseCompareArgs(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        baseline: { type: 'string' },
        current: { type: 'string' },
        'threshold-pct': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help' as const;
  if (values.baseline === undefined) throw new UsageError('--baseline FILE is required');
  const raw = values['threshold-pct'];
  const thresholdPct = raw === undefined ? DEFAULT_THRESHOLD_PCT : Number(raw);
  if (!Number.isFinite(thresholdPct) || thresholdPct <= 0)
    throw new UsageError(`--threshold-pct must be a positive number, got '${raw}'`);
  return { baseline: values.baseline, current: values.current, thresholdPct, json: values.json };
}

/** `skein bench compare …`; resolves to the exit status. */
export async function runCompare(
  argv: string[],
  io: CompareIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const fail = (message: string, usage: boolean) => {
    io.stderr.write(
      `skein bench compare: ${message}\n${usage ? '\nRun `skein bench compare --help` for usage.\n' : ''}`,
    );
    return 2;
  };
  try {
    const opts = parseCompareArgs(argv);
    if (opts === 'help') {
      io.stdout.write(`${COMPARE_HELP}\n`);
      return 0;
    }
    const baseline = readReport(opts.baseline);
    const current = readReport(opts.current ?? newestReport(io.cwd ?? process.cwd()));
    const comparison = compareReports(baseline.report, current.report, { thresholdPct: opts.thresholdPct });
    if (opts.json) {
      const side = (r: typeof baseline) => ({ file: r.file, createdAt: r.report.createdAt });
      io.stdout.write(
        `${JSON.stringify({ baseline: side(baseline), current: side(current), ...comparison }, null, 2)}\n`,
      );
    } else {
      io.stdout.write(`${renderComparison(comparison, baseline.file, current.file)}\n`);
    }
    return comparison.regressions > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, true);
    if (err instanceof ReportInputError) return fail(err.message, false);
    throw err;
  }
}
