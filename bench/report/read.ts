// Reads a report.json back (for `skein bench compare`) and checks it is one: the schema tag and the fields the
// comparison reads, each error with its field path. The types stay those of model.ts; this only guards the edge.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { formatIssues } from '../../src/config/load.ts';
import { type BenchReport, REPORT_SCHEMA } from './model.ts';

export class ReportInputError extends Error {
  readonly code = 'SKEIN_BENCH_REPORT_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'ReportInputError';
  }
}

// JSON has no NaN: a metric no round produced is written as null.
const value = z.number().nullable();
const spread = z.looseObject({ median: value, min: value, max: value, n: z.number() });
const summary = z.looseObject({
  throughputPerS: spread,
  p50Us: spread,
  p90Us: spread,
  p99Us: spread,
  p999Us: spread,
  maxUs: spread,
  addedP50Us: spread.optional(),
  addedP99Us: spread.optional(),
  cpuSecondsPer1k: spread.optional(),
  peakRssMb: spread.optional(),
  errors: z.record(z.string(), z.number()),
  errorRate: value,
});
const reportShape = z.looseObject({
  schema: z.literal(REPORT_SCHEMA),
  createdAt: z.string(),
  targets: z.array(
    z.looseObject({
      name: z.string(),
      available: z.boolean(),
      unavailableReason: z.string().optional(),
      results: z.array(z.looseObject({ scenario: z.string(), summary })),
    }),
  ),
});

/** A directory means its report.json (what `skein bench --out DIR` writes). */
export function reportFile(pathOrDir: string): string {
  try {
    return statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'report.json') : pathOrDir;
  } catch {
    return pathOrDir;
  }
}

export function parseReport(raw: unknown, source: string): BenchReport {
  const schema = (raw as { schema?: unknown } | null)?.schema;
  if (typeof raw !== 'object' || raw === null || schema !== REPORT_SCHEMA)
    throw new ReportInputError(
      `${source}: not a skein bench report (schema is ${JSON.stringify(schema ?? null)}, expected "${REPORT_SCHEMA}")`,
    );
  const result = reportShape.safeParse(raw);
  if (!result.success) {
    const problems = formatIssues(result.error.issues);
    const more = problems.length > 5 ? `\n  … and ${problems.length - 5} more` : '';
    throw new ReportInputError(`${source}: invalid report:\n  ${problems.slice(0, 5).join('\n  ')}${more}`);
  }
  // Validated as far as anything reads it; the rest passes through as written.
  return raw as BenchReport;
}

/** Reads and checks a report; `pathOrDir` may be report.json or the directory holding it. */
export function readReport(pathOrDir: string): { readonly report: BenchReport; readonly file: string } {
  const file = reportFile(pathOrDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ReportInputError(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : String(code ?? err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ReportInputError(`${file}: not JSON (${(err as Error).message})`);
  }
  return { report: parseReport(raw, file), file };
}
