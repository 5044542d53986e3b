// The Cookie header and the query string read as name → value maps, for route conditions on cookies and query
// parameters. Parsed lazily: only when such a condition runs, and at most once per request (the matcher caches
// the map on the request, RoutableRequest.parsedCookies / parsedQuery), so routes without them cost nothing.

const EMPTY: ReadonlyMap<string, string> = new Map();

/**
 * "a=1; b=x=y" → {a: 1, b: "x=y"}. A value may hold '=' (only the first one splits); surrounding spaces are
 * trimmed and one pair of double quotes is taken off (RFC 6265's quoted form); values are not decoded (cookies
 * are opaque). A pair without '=' is skipped. A name sent twice keeps its first value, as browsers send the
 * most specific cookie first.
 */
export function parseCookies(header: string | undefined): ReadonlyMap<string, string> {
  if (header === undefined || header === '') return EMPTY;
  const out = new Map<string, string>();
  let start = 0;
  // The next '=' is looked for again only once passed: pairs without one can't make the scan quadratic.
  let eq = -1;
  while (start <= header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    if (eq !== header.length && eq < start) {
      eq = header.indexOf('=', start);
      if (eq < 0) eq = header.length;
    }
    if (eq > start && eq < end) {
      const name = header.slice(start, eq).trim();
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34)
        value = value.slice(1, -1);
      if (name !== '' && !out.has(name)) out.set(name, value);
    }
    start = end + 1;
  }
  return out;
}

/** Percent-decoding as forms do ('+' is a space); a malformed escape leaves the text as it came. */
function decodeComponent(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  const spaced = s.replaceAll('+', ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}

/**
 * "a=1&b=caf%C3%A9&flag" → {a: "1", b: "café", flag: ""}: names and values percent-decoded ('+' as space). A
 * parameter given more than once keeps its first value (as Envoy's query parameter matcher does); empty pieces
 * ("a=1&&b=2") are skipped.
 */
export function parseQuery(query: string): ReadonlyMap<string, string> {
  if (query === '') return EMPTY;
  const out = new Map<string, string>();
  let start = 0;
  let eq = -1;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    if (eq !== query.length && eq < start) {
      eq = query.indexOf('=', start);
      if (eq < 0) eq = query.length;
    }
    if (end > start) {
      const hasValue = eq < end;
      const name = decodeComponent(query.slice(start, hasValue ? eq : end));
      if (name !== '' && !out.has(name)) out.set(name, hasValue ? decodeComponent(query.slice(eq + 1, end)) : '');
    }
    start = end + 1;
  }
  return out;
}
