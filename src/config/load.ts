// Reads a YAML or JSON config file and validates it against the schema. Every error names the field path
// and the reason (`listeners[0].routes[2].match.headers[0].regex: invalid regular expression`), so a bad file
// is rejected whole and the caller keeps serving its last good config.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { resolveConfigPaths } from './paths.ts';
import { Config } from './schema.ts';
import { checkTlsFiles } from './tls-files.ts';

export class ConfigError extends Error {
  readonly code = 'SKEIN_CONFIG_INVALID';
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source}: invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `listeners[0].routes[2].match` from zod's path array. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
}

/** Validate an already-parsed object. Throws ConfigError. */
export function parseConfig(raw: unknown, source = 'config'): Config {
  const result = Config.safeParse(raw);
  if (!result.success) throw new ConfigError(source, formatIssues(result.error.issues));
  return result.data;
}

/** Parse text as YAML (a superset of JSON) and validate it. */
export function parseConfigText(text: string, source = 'config'): Config {
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new ConfigError(source, [`(syntax): ${(err as Error).message}`]);
  }
  return parseConfig(raw, source);
}

/**
 * Read, parse and validate a config file: relative paths in it become paths relative to the file's directory,
 * and the files it names for TLS are checked (readable, PEM, key matching certificate) as a start would need.
 */
export function loadConfigFile(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`(file): ${(err as Error).message}`]);
  }
  const config = resolveConfigPaths(parseConfigText(text, path), dirname(resolve(path)));
  const problems = checkTlsFiles(config);
  if (problems.length > 0) throw new ConfigError(path, problems);
  return config;
}
