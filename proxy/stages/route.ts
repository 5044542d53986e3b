// The route stage: picks the route (HTTP) and, within a weighted split, the destination cluster; the route's
// timeout narrows the request's. A TCP listener has one cluster and no routes: the stage just names it. On a
// listener with `originalDst` (transparent capture), a request no route matched, and every TCP connection, goes
// by the address its client dialed: one Map get in the table compiled with the Snapshot (src/routing/original-dst.ts).
import { fastRandom } from '../../src/lb/fast-random.ts';
import { routeByOriginalDst } from '../../src/routing/original-dst.ts';
import type { CompiledRoute } from '../../src/routing/match.ts';
import type { Cluster } from '../cluster.ts';
import type { RequestContext } from '../context.ts';
import { FLAG, localReply } from '../flags.ts';
import type { Stage } from '../pipeline.ts';
import type { StageDefinition } from './types.ts';

function take(ctx: RequestContext, route: CompiledRoute<Cluster>): void {
  ctx.route = route;
  const cluster = route.clusters.length === 1 ? route.clusters[0] : route.pickCluster(fastRandom());
  ctx.cluster = cluster;
  const timeout = route.timeoutMs ?? cluster.requestTimeoutMs;
  // A gRPC deadline shorter than the route timeout wins (set by the protocol handler beforehand).
  if (ctx.timeoutMs === 0 || (timeout > 0 && timeout < ctx.timeoutMs)) ctx.timeoutMs = timeout;
}

export const routeStage: StageDefinition = {
  name: 'route',
  protocols: ['http', 'tcp'],
  create({ listener, protocol }): Stage {
    const byDst = listener.originalDst;
    // TCP by original destination: a captured tcp listener, or a captured http listener's non-HTTP connections.
    if (protocol === 'tcp' && byDst !== undefined) {
      return {
        name: 'route',
        onRequest(ctx) {
          const route = routeByOriginalDst(byDst, ctx.originalDst?.key);
          ctx.route = route;
          ctx.cluster = route.clusters[0];
          return null;
        },
      };
    }
    const tcpCluster = listener.tcpCluster;
    if (protocol === 'tcp' && tcpCluster !== undefined) {
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
    if (byDst !== undefined) {
      return {
        name: 'route',
        onRequest(ctx) {
          take(ctx, table.match(ctx) ?? routeByOriginalDst(byDst, ctx.originalDst?.key));
          return null;
        },
      };
    }
    return {
      name: 'route',
      onRequest(ctx) {
        const route = table.match(ctx);
        if (route === undefined) return noRoute;
        take(ctx, route);
        return null;
      },
    };
  },
};
