// The redis-server the skein-full-global target keeps its shared rate limit in: started for the run on a free
// loopback port (no persistence, files in the run directory), ready once it answers PING.
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { missingTools } from './prereqs.ts';

/** Why redis-server cannot be started here; undefined when it is on PATH. */
export function redisServerMissing(): string | undefined {
  return missingTools({ 'redis-server': 'redis-server' }).length > 0
    ? 'redis-server is not installed (apt-get install -y redis-server)'
    : undefined;
}

/** redis-server in the foreground on 127.0.0.1:`port`: no snapshots, no append-only file, logs to stdout. */
export function redisServerArgv(port: number, dir: string): string[] {
  return [
    'redis-server',
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'no',
    '--dir',
    dir,
  ];
}

/** One PING on a fresh connection: resolves true on +PONG, false on anything else (refused, closed, timeout). */
function ping(port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

/** Polls PING every 100 ms for at most `timeoutMs`; undefined when Redis answered, otherwise why not. */
export async function waitForRedis(
  port: number,
  timeoutMs: number,
  gaveUp: () => boolean = () => false,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (gaveUp()) return 'gave up (process exited)';
    if (await ping(port, 1000)) return undefined;
    await sleep(100);
  }
  return `no PONG on 127.0.0.1:${port} within ${timeoutMs / 1000} s`;
}
