// The built-in engine's own process: pinned to spec.cpu, gone after a run, killed when the run is aborted.
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runLoad } from '../../../bench/load/index.ts';
import type { LoadSpec } from '../../../bench/load/types.ts';
import { startHttp1Server, type TestServer } from './support/servers.ts';
import { waitFor } from '../../support/wait-for.ts';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Our children that run the generator, by pid (read from /proc, never matched by name elsewhere). */
function generatorChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('generator-process')) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

function spec(url: string, over: Partial<LoadSpec>): LoadSpec {
  return {
    url,
    protocol: 'http1',
    mode: 'open',
    engine: 'builtin',
    ratePerS: 100,
    connections: 2,
    durationS: 1,
    ...over,
  };
}

describe('the generator process', () => {
  it('runs pinned to spec.cpu and exits when the run is over', async () => {
    server = await startHttp1Server();
    const run = runLoad(spec(server.url, { cpu: 0, durationS: 2 }));
    await waitFor(() => generatorChildren().length === 1, 5000);
    const [pid] = generatorChildren();
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(/Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1]).toBe('0');
    expect((await run).requests).toBe(200);
    await waitFor(() => generatorChildren().length === 0, 5000);
  });

  it('is killed when the run’s signal aborts, and sends nothing more', async () => {
    server = await startHttp1Server();
    const controller = new AbortController();
    const run = runLoad(spec(server.url, { durationS: 30 }), controller.signal);
    await waitFor(() => server!.arrivals.length > 20, 10_000);
    controller.abort(new Error('enough'));
    await expect(run).rejects.toThrow('enough');
    await waitFor(() => generatorChildren().length === 0, 5000);
    const count = server.arrivals.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.arrivals.length).toBe(count);
  });
});
