// What a stage file implements and is given: the types of the stage registry (registry.ts), apart from it so
// a stage file depends on these and on the pipeline, never on the registry that lists it.
import type { CompiledListener } from '../../src/config/compile.ts';
import type { Cluster } from '../cluster.ts';
import type { Stage } from '../pipeline.ts';
import type { StageState } from './state.ts';

export type StageProtocol = 'http' | 'tcp';
export type Direction = 'inbound' | 'outbound';

/** What a stage's factory is given for one listener of one Snapshot. */
export interface StageBuild {
  readonly listener: CompiledListener<Cluster>;
  readonly direction: Direction;
  readonly protocol: StageProtocol;
  /** The listener's `stages.<name>` block as the schema parsed it; undefined when absent. */
  readonly config: unknown;
  /** Where state that outlives a reload is kept (state.ts). */
  readonly state: StageState;
}

export interface StageDefinition {
  readonly name: string;
  /** Listener protocols it runs on (WebSocket upgrades run the http chain). */
  readonly protocols: readonly StageProtocol[];
  /** The stage for one listener; null when it has nothing to do there (e.g. no config for it). */
  create(build: StageBuild): Stage | null;
}
