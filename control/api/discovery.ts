// GET /v1/discovery: what discovery sources hold (today Kubernetes): each watch's state, and the services
// discovered, with whether an API-written service of the same id shadows one. Read only: discovered services
// change with the cluster, never through the API.
import type { Route } from '../http.ts';
import type { KubernetesDiscovery } from '../kubernetes/discovery.ts';
import type { TrafficModel } from '../traffic.ts';

export function discoveryRoutes(model: TrafficModel, kubernetes: () => KubernetesDiscovery | undefined): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/discovery',
      doc: {
        summary:
          'Discovery sources (Kubernetes: each watch, its resourceVersion and errors) and the services they found',
      },
      handle: () => ({
        json: { kubernetes: kubernetes()?.status() ?? null, services: model.discovered('kubernetes') },
      }),
    },
  ];
}
