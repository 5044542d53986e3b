// Discovery sources by name: a cluster's `discovery.type` picks the factory registered here.
// Adding a source means adding its file and one registerDiscoverySource line below, never editing a switch.
import type { DiscoveryConfig } from '../config/schema.ts';
import { createDnsSource } from './dns.ts';
import { createFileSource } from './file.ts';
import { createOriginalDstSource } from './original-dst.ts';
import { createStaticSource } from './static.ts';
import type { DiscoverySource } from './types.ts';

export type DiscoveryType = DiscoveryConfig['type'];

export interface DiscoveryOptions {
  /** Directory that relative paths in the config resolve against: the config file's. Default process.cwd(). */
  baseDir?: string;
}

export type DiscoverySourceFactory<T extends DiscoveryType = DiscoveryType> = (
  config: Extract<DiscoveryConfig, { type: T }>,
  options: DiscoveryOptions,
) => DiscoverySource;

const factories = new Map<string, DiscoverySourceFactory>();

/** Makes `type` available to createDiscoverySource; registering a type twice is a bug and throws. */
export function registerDiscoverySource<T extends DiscoveryType>(type: T, factory: DiscoverySourceFactory<T>): void {
  if (factories.has(type)) throw new Error(`discovery source '${type}' is already registered`);
  // Safe: createDiscoverySource only hands a factory configs whose type is the one it was registered under.
  factories.set(type, factory as unknown as DiscoverySourceFactory);
}

/** Builds the source for a validated discovery config; it does nothing until start(). */
export function createDiscoverySource(config: DiscoveryConfig, options: DiscoveryOptions = {}): DiscoverySource {
  const factory = factories.get(config.type);
  if (!factory) {
    const known = [...factories.keys()].join(', ');
    throw new Error(`unknown discovery type '${String(config.type)}' (registered: ${known})`);
  }
  return factory(config, options);
}

registerDiscoverySource('static', createStaticSource);
registerDiscoverySource('file', createFileSource);
registerDiscoverySource('dns', createDnsSource);
registerDiscoverySource('original-dst', createOriginalDstSource);
