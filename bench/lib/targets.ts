// The proxies the core benchmark puts between wrk and the origin, and how to start each one listening on `port`
// and forwarding to the origin: configs for nginx and HAProxy, argv for the Node targets, skein's CLI or a custom command.
import { existsSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

export const TARGET_NAMES = ['direct', 'nginx', 'haproxy', 'naive-undici', 'skein'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export function isTargetName(s: string): s is TargetName {
  return (TARGET_NAMES as readonly string[]).includes(s);
}

export interface TargetContext {
  readonly port: number;
  readonly originPort: number;
  /** Where configs and logs are written. */
  readonly runDir: string;
  /** The repository root (bin/skein.js, bench/targets/). */
  readonly projectDir: string;
  /** The Node binary running the harness; the Node targets run on the same one. */
  readonly nodePath: string;
  /** Shell command overriding how skein starts; `$PORT` and `$ORIGIN_PORT` are in its environment. */
  readonly skeinCmd?: string;
  /** How long skein may take to answer 200. */
  readonly skeinReadyTimeoutMs: number;
}

export type TargetPlan =
  /** No proxy: wrk talks to the origin itself. */
  | { readonly kind: 'origin' }
  | {
      readonly kind: 'process';
      readonly argv: readonly string[];
      readonly env?: NodeJS.ProcessEnv;
      readonly cwd?: string;
      readonly readyTimeoutMs: number;
      /** One line for the report: what exactly runs. */
      readonly description: string;
    }
  | { readonly kind: 'skip'; readonly reason: string };

export function nginxProxyConfig(ctx: Pick<TargetContext, 'port' | 'originPort' | 'runDir'>): string {
  return `# nginx as reverse proxy: one worker, HTTP/1.1 keep-alive pool to the origin.
worker_processes 1;
daemon off;
pid ${join(ctx.runDir, 'nginx-proxy.pid')};
error_log ${join(ctx.runDir, 'nginx-proxy.err')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream origin {
    server 127.0.0.1:${ctx.originPort};
    keepalive 128;                # idle upstream connections kept by the worker
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${ctx.port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;     # keep-alive upstream needs 1.1 and an empty Connection header
      proxy_set_header Connection "";
    }
  }
}
`;
}

export function haproxyConfig(ctx: Pick<TargetContext, 'port' | 'originPort'>): string {
  return `# HAProxy in HTTP mode: one thread, idle server connections shared between clients.
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend fe
  bind 127.0.0.1:${ctx.port}
  default_backend be
backend be
  server origin 127.0.0.1:${ctx.originPort}
`;
}

// Through the executable's shebang, so the proxy runs with the Node flags it ships with.
const SKEIN_DEFAULT_CMD = 'exec bin/skein.js proxy --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$ORIGIN_PORT';

/** The skein command line as it will be (or would have been) run, for the report. */
export function skeinCommand(ctx: Pick<TargetContext, 'skeinCmd'>): string {
  return ctx.skeinCmd ?? SKEIN_DEFAULT_CMD;
}

export function planTarget(name: TargetName, ctx: TargetContext): TargetPlan {
  const readyTimeoutMs = 10_000;
  switch (name) {
    case 'direct':
      return { kind: 'origin' };
    case 'nginx': {
      const conf = join(ctx.runDir, 'nginx-proxy.conf');
      writeFileSync(conf, nginxProxyConfig(ctx));
      return {
        kind: 'process',
        argv: ['nginx', '-p', ctx.runDir, '-e', join(ctx.runDir, 'nginx-proxy.err'), '-c', conf],
        readyTimeoutMs,
        description:
          'nginx, worker_processes 1, proxy_pass to an upstream block with keepalive 128, proxy_http_version 1.1',
      };
    }
    case 'haproxy': {
      const conf = join(ctx.runDir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConfig(ctx));
      return {
        kind: 'process',
        argv: ['haproxy', '-db', '-f', conf],
        readyTimeoutMs,
        description: 'HAProxy, mode http, nbthread 1, http-reuse always',
      };
    }
    case 'naive-undici':
      return {
        kind: 'process',
        argv: [
          ctx.nodePath,
          join(ctx.projectDir, 'bench/targets/naive-undici.ts'),
          String(ctx.port),
          String(ctx.originPort),
        ],
        cwd: ctx.projectDir,
        readyTimeoutMs,
        description: `bench/targets/naive-undici.ts on Node ${process.version}: node:http server + undici Pool.request, headers copied per request`,
      };
    case 'skein': {
      if (ctx.skeinCmd === undefined && !existsSync(join(ctx.projectDir, 'bin/skein.js'))) {
        return { kind: 'skip', reason: 'bin/skein.js does not exist yet (use --skein-cmd to start skein another way)' };
      }
      // Through bash so a custom command can use $PORT/$ORIGIN_PORT; `node` resolves to the harness's own Node.
      return {
        kind: 'process',
        argv: ['bash', '-c', skeinCommand(ctx)],
        cwd: ctx.projectDir,
        env: {
          ...process.env,
          PORT: String(ctx.port),
          ORIGIN_PORT: String(ctx.originPort),
          PATH: `${dirname(ctx.nodePath)}${delimiter}${process.env.PATH ?? ''}`,
        },
        readyTimeoutMs: ctx.skeinReadyTimeoutMs,
        description: `\`${skeinCommand(ctx)}\` (run with bash -c in the repository root)`,
      };
    }
  }
}
