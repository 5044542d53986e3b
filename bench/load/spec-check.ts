// Checks a LoadSpec before any engine runs it, so a bad scenario fails at once with the field at fault.
import type { LoadProtocol, LoadSpec } from './types.ts';

const SCHEMES: Readonly<Record<LoadProtocol, readonly string[]>> = {
  http1: ['http:', 'https:'],
  http2: ['http:', 'https:'],
  'grpc-unary': ['http:', 'https:'],
  'grpc-server-stream': ['http:', 'https:'],
  websocket: ['ws:', 'wss:'],
};

/** The first problem with `spec`, or undefined when it can run. */
export function specProblem(spec: LoadSpec): string | undefined {
  let url: URL;
  try {
    url = new URL(spec.url);
  } catch {
    return `url: not a URL: ${spec.url}`;
  }
  const schemes = SCHEMES[spec.protocol];
  if (schemes === undefined) return `protocol: unknown protocol ${String(spec.protocol)}`;
  if (!schemes.includes(url.protocol))
    return `url: ${spec.protocol} needs ${schemes.join(' or ')}, not ${url.protocol}`;
  if (spec.mode !== 'open' && spec.mode !== 'closed') return `mode: must be open or closed, not ${String(spec.mode)}`;
  if (!(Number.isInteger(spec.connections) && spec.connections >= 1)) return 'connections: must be an integer ≥ 1';
  const staged = spec.stages !== undefined && spec.stages.length > 0;
  if (staged) {
    for (const [i, s] of spec.stages!.entries()) {
      if (!(s.durationS > 0)) return `stages[${i}].durationS: must be > 0`;
      if (!(s.target >= 0)) return `stages[${i}].target: must be ≥ 0`;
    }
  } else {
    if (!(spec.durationS > 0)) return 'durationS: must be > 0';
    if (spec.mode === 'open' && !(spec.ratePerS !== undefined && spec.ratePerS > 0)) {
      return 'ratePerS: open loop needs a rate > 0 (or stages)';
    }
  }
  if (spec.warmupS !== undefined && !(spec.warmupS >= 0)) return 'warmupS: must be ≥ 0';
  if (spec.payloadBytes !== undefined && !(Number.isInteger(spec.payloadBytes) && spec.payloadBytes >= 0)) {
    return 'payloadBytes: must be an integer ≥ 0';
  }
  if (spec.timeoutMs !== undefined && !(spec.timeoutMs > 0)) return 'timeoutMs: must be > 0';
  if (spec.streamsPerConnection !== undefined && !(spec.streamsPerConnection >= 1)) {
    return 'streamsPerConnection: must be ≥ 1';
  }
  if (spec.streamMessages !== undefined && !(Number.isInteger(spec.streamMessages) && spec.streamMessages >= 0)) {
    return 'streamMessages: must be an integer ≥ 0';
  }
  const secure = url.protocol === 'https:' || url.protocol === 'wss:';
  if (spec.tls !== undefined && !secure) return `tls: given for a plaintext URL (${url.protocol})`;
  if ((spec.tls?.certFile === undefined) !== (spec.tls?.keyFile === undefined)) {
    return 'tls: mTLS needs both certFile and keyFile';
  }
  return undefined;
}

export function assertSpec(spec: LoadSpec): void {
  const problem = specProblem(spec);
  if (problem !== undefined) throw new Error(`bad load spec: ${problem}`);
}
