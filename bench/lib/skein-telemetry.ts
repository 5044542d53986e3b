// The config of the `skein-telemetry` bench target: skein with the whole observability chain that exists turned on
// (Prometheus metrics, OpenTelemetry traces sampled 1% to an OTLP endpoint, the access log sampled 1% to a file)
// and a header-match route evaluated before the catch-all, so the figures show what telemetry and routing cost.
import { stringify } from 'yaml';
import type { ConfigInput } from '../../src/config/schema.ts';

export interface TelemetrySinks {
  /** The admin listener, which serves /metrics. */
  readonly adminPort: number;
  /** OTLP/HTTP traces endpoint: the harness's throwaway sink (answers 200), or any URL: the proxy must not care. */
  readonly otlpEndpoint: string;
  readonly accessLogPath: string;
}

/** The route the header rule sends to: matched by no benchmark request, so every request evaluates and passes it. */
export const CANARY_HEADER = 'x-bench-canary';

export function skeinTelemetryConfigObject(
  opts: TelemetrySinks & { readonly port: number; readonly originPort: number },
): ConfigInput {
  return {
    service: 'bench-client',
    admin: { address: `127.0.0.1:${opts.adminPort}` },
    telemetry: {
      metrics: { enabled: true },
      tracing: { enabled: true, endpoint: opts.otlpEndpoint, samplingRatio: 0.01 },
      accessLog: { enabled: true, path: opts.accessLogPath, sampleRatio: 0.01 },
    },
    listeners: [
      {
        name: 'bench',
        address: `127.0.0.1:${opts.port}`,
        routes: [
          {
            name: 'canary-header',
            priority: 10,
            match: { headers: [{ name: CANARY_HEADER, exact: 'true' }] },
            cluster: 'origin-canary',
          },
          { name: 'default', match: { pathPrefix: '/' }, cluster: 'origin' },
        ],
      },
    ],
    clusters: ['origin', 'origin-canary'].map((name) => ({
      name,
      service: 'bench-origin',
      discovery: { type: 'static' as const, endpoints: [{ address: `127.0.0.1:${opts.originPort}` }] },
    })),
  };
}

/** The plain skein target's quick-form config with per-request metrics off: the other half of "what metrics cost". */
export function skeinMetricsOffConfig(opts: { readonly port: number; readonly originPort: number }): string {
  const config: ConfigInput = {
    telemetry: { metrics: { enabled: false } },
    listeners: [{ name: 'bench', address: `127.0.0.1:${opts.port}`, routes: [{ name: 'default', cluster: 'origin' }] }],
    clusters: [
      { name: 'origin', discovery: { type: 'static', endpoints: [{ address: `127.0.0.1:${opts.originPort}` }] } },
    ],
  };
  return `# skein-no-metrics bench target (written by skein bench): the quick form with metrics off.\n${stringify(config)}`;
}

export function skeinTelemetryConfig(
  opts: TelemetrySinks & { readonly port: number; readonly originPort: number },
): string {
  return `# skein-telemetry bench target (written by skein bench): full observability chain + a header route.\n${stringify(
    skeinTelemetryConfigObject(opts),
  )}`;
}
