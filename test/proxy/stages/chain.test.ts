// A listener's stage chain as compiled from the registry's data: the direction's order, stages left out where
// they do not apply, config blocks checked, and state handed over from one Snapshot's stages to the next's.
import { describe, expect, it } from 'vitest';
import type { CompiledListener } from '../../../src/config/compile.ts';
import type { Cluster } from '../../../proxy/cluster.ts';
import { buildChain, type ChainSources } from '../../../proxy/stages/chain.ts';
import {
  registeredStages,
  registryProblems,
  STAGE_ORDER,
  type StageDefinition,
} from '../../../proxy/stages/registry.ts';
import { StateStore } from '../../../proxy/stages/state.ts';

function listener(extra: Record<string, unknown> = {}): CompiledListener<Cluster> {
  return {
    config: { name: 'main', direction: 'outbound', protocol: 'http', ...extra },
    routes: { routes: [], match: () => undefined },
    tcpCluster: undefined,
  } as never;
}

/** A stage that counts the requests it saw in state kept across Snapshots. */
function counting(name: string, protocols: StageDefinition['protocols'] = ['http']): StageDefinition {
  return {
    name,
    protocols,
    create({ state, config }) {
      const seen = state.get('seen', () => ({ n: 0 }));
      return {
        name,
        onRequest() {
          seen.n += (config as { step?: number } | undefined)?.step ?? 1;
          return null;
        },
        onFinish() {},
      };
    },
  };
}

function sources(defs: StageDefinition[], outbound: string[], inbound: string[] = []): ChainSources {
  return { definitions: new Map(defs.map((d) => [d.name, d])), order: { outbound, inbound } };
}

describe('stage chain', () => {
  it("follows the direction's order and keeps one list per phase", () => {
    const src = sources([counting('a'), counting('b'), counting('c')], ['c', 'a', 'b'], ['a']);
    const chain = buildChain(listener(), new StateStore(), src);
    expect(chain.names).toEqual(['c', 'a', 'b']);
    expect(chain.request.map((s) => s.name)).toEqual(['c', 'a', 'b']);
    expect(chain.finish).toHaveLength(3);
    expect(chain.result).toHaveLength(0);
    expect(buildChain(listener({ direction: 'inbound' }), new StateStore(), src).names).toEqual(['a']);
  });

  it('leaves out a stage on a listener protocol it does not run on', () => {
    const src = sources([counting('http-only'), counting('both', ['http', 'tcp'])], ['http-only', 'both']);
    expect(buildChain(listener({ protocol: 'tcp' }), new StateStore(), src).names).toEqual(['both']);
  });

  it('refuses a config block for a stage that does not run on the listener, naming it', () => {
    const src = sources([counting('a'), counting('b')], ['a'], ['b']);
    expect(() => buildChain(listener({ stages: { b: {} } }), new StateStore(), src)).toThrow(
      "listener 'main': stages.b: no such stage on a outbound http listener",
    );
  });

  it('gives a stage its config block', () => {
    const store = new StateStore();
    const chain = buildChain(listener({ stages: { a: { step: 5 } } }), store, sources([counting('a')], ['a']));
    chain.request[0].onRequest!(undefined as never);
    const state = store.scope('a', 'main').get('seen', () => ({ n: -1 }));
    expect(state.n).toBe(5);
  });

  it("hands a stage's state to the same stage of the next Snapshot, and lets go of what it no longer asks for", () => {
    const store = new StateStore();
    const disposed: string[] = [];
    const src = sources([counting('a')], ['a']);
    store.beginCompile();
    const first = buildChain(listener(), store, src);
    store.scope('gone', 'main').get('timer', () => ({ dispose: () => disposed.push('gone') }));
    store.commit();
    first.request[0].onRequest!(undefined as never);
    first.request[0].onRequest!(undefined as never);

    store.beginCompile();
    const second = buildChain(listener(), store, src);
    store.commit();
    second.request[0].onRequest!(undefined as never);
    expect(store.scope('a', 'main').get('seen', () => ({ n: -1 })).n).toBe(3);
    expect(disposed).toEqual(['gone']);
  });

  it('keeps the running state when a compiled Snapshot is refused', () => {
    const store = new StateStore();
    store.beginCompile();
    store.scope('a', 'main').get('seen', () => ({ n: 1 }));
    store.commit();
    const before = store.keys();
    store.beginCompile();
    const disposed: string[] = [];
    store.scope('b', 'main').get('new', () => ({ dispose: () => disposed.push('new') }));
    store.abort(before);
    expect([...store.keys()]).toEqual([...before]);
    expect(disposed).toEqual(['new']);
  });
});

describe('stage registry', () => {
  it('is consistent as shipped: every ordered stage registered, every registered stage ordered', () => {
    expect(registryProblems(registeredStages, STAGE_ORDER, [])).toEqual([]);
    // Inbound, authorization comes first: a refused caller costs no route match.
    expect(STAGE_ORDER.inbound[0]).toBe('authorization');
    for (const order of [STAGE_ORDER.outbound, STAGE_ORDER.inbound.slice(1)]) {
      // outlier sees every attempt's result right after route; the pick comes last of the stages an attempt
      // runs, then mirror (its copy goes out right after the real request).
      expect(order.slice(0, 2)).toEqual(['route', 'outlier']);
      expect(order.slice(-2)).toEqual(['lb-pick', 'mirror']);
    }
  });

  it('names each inconsistency', () => {
    const defs = new Map([
      ['a', counting('a')],
      ['lonely', counting('lonely')],
    ]);
    expect(registryProblems(defs, { outbound: ['a', 'a', 'ghost'], inbound: [] }, ['nobody'])).toEqual([
      'outbound order names "a" twice',
      'outbound order names "ghost", which no stage registers',
      'stage "lonely" is registered but in neither direction\'s order',
      'config block stages.nobody has no registered stage',
    ]);
  });
});
