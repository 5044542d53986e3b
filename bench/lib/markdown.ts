// Markdown rendering for benchmark reports: tables and "median (min–max)" cells with units.
// Formatting only; which numbers go in a report is the caller's business.
import type { Spread } from './stats.ts';

const DASH = '–';

/** A GitHub-flavoured Markdown table; `|` inside cells is escaped so a cell never splits a row. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const esc = (cell: string) => cell.replaceAll('|', '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(esc).join(' | ')} |`;
  return [line(headers), `|${headers.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}

/** Plain number with thousands separators and a fixed number of decimals; "–" for NaN. */
export function formatNumber(x: number, decimals = 0): string {
  if (!Number.isFinite(x)) return DASH;
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** A signed number ("+12", "−3"), for differences against a reference. */
export function formatSigned(x: number, decimals = 0): string {
  if (!Number.isFinite(x)) return DASH;
  const body = formatNumber(Math.abs(x), decimals);
  return x < 0 ? `−${body}` : `+${body}`;
}

/**
 * Time given in µs, shown in µs below 1 ms and in ms (2 decimals) above.
 * `unitOf` picks the unit from a different value so a min–max range shares its median's unit.
 */
export function formatMicros(us: number, opts: { signed?: boolean; withUnit?: boolean; unitOf?: number } = {}): string {
  if (!Number.isFinite(us)) return DASH;
  const { signed = false, withUnit = true, unitOf = us } = opts;
  const inMs = Math.abs(unitOf) >= 1000;
  const value = inMs ? us / 1000 : us;
  const decimals = inMs ? 2 : 0;
  const text = signed ? formatSigned(value, decimals) : formatNumber(value, decimals);
  return withUnit ? `${text} ${inMs ? 'ms' : 'µs'}` : text;
}

/** "median (min–max)" for a number; just the median when there was one round. */
export function formatSpread(s: Spread, decimals = 0): string {
  if (s.n === 0) return DASH;
  const med = formatNumber(s.median, decimals);
  return s.n > 1 ? `${med} (${formatNumber(s.min, decimals)}–${formatNumber(s.max, decimals)})` : med;
}

/** "median (min–max)" for a time in µs, the range in the median's unit. */
export function formatMicrosSpread(s: Spread, signed = false): string {
  if (s.n === 0) return DASH;
  const med = formatMicros(s.median, { signed });
  if (s.n === 1) return med;
  const range = (x: number) => formatMicros(x, { signed, withUnit: false, unitOf: s.median });
  // "+80–+90" reads badly, so signed ranges are written "+80 to +90".
  return `${med} (${range(s.min)}${signed ? ' to ' : '–'}${range(s.max)})`;
}
