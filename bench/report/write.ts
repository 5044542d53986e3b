// Writes a run's three report files side by side: report.json (the data, what `skein bench compare` reads),
// report.md (tables for a terminal, a PR comment or a CI summary) and report.html (charts and tables in a browser).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchReport } from './model.ts';
import { renderHtml } from './render-html.ts';
import { renderMarkdown } from './render-markdown.ts';

export interface ReportFiles {
  readonly json: string;
  readonly md: string;
  readonly html: string;
}

/** Creates `dir` when missing and writes the three files into it; returns their paths. */
export function writeReport(report: BenchReport, dir: string): ReportFiles {
  mkdirSync(dir, { recursive: true });
  const files: ReportFiles = {
    json: join(dir, 'report.json'),
    md: join(dir, 'report.md'),
    html: join(dir, 'report.html'),
  };
  // JSON.stringify writes NaN (a metric no round produced) as null; read.ts reads null back as "absent".
  writeFileSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(files.md, `${renderMarkdown(report)}\n`);
  writeFileSync(files.html, renderHtml(report));
  return files;
}
