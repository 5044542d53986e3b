// The origin every target forwards to: one nginx worker answering `200 "ok\n"` with keep-alive, plus stub_status
// on a second port whose connection counter shows how many upstream connections a proxy opened (keep-alive reuse).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpGetText } from './http-check.ts';

export interface OriginPorts {
  readonly port: number;
  readonly statusPort: number;
}

/** nginx.conf for the origin; `runDir` receives its pid and error log (started with `nginx -p runDir -c …`). */
export function originNginxConfig(ports: OriginPorts, runDir: string): string {
  return `# Benchmark origin: one worker, fixed 3-byte answer, keep-alive that never expires during a run.
worker_processes 1;
daemon off;
pid ${join(runDir, 'origin.pid')};
error_log ${join(runDir, 'origin.err')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/plain;
  # Connections are never closed for count or idleness, so proxies' pooled upstream sockets survive between rounds.
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${ports.port} backlog=4096;
    location / { return 200 "ok\\n"; }
  }
  server {
    listen 127.0.0.1:${ports.statusPort};
    location / { stub_status; }
  }
}
`;
}

/** Writes the origin config into `runDir` and returns the nginx argv to start it in the foreground. */
export function originNginxArgv(ports: OriginPorts, runDir: string): string[] {
  const conf = join(runDir, 'origin.conf');
  writeFileSync(conf, originNginxConfig(ports, runDir));
  return ['nginx', '-p', runDir, '-e', join(runDir, 'origin.err'), '-c', conf];
}

/** nginx stub_status counters since the origin started. */
export interface OriginCounters {
  /** Connections accepted, including the one used to read these counters. */
  readonly accepts: number;
  /** Requests served, including the stub_status request itself. */
  readonly requests: number;
}

/** Parses stub_status text ("Active connections: 1 \n server accepts handled requests\n 5 5 9 \n…"). */
export function parseStubStatus(text: string): OriginCounters {
  const m = /server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)/.exec(text);
  if (!m) throw new Error(`unexpected stub_status output: ${text.slice(0, 200)}`);
  return { accepts: Number(m[1]), requests: Number(m[3]) };
}

export async function readOriginCounters(statusPort: number): Promise<OriginCounters> {
  const res = await httpGetText(statusPort, '/');
  if (res.status !== 200) throw new Error(`stub_status answered HTTP ${res.status}`);
  return parseStubStatus(res.body);
}

/**
 * What the origin saw between two readings, minus the later reading's own connection and request
 * (each reading is counted by the counters it returns).
 */
export function originDelta(before: OriginCounters, after: OriginCounters): OriginCounters {
  return { accepts: after.accepts - before.accepts - 1, requests: after.requests - before.requests - 1 };
}
