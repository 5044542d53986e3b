// What a caller of control's bench job API may ask for: the `skein bench run` options as JSON, checked at the
// edge and turned into the command line the job runs. The CLI parser (bench/run/options.ts) stays the one
// place that decides what a valid run is; this schema adds the field paths and keeps out what an API must not
// take from a caller: --skein-cmd (a shell command), --out and --keep-tmp (control decides where files go).
import { z } from 'zod';
import { LOCAL_TARGET_NAMES } from '../bench/lib/targets.ts';
import { MESH_TYPES, parseRunOptions, type RunOptions, UsageError } from '../bench/run/options.ts';
import { SCENARIO_NAMES } from '../bench/run/scenarios.ts';
import { ApiError, parseWith } from './http.ts';

const count = (max: number) => z.int().min(1).max(max);
const seconds = (min: number, max: number) => z.number().min(min).max(max);

export const BenchJobRequest = z.strictObject({
  /** Free text shown in listings ("nightly", "PR 42"). */
  label: z.string().max(200).optional(),
  /** Local targets in visiting order; [] measures remote targets only. Default: the CLI's default set. */
  localTargets: z.array(z.enum(LOCAL_TARGET_NAMES)).max(LOCAL_TARGET_NAMES.length).optional(),
  remotes: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)'),
        mesh: z.enum(MESH_TYPES),
        url: z.url({ protocol: /^https?$/ }),
      }),
    )
    .max(16)
    .optional(),
  scenarios: z.array(z.enum(SCENARIO_NAMES)).min(1).max(SCENARIO_NAMES.length).optional(),
  rounds: count(20).optional(),
  durationS: z.int().min(1).max(3600).optional(),
  warmupS: seconds(0, 600).optional(),
  firstWarmupS: seconds(0, 600).optional(),
  connections: count(10_000).optional(),
  openConnections: count(10_000).optional(),
  rate: count(1_000_000).optional(),
  stages: z
    .array(z.strictObject({ durationS: z.number().gt(0).max(3600), rate: z.int().min(0).max(1_000_000) }))
    .min(1)
    .max(32)
    .optional(),
  payloadBytes: z
    .int()
    .min(0)
    .max(16 * 1024 * 1024)
    .optional(),
  streamMessages: count(100_000).optional(),
  timeoutMs: count(600_000).optional(),
  engine: z.enum(['auto', 'wrk', 'builtin']).optional(),
  proxyCpu: z.int().min(0).max(1023).optional(),
  loadCpu: z.int().min(0).max(1023).optional(),
  probes: z.boolean().optional(),
  skeinWaitS: seconds(1, 600).optional(),
});
export type BenchJobRequest = z.output<typeof BenchJobRequest>;

/** Request field → its `skein bench` flag, for the simple one-value options. */
const FLAGS = {
  rounds: '--rounds',
  durationS: '--duration-s',
  warmupS: '--warmup-s',
  firstWarmupS: '--first-warmup-s',
  connections: '--connections',
  openConnections: '--open-connections',
  rate: '--rate',
  payloadBytes: '--payload-bytes',
  streamMessages: '--stream-messages',
  timeoutMs: '--timeout-ms',
  engine: '--engine',
  proxyCpu: '--proxy-cpu',
  loadCpu: '--load-cpu',
  skeinWaitS: '--skein-wait-s',
} as const satisfies Partial<Record<keyof BenchJobRequest, string>>;

const FIELD_OF_FLAG = new Map<string, string>([
  ...Object.entries(FLAGS).map(([field, flag]) => [flag, field] as [string, string]),
  ['--local-targets', 'localTargets'],
  ['--remote', 'remotes'],
  ['--scenarios', 'scenarios'],
  ['--stages', 'stages'],
]);

/** The `skein bench run` arguments for a validated request (without --out and --progress, which control adds). */
export function benchArgs(req: BenchJobRequest): string[] {
  const args: string[] = [];
  if (req.localTargets !== undefined)
    args.push('--local-targets', req.localTargets.length === 0 ? 'none' : req.localTargets.join(','));
  for (const r of req.remotes ?? []) args.push('--remote', `${r.name}=${r.mesh}:${r.url}`);
  if (req.scenarios !== undefined) args.push('--scenarios', req.scenarios.join(','));
  for (const [field, flag] of Object.entries(FLAGS) as [keyof typeof FLAGS, string][]) {
    const value = req[field];
    if (value !== undefined) args.push(flag, String(value));
  }
  if (req.stages !== undefined)
    args.push('--stages', req.stages.map((s) => `${Math.round(s.durationS * 1000)}ms:${s.rate}`).join(','));
  if (req.probes === false) args.push('--no-probes');
  return args;
}

/** `--proxy-cpu and --load-cpu must differ` → `proxyCpu: proxyCpu and loadCpu must differ`: the caller sent
 * JSON fields, not flags, so the message names fields, and the first one it names is the path. */
function asFieldProblem(message: string): string {
  let first: string | undefined;
  const text = message.replace(/--[a-z-]+/g, (flag) => {
    const field = FIELD_OF_FLAG.get(flag);
    if (field === undefined) return flag;
    first ??= field;
    return field;
  });
  return `${first ?? '(request)'}: ${text}`;
}

export interface CheckedBenchRequest {
  readonly request: BenchJobRequest;
  readonly args: readonly string[];
  readonly options: RunOptions;
}

/** Validates a job request body; a 400 ApiError names each bad field and why. */
export function checkBenchRequest(body: unknown): CheckedBenchRequest {
  const request = parseWith(BenchJobRequest, body ?? {});
  if (request.localTargets?.length === 0 && (request.remotes ?? []).length === 0)
    throw new ApiError('SKEIN_BAD_REQUEST', 'invalid request body', [
      'localTargets: empty and no remotes: nothing to measure',
    ]);
  const args = benchArgs(request);
  let options;
  try {
    options = parseRunOptions(args);
  } catch (err) {
    if (err instanceof UsageError)
      throw new ApiError('SKEIN_BAD_REQUEST', 'invalid request body', [asFieldProblem(err.message)]);
    throw err;
  }
  if (options === 'help') throw new Error('unreachable: no --help in a built command line');
  return { request, args, options };
}
