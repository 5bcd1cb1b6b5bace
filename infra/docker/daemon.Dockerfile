# The Corral daemon (corral serve) for CPU machines, made of the same files as its npm package
# (apps/daemon's package.json, bin/ and dist/, the bundle `npm run build` writes: build before
# building the image) on the production dependencies package-lock.json pins. The GPU builds that
# node-llama-cpp installs as optional packages are removed: this image runs the prebuilt CPU
# llama.cpp.
#
# BASE is the Node image underneath: Docker Hub's by default; a machine that cannot reach Docker
# Hub passes a local one (infra/docker/compose.offline.yml says how). It must have node and npm
# on PATH and a user `node` whose home is /home/node.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/
COPY apps/daemon/package.json apps/daemon/
COPY apps/registry/package.json apps/registry/
# Dependencies first, in their own layer: it is rebuilt only when a manifest changes.
RUN npm ci --omit=dev --workspace @corral/daemon --include-workspace-root=false --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@node-llama-cpp/linux-x64-cuda* node_modules/@node-llama-cpp/linux-x64-vulkan node_modules/@node-llama-cpp/linux-arm*

FROM ${BASE}
ENV NODE_ENV=production CORRAL_HOST=0.0.0.0:11434 HOME=/home/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# What `npm pack` puts in the package; installing the tarball instead would be one
# `npm install -g` of it in place of these lines.
COPY apps/daemon/package.json apps/daemon/
COPY apps/daemon/bin apps/daemon/bin/
COPY apps/daemon/dist apps/daemon/dist/
# The sources of libmtmd's C API: the image has no compiler, so images stay off here (one log line
# says why), but it holds what the package holds.
COPY apps/daemon/native apps/daemon/native/
RUN ln -s /app/apps/daemon/bin/corral.js /usr/local/bin/corral \
 && mkdir -p /home/node/.corral && chown -R node:node /home/node/.corral
USER node
VOLUME /home/node/.corral
EXPOSE 11434
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:11434/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["corral"]
CMD ["serve"]
