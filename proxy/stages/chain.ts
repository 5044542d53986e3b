// Compiles a listener's stage chain for a Snapshot: its direction's order from the registry, each stage built
// by its factory with its config block and its slice of the state store. Pure: no sockets, no timers; a stage
// that needs those takes them from state it keeps in the store.
import type { CompiledListener } from '../../src/config/compile.ts';
import type { Cluster } from '../cluster.ts';
import { chainOf, type Stage, type StageChain } from '../pipeline.ts';
import { type Direction, registeredStages, STAGE_ORDER, type StageDefinition, type StageProtocol } from './registry.ts';
import type { StateStore } from './state.ts';

export interface ChainSources {
  readonly definitions: ReadonlyMap<string, StageDefinition>;
  readonly order: Readonly<Record<Direction, readonly string[]>>;
}

const REGISTERED: ChainSources = { definitions: registeredStages, order: STAGE_ORDER };

/** `protocol`: the listener's own, or 'tcp' for the passthrough chain of a captured http listener's non-HTTP
 *  connections (ListenerScope.tcpPassthrough). */
export function buildChain(
  listener: CompiledListener<Cluster>,
  store: StateStore,
  sources: ChainSources = REGISTERED,
  protocol: StageProtocol = listener.config.protocol,
): StageChain {
  const cfg = listener.config;
  const direction: Direction = cfg.direction;
  const blocks = (cfg.stages ?? {}) as Record<string, unknown>;
  for (const name of Object.keys(blocks)) {
    const def = sources.definitions.get(name);
    if (def === undefined || !sources.order[direction].includes(name) || !def.protocols.includes(protocol))
      throw new Error(`listener '${cfg.name}': stages.${name}: no such stage on a ${direction} ${protocol} listener`);
  }
  const stages: Stage[] = [];
  for (const name of sources.order[direction]) {
    const def = sources.definitions.get(name);
    if (def === undefined) throw new Error(`pipeline stage "${name}" is not registered`);
    if (!def.protocols.includes(protocol)) continue;
    const stage = def.create({
      listener,
      direction,
      protocol,
      config: blocks[name],
      state: store.scope(name, cfg.name),
    });
    if (stage !== null) stages.push(stage);
  }
  return chainOf(stages);
}
