// The HTTP/1.1 origin the targets forward to in the nginx phase: one nginx worker answering `200 "ok\n"` with a
// keep-alive that outlasts the run.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** nginx.conf for the origin; `runDir` receives its pid and error log (started with `nginx -p runDir -c …`). */
export function originNginxConfig(port: number, runDir: string): string {
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
    listen 127.0.0.1:${port} backlog=4096;
    location / { return 200 "ok\\n"; }
  }
}
`;
}

/** Writes the origin config into `runDir` and returns the nginx argv to start it in the foreground. */
export function originNginxArgv(port: number, runDir: string): string[] {
  const conf = join(runDir, 'origin.conf');
  writeFileSync(conf, originNginxConfig(port, runDir));
  return ['nginx', '-p', runDir, '-e', join(runDir, 'origin.err'), '-c', conf];
}
