// The fault stage: per route, delays a share of requests (they then go on, flagged DI) and aborts a share with
// the policy's status (flag FI; a gRPC status for gRPC), for chaos tests. Left out of a listener none of whose
// routes has a `fault` policy; a delayed request waits on a timer, and the runner drops it if the client left.
import { fastRandom } from '../../src/lb/fast-random.ts';
import { chosen, type CompiledFault, compileFault } from '../../src/resilience/fault.ts';
import { faultAbortReply, FLAG, type LocalReply } from '../flags.ts';
import type { RequestVerdict } from '../pipeline.ts';
import type { StageDefinition } from './types.ts';

export const faultStage: StageDefinition = {
  name: 'fault',
  protocols: ['http'],
  create({ listener }) {
    const routes = listener.config.routes;
    // By the route's index in the config (CompiledRoute.index): one array read per request.
    const faults: (CompiledFault<LocalReply> | undefined)[] = routes.map((r) =>
      r.fault === undefined ? undefined : compileFault(r.fault, faultAbortReply),
    );
    if (faults.every((f) => f === undefined)) return null;
    return {
      name: 'fault',
      onRequest(ctx) {
        const fault = faults[ctx.route!.index];
        if (fault === undefined || (fault.applies !== null && !fault.applies(ctx))) return null;
        if (fault.abort !== null && chosen(fault.abortShare, fastRandom())) return fault.abort;
        if (fault.delayMs > 0 && chosen(fault.delayShare, fastRandom())) {
          ctx.flag = FLAG.DelayInjected;
          return new Promise<RequestVerdict>((resolve) => setTimeout(resolve, fault.delayMs, null));
        }
        return null;
      },
    };
  },
};
