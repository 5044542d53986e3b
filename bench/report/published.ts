// Overhead figures Istio, Linkerd and Cilium published about themselves, shown in every report beside ours and
// never mixed with it: different hardware, topologies (two proxies per request in a mesh, one here), payloads and
// harnesses. Each entry was read in the cited source; a figure that could not be found in a source stays out.
// Not included for that reason: Cilium's L7 (per-node Envoy) overhead per request, which its docs and blog posts
// show only in charts; Istio 1.24's sidecar p90/p99 latency, likewise published only as charts.
import type { PublishedFigure } from './model.ts';

const ISTIO_CURRENT = 'https://istio.io/latest/docs/ops/deployment/performance-and-scalability/';
const ISTIO_CURRENT_SOURCE = 'Istio docs, "Performance and Scalability" (Istio 1.24 figures)';
const ISTIO_1_24_LOAD = 'Istio 1.24, 1,000 HTTP req/s with a 1 KB payload each';

const LINKERD_2021 = 'https://linkerd.io/2021/11/29/linkerd-vs-istio-benchmarks-2021/';
const LINKERD_2021_SOURCE = 'Linkerd blog, "Benchmarking Linkerd and Istio: 2021 Redux" (2021-11-29)';
const LINKERD_2021_SETUP =
  'Linkerd 2.11.1 default install, mutual TLS on; Kinvolk service-mesh-benchmark harness at 2,000 req/s, latency ' +
  'seen by the client through a small microservice app (several proxies per request); bare-metal Equinix Metal ' +
  's3.xlarge.x86 nodes; mean over runs';

const CILIUM_BENCH = 'https://docs.cilium.io/en/stable/operations/performance/benchmark/';
const CILIUM_BENCH_SOURCE = 'Cilium docs, "CNI Performance Benchmark"';
const CILIUM_BENCH_SETUP =
  'Cilium 1.9.6 with eBPF host-routing and kube-proxy replacement, no connection tracking; netperf between ' +
  'containers on two bare-metal nodes (AMD Ryzen 9 3950X) connected back to back at 100 Gbit/s; L3/L4 datapath, ' +
  'no L7 proxy in the path';

export const PUBLISHED_FIGURES: readonly PublishedFigure[] = [
  {
    mesh: 'istio',
    metric: 'sidecar proxy CPU and memory at 1,000 req/s',
    value: '0.20 vCPU, 60 MB',
    conditions: `${ISTIO_1_24_LOAD}; one sidecar (Envoy) with 2 worker threads`,
    source: ISTIO_CURRENT_SOURCE,
    url: ISTIO_CURRENT,
  },
  {
    mesh: 'istio',
    metric: 'waypoint proxy CPU and memory at 1,000 req/s',
    value: '0.25 vCPU, 60 MB',
    conditions: `${ISTIO_1_24_LOAD}; ambient mode, one waypoint (Envoy) with 2 worker threads`,
    source: ISTIO_CURRENT_SOURCE,
    url: ISTIO_CURRENT,
  },
  {
    mesh: 'istio',
    metric: 'ztunnel CPU and memory at 1,000 req/s',
    value: '0.06 vCPU, 12 MB',
    conditions: `${ISTIO_1_24_LOAD}; ambient mode, one ztunnel (L4 only)`,
    source: ISTIO_CURRENT_SOURCE,
    url: ISTIO_CURRENT,
  },
  {
    mesh: 'istio',
    metric: 'added p90 / p99 latency, ambient L4 (two ztunnels)',
    value: '0.17 ms / 0.20 ms',
    conditions:
      'Istio 1.22 ambient mode (secure L4 overlay), mutual TLS; http/1.1, 1 kB payload, 1,000 req/s, 1–64 client ' +
      'connections, 2 proxy workers; CNCF Community Infrastructure Lab hardware',
    source: 'Istio docs, "Performance and Scalability" (Istio 1.22 figures, archived with the 1.23 docs)',
    url: 'https://istio.io/v1.23/docs/ops/deployment/performance-and-scalability/',
  },
  {
    mesh: 'istio',
    metric: 'added p90 / p99 latency, sidecars (client + server)',
    value: '0.228 ms / 0.298 ms',
    conditions:
      'Istio 1.20 default sidecar configuration (telemetry v2), mutual TLS; http/1.1, 1 kB payload, 1,000 req/s, ' +
      '2–64 client connections, 2 proxy workers',
    source: 'Istio docs, "Performance and Scalability" (Istio 1.20, docs source on the release-1.20 branch)',
    url: 'https://github.com/istio/istio.io/blob/release-1.20/content/en/docs/ops/deployment/performance-and-scalability/index.md',
  },
  {
    mesh: 'linkerd',
    metric: 'added median / max latency at 2,000 req/s',
    value: '6 ms / 42 ms (baseline without a mesh: 6 ms / 84 ms)',
    conditions: LINKERD_2021_SETUP,
    source: LINKERD_2021_SOURCE,
    url: LINKERD_2021,
  },
  {
    mesh: 'linkerd',
    metric: 'data-plane proxy memory and CPU at 2,000 req/s',
    value: '26.3 MB maximum memory per proxy; 36 ms maximum proxy CPU time (as published)',
    conditions: LINKERD_2021_SETUP,
    source: LINKERD_2021_SOURCE,
    url: LINKERD_2021,
  },
  {
    mesh: 'cilium',
    metric: 'TCP request/response rate (netperf TCP_RR), 32 connections',
    value: 'close to 1M requests/s at about 30% of the system CPU on sender and receiver',
    conditions: `${CILIUM_BENCH_SETUP}; 32 processes doing 1-byte round trips`,
    source: CILIUM_BENCH_SOURCE,
    url: CILIUM_BENCH,
  },
  {
    mesh: 'cilium',
    metric: 'TCP request/response rate (netperf TCP_RR), 1 connection',
    value: 'almost the node-to-node baseline rate, marginally more CPU (stated in the text; numbers only in a chart)',
    conditions: `${CILIUM_BENCH_SETUP}; one process doing 1-byte round trips`,
    source: CILIUM_BENCH_SOURCE,
    url: CILIUM_BENCH,
  },
];
