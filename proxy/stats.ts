// Counters the admin listener exposes until the telemetry module (prom-client) replaces them: requests by
// listener, status class and response flag, requests in flight, downstream connections, protocol errors.
import type { RequestContext } from './context.ts';

export class ProxyStats {
  /** "listener|class|flag" → count. Label sets are bounded: listeners × 5 classes × ~12 flags. */
  private readonly requests = new Map<string, number>();
  private readonly connectionsActive = new Map<string, number>();
  private readonly connectionsTotal = new Map<string, number>();
  private readonly protocolErrors = new Map<string, number>();
  private readonly tcp = new Map<string, number>();
  /** Requests started and not yet finished, across listeners; drain waits for it to reach 0. */
  inFlight = 0;
  configVersion = 0;
  configReloadFailures = 0;

  onRequestEnd(listener: string, ctx: RequestContext): void {
    const key = `${listener}|${statusClass(ctx.status)}|${ctx.flag}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  onTcpConnectionEnd(listener: string, flag: string): void {
    const key = `${listener}|${flag}`;
    this.tcp.set(key, (this.tcp.get(key) ?? 0) + 1);
  }

  downstreamConnections(listener: string, delta: number): void {
    this.connectionsActive.set(listener, (this.connectionsActive.get(listener) ?? 0) + delta);
    if (delta > 0) this.connectionsTotal.set(listener, (this.connectionsTotal.get(listener) ?? 0) + 1);
  }

  onProtocolError(listener: string, code: string): void {
    const key = `${listener}|${code}`;
    this.protocolErrors.set(key, (this.protocolErrors.get(key) ?? 0) + 1);
  }

  /** Prometheus text exposition. */
  render(): string {
    const lines: string[] = [];
    const family = (name: string, help: string, type: string) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('skein_requests_total', 'Requests finished, by listener, status class and response flag.', 'counter');
    for (const [k, v] of this.requests) {
      const [listener, cls, flag] = k.split('|');
      lines.push(`skein_requests_total{listener="${listener}",status_class="${cls}",response_flag="${flag}"} ${v}`);
    }
    family('skein_requests_active', 'Requests in flight.', 'gauge');
    lines.push(`skein_requests_active ${this.inFlight}`);
    family('skein_downstream_connections_active', 'Open downstream connections.', 'gauge');
    for (const [k, v] of this.connectionsActive) lines.push(`skein_downstream_connections_active{listener="${k}"} ${v}`);
    family('skein_downstream_connections_total', 'Downstream connections accepted.', 'counter');
    for (const [k, v] of this.connectionsTotal) lines.push(`skein_downstream_connections_total{listener="${k}"} ${v}`);
    family('skein_downstream_protocol_errors_total', 'Malformed requests rejected, by parser error code.', 'counter');
    for (const [k, v] of this.protocolErrors) {
      const [listener, code] = k.split('|');
      lines.push(`skein_downstream_protocol_errors_total{listener="${listener}",code="${code}"} ${v}`);
    }
    family('skein_tcp_connections_total', 'TCP passthrough connections finished, by response flag.', 'counter');
    for (const [k, v] of this.tcp) {
      const [listener, flag] = k.split('|');
      lines.push(`skein_tcp_connections_total{listener="${listener}",response_flag="${flag}"} ${v}`);
    }
    family('skein_config_version', 'Version of the Snapshot being served.', 'gauge');
    lines.push(`skein_config_version ${this.configVersion}`);
    family('skein_config_reload_failures_total', 'Config reloads rejected (the previous config kept serving).', 'counter');
    lines.push(`skein_config_reload_failures_total ${this.configReloadFailures}`);
    return `${lines.join('\n')}\n`;
  }
}

function statusClass(status: number): string {
  if (status < 100) return 'none';
  return `${Math.floor(status / 100)}xx`;
}
