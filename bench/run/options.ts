// `skein bench [run]` command line: the options, their defaults and the help text in one place, parsed and
// checked before anything starts, so a typo fails in milliseconds with a message naming the option.
import { parseArgs } from 'node:util';
import type { LoadEngine, RampStage } from '../load/types.ts';
import { isLocalTargetName, LOCAL_TARGET_NAMES, type LocalTargetName } from '../lib/targets.ts';
import type { MeshType } from '../report/model.ts';
import type { ProgressMode } from './progress.ts';
import { DEFAULT_SCENARIOS, isScenarioName, SCENARIO_NAMES, type ScenarioName } from './scenarios.ts';

export const MESH_TYPES: readonly MeshType[] = ['baseline', 'skein', 'istio', 'linkerd', 'cilium', 'consul'];

/** Measured by default: everything but the second naive Node peer (http-proxy is the Node peer the issue names),
 *  the variants that answer one question each, skein-full-global (it needs a redis-server) and the TLS targets
 *  (skein-pair, skein-mtls, skein-mtls-handshake, nginx-tls: what mTLS costs is a question of its own, and four more
 *  targets would take the default run past five minutes). */
const NOT_BY_DEFAULT: ReadonlySet<LocalTargetName> = new Set([
  'naive-undici',
  'skein-no-metrics',
  'skein-baseline',
  'skein-full-global',
  'skein-pair',
  'skein-mtls',
  'skein-mtls-handshake',
  'nginx-tls',
]);
export const DEFAULT_LOCAL_TARGETS: readonly LocalTargetName[] = LOCAL_TARGET_NAMES.filter(
  (t) => !NOT_BY_DEFAULT.has(t),
);

export const DEFAULTS = {
  rounds: 3,
  durationS: 3,
  warmupS: 1,
  firstWarmupS: 2,
  connections: 50,
  openConnections: 16,
  ratePerS: 1000,
  payloadBytes: 0,
  streamMessages: 10,
  timeoutMs: 5000,
  proxyCpu: 1,
  loadCpu: 0,
  skeinWaitS: 15,
} as const;

/** Words joined by ", " and wrapped at 118 columns, continuation lines indented like the help's descriptions. */
function wrapList(prefix: string, words: readonly string[], suffix = ''): string {
  const indent = ' '.repeat(27);
  const lines: string[] = [];
  let line = prefix;
  words.forEach((w, i) => {
    const piece = `${w}${i < words.length - 1 ? ',' : suffix}`;
    if (`${line} ${piece}`.length > 118 && line.trim() !== '') {
      lines.push(line);
      line = indent + piece;
    } else line = line === '' ? piece : `${line} ${piece}`;
  });
  return [...lines, line].join('\n');
}

