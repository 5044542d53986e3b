// `skein canary`: a thin client of control's canary API (/v1/canaries) for people and scripts. It starts a
// rollout, shows where each one is (every window's numbers and decisions), and promotes, pauses, resumes or rolls
// back by hand. Writes send the API token read from --token-file. Where control is (a port-forward, or its Service
// address from inside a cluster) and the token may also come from the environment, so scripts and CI set them once.
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

export const CANARY_DEFAULTS = {
  control: 'http://127.0.0.1:15010',
  tokenFile: '.skein/control/api-token',
} as const;

export const CANARY_HELP = `Usage: skein canary <command> [options]

Canary rollouts through control's API: traffic for a service moves from one version to another in stages,
each judged on what the proxies counted per version (their own reports, or --prometheus) and promoted or
rolled back.

Commands:
  start     --service NAME --from VERSION --to VERSION [--stages 5:300,10:300,20:600,50:600,100]
            [--no-auto-promote] [--no-auto-rollback]
  status    [--service NAME]   One canary with every window's numbers and decisions; all without --service.
  promote   --service NAME     The next stage now (from the last split stage: 100% to the new version).
  pause     --service NAME     Stop judging; the current split stays.
  resume    --service NAME     Judge again; the stage's window starts afresh.
  rollback  --service NAME     All traffic back to the old version at once.

Options:
  --control URL            Control's API (default $SKEIN_CONTROL, else ${CANARY_DEFAULTS.control}).
  --token-file FILE        The API token for writes (default $SKEIN_TOKEN_FILE, else
                           ${CANARY_DEFAULTS.tokenFile}).
  --stages LIST            WEIGHT:WINDOW_S stages, comma-separated, weights rising; the 100% stage is added
                           when missing (default the seed's 5:300,10:300,20:600,50:600,100).
  --json                   Print the API's JSON answer instead of the summary.
  -h, --help               Show this help.

Exit status: 0 when control accepted the request, 1 otherwise (its error and problems are printed).`;

