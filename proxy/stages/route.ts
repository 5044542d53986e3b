// The route stage: picks the route (HTTP) and, within a weighted split, the destination cluster; the route's
// timeout narrows the request's. A TCP listener has one cluster and no routes: the stage just names it.
import { fastRandom } from '../../src/lb/fast-random.ts';
import { FLAG, localReply } from '../flags.ts';
import type { Stage } from '../pipeline.ts';
import type { StageDefinition } from './types.ts';

export const routeStage: StageDefinition = {
  name: 'route',
  protocols: ['http', 'tcp'],
  create({ listener }): Stage {
    const tcpCluster = listener.tcpCluster;
    if (tcpCluster !== undefined) {
      return {
        name: 'route',
        onRequest(ctx) {
          ctx.cluster = tcpCluster;
          return null;
        },
      };
    }
    const table = listener.routes;
    const noRoute = localReply(FLAG.NoRoute);
    return {
      name: 'route',
      onRequest(ctx) {
        const route = table.match(ctx);
        if (route === undefined) return noRoute;
        ctx.route = route;
        const cluster = route.clusters.length === 1 ? route.clusters[0] : route.pickCluster(fastRandom());
        ctx.cluster = cluster;
        const timeout = route.timeoutMs ?? cluster.requestTimeoutMs;
        // A gRPC deadline shorter than the route timeout wins (set by the protocol handler beforehand).
        if (ctx.timeoutMs === 0 || (timeout > 0 && timeout < ctx.timeoutMs)) ctx.timeoutMs = timeout;
        return null;
      },
    };
  },
};