export const RUN_HELP = `Usage: skein bench [run] [options]
       skein bench compare --baseline FILE [--current FILE|DIR]   (see skein bench compare --help)
       skein bench origin [--listen HOST:PORT]                     (see skein bench origin --help)

Run the side-by-side proxy benchmark: every target forwards to the same origin and gets the same load, in
interleaved rounds (A B C A B C), each proxy pinned to its own CPU away from the generator and the origin.
Writes report.json, report.md and report.html into --out and prints the Markdown table.

Targets:
  --local-targets LIST     Comma-separated local targets in visiting order, or "none" or "all"
                           (default ${DEFAULT_LOCAL_TARGETS.join(',')}).
${wrapList('                           Known:', LOCAL_TARGET_NAMES, '.')}
                           Targets that cannot run here are listed in the report with the reason.
                           --targets LIST is the same option.
  --remote NAME=MESH:URL   A target elsewhere, e.g. istio=istio:http://bench-origin.bench-istio:8080
                           (repeatable; MESH: ${MESH_TYPES.join(', ')}). Measured with the same
                           scenarios; no CPU or memory figures. Point it at \`skein bench origin\` behind the mesh.

Scenarios:
  --scenarios LIST         Comma-separated, or "all" (default ${DEFAULT_SCENARIOS.join(',')}).
                           <protocol>-max: closed loop on --connections; <protocol>-open: open loop at --rate on
                           --open-connections, latency from the intended send time. http1-newconn: closed loop on
                           --connections with a new connection per request (a TLS handshake each on nginx-tls).
${wrapList('                           Known:', SCENARIO_NAMES, '.')}
  --duration-s S           Measured seconds per run (default ${DEFAULTS.durationS}).
  --warmup-s S             Unmeasured warm-up before every run, same load (default ${DEFAULTS.warmupS}).
  --first-warmup-s S       Extra warm-up per target before round 1 (default ${DEFAULTS.firstWarmupS}).
  --rounds N               Interleaved rounds; medians with min–max (default ${DEFAULTS.rounds}).
  --connections N          Connections of the closed-loop runs (default ${DEFAULTS.connections}).
  --open-connections N     Connections of the open-loop runs (default ${DEFAULTS.openConnections}).
  --rate N                 Requests per second of the open-loop runs (default ${DEFAULTS.ratePerS}).
  --stages LIST            Open-loop ramp instead of --rate/--duration-s, k6-style DURATION:RATE stages,
                           e.g. 10s:500,20s:1000,10s:0 (durations in ms, s or m).
  --payload-bytes N        Request body (POST), gRPC or WebSocket message size; 0 = GET (default ${DEFAULTS.payloadBytes}).
  --stream-messages N      Messages per gRPC server-streaming call (default ${DEFAULTS.streamMessages}).
  --timeout-ms MS          A request slower than this counts as an error "timeout" (default ${DEFAULTS.timeoutMs}).
  --engine E               HTTP/1.1 closed-loop generator: auto (wrk when installed), wrk or builtin (default auto).

Machine:
  --proxy-cpu N            CPU every proxy is pinned to (default ${DEFAULTS.proxyCpu}).
  --load-cpu N             CPU of the generator and the origin (default ${DEFAULTS.loadCpu}).
  --no-probes              Do not attach the eBPF probes to the proxies (they need root and bpftrace anyway).
  --skein-cmd CMD          Shell command starting the plain skein target; $PORT and $ORIGIN_PORT are set.
  --baseline-cmd CMD       Shell command starting the skein-baseline target (another build, e.g. a worktree of
                           main: 'exec ../base/bin/skein.js proxy --listen 127.0.0.1:$PORT --upstream
                           127.0.0.1:$ORIGIN_PORT'); adds skein-baseline to the default targets.
  --skein-wait-s S         How long skein may take to answer before it is reported unavailable (default ${DEFAULTS.skeinWaitS}).

Output:
  --out DIR                Where the reports go (default ./bench-results/<timestamp>).
  --keep-tmp               Keep the temporary directory with the generated configs and process logs.
  --progress MODE          auto: a bar on a terminal, one line per step otherwise; json: one JSON object
                           per line on stderr (step, tick every second, log), for programs (default auto).
  -h, --help               Show this help.

The defaults finish in about four minutes on a 2-CPU machine.`;

export interface RemoteTarget {
  readonly name: string;
  readonly mesh: MeshType;
  readonly url: string;
}

export interface RunOptions {
  readonly localTargets: readonly LocalTargetName[];
  readonly remotes: readonly RemoteTarget[];
  readonly scenarios: readonly ScenarioName[];
  readonly rounds: number;
  readonly durationS: number;
  readonly warmupS: number;
  readonly firstWarmupS: number;
  readonly connections: number;
  readonly openConnections: number;
  readonly ratePerS: number;
  readonly stages?: readonly RampStage[];
  readonly payloadBytes: number;
  readonly streamMessages: number;
  readonly timeoutMs: number;
  readonly engine: 'auto' | LoadEngine;
  readonly proxyCpu: number;
  readonly loadCpu: number;
  readonly probes: boolean;
  readonly skeinCmd?: string;
  readonly baselineCmd?: string;
  readonly skeinWaitS: number;
  /** Absent: ./bench-results/<timestamp>, decided when the run starts. */
  readonly out?: string;
  readonly keepTmp: boolean;
  readonly progress: ProgressMode;
}

