// Pipeline stages by name, and the order they run in per direction. A stage is one file exporting a
// StageDefinition plus one line here; its config block, if it takes one, is declared in src/config/stages.ts.
// The order is data: a listener's chain is its direction's list, each stage built by its factory for that
// listener (or left out where it does not apply), and the registry checks itself when it loads.
import { STAGE_CONFIGS } from '../../src/config/stages.ts';
import { authorizationStage } from './authorization.ts';
import { faultStage } from './fault.ts';
import { breakerStage } from './breaker.ts';
import { rateLimitStage } from './rate-limit.ts';
import { lbPickStage } from './lb-pick.ts';
import { mirrorStage } from './mirror.ts';
import { outlierStage } from './outlier.ts';
import { retryStage } from './retry.ts';
import { routeStage } from './route.ts';

// The types a stage file needs live in types.ts, so stage files never import this registry (no import cycle).
export type { Direction, StageBuild, StageDefinition, StageProtocol } from './types.ts';
import type { Direction, StageDefinition } from './types.ts';

/**
 * The order per direction (ARCHITECTURE.md). Built: authorization, route, outlier, fault, rate limit, retry,
 * breaker, LB pick and mirror.
 * identity → authorization, first on inbound listeners: the identity is on the context already (the listener
 * verified the connection's peer, peer.ts), so authorization is the stage; it runs before route, so a refused
 * caller costs no route match and learns nothing of the routes (no NR for it).
 * The breaker runs inbound too: a cluster shared with an outbound listener must give back its probe slots.
 * Retry runs inbound too, but only where a route or the listener asks for it (outbound: Istio's default policy).
 * It comes before the breaker and the pick: its backoff wait runs before each further attempt is admitted.
 */
export const STAGE_ORDER: Readonly<Record<Direction, readonly string[]>> = {
  // outlier right after route: it sees every attempt's result (it has no request phase of its own).
  // mirror last: its copy goes out after the real request (forward() runs right after the last stage).
  inbound: ['authorization', 'route', 'outlier', 'fault', 'rate-limit', 'retry', 'breaker', 'lb-pick', 'mirror'],
  outbound: ['route', 'outlier', 'fault', 'rate-limit', 'retry', 'breaker', 'lb-pick', 'mirror'],
};

const definitions = new Map<string, StageDefinition>();

export function registerStage(def: StageDefinition): void {
  if (definitions.has(def.name)) throw new Error(`pipeline stage "${def.name}" is already registered`);
  definitions.set(def.name, def);
}

export function stageDefinition(name: string): StageDefinition | undefined {
  return definitions.get(name);
}

/**
 * Problems with a registry, its order and the config blocks: a name in an order that nothing registered, a
 * name twice in one order, a registered stage in no order, a config block with no stage. Empty: consistent.
 */
export function registryProblems(
  defs: ReadonlyMap<string, StageDefinition>,
  order: Readonly<Record<Direction, readonly string[]>>,
  configNames: readonly string[],
): string[] {
  const problems: string[] = [];
  for (const [direction, names] of Object.entries(order)) {
    const seen = new Set<string>();
    for (const name of names) {
      if (!defs.has(name)) problems.push(`${direction} order names "${name}", which no stage registers`);
      if (seen.has(name)) problems.push(`${direction} order names "${name}" twice`);
      seen.add(name);
    }
  }
  for (const name of defs.keys()) {
    if (!order.inbound.includes(name) && !order.outbound.includes(name))
      problems.push(`stage "${name}" is registered but in neither direction's order`);
  }
  for (const name of configNames) {
    if (!defs.has(name)) problems.push(`config block stages.${name} has no registered stage`);
  }
  return problems;
}

registerStage(authorizationStage);
registerStage(routeStage);
registerStage(faultStage);
registerStage(lbPickStage);
registerStage(outlierStage);
registerStage(breakerStage);
registerStage(rateLimitStage);
registerStage(retryStage);
registerStage(mirrorStage);

const problems = registryProblems(definitions, STAGE_ORDER, Object.keys(STAGE_CONFIGS));
if (problems.length > 0) throw new Error(`pipeline stage registry is inconsistent:\n  ${problems.join('\n  ')}`);

export { definitions as registeredStages };
