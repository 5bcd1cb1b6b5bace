# The Corral daemon (corral serve) for CPU machines. The GPU builds that node-llama-cpp installs
# as optional packages are removed: this image runs the prebuilt CPU llama.cpp.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/shared/package.json packages/shared/
COPY apps/daemon/package.json apps/daemon/
COPY apps/registry/package.json apps/registry/
RUN npm ci --omit=dev --workspace @corral/daemon --include-workspace-root=false --no-audit --no-fund \
 && rm -rf node_modules/@node-llama-cpp/linux-x64-cuda* node_modules/@node-llama-cpp/linux-x64-vulkan node_modules/@node-llama-cpp/linux-arm* \
 && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production CORRAL_HOST=0.0.0.0:11434 HOME=/home/node
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY packages/shared ./packages/shared
COPY apps/daemon ./apps/daemon
RUN mkdir -p /home/node/.corral && chown -R node:node /home/node/.corral
USER node
VOLUME /home/node/.corral
EXPOSE 11434
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:11434/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "apps/daemon/bin/corral.js"]
CMD ["serve"]