/** A command-line mistake: printed with a pointer to --help, exit status 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Every option parseRunOptions accepts (the help text must mention each; a test checks). */
export const RUN_OPTIONS = {
  'local-targets': { type: 'string' },
  targets: { type: 'string' },
  remote: { type: 'string', multiple: true },
  scenarios: { type: 'string' },
  'duration-s': { type: 'string' },
  'warmup-s': { type: 'string' },
  'first-warmup-s': { type: 'string' },
  rounds: { type: 'string' },
  connections: { type: 'string' },
  'open-connections': { type: 'string' },
  rate: { type: 'string' },
  stages: { type: 'string' },
  'payload-bytes': { type: 'string' },
  'stream-messages': { type: 'string' },
  'timeout-ms': { type: 'string' },
  engine: { type: 'string' },
  'proxy-cpu': { type: 'string' },
  'load-cpu': { type: 'string' },
  'no-probes': { type: 'boolean' },
  'skein-cmd': { type: 'string' },
  'baseline-cmd': { type: 'string' },
  'skein-wait-s': { type: 'string' },
  out: { type: 'string' },
  'keep-tmp': { type: 'boolean' },
  progress: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function list(value: string): string[] {
  return [
    ...new Set(
      value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
}

function number(name: string, raw: string | undefined, fallback: number, min: number, integer: boolean): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} >= ${min}, got '${raw}'`);
  return n;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m)/y;

/** "1m30s" → 90, "500ms" → 0.5; throws on anything else. */
export function parseDurationS(text: string): number {
  let total = 0;
  DURATION_PART.lastIndex = 0;
  let parsed = 0;
  while (parsed < text.length) {
    const m = DURATION_PART.exec(text);
    if (m === null) throw new Error(`bad duration '${text}' (use e.g. 500ms, 10s, 1m30s)`);
    total += Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1);
    parsed = DURATION_PART.lastIndex;
  }
  if (text === '') throw new Error('empty duration');
  return total;
}

/** "10s:500,20s:1000,10s:0" → ramp stages; the whole ramp must last and reach a rate above 0. */
export function parseStages(text: string): RampStage[] {
  const stages = text.split(',').map((part, i) => {
    const m = /^\s*([^:\s]+)\s*:\s*(\d+)\s*$/.exec(part);
    if (m === null) throw new UsageError(`--stages: stage ${i + 1} '${part}' is not DURATION:RATE (e.g. 10s:500)`);
    let durationS: number;
    try {
      durationS = parseDurationS(m[1]);
    } catch (err) {
      throw new UsageError(`--stages: stage ${i + 1}: ${(err as Error).message}`);
    }
    if (durationS <= 0) throw new UsageError(`--stages: stage ${i + 1} lasts 0 s`);
    return { durationS, target: Number(m[2]) };
  });
  if (!stages.some((s) => s.target > 0))
    throw new UsageError('--stages: every stage has rate 0; nothing would be sent');
  return stages;
}

/** "NAME=MESH:URL" → a remote target. */
export function parseRemote(text: string): RemoteTarget {
  const m = /^([A-Za-z0-9_.-]+)=([a-z]+):(.+)$/.exec(text);
  if (m === null) throw new UsageError(`--remote '${text}': expected NAME=MESH:URL, e.g. istio=istio:http://host:8080`);
  const [, name, mesh, url] = m;
  if (!(MESH_TYPES as readonly string[]).includes(mesh))
    throw new UsageError(`--remote '${text}': unknown mesh '${mesh}'; one of ${MESH_TYPES.join(', ')}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--remote '${text}': '${url}' is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new UsageError(`--remote '${text}': the URL must be http:// or https://`);
  return { name, mesh: mesh as MeshType, url: parsed.href };
}

function parseTargets(value: string | undefined): LocalTargetName[] {
  if (value === undefined) return [...DEFAULT_LOCAL_TARGETS];
  if (value.trim() === 'none') return [];
  if (value.trim() === 'all') return [...LOCAL_TARGET_NAMES];
  const names = list(value);
  const unknown = names.filter((t) => !isLocalTargetName(t));
  if (unknown.length > 0)
    throw new UsageError(
      `--local-targets: unknown target${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')}; known: ${LOCAL_TARGET_NAMES.join(', ')} (or none, all)`,
    );
  if (names.length === 0) throw new UsageError('--local-targets is empty (use "none" for remote targets only)');
  return names.filter(isLocalTargetName);
}

function parseScenarios(value: string | undefined): ScenarioName[] {
  if (value === undefined) return [...DEFAULT_SCENARIOS];
  if (value.trim() === 'all') return [...SCENARIO_NAMES];
  const names = list(value);
  const unknown = names.filter((s) => !isScenarioName(s));
  if (unknown.length > 0)
    throw new UsageError(
      `--scenarios: unknown scenario${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')}; known: ${SCENARIO_NAMES.join(', ')} (or all)`,
    );
  if (names.length === 0) throw new UsageError('--scenarios is empty');
  return names.filter(isScenarioName);
}

/** Parses `skein bench run` arguments; 'help' for -h/--help. Throws UsageError on any mistake. */
export function parseRunOptions(argv: readonly string[]): RunOptions | 'help' {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof RUN_OPTIONS; strict: true }>>['values'];
  try {
    ({ values } = parseArgs({ args: [...argv], options: RUN_OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help === true) return 'help';
  if (values['local-targets'] !== undefined && values.targets !== undefined)
    throw new UsageError('--targets is another name for --local-targets; give one of them');
  const named = values['local-targets'] ?? values.targets;
  const localTargets = parseTargets(named);
  const baselineCmd = values['baseline-cmd'];
  // --baseline-cmd adds its target right after skein (before/after side by side); an explicit list decides itself.
  if (baselineCmd !== undefined && named === undefined)
    localTargets.splice(localTargets.indexOf('skein') + 1, 0, 'skein-baseline');
  if (baselineCmd === undefined && localTargets.includes('skein-baseline') && named?.trim() !== 'all')
    throw new UsageError('--local-targets: skein-baseline needs --baseline-cmd (the command starting the other build)');
  const remotes = (values.remote ?? []).map(parseRemote);
  const taken = new Set<string>(localTargets);
  for (const r of remotes) {
    if (isLocalTargetName(r.name) && taken.has(r.name))
      throw new UsageError(`--remote: '${r.name}' is also a local target of this run; give the remote another name`);
    if (taken.has(r.name)) throw new UsageError(`--remote: the name '${r.name}' is used twice`);
    taken.add(r.name);
  }
  if (localTargets.length === 0 && remotes.length === 0)
    throw new UsageError('nothing to measure: --local-targets none and no --remote');
  const engine = values.engine ?? 'auto';
  if (!['auto', 'wrk', 'builtin'].includes(engine))
    throw new UsageError(`--engine must be auto, wrk or builtin, got '${engine}'`);
  const progress = values.progress ?? 'auto';
  if (progress !== 'auto' && progress !== 'json')
    throw new UsageError(`--progress must be auto or json, got '${progress}'`);
  const opts: RunOptions = {
    localTargets,
    remotes,
    scenarios: parseScenarios(values.scenarios),
    rounds: number('rounds', values.rounds, DEFAULTS.rounds, 1, true),
    durationS: number('duration-s', values['duration-s'], DEFAULTS.durationS, 1, true),
    warmupS: number('warmup-s', values['warmup-s'], DEFAULTS.warmupS, 0, false),
    firstWarmupS: number('first-warmup-s', values['first-warmup-s'], DEFAULTS.firstWarmupS, 0, false),
    connections: number('connections', values.connections, DEFAULTS.connections, 1, true),
    openConnections: number('open-connections', values['open-connections'], DEFAULTS.openConnections, 1, true),
    ratePerS: number('rate', values.rate, DEFAULTS.ratePerS, 1, true),
    stages: values.stages === undefined ? undefined : parseStages(values.stages),
    payloadBytes: number('payload-bytes', values['payload-bytes'], DEFAULTS.payloadBytes, 0, true),
    streamMessages: number('stream-messages', values['stream-messages'], DEFAULTS.streamMessages, 1, true),
    timeoutMs: number('timeout-ms', values['timeout-ms'], DEFAULTS.timeoutMs, 1, true),
    engine: engine as RunOptions['engine'],
    proxyCpu: number('proxy-cpu', values['proxy-cpu'], DEFAULTS.proxyCpu, 0, true),
    loadCpu: number('load-cpu', values['load-cpu'], DEFAULTS.loadCpu, 0, true),
    probes: values['no-probes'] !== true,
    skeinCmd: values['skein-cmd'],
    baselineCmd,
    skeinWaitS: number('skein-wait-s', values['skein-wait-s'], DEFAULTS.skeinWaitS, 1, false),
    out: values.out,
    keepTmp: values['keep-tmp'] === true,
    progress,
  };
  if (opts.proxyCpu === opts.loadCpu) throw new UsageError('--proxy-cpu and --load-cpu must differ');
  if (opts.stages !== undefined && !opts.scenarios.some((s) => s.endsWith('-open')))
    throw new UsageError('--stages shapes the open-loop scenarios, and none is selected (add e.g. http1-open)');
  return opts;
}
