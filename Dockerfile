# Skein proxy image. Node 24 LTS runs the TypeScript sources directly (type stripping), so there is no build
# step; only the runtime dependencies are installed. Runs as a non-root user.
FROM node:24-bookworm-slim AS deps
WORKDIR /opt/skein
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/skein
COPY --from=deps /opt/skein/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY proxy ./proxy
COPY examples ./examples
USER node
# 15001 outbound, 15006 inbound, 15000 admin (the defaults of manifests/ and examples/mesh.yaml)
EXPOSE 15000 15001 15006
# The same Node flags as bin/skein.js's shebang (small young generation: see README "Design numbers").
ENTRYPOINT ["node", "--max-semi-space-size=2", "bin/skein.js"]
CMD ["proxy", "--config", "/etc/skein/config.yaml"]
