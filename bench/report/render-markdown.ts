// report.md, and what `skein bench` prints at the end of a run: one table per scenario, the targets that were not
// measured and why, the run's own warnings, the generator lag, and the projects' published figures kept apart.
import { renderTable } from '../lib/markdown.ts';
import type { BenchReport } from './model.ts';
import {
  ADDED_LATENCY_NOTE,
  describeMachine,
  describeScenario,
  describeSettings,
  lagTable,
  PUBLISHED_HEADERS,
  scenarioTable,
  unavailableTargets,
} from './tables.ts';

/** Markdown inline text: a cell or a list item never breaks the document around it. */
const inline = (s: string) => s.replaceAll('\n', ' ').replace(/([*_`[\]<>])/g, '\\$1');

export function renderMarkdown(report: BenchReport): string {
  const out: string[] = [`# skein bench results`, ''];
  out.push(`- when: ${report.createdAt}`);
  out.push(`- command: \`${report.command.replaceAll('`', "'")}\``);
  out.push(`- machine: ${inline(describeMachine(report.machine))}`);
  const versions = Object.entries(report.versions);
  if (versions.length > 0) out.push(`- versions: ${inline(versions.map(([k, v]) => `${k} ${v}`).join(', '))}`);
  out.push(`- settings: ${inline(describeSettings(report.settings))}`, '');

  for (const scenario of report.scenarios) {
    out.push(`## ${scenario.id}`, '', inline(describeScenario(scenario)), '');
    const table = scenarioTable(report, scenario.id);
    if (table.rows.length === 0) out.push('No target produced figures for this scenario.', '');
    else
      out.push(
        renderTable(
          table.headers,
          table.rows.map((r) => r.map(inline)),
        ),
        '',
      );
  }
  if (report.scenarios.length > 0) out.push(ADDED_LATENCY_NOTE, '');

  const unavailable = unavailableTargets(report);
  out.push('## Not measured', '');
  if (unavailable.length === 0) out.push('Every target was measured.', '');
  else out.push(...unavailable.map((u) => `- ${inline(u.name)}: ${inline(u.reason)}`), '');

  out.push('## Warnings', '');
  if (report.warnings.length === 0) out.push('None: the run passed its own checks.', '');
  else out.push(...report.warnings.map((w) => `- ${inline(w)}`), '');

  out.push('## Generator lag', '');
  const lag = lagTable(report);
  if (lag.rows.length === 0) out.push('Not reported (no open-loop rounds, or the engine cannot measure it).', '');
  else
    out.push(
      'How far the load generator fell behind its own timetable in open-loop rounds; p99 lag of 1 ms or more means ' +
        "that round's latency describes the generator, not the target.",
      '',
      renderTable(lag.headers, lag.rows),
      '',
    );

  out.push('## Published figures (published by the projects, not measured here)', '');
  if (report.published.length === 0) out.push('None included.', '');
  else
    out.push(
      'What each project reports about its own overhead, on its own hardware and harness. They are context, not a ' +
        'comparison with the tables above.',
      '',
      renderTable(
        PUBLISHED_HEADERS,
        report.published.map((f) => [f.mesh, f.metric, f.value, f.conditions, `[${f.source}](${f.url})`]),
      ),
      '',
    );
  return out.join('\n');
}
