// Helpers for the monitoring manifests' tests: the metrics contract read from manifests/README.md's table
// (the one place it is written down), a small PromQL scanner that finds the metric and label names an
// expression uses, and a promtool runner. Not a test file itself.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ContractMetric {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly labels: readonly string[];
  /** Which process exports it: the table's `from` column. */
  readonly from: 'proxy' | 'control';
}

export const manifestPath = (rel: string): string => new URL(`../../manifests/${rel}`, import.meta.url).pathname;

/** The rows of the "Metrics reference" table: | `name` | type | `label`, `label` | from | … — what the proxy and
 *  control export. */
export function readContract(): ContractMetric[] {
  return readTable('## Metrics reference');
}

/** The rows of the "Waiting for a feeder" table: families defined in code, exported once their feeder exists. */
export function readPendingFamilies(): ContractMetric[] {
  return readTable('### Waiting for a feeder');
}

/** The metric rows of the table under `heading` in manifests/README.md (up to the next heading). */
function readTable(heading: string): ContractMetric[] {
  const rows: ContractMetric[] = [];
  let inSection = false;
  for (const line of readFileSync(manifestPath('README.md'), 'utf8').split('\n')) {
    if (line.startsWith('#')) {
      inSection = line.trim() === heading;
      continue;
    }
    if (!inSection) continue;
    const m = /^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(counter|gauge|histogram)\s*\|([^|]*)\|\s*(proxy|control)\s*\|/.exec(
      line,
    );
    if (m === null) continue;
    const labels = [...m[3].matchAll(/`([a-z_][a-z0-9_]*)`/g)].map((l) => l[1]);
    rows.push({ name: m[1], type: m[2] as ContractMetric['type'], labels, from: m[4] as ContractMetric['from'] });
  }
  if (rows.length === 0) throw new Error(`manifests/README.md: no metric table under "${heading}"`);
  return rows;
}

/** Series names a scrape of the contract produces, each with the labels it may carry. */
export function contractSeries(contract: readonly ContractMetric[]): Map<string, readonly string[]> {
  const series = new Map<string, readonly string[]>();
  for (const m of contract) {
    if (m.type !== 'histogram') {
      series.set(m.name, m.labels);
      continue;
    }
    series.set(`${m.name}_bucket`, [...m.labels, 'le']);
    series.set(`${m.name}_sum`, m.labels);
    series.set(`${m.name}_count`, m.labels);
  }
  return series;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'group_left', 'group_right']);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/**
 * The metric names, label names and grouping labels a PromQL expression uses. A scanner, not a parser
 * (promtool checks the syntax): strings, ranges and Grafana variables are dropped first, so what is left
 * are identifiers, and an identifier not followed by `(` is a metric name.
 */
export function promqlNames(expr: string): { metrics: Set<string>; labels: Set<string>; grouping: Set<string> } {
  const labels = new Set<string>();
  const grouping = new Set<string>();
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  s = s.replace(/\{([^}]*)\}/g, (_all, body: string) => {
    for (const m of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]);
    return ' ';
  });
  s = s.replace(GROUPING, (_all, _kw: string, body: string) => {
    for (const l of body
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      labels.add(l);
      grouping.add(l);
    }
    return ' ';
  });
  const metrics = new Set<string>();
  for (const m of s.matchAll(/(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = s.slice((m.index ?? 0) + m[0].length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(m[0].toLowerCase())) continue;
    metrics.add(m[0]);
  }
  return { metrics, labels, grouping };
}

/** Runs the real promtool (Debian's `prometheus` package; scripts/test.sh installs it). */
export function promtool(args: readonly string[]): { ok: boolean; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error !== undefined) throw new Error(`promtool: ${r.error.message} (apt-get install prometheus)`);
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}
