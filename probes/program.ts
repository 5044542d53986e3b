// Builds the one bpftrace program a probe run loads: the chosen scripts from probes/scripts/, with their
// PID_FILTER placeholder replaced by a predicate on the given PIDs and one END block that clears the
// scripts' internal maps (named @_*) so only figures are printed. bpftrace allows one BEGIN/END per program,
// so the scripts carry none and are concatenated; BEGIN prints READY_MARKER when every probe is live.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The scripts, in the order they are concatenated (tcp-lifecycle first: others read its @_tcp_owner). */
export const SCRIPT_NAMES = [
  'tcp-lifecycle',
  'socket-io',
  'oncpu',
  'tcp-retransmits',
  'tcp-rtt',
  'tcp-existing',
] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** Scripts whose tracepoints may be absent: the run goes on without them and says so. */
export const OPTIONAL_SCRIPTS: ReadonlySet<ScriptName> = new Set(['tcp-retransmits', 'tcp-rtt', 'tcp-existing']);

/** Scripts that need another script's maps. */
const DEPENDS_ON: Partial<Record<ScriptName, ScriptName>> = {
  'tcp-retransmits': 'tcp-lifecycle',
  'tcp-rtt': 'tcp-lifecycle',
  'tcp-existing': 'tcp-lifecycle',
};

/** Printed by the program's BEGIN block: the probes are live from this line on. */
export const READY_MARKER = 'skein-probes-ready';

export interface Script {
  name: ScriptName;
  source: string;
}

/** probes/scripts/ whether this runs from the sources (probes/) or from the build (dist/probes/). */
const SCRIPTS_CANDIDATES = [new URL('./scripts/', import.meta.url), new URL('../../probes/scripts/', import.meta.url)];
const SCRIPTS_DIR = SCRIPTS_CANDIDATES.find((u) => existsSync(u));

/** Where a script is looked for, as a path for messages (the first candidate when none exists). */
export function scriptPath(name: ScriptName): string {
  return fileURLToPath(new URL(`${name}.bt`, SCRIPTS_DIR ?? SCRIPTS_CANDIDATES[SCRIPTS_CANDIDATES.length - 1]));
}

/** False when an install left the scripts out (an image that copies dist/ only): preflight says so. */
export function hasScript(name: ScriptName): boolean {
  return SCRIPTS_DIR !== undefined && existsSync(new URL(`${name}.bt`, SCRIPTS_DIR));
}

export function loadScript(name: ScriptName): Script {
  if (!hasScript(name)) throw new Error(`probe script ${scriptPath(name)} is missing`);
  return { name, source: readFileSync(new URL(`${name}.bt`, SCRIPTS_DIR), 'utf8') };
}

/** `tracepoint:cat:name` attach points a script uses, as `cat/name` (the layout under tracefs events/). */
export function tracepointsOf(source: string): string[] {
  const found = new Set<string>();
  // A probe may list several attach points: `tracepoint:a:b, tracepoint:c:d /filter/ {`.
  const code = source.replace(/\/\/.*$/gm, '');
  for (const m of code.matchAll(/(?:^|,\s*)tracepoint:(\w+):(\w+)/gm)) found.add(`${m[1]}/${m[2]}`);
  return [...found];
}

/** Whether a script reads kernel structures (`curtask->…`, casts to `struct …`): bpftrace needs the kernel's BTF. */
export function usesKernelTypes(source: string): boolean {
  return /curtask->|\(struct \w+ \*\)/.test(source.replace(/\/\/.*$/gm, ''));
}

/** `(pid == 1 || pid == 2)`; bpftrace's `pid` is the process (thread group) id, so every thread counts. */
export function pidPredicate(pids: readonly number[]): string {
  if (pids.length === 0) throw new Error('at least one PID is needed');
  for (const pid of pids) {
    if (!Number.isSafeInteger(pid) || pid <= 0) throw new Error(`not a PID: ${pid}`);
  }
  return `(${[...new Set(pids)].map((pid) => `pid == ${pid}`).join(' || ')})`;
}

/** Adds the scripts that the chosen ones depend on and puts them in concatenation order. */
export function withDependencies(names: readonly ScriptName[]): ScriptName[] {
  const chosen = new Set(names);
  for (const name of names) {
    const dep = DEPENDS_ON[name];
    if (dep !== undefined) chosen.add(dep);
  }
  return SCRIPT_NAMES.filter((name) => chosen.has(name));
}

export function composeProgram(scripts: readonly Script[], pids: readonly number[]): string {
  const predicate = pidPredicate(pids);
  const internal = new Set<string>();
  const parts = scripts.map(({ name, source }) => {
    const code = source.replace(/\/\/.*$/gm, '');
    for (const m of code.matchAll(/@_\w+/g)) internal.add(m[0]);
    return `// ---- ${name}.bt\n${source.replaceAll('PID_FILTER', predicate)}`;
  });
  // BEGIN runs once every probe is attached, unlike the "attached_probes" line, which comes before.
  parts.unshift(`BEGIN {\n  printf("${READY_MARKER}\\n");\n}\n`);
  if (internal.size > 0) {
    parts.push(`END {\n${[...internal].map((map) => `  clear(${map});`).join('\n')}\n}\n`);
  }
  return parts.join('\n');
}
