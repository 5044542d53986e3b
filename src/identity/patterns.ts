// Wildcard patterns of authorization policies (SPIFFE ids, paths), compiled once into one test per list:
// `*` matches any run of characters. Exact values go in a set, `abc*` and `*abc` become startsWith/endsWith
// checks, anything else a list of literal parts found in order: no regular expression, nothing allocated per test.

export type PatternTest = (value: string) => boolean;

// Compared by hand, from the pattern's last character back: patterns of one mesh share long beginnings
// (spiffe://cluster.local/ns/...), so a miss shows at once, and no builtin call is paid per pattern.
function startsWith(s: string, prefix: string): boolean {
  if (s.length < prefix.length) return false;
  for (let i = prefix.length - 1; i >= 0; i--) if (s.charCodeAt(i) !== prefix.charCodeAt(i)) return false;
  return true;
}

function endsWith(s: string, suffix: string): boolean {
  const at = s.length - suffix.length;
  if (at < 0) return false;
  for (let i = suffix.length - 1; i >= 0; i--) if (s.charCodeAt(at + i) !== suffix.charCodeAt(i)) return false;
  return true;
}

/** Whether `s` matches the glob split on `*` into `parts` (at least two: the text before the first `*`, …). */
export function globMatch(s: string, parts: readonly string[]): boolean {
  const first = parts[0];
  const last = parts[parts.length - 1];
  const end = s.length - last.length;
  if (end < first.length || !startsWith(s, first) || !endsWith(s, last)) return false;
  let pos = first.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const p = parts[i];
    const at = s.indexOf(p, pos);
    if (at < 0 || at + p.length > end) return false;
    pos = at + p.length;
  }
  return true;
}

/** One test for a list of patterns: true when `value` matches any of them. */
export function compilePatterns(patterns: readonly string[]): PatternTest {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  const globs: string[][] = [];
  for (const p of patterns) {
    const parts = p.split('*');
    if (parts.length === 1) exact.add(p);
    else if (parts.every((x) => x === '')) return () => true;
    else if (parts.length === 2 && parts[1] === '') prefixes.push(parts[0]);
    else if (parts.length === 2 && parts[0] === '') suffixes.push(parts[1]);
    else globs.push(parts.filter((x, i) => x !== '' || i === 0 || i === parts.length - 1));
  }
  if (prefixes.length === 0 && suffixes.length === 0 && globs.length === 0) return (v) => exact.has(v);
  return (v) => {
    if (exact.has(v)) return true;
    for (let i = 0; i < prefixes.length; i++) if (startsWith(v, prefixes[i])) return true;
    for (let i = 0; i < suffixes.length; i++) if (endsWith(v, suffixes[i])) return true;
    for (let i = 0; i < globs.length; i++) if (globMatch(v, globs[i])) return true;
    return false;
  };
}
