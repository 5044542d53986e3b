// The scenarios `skein bench` can run and how each becomes a LoadSpec per target: HTTP/1.1 at maximum throughput
// (closed loop) and at a fixed rate (open loop) by default; HTTP/2, gRPC unary, gRPC server streaming and WebSocket
// echo on request, and HTTP/1.1 with a new connection per request (http1-newconn: what handshakes cost). Pure: the orchestrator decides where the target listens, this decides what load it gets.
import type { LoadEngine, LoadProtocol, LoadSpec, RampStage } from '../load/types.ts';
import type { ScenarioSpec } from '../report/model.ts';

/** The protocol part of a scenario name, and the LoadProtocol it drives. */
export const SCENARIO_PROTOCOLS = {
  http1: 'http1',
  http2: 'http2',
  'grpc-unary': 'grpc-unary',
  'grpc-stream': 'grpc-server-stream',
  websocket: 'websocket',
} as const satisfies Record<string, LoadProtocol>;
export type ScenarioProtocolKey = keyof typeof SCENARIO_PROTOCOLS;

/** max: closed loop, as fast as the target answers; open: open loop at --rate (or along --stages). */
export type ScenarioMode = 'max' | 'open';
/** HTTP/1.1 closed loop on --connections, every request on a new connection (`connection: close`): against a TLS
 *  target each request is a full handshake. */
export const NEWCONN_SCENARIO = 'http1-newconn';
export type ScenarioName = `${ScenarioProtocolKey}-${ScenarioMode}` | typeof NEWCONN_SCENARIO;

export const SCENARIO_NAMES: readonly ScenarioName[] = (Object.keys(SCENARIO_PROTOCOLS) as ScenarioProtocolKey[])
  .flatMap((p): ScenarioName[] => [`${p}-max`, `${p}-open`])
  .flatMap((n) => (n === 'http1-open' ? [n, NEWCONN_SCENARIO] : [n]));
export const DEFAULT_SCENARIOS: readonly ScenarioName[] = ['http1-max', 'http1-open'];

export function isScenarioName(s: string): s is ScenarioName {
  return (SCENARIO_NAMES as readonly string[]).includes(s);
}

/** What the scenarios share, from the command line. */
export interface ScenarioSettings {
  readonly durationS: number;
  readonly warmupS: number;
  readonly connections: number;
  readonly openConnections: number;
  readonly ratePerS: number;
  readonly stages?: readonly RampStage[];
  readonly payloadBytes: number;
  readonly streamMessages: number;
  /** Engine for HTTP/1.1 closed loop: auto = wrk when installed (and the request is a GET), else builtin. */
  readonly engine: 'auto' | LoadEngine;
  readonly timeoutMs: number;
}

/** A scenario ready to run: the report's ScenarioSpec plus what only the orchestrator needs. */
export interface PlannedScenario {
  readonly name: ScenarioName;
  readonly spec: ScenarioSpec;
  readonly warmupS: number;
  /**
   * The warm-up runs inside the measured call (the generator's own warm-up), so the generator process is warm
   * when the timetable starts: open loop at a fixed rate. Otherwise (closed loop, ramps) it is a call of its own
   * before the measured one, which keeps the measured window clean for the eBPF probes.
   */
  readonly warmupInside: boolean;
  readonly stages?: readonly RampStage[];
  readonly streamMessages?: number;
  readonly timeoutMs: number;
}

export function scenarioProtocol(name: ScenarioName): LoadProtocol {
  return SCENARIO_PROTOCOLS[name.slice(0, name.lastIndexOf('-')) as ScenarioProtocolKey];
}

function scenarioMode(name: ScenarioName): ScenarioMode {
  return name.endsWith('-max') || name === NEWCONN_SCENARIO ? 'max' : 'open';
}

/** Seconds a stage list lasts. */
export function stagesDurationS(stages: readonly RampStage[]): number {
  return stages.reduce((sum, s) => sum + s.durationS, 0);
}

