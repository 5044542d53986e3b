# Skein image (the proxy by default; `skein control` too). The build stage compiles what the proxy and control
# run to dist/ (tsconfig.image.json: not the bench harness; tsc brings in only the few bench/ modules control's
# bench job API imports for its option names) and drops the dev dependencies (which bench/ needs: ws,
# hdr-histogram-js); the runtime stage has Node 24, the runtime dependencies, dist/ and the files dist/ reads at
# run time (the bpftrace scripts of `skein probe` and control's probe API). Runs as a non-root user. bpftrace is
# not installed: probes need root and the host's kernel anyway, so in this image `skein probe` and
# /ebpf/probe/status say what is missing (exit 1, HTTP 503); `skein bench` says to run it from a clone (exit 1).
# The runtime stage also has iptables: the same image is the sidecar's init container (`skein redirect install`,
# manifests/overlays/sidecar), as root with NET_ADMIN and NET_RAW in the pod's network namespace only; one image
# to build, pull and pin rather than a second one for iptables (about 3 MB with its libraries).
# test/e2e/image-layout.test.ts replays the build stage's tsc and prune and this stage's COPY lines, and runs
# `skein probe`, `skein control` and `skein bench` from that layout.
FROM node:24-bookworm-slim AS build
WORKDIR /opt/skein
COPY package.json package-lock.json ./
# --ignore-scripts: the image's own Node 24 compiles; the `node` devDependency's binary is not needed here.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.image.json ./
COPY src ./src
COPY proxy ./proxy
COPY control ./control
COPY certs ./certs
COPY examples ./examples
COPY probes ./probes
COPY bench ./bench
RUN npx tsc -p tsconfig.image.json && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# The bench image (`docker build --target bench -t skein-bench:0.1.0 .`): what `skein bench` and `skein bench
# origin` need, for manifests/bench/ — the whole build (bench/ included) and every dependency (the load
# generator's ws and hdr-histogram-js are dev dependencies). Not the default target: the last stage below is.
FROM node:24-bookworm-slim AS bench
ENV NODE_ENV=production
WORKDIR /opt/skein
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY proxy ./proxy
COPY control ./control
COPY certs ./certs
COPY examples ./examples
COPY probes ./probes
COPY bench ./bench
RUN npx tsc -p tsconfig.build.json
COPY bin ./bin
USER node
ENTRYPOINT ["node", "--max-semi-space-size=2", "bin/skein.js"]
CMD ["bench", "--help"]

FROM node:24-bookworm-slim
# iptables for `skein redirect install` (the sidecar's init container); nothing else from apt.
RUN apt-get update \
  && apt-get install -y --no-install-recommends iptables \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /opt/skein
COPY --from=build /opt/skein/node_modules ./node_modules
COPY --from=build /opt/skein/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY examples ./examples
COPY probes/scripts ./probes/scripts
USER node
# 15001 outbound, 15006 inbound, 15000 admin (the defaults of manifests/ and examples/mesh.yaml); 15010 is
# `skein control`'s API when the image runs control instead of a proxy.
EXPOSE 15000 15001 15006 15010
# The same Node flags as bin/skein.js's shebang (small young generation: see README "Design numbers").
ENTRYPOINT ["node", "--max-semi-space-size=2", "bin/skein.js"]
CMD ["proxy", "--config", "/etc/skein/config.yaml"]
