# syntax=docker/dockerfile:1
#
# Flokie container image (docs/deployment.md, "Container").
#   docker build -t flokie .
#   docker run --read-only --tmpfs /tmp --security-opt=no-new-privileges:true --cap-drop=ALL \
#     --env-file deploy/production.env -v flokie-var:/app/var -p 5000:5000 flokie
# The image holds no secret: SECRET_KEY, JWT_SECRET_KEY, DATABASE_URL … come from the
# environment at run time, and production refuses to start without strong ones.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full dependencies, native modules, TypeScript -> dist/ ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 falls back to compiling from source when no prebuilt binary matches the
# platform; the toolchain lives in this stage only and never reaches the runtime image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm ci runs package.json's "prepare" script (scripts/compile.mjs); without src/ yet it has
# nothing to do. The type-checked build of src/ is `npm run build` below.
COPY scripts/compile.mjs ./scripts/compile.mjs
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime: compiled app + production dependencies, non-root, read-only friendly ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=5000
WORKDIR /app
# A fixed, unprivileged uid/gid (Kubernetes runAsNonRoot can verify a number). The app's files
# stay owned by root, so the running process cannot modify its own code.
RUN groupadd --system --gid 10001 flokie \
 && useradd --system --uid 10001 --gid flokie --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin flokie \
 && mkdir -p /app/var \
 && chown flokie:flokie /app/var
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
# The only place the service writes (SQLite file, mail outbox when SMTP_URL is unset). With
# `--read-only`, mount a volume here; everything else is read-only apart from the /tmp tmpfs.
VOLUME ["/app/var"]
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs"]
STOPSIGNAL SIGTERM
# node directly (not npm): signals reach the server, and npm would try to write logs.
# The CLI is compiled too: `docker compose run --rm app node dist/cli/index.js check`.
CMD ["node", "dist/server.js"]
