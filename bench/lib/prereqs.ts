// Makes sure the external tools a benchmark drives are installed: says which apt packages are missing,
// or, when running as root on a Debian-like system, installs them (apt-get update once, then apt-get install -y).
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

/**
 * Returns when every tool is present. Missing ones are installed with apt-get when we are root and apt-get exists;
 * otherwise throws with the exact command to run.
 */
export function ensureTools(tools: ToolPackages, log: (line: string) => void): void {
  let missing = missingTools(tools);
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => tools[t]))];
  const canInstall = process.getuid?.() === 0 && findOnPath('apt-get') !== undefined;
  if (canInstall) {
    log(`missing ${missing.join(', ')}: running apt-get update, then apt-get install -y ${packages.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // Bounded like every other step: a stuck mirror must not hang the benchmark forever.
    const opts = { stdio: 'inherit', env, timeout: 600_000 } as const;
    const update = spawnSync('apt-get', ['update'], opts);
    if (update.status !== 0) throw new Error('apt-get update failed');
    const install = spawnSync('apt-get', ['install', '-y', ...packages], opts);
    if (install.status !== 0) throw new Error(`apt-get install -y ${packages.join(' ')} failed`);
    missing = missingTools(tools);
    if (missing.length === 0) return;
  }
  throw new Error(
    `missing tools: ${missing.join(', ')}. Install them with:\n  sudo apt-get install -y ${packages.join(' ')}`,
  );
}

/** First line of `<tool> <args>` (stdout or stderr, whichever has it), for recording versions; '?' if it fails. */
export function toolVersion(tool: string, args: readonly string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim();
  return text.split('\n')[0]?.trim() || '?';
}
