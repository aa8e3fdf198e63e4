# syntax=docker/dockerfile:1
# Switchyard: one image for every role. The CLI picks the role from its arguments:
#   docker run IMAGE api             (the default CMD)
#   docker run IMAGE agent <type>    (one agent for one agent type)
# Two stages: the first compiles the TypeScript to dist/ (scripts/build.js, what `npm install` runs);
# the second holds the production dependencies, the CLI's entry and dist/, and runs no TypeScript loader.

FROM node:24-bookworm-slim AS build
WORKDIR /app
# --ignore-scripts: `prepare` (the build) needs the sources, which come after this cached layer.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ ./scripts/
COPY bin/ ./bin/
COPY src/ ./src/
COPY queues/ ./queues/
COPY workers/ ./workers/
COPY dashboard/ ./dashboard/
RUN npm run build

FROM node:24-bookworm-slim

ENV NODE_ENV=production \
    LOG_PRETTY=false

WORKDIR /app

# Dependencies first, so the layer is reused while only the code changes. --ignore-scripts: dist/
# comes from the build stage (there is no compiler here for `prepare`).
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# The CLI's entry (bin/) and the compiled code (dist/: src/, the dashboard, and the deployment's own
# catalogue and workers). The CLI resolves SWITCHYARD_TYPES=queues/index.ts and SWITCHYARD_WORKERS_DIR=workers
# from the working directory and loads their compiled copies from dist/ (src/cli/modules.ts).
# Files stay owned by root: the processes only read them.
COPY bin/ ./bin/
COPY --from=build /app/dist/ ./dist/

USER node

EXPOSE 3000

# No HEALTHCHECK here: the same image runs agents, which serve no HTTP. docker-compose.yml checks
# the api service through GET /healthz.
ENTRYPOINT ["node", "bin/switchyard.js"]
CMD ["api"]
