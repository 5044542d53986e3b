// The `nginx-tls` bench target: nginx terminating TLS (a certificate from the run's CA, mesh-certs.ts) and proxying
// to the origin over its keep-alive upstream pool, the reference for what TLS costs a C proxy. A plaintext status
// listener (stub_status) gives the accepted connections, which are its handshakes: the generator resumes no
// sessions, so every connection is a full handshake.
import { join } from 'node:path';
import type { CertFiles } from './mesh-certs.ts';

export interface NginxTlsOptions {
  readonly port: number;
  readonly originPort: number;
  /** stub_status on 127.0.0.1:statusPort/nginx_status. */
  readonly statusPort: number;
  readonly runDir: string;
  readonly cert: CertFiles;
}

export const NGINX_STATUS_PATH = '/nginx_status';

export function nginxTlsConfig(o: NginxTlsOptions): string {
  return `# nginx terminating TLS: one worker, TLS 1.2/1.3 with a certificate from the run's CA, keep-alive upstream pool.
worker_processes 1;
daemon off;
pid ${join(o.runDir, 'nginx-tls.pid')};
error_log ${join(o.runDir, 'nginx-tls.err')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream origin {
    server 127.0.0.1:${o.originPort};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${o.port} ssl backlog=4096;
    ssl_certificate ${o.cert.certFile};
    ssl_certificate_key ${o.cert.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
  server {
    listen 127.0.0.1:${o.statusPort};
    location = ${NGINX_STATUS_PATH} { stub_status; }
  }
}
`;
}

/** The "accepts" counter of a stub_status page (connections accepted since start); undefined if absent. */
export function parseStubStatusAccepts(text: string): number | undefined {
  // Active connections: 1 \n server accepts handled requests \n 10 10 20 \n Reading: …
  const m = /server accepts handled requests\s+(\d+)\s+(\d+)\s+(\d+)/.exec(text);
  return m === null ? undefined : Number(m[1]);
}
