// Entry point of the generator's own process (started by builtin.ts): receives one spec over IPC, runs it and
// sends back the result. Its event loop serves only the generator, so the orchestrator's work never delays a
// slot. It exits when the run is over, when its parent goes away, or at a hard deadline.
import { DEFAULT_TIMEOUT_MS, DEFAULT_TUNING, Generator, type GeneratorTuning } from './generator.ts';
import { buildProfile } from './schedule.ts';
import type { LoadResult, LoadSpec } from './types.ts';

export type ToGenerator = { readonly type: 'run'; readonly spec: LoadSpec; readonly tuning?: GeneratorTuning };
export type FromGenerator =
  { readonly type: 'result'; readonly result: LoadResult } | { readonly type: 'error'; readonly message: string };

function reply(msg: FromGenerator): void {
  process.send!(msg, () => process.exit(0));
}

if (process.send === undefined) {
  process.stderr.write('generator-process.ts is started by bench/load/builtin.ts with an IPC channel\n');
  process.exit(2);
}

process.on('disconnect', () => process.exit(1));
process.once('message', (msg: ToGenerator) => {
  const { spec } = msg;
  // Never outlive the run: profile, a full drain and connection setup, plus a margin.
  const deadlineMs = buildProfile(spec).totalMs + 2 * (spec.timeoutMs ?? DEFAULT_TIMEOUT_MS) + 30_000;
  setTimeout(() => {
    process.stderr.write(`generator: still running ${deadlineMs} ms after the start; exiting\n`);
    process.exit(3);
  }, deadlineMs).unref();
  new Generator(spec, msg.tuning ?? DEFAULT_TUNING).run().then(
    (result) => reply({ type: 'result', result }),
    (err: unknown) =>
      reply({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
