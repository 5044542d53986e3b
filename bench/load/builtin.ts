// The 'builtin' engine: runs the generator (generator.ts) in a child process of its own, pinned to spec.cpu
// when given, so nothing the orchestrator does can delay its timetable; the result comes back over IPC.
import { spawn } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromGenerator, ToGenerator } from './generator-process.ts';
import type { GeneratorTuning } from './generator.ts';
import { assertSpec } from './spec-check.ts';
import type { LoadResult, LoadSpec } from './types.ts';

const HERE = fileURLToPath(import.meta.url);
const ENTRY = fileURLToPath(new URL(`./generator-process${extname(HERE)}`, import.meta.url));

/** Node options for the generator: a young generation large enough that scavenges are rare and short. */
const NODE_FLAGS = ['--max-semi-space-size=16'];

/** Keeps the last few KB of the child's stderr for error messages. */
function tail(text: string): string {
  return text.length > 4000 ? `…${text.slice(-4000)}` : text;
}

export async function runBuiltin(spec: LoadSpec, signal?: AbortSignal, tuning?: GeneratorTuning): Promise<LoadResult> {
  assertSpec(spec);
  signal?.throwIfAborted();
  if (extname(HERE) === '.ts' && Number(process.versions.node.split('.')[0]) < 23) {
    throw new Error(`the generator runs TypeScript directly and needs Node ≥ 23 (this is ${process.version})`);
  }
  const argv = [process.execPath, ...NODE_FLAGS, ENTRY];
  const [cmd, ...args] = spec.cpu === undefined ? argv : ['taskset', '-c', String(spec.cpu), ...argv];
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // As a user would run it: none of a test runner's or the orchestrator's Node options.
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr = tail(stderr + s)));
  return new Promise<LoadResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = (): void => {
      child.kill('SIGKILL');
      settle(() => reject(signal!.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (msg: FromGenerator) => {
      if (msg.type === 'result') settle(() => resolve(msg.result));
      else settle(() => reject(new Error(`load generator failed: ${msg.message}`)));
    });
    child.on('error', (err) => settle(() => reject(new Error(`could not start the load generator: ${err.message}`))));
    // 'close', not 'exit': it comes after the IPC channel is drained, so a result sent last is never lost.
    child.on('close', (code, sig) => {
      settle(() => reject(new Error(`load generator exited with ${code ?? sig} before reporting:\n${tail(stderr)}`)));
    });
    const run: ToGenerator = { type: 'run', spec, tuning };
    child.send(run);
  });
}
