// A real Prometheus (Debian's `prometheus` binary) for end-to-end tests: scrapes the given targets' /metrics every
// second with its TSDB in a test directory, answers PromQL over its HTTP API, and is stopped by PID.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './process.ts';
import { waitForAsync } from './wait-for.ts';

/** One sample of an instant vector (`data.result[]` of Prometheus's HTTP API). */
export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface RunningPrometheus {
  readonly url: string;
  output(): string;
  /** Instant query: the result vector, or an error with Prometheus's message. */
  query(promql: string): Promise<VectorSample[]>;
  /** The raw JSON answer of an instant query (as the canary controller reads it). */
  queryRaw(promql: string): Promise<unknown>;
  /** SIGTERM by PID, SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

export async function startPrometheus(dir: string, targets: readonly string[]): Promise<RunningPrometheus> {
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: skein
    static_configs:
      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]
`,
  );
  let last = '';
  // A port free a moment ago may be taken before Prometheus binds it: then it exits, and another is tried.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      'prometheus',
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, `tsdb-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (output += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (output += s));
    let running = true;
    const exited = new Promise<void>((resolve) =>
      child.once('close', () => {
        running = false;
        resolve();
      }),
    );
    child.once('error', (err) => (output += `\nspawn: ${err.message} (apt-get install prometheus)`));
    const url = `http://127.0.0.1:${port}`;
    const prometheus: RunningPrometheus = {
      url,
      output: () => output,
      async query(promql) {
        const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const body = (await res.json()) as { status: string; error?: string; data?: { result: VectorSample[] } };
        if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`);
        return body.data!.result;
      },
      async queryRaw(promql) {
        const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
        return res.json();
      },
      async stop() {
        const pid = child.pid;
        if (!running || pid === undefined) return;
        process.kill(pid, 'SIGTERM');
        const killer = setTimeout(() => running && process.kill(pid, 'SIGKILL'), 5_000);
        await exited;
        clearTimeout(killer);
      },
    };
    const outcome = await waitForAsync(async () => {
      if (!running) return 'exited';
      try {
        return (await fetch(`${url}/-/ready`)).status === 200 ? 'ready' : undefined;
      } catch {
        return undefined;
      }
    }, 30_000).catch(() => 'timeout');
    if (outcome === 'ready') return prometheus;
    last = output;
    await prometheus.stop();
  }
  throw new Error(`prometheus did not start:\n${last}`);
}