const OPTIONS = {
  control: { type: 'string' },
  'token-file': { type: 'string' },
  service: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  stages: { type: 'string' },
  'no-auto-promote': { type: 'boolean', default: false },
  'no-auto-rollback': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsOptionsConfig;

const COMMANDS = ['start', 'status', 'promote', 'pause', 'resume', 'rollback'] as const;
type Command = (typeof COMMANDS)[number];

/** "5:300,10:300,100" → stages; throws naming the bad piece. */
export function parseStages(text: string): { weight: number; windowS?: number }[] {
  return text.split(',').map((piece, i) => {
    const m = /^\s*(\d+)(?::(\d+))?\s*$/.exec(piece);
    if (m === null) throw new Error(`--stages: '${piece}' (stage ${i + 1}) is not WEIGHT:WINDOW_S`);
    return { weight: Number(m[1]), ...(m[2] !== undefined && { windowS: Number(m[2]) }) };
  });
}

interface Stats {
  requests: number;
  errors: number;
  errorRate: number | null;
  p95: number | null;
}
interface Canary {
  service: string;
  from: string;
  to: string;
  state: string;
  stageIndex: number;
  windowEndsAt: string | null;
  note: string | null;
  stages: { weight: number; windowS: number }[];
  history: {
    stage: number;
    weight: number;
    verdict: string | null;
    action: string;
    decidedBy: string;
    endedAt: string;
    reasons: string[];
    stats: { stable: Stats; canary: Stats } | null;
  }[];
}

function stats(name: string, s: Stats): string {
  const rate = s.errorRate === null ? 'n/a' : `${(s.errorRate * 100).toFixed(2)}%`;
  return `${name} ${s.requests} req, ${rate} errors, p95 ${s.p95 === null ? 'n/a' : `${s.p95.toFixed(1)} ms`}`;
}

export function formatCanary(c: Canary): string {
  const stage = c.stages[c.stageIndex];
  const lines = [
    `${c.service}: ${c.from} → ${c.to}, ${c.state}, stage ${c.stageIndex + 1}/${c.stages.length} (${stage.weight}% to ${c.to})` +
      (c.windowEndsAt === null ? '' : `, judged at ${c.windowEndsAt}`),
  ];
  if (c.note !== null) lines.push(`  note: ${c.note}`);
  for (const h of c.history) {
    lines.push(
      `  stage ${h.stage + 1} (${h.weight}%) ${h.endedAt}: verdict ${h.verdict ?? '-'}, ${h.action} by ${h.decidedBy}`,
    );
    if (h.stats !== null) lines.push(`    ${stats(c.to, h.stats.canary)}; ${stats(c.from, h.stats.stable)}`);
    for (const r of h.reasons) lines.push(`    - ${r}`);
  }
  return lines.join('\n');
}

async function call(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base.replace(/\/+$/, '')}${path}`, {
    method,
    headers: {
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
      'x-skein-actor': `skein-canary-cli:${process.env.USER ?? 'unknown'}`,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON: shown as it came
  }
  return { status: res.status, json };
}

/** An environment variable's value, or undefined when unset or empty. */
const nonEmpty = (value: string | undefined): string | undefined => (value === '' ? undefined : value);

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`skein canary: ${(err as Error).message}\n\nRun \`skein canary --help\` for usage.\n`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    process.stdout.write(`${CANARY_HELP}\n`);
    return values.help ? 0 : 1;
  }
  const command = positionals[0] as Command;
  const usage = (message: string) => {
    process.stderr.write(`skein canary: ${message}\n\nRun \`skein canary --help\` for usage.\n`);
    return 1;
  };
  if (!COMMANDS.includes(command) || positionals.length > 1) return usage(`unknown command '${positionals.join(' ')}'`);
  const service = values.service;
  if (command !== 'status' && service === undefined) return usage(`${command} needs --service`);
  const control = values.control ?? nonEmpty(process.env.SKEIN_CONTROL) ?? CANARY_DEFAULTS.control;
  const tokenFile = values['token-file'] ?? nonEmpty(process.env.SKEIN_TOKEN_FILE) ?? CANARY_DEFAULTS.tokenFile;
  let token: string | undefined;
  if (command !== 'status') {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      return usage(`cannot read the API token from ${tokenFile}: ${(err as Error).message}`);
    }
  }
  let request: { method: 'GET' | 'POST'; path: string; body?: unknown };
  if (command === 'start') {
    if (values.from === undefined || values.to === undefined) return usage('start needs --from and --to');
    let stages;
    try {
      stages = values.stages === undefined ? undefined : parseStages(values.stages);
    } catch (err) {
      return usage((err as Error).message);
    }
    request = {
      method: 'POST',
      path: '/v1/canaries',
      body: {
        service,
        from: values.from,
        to: values.to,
        ...(stages !== undefined && { stages }),
        autoPromote: !values['no-auto-promote'],
        autoRollback: !values['no-auto-rollback'],
      },
    };
  } else if (command === 'status') {
    request = {
      method: 'GET',
      path: service === undefined ? '/v1/canaries' : `/v1/canaries/${encodeURIComponent(service)}`,
    };
  } else {
    request = { method: 'POST', path: `/v1/canaries/${encodeURIComponent(service!)}/${command}` };
  }
  let answer;
  try {
    answer = await call(control, request.method, request.path, token, request.body);
  } catch (err) {
    process.stderr.write(`skein canary: cannot reach control at ${control}: ${(err as Error).message}\n`);
    return 1;
  }
  if (answer.status >= 400) {
    const e = (answer.json as { error?: { code?: string; message?: string; problems?: string[] } }).error;
    process.stderr.write(
      `skein canary: ${e?.code ?? answer.status}: ${e?.message ?? String(answer.json)}\n${(e?.problems ?? []).map((p) => `  ${p}\n`).join('')}`,
    );
    return 1;
  }
  if (values.json) process.stdout.write(`${JSON.stringify(answer.json, null, 2)}\n`);
  else if (Array.isArray(answer.json))
    process.stdout.write(
      answer.json.length === 0 ? 'no canaries\n' : `${(answer.json as Canary[]).map(formatCanary).join('\n\n')}\n`,
    );
  else process.stdout.write(`${formatCanary(answer.json as Canary)}\n`);
  return 0;
}
