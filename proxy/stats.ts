// Counters the admin listener exposes until the telemetry module (prom-client) replaces them: requests by
// listener, status class and response flag, requests in flight, downstream connections, protocol errors.
// The per-request update is one array increment: labels are resolved to indexes, not joined into keys.
import type { RequestContext } from './context.ts';
import { FLAG } from './flags.ts';

const FLAGS: readonly string[] = ['', ...Object.values(FLAG)];
const FLAG_INDEX = new Map(FLAGS.map((f, i) => [f, i]));
const CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** Request counts of one listener: [status class][flag] flattened. */
class ListenerCounters {
  readonly requests = new Float64Array(CLASSES.length * FLAGS.length);
  connectionsActive = 0;
  connectionsTotal = 0;
  readonly protocolErrors = new Map<string, number>();
  readonly tcp = new Map<string, number>();
}

export class ProxyStats {
  private readonly listeners = new Map<string, ListenerCounters>();
  /** Requests started and not yet finished, across listeners; drain waits for it to reach 0. */
  inFlight = 0;
  configVersion = 0;
  configReloadFailures = 0;

  private of(listener: string): ListenerCounters {
    let c = this.listeners.get(listener);
    if (c === undefined) this.listeners.set(listener, (c = new ListenerCounters()));
    return c;
  }

  onRequestEnd(listener: string, ctx: RequestContext): void {
    const s = ctx.status;
    const cls = s < 100 || s > 599 ? 0 : (s / 100) | 0;
    this.of(listener).requests[cls * FLAGS.length + (FLAG_INDEX.get(ctx.flag) ?? 0)]++;
  }

  onTcpConnectionEnd(listener: string, flag: string): void {
    const m = this.of(listener).tcp;
    m.set(flag, (m.get(flag) ?? 0) + 1);
  }

  downstreamConnections(listener: string, delta: number): void {
    const c = this.of(listener);
    c.connectionsActive += delta;
    if (delta > 0) c.connectionsTotal++;
  }

  onProtocolError(listener: string, code: string): void {
    const m = this.of(listener).protocolErrors;
    m.set(code, (m.get(code) ?? 0) + 1);
  }

  /** Prometheus text exposition. */
  render(): string {
    const lines: string[] = [];
    const family = (name: string, help: string, type: string) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('skein_requests_total', 'Requests finished, by listener, status class and response flag.', 'counter');
    for (const [l, c] of this.listeners) {
      c.requests.forEach((v, i) => {
        if (v === 0) return;
        const cls = CLASSES[Math.floor(i / FLAGS.length)];
        lines.push(
          `skein_requests_total{listener="${l}",status_class="${cls}",response_flag="${FLAGS[i % FLAGS.length]}"} ${v}`,
        );
      });
    }
    family('skein_requests_active', 'Requests in flight.', 'gauge');
    lines.push(`skein_requests_active ${this.inFlight}`);
    family('skein_downstream_connections_active', 'Open downstream connections.', 'gauge');
    for (const [l, c] of this.listeners)
      lines.push(`skein_downstream_connections_active{listener="${l}"} ${c.connectionsActive}`);
    family('skein_downstream_connections_total', 'Downstream connections accepted.', 'counter');
    for (const [l, c] of this.listeners)
      lines.push(`skein_downstream_connections_total{listener="${l}"} ${c.connectionsTotal}`);
    family('skein_downstream_protocol_errors_total', 'Malformed requests rejected, by parser error code.', 'counter');
    for (const [l, c] of this.listeners)
      for (const [code, v] of c.protocolErrors)
        lines.push(`skein_downstream_protocol_errors_total{listener="${l}",code="${code}"} ${v}`);
    family('skein_tcp_connections_total', 'TCP passthrough connections finished, by response flag.', 'counter');
    for (const [l, c] of this.listeners)
      for (const [flag, v] of c.tcp)
        lines.push(`skein_tcp_connections_total{listener="${l}",response_flag="${flag}"} ${v}`);
    family('skein_config_version', 'Version of the Snapshot being served.', 'gauge');
    lines.push(`skein_config_version ${this.configVersion}`);
    family(
      'skein_config_reload_failures_total',
      'Config reloads rejected (the previous config kept serving).',
      'counter',
    );
    lines.push(`skein_config_reload_failures_total ${this.configReloadFailures}`);
    return `${lines.join('\n')}\n`;
  }
}
