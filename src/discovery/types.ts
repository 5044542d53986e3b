// The discovery-source interface: one file per source (static, file, dns), looked up in registry.ts.
// A source pushes the full endpoint list whenever it changes; the cluster diffs it and rebuilds its picker.

export interface DiscoveredEndpoint {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface DiscoveryEvents {
  /** The complete current list (never a delta). Called at least once after start() unless the source fails. */
  onEndpoints(endpoints: readonly DiscoveredEndpoint[]): void;
  /** A resolution or read failed; the previous endpoints stay in force. */
  onError(err: Error): void;
}

export interface DiscoverySource {
  start(events: DiscoveryEvents): void;
  /** Stop timers and watchers. */
  close(): void;
}
