// A throwaway OTLP/HTTP endpoint for the skein-telemetry target: accepts trace exports, answers 200 with an empty
// (valid) ExportTraceServiceResponse and counts what arrived, so span export costs the proxy what it would in
// production without a collector on the machine. Runs inside the harness, on the load CPU.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OtlpSink {
  readonly url: string;
  /** Export requests and bytes received so far. */
  stats(): { readonly requests: number; readonly bytes: number };
  close(): Promise<void>;
}

export async function startOtlpSink(host = '127.0.0.1'): Promise<OtlpSink> {
  let requests = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      requests++;
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': 0 }).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/v1/traces`,
    stats: () => ({ requests, bytes }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
