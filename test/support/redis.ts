// A real redis-server for tests: on a free loopback port, no persistence, stopped by its PID. `stop()` then
// `start()` brings it back on the same port (a Redis outage and its return).
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from './process.ts';
import { tryConnect } from './http-client.ts';
import { waitForAsync } from './wait-for.ts';

export interface RunningRedis {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL, by PID) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  start(): Promise<void>;
}

export async function startRedis(): Promise<RunningRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();

  async function start(): Promise<void> {
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    proc.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    proc.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    child = proc;
    try {
      await waitForAsync(async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited: ${output}`);
        return (await tryConnect(port)) === 'connected' && output.includes('Ready to accept connections');
      }, 10_000);
    } catch (err) {
      await stop();
      throw err;
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = null;
    if (proc === null || proc.exitCode !== null || proc.pid === undefined) return;
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }

  await start();
  return { port, url: `redis://127.0.0.1:${port}`, stop, start };
}
