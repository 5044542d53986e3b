// renderMarkdown() and writeReport(): a table per scenario with every measured target, the unmeasured targets with
// their reasons, warnings, generator lag and the published figures kept apart with their sources.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { renderMarkdown } from '../../../bench/report/render-markdown.ts';
import { PUBLISHED_FIGURES } from '../../../bench/report/published.ts';
import { writeReport } from '../../../bench/report/write.ts';
import { makeReport } from './fixture.ts';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The lines of the Markdown table that follows `## heading`. */
function tableAfter(md: string, heading: string): string[] {
  const lines = md.split('\n');
  const start = lines.indexOf(heading);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const from = lines.findIndex((l, i) => i > start && l.startsWith('| '));
  const to = lines.findIndex((l, i) => i > from && !l.startsWith('|'));
  return lines.slice(from, to);
}

describe('renderMarkdown', () => {
  const report = makeReport();
  const md = renderMarkdown(report);

  it('has one table per scenario with a row per measured target and the units in the cells', () => {
    for (const scenario of ['http1-max', 'http1-1000rps']) {
      const table = tableAfter(md, `## ${scenario}`);
      expect(table[0]).toBe(
        '| target | req/s | p50 | p90 | p99 | p99.9 | max | added p50 | added p99 | CPU s / 1k req | peak RSS MB | errors |',
      );
      expect(table.slice(2).map((l) => l.split(' | ')[0])).toEqual(['| direct', '| skein', '| nginx', '| haproxy']);
    }
    expect(md).toContain('HTTP/1.1, open loop at 1,000 req/s, 16 connections, 10 s per round, engine builtin');
    const skein = tableAfter(md, '## http1-1000rps').find((l) => l.startsWith('| skein |'))!;
    const cells = skein.split(' | ');
    expect(cells[2]).toMatch(/^\d+ µs \(\d+–\d+\)$/); // p50: median (min–max)
    expect(cells[7]).toMatch(/^\+\d+ µs \(\+\d+ to \+\d+\)$/); // added p50 vs direct
    expect(cells[9]).toMatch(/^0\.05\d \(0\.0\d\d–0\.0\d\d\)$/); // CPU s per 1k requests
    expect(cells[11]).toMatch(/^3 \(0\.0\d+%: timeout 2, status\\_5xx 1\) \|$/);
    const direct = tableAfter(md, '## http1-max').find((l) => l.startsWith('| direct |'))!;
    expect(direct.split(' | ').slice(7, 11)).toEqual(['–', '–', '–', '–']);
  });

  it('lists the targets that were not measured with their reasons, and the warnings', () => {
    expect(md).toContain('## Not measured');
    expect(md).toContain('- skein-mtls: not built yet (mTLS lands with the control plane)');
    expect(md).toContain('- istio@http://10.0.0.7:8080: http://10.0.0.7:8080 did not answer within 10 s');
    expect(md).toContain('## Warnings\n\n- http1-1000rps, skein: the generator fell behind its timetable in 1 of 3');
  });

  it('reports the generator lag of the open-loop rounds', () => {
    const lag = tableAfter(md, '## Generator lag');
    expect(lag[0]).toBe('| scenario | target | lag p50 | lag p99 | lag max | rounds with p99 lag ≥ 1 ms |');
    expect(lag.find((l) => l.startsWith('| http1-1000rps | skein |'))).toMatch(/\| 1 of 3 \|$/);
    expect(lag.find((l) => l.startsWith('| http1-1000rps | nginx |'))).toMatch(/\| none of 3 \|$/);
    expect(lag.some((l) => l.includes('http1-max'))).toBe(false);
  });

  it('keeps the published figures apart, labelled as not measured here, with their sources', () => {
    expect(md).toContain('## Published figures (published by the projects, not measured here)');
    const table = tableAfter(md, '## Published figures (published by the projects, not measured here)');
    expect(table).toHaveLength(PUBLISHED_FIGURES.length + 2);
    for (const f of PUBLISHED_FIGURES) expect(md).toContain(`](${f.url})`);
    for (const mesh of ['istio', 'linkerd', 'cilium'])
      expect(table.some((l) => l.startsWith(`| ${mesh} |`))).toBe(true);
  });
});

describe('writeReport', () => {
  it('creates the directory and writes report.json, report.md and report.html', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'skein-report-')), 'nested', 'run-1');
    dirs.push(dir);
    const report = makeReport();
    const files = writeReport(report, dir);
    expect(files).toEqual({
      json: join(dir, 'report.json'),
      md: join(dir, 'report.md'),
      html: join(dir, 'report.html'),
    });
    for (const f of Object.values(files)) expect(existsSync(f), f).toBe(true);
    expect(JSON.parse(readFileSync(files.json, 'utf8'))).toEqual(JSON.parse(JSON.stringify(report)));
    expect(readFileSync(files.md, 'utf8')).toBe(`${renderMarkdown(report)}\n`);
    expect(readFileSync(files.html, 'utf8')).toMatch(/^<!doctype html>/);
  });
});
