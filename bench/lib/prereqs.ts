// Which external tools a benchmark drives are installed (nginx, haproxy, wrk, h2load…), and their versions
// for the report.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Tool name → the Debian/Ubuntu package that provides it. */
export type ToolPackages = Readonly<Record<string, string>>;

// Debian installs nginx and haproxy in /usr/sbin, which is not on a non-root user's PATH.
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

function findOnPath(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return join(dir, tool);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Tools from `tools` that cannot be found (after adding the sbin directories to PATH). */
export function missingTools(tools: ToolPackages): string[] {
  const path = (process.env.PATH ?? '').split(delimiter);
  const extra = SBIN_DIRS.filter((d) => !path.includes(d));
  if (extra.length > 0) process.env.PATH = [...path, ...extra].join(delimiter);
  return Object.keys(tools).filter((t) => findOnPath(t) === undefined);
}

/** First line of `<tool> <args>` (stdout or stderr, whichever has it), for recording versions; '?' if it fails. */
export function toolVersion(tool: string, args: readonly string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim();
  return text.split('\n')[0]?.trim() || '?';
}
