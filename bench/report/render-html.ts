// report.html: one self-contained file a person opens in a browser. The tables are rendered here (readable without
// JavaScript); the charts are drawn in the page as inline SVG by a small script from the report JSON embedded in the
// same file. No external scripts, fonts, styles or images, and a Content-Security-Policy that forbids loading any.
import type { BenchReport } from './model.ts';
import { CHART_SCRIPT } from './html-script.ts';
import {
  ADDED_LATENCY_NOTE,
  describeMachine,
  describeScenario,
  describeSettings,
  lagTable,
  PUBLISHED_HEADERS,
  scenarioTable,
  type TextTable,
  unavailableTargets,
} from './tables.ts';

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]);

/** JSON inside <script type="application/json">: `<` escaped so no string in the report can close the element. */
export function embedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** "median (min–max)" with the range on a line of its own under the median, so the wide tables stay narrow. */
function rangeBelow(cell: string): string {
  const m = /^(.*?) (\(.*\))$/.exec(cell);
  return m === null ? esc(cell) : `${esc(m[1])}<span class="range">${esc(m[2])}</span>`;
}

interface TableOptions {
  readonly id?: string;
  /** The last column is HTML already (links). */
  readonly rawLastColumn?: boolean;
  readonly splitRanges?: boolean;
}

