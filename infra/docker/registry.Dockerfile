# The Corral registry. Multi-stage: dependencies are installed in a build stage, the runtime
# stage carries only production modules and the sources (run through tsx), as a non-root user.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/
COPY apps/daemon/package.json apps/daemon/
COPY apps/registry/package.json apps/registry/
RUN npm ci --omit=dev --workspace @corral/registry --include-workspace-root=false --no-audit --no-fund \
 && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production REGISTRY_ADDR=0.0.0.0:5005 REGISTRY_DATA=/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY packages/shared ./packages/shared
COPY apps/registry ./apps/registry
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 5005
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:5005/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "apps/registry/bin/corral-registry.js"]
CMD ["serve"]
