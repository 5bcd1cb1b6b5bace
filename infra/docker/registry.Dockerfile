# The Corral registry, made of the same files as its npm package (apps/registry's package.json,
# bin/ and dist/, the bundle `npm run build` writes: build before building the image) on the
# production dependencies package-lock.json pins. Runs as the non-root user `node`.
#
# BASE is the Node image underneath: Docker Hub's by default; a machine that cannot reach Docker
# Hub passes a local one (infra/docker/compose.offline.yml says how). It must have node and npm
# on PATH and a user `node`.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/
COPY apps/daemon/package.json apps/daemon/
COPY apps/registry/package.json apps/registry/
# Dependencies first, in their own layer: it is rebuilt only when a manifest changes.
RUN npm ci --omit=dev --workspace @corral/registry --include-workspace-root=false --ignore-scripts --no-audit --no-fund

FROM ${BASE}
ENV NODE_ENV=production REGISTRY_ADDR=0.0.0.0:5005 REGISTRY_DATA=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# What `npm pack` puts in the package; installing the tarball instead would be one
# `npm install -g` of it in place of these lines.
COPY apps/registry/package.json apps/registry/
COPY apps/registry/bin apps/registry/bin/
COPY apps/registry/dist apps/registry/dist/
RUN ln -s /app/apps/registry/bin/corral-registry.js /usr/local/bin/corral-registry \
 && mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 5005
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:5005/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["corral-registry"]
CMD ["serve"]