/** Chooses the engine of one scenario; throws when an explicit choice cannot drive it. */
export function engineFor(
  name: ScenarioName,
  settings: Pick<ScenarioSettings, 'engine' | 'payloadBytes'>,
  wrkAvailable: boolean,
): LoadEngine {
  const wrkCan =
    scenarioProtocol(name) === 'http1' &&
    scenarioMode(name) === 'max' &&
    name !== NEWCONN_SCENARIO &&
    settings.payloadBytes === 0;
  if (settings.engine === 'auto') return wrkCan && wrkAvailable ? 'wrk' : 'builtin';
  if (settings.engine === 'builtin') return 'builtin';
  if (settings.engine === 'wrk' && !wrkAvailable)
    throw new Error('--engine wrk: wrk is not installed (apt-get install -y wrk)');
  // wrk and h2load are only ever asked for the scenario they can drive; the others stay on the builtin engine.
  return wrkCan && settings.engine === 'wrk' ? 'wrk' : 'builtin';
}

export function planScenario(name: ScenarioName, settings: ScenarioSettings, wrkAvailable: boolean): PlannedScenario {
  const protocol = scenarioProtocol(name);
  const mode = scenarioMode(name);
  const key = name.slice(0, name.lastIndexOf('-'));
  const open = mode === 'open';
  const stages = open ? settings.stages : undefined;
  const newConn = name === NEWCONN_SCENARIO;
  const id = newConn
    ? NEWCONN_SCENARIO
    : !open
      ? `${key}-max`
      : stages !== undefined
        ? `${key}-ramp`
        : `${key}-${settings.ratePerS}rps`;
  return {
    name,
    spec: {
      id,
      protocol,
      mode: open ? 'open' : 'closed',
      engine: engineFor(name, settings, wrkAvailable),
      ratePerS: open
        ? stages === undefined
          ? settings.ratePerS
          : Math.max(...stages.map((s) => s.target))
        : undefined,
      connections: open ? settings.openConnections : settings.connections,
      durationS: stages === undefined ? settings.durationS : stagesDurationS(stages),
      payloadBytes: settings.payloadBytes,
      ...(newConn && { newConnectionPerRequest: true }),
    },
    warmupS: settings.warmupS,
    warmupInside: open && stages === undefined && settings.warmupS > 0,
    stages,
    streamMessages: protocol === 'grpc-server-stream' ? settings.streamMessages : undefined,
    timeoutMs: settings.timeoutMs,
  };
}

/** Where a target serves: its HTTP/1.1 + WebSocket port and its h2c/gRPC port (often the same). */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly h2Port: number;
  /** Path prefix of HTTP requests (a remote URL's path); "/" locally. */
  readonly path: string;
  readonly tls: boolean;
  /** A local TLS target: the CA the generator trusts and the name it checks (else certificates go unchecked). */
  readonly caFile?: string;
  readonly servername?: string;
}

export function scenarioUrl(protocol: LoadProtocol, ep: Endpoint): string {
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  switch (protocol) {
    case 'http1':
      return `${ep.tls ? 'https' : 'http'}://${host}:${ep.port}${ep.path}`;
    case 'websocket':
      return `${ep.tls ? 'wss' : 'ws'}://${host}:${ep.port}/ws`;
    default:
      return `${ep.tls ? 'https' : 'http'}://${host}:${ep.h2Port}${protocol === 'http2' ? ep.path : ''}`;
  }
}

/**
 * The measured run's spec (with the warm-up inside when the scenario says so); `warmup` gives instead the
 * discarded warm-up call before it (same load, the warm-up's length).
 */
export function loadSpecFor(
  s: PlannedScenario,
  ep: Endpoint,
  opts: { readonly cpu?: number; readonly warmup?: boolean },
): LoadSpec {
  const warm = opts.warmup === true;
  // A ramp's warm-up holds its first stage's target rate, a plain run's warm-up is the run itself, shorter.
  const stages = warm ? undefined : s.stages;
  const rate = warm && s.stages !== undefined ? Math.max(1, s.stages[0]?.target ?? 1) : s.spec.ratePerS;
  return {
    url: scenarioUrl(s.spec.protocol, ep),
    protocol: s.spec.protocol,
    mode: s.spec.mode,
    engine: s.spec.engine,
    ratePerS: s.spec.mode === 'open' ? rate : undefined,
    connections: s.spec.connections,
    durationS: warm ? s.warmupS : s.spec.durationS,
    warmupS: !warm && s.warmupInside ? s.warmupS : 0,
    stages,
    payloadBytes: s.spec.payloadBytes,
    ...(s.spec.newConnectionPerRequest === true && { newConnectionPerRequest: true }),
    ...(ep.tls && ep.caFile !== undefined && { tls: { caFile: ep.caFile, servername: ep.servername } }),
    streamMessages: s.streamMessages,
    timeoutMs: s.timeoutMs,
    cpu: opts.cpu,
  };
}