function htmlTable(t: TextTable, caption: string, opts: TableOptions = {}): string {
  const head = t.headers.map((h) => `<th scope="col">${esc(h)}</th>`).join('');
  const body = t.rows
    .map((row) => {
      const cells = row.map((c, i) => {
        const html =
          opts.rawLastColumn === true && i === row.length - 1
            ? c
            : opts.splitRanges === true && i > 0
              ? rangeBelow(c)
              : esc(c);
        return i === 0 ? `<th scope="row">${html}</th>` : `<td>${html}</td>`;
      });
      return `<tr>${cells.join('')}</tr>`;
    })
    .join('\n');
  const id = opts.id === undefined ? '' : ` id="${esc(opts.id)}"`;
  return `<table${id}><caption>${esc(caption)}</caption><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

function chartSlot(kind: string, scenario: string, label: string): string {
  return `<figure class="chart" data-chart="${kind}" data-scenario="${esc(scenario)}"><figcaption>${esc(label)}</figcaption></figure>`;
}

function scenarioSection(report: BenchReport, index: number): string {
  const s = report.scenarios[index];
  const table = scenarioTable(report, s.id);
  const body =
    table.rows.length === 0
      ? '<p>No target produced figures for this scenario.</p>'
      : [
          '<div class="charts">',
          chartSlot('latency', s.id, `Latency by percentile, ${s.id}`),
          chartSlot('throughput', s.id, `Throughput, ${s.id}`),
          chartSlot('cpu', s.id, `Proxy CPU per request, ${s.id}`),
          '</div>',
          `<div class="scroll">${htmlTable(table, `${s.id}: medians (min–max) over rounds`, { id: `table-${s.id}`, splitRanges: true })}</div>`,
        ].join('\n');
  return `<section id="scenario-${esc(s.id)}" class="scenario"><h2>${esc(s.id)}</h2><p>${esc(describeScenario(s))}</p>\n${body}\n</section>`;
}

const STYLE = `
:root { color-scheme: light; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg-alt: #f6f8fa; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0 auto;
  max-width: 1180px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 .3em; } h2 { margin-top: 2em; border-bottom: 1px solid var(--line); }
.meta { color: var(--muted); margin: 0; padding-left: 1.2em; } code { font-size: .9em; }
nav ul { display: flex; flex-wrap: wrap; gap: .4em 1.2em; padding: 0; list-style: none; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
@media (max-width: 760px) { .charts { grid-template-columns: 1fr; } }
.chart { margin: 0; padding: 8px; border: 1px solid var(--line); border-radius: 6px; min-width: 0; }
.chart:first-child { grid-column: 1 / -1; }
figcaption { font-weight: 600; margin-bottom: 4px; } svg { display: block; width: 100%; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); } .axis line, .axis path { stroke: #8c959f; }
.grid line { stroke: #eaeef2; } .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; list-style: none; padding: 0;
  margin: 6px 0 0; font-size: 13px; } .swatch { display: inline-block; width: 22px; height: 0; border-top: 3px solid;
  vertical-align: middle; margin-right: 5px; } .note { color: var(--muted); font-size: 13px; }
.scroll { overflow-x: auto; } table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; } th, td { border: 1px solid var(--line);
  padding: 4px 8px; text-align: right; white-space: nowrap; } th[scope=row], thead th { text-align: left;
  background: var(--bg-alt); } .wrap td, .wrap th { white-space: normal; text-align: left; }
.range { display: block; color: var(--muted); font-size: 11px; }
#render-status { padding: 8px 12px; border: 1px solid #cf222e; color: #82071e; background: #ffebe9; }
`;

export function renderHtml(report: BenchReport): string {
  const title = `skein bench results, ${report.createdAt}`;
  const nav = report.scenarios
    .map((s) => `<li><a href="#scenario-${esc(s.id)}">${esc(s.id)}</a></li>`)
    .concat(
      ['not-measured', 'warnings', 'generator-lag', 'published'].map(
        (id) => `<li><a href="#${id}">${id.replace('-', ' ')}</a></li>`,
      ),
    )
    .join('');
  const versions = Object.entries(report.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const unavailable = unavailableTargets(report);
  const lag = lagTable(report);
  const published: TextTable = {
    headers: PUBLISHED_HEADERS,
    rows: report.published.map((f) => [
      f.mesh,
      f.metric,
      f.value,
      f.conditions,
      `<a href="${esc(f.url)}" rel="noreferrer">${esc(f.source)}</a>`,
    ]),
  };
  return `<!doctype html>
<html lang="en" data-render="pending">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>skein bench results</h1>
<ul class="meta">
<li>when: ${esc(report.createdAt)}</li>
<li>command: <code>${esc(report.command)}</code></li>
<li>machine: ${esc(describeMachine(report.machine))}</li>
${versions === '' ? '' : `<li>versions: ${esc(versions)}</li>`}
<li>settings: ${esc(describeSettings(report.settings))}</li>
</ul>
<nav aria-label="sections"><ul>${nav}</ul></nav>
<p id="render-status" role="alert" hidden></p>
<noscript><p>The charts are drawn by JavaScript; every number is also in the tables.</p></noscript>
</header>
<main>
${report.scenarios.map((_, i) => scenarioSection(report, i)).join('\n')}
<p class="note">${esc(ADDED_LATENCY_NOTE)} Charts: each percentile curve is one round's, the median round by p99 (the lower middle one for an even count); bars are medians with min–max whiskers.</p>
<section id="not-measured"><h2>Not measured</h2>
${unavailable.length === 0 ? '<p>Every target was measured.</p>' : `<ul>${unavailable.map((u) => `<li><strong>${esc(u.name)}</strong>: ${esc(u.reason)}</li>`).join('')}</ul>`}
</section>
<section id="warnings"><h2>Warnings</h2>
${report.warnings.length === 0 ? '<p>None: the run passed its own checks.</p>' : `<ul>${report.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>`}
</section>
<section id="generator-lag"><h2>Generator lag</h2>
${lag.rows.length === 0 ? '<p>Not reported (no open-loop rounds, or the engine cannot measure it).</p>' : `<p>How far the load generator fell behind its own timetable in open-loop rounds; p99 lag of 1 ms or more means that round's latency describes the generator, not the target.</p><div class="scroll">${htmlTable(lag, 'Generator lag, median (min–max) over rounds', { id: 'table-lag', splitRanges: true })}</div>`}
</section>
<section id="published"><h2>Published figures: published by the projects, not measured here</h2>
<p>What each project reports about its own overhead, on its own hardware and harness: context for the tables above, not a comparison with them.</p>
${published.rows.length === 0 ? '<p>None included.</p>' : `<div class="scroll wrap">${htmlTable(published, 'Published by the projects, not measured here', { id: 'table-published', rawLastColumn: true })}</div>`}
</section>
</main>
<footer><p class="note">The full report (report.json) is embedded in this page as <code>script#report-data</code>.</p></footer>
<script type="application/json" id="report-data">${embedJson(report)}</script>
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}
