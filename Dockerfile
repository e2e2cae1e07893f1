# optimizer: API + worker + scheduler image. Not built on the development machines (no container
# engine there); the same steps run in CI's plain-Node form (.ci/run).
# Build:  docker build -t optimizer .
# Run:    docker run -p 8000:8000 -e DATABASE_URL=postgres://… optimizer            (HTTP API)
#         docker run -e DATABASE_URL=… optimizer worker | scheduler | consume        (other processes)

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/adapters-http/package.json packages/adapters-http/
COPY packages/adapters-cli/package.json packages/adapters-cli/
COPY packages/adapters-sqs/package.json packages/adapters-sqs/
COPY examples/package.json examples/
# --omit=dev: the services run the TypeScript sources with Node's type stripping; no build tools needed.
# The embedded PostgreSQL (quick start only) is not wanted in the image: production uses DATABASE_URL.
RUN npm ci --omit=dev --omit=optional --ignore-scripts && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production PORT=8000 LOG_FORMAT=json STORAGE_DIR=/data/files
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json package-lock.json ./
COPY packages packages
COPY sql sql
RUN mkdir -p /data/files && chown -R node:node /data
USER node
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# A 16 MB young generation: V8 sizes it from the machine (larger here), which cost ~100 MB of RSS
# for nothing on a million-row import (docs/performance.md).
ENTRYPOINT ["node", "--max-semi-space-size=16", "packages/adapters-cli/bin/optimizer.js"]
CMD ["serve", "--migrate"]
