# syntax=docker/dockerfile:1
# Switchyard: one image for every role. The CLI picks the role from its arguments:
#   docker run IMAGE api             (the default CMD)
#   docker run IMAGE worker <type>   (one agent for one agent type)
# TypeScript runs through tsx at run time (a production dependency), so there is no build step.
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    LOG_PRETTY=false

WORKDIR /app

# Dependencies first, so the layer is reused while only the code changes.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# The code: the CLI's entry (bin/), the runtime (src/), and the deployment's own modules, which the
# CLI loads relative to the working directory: the catalogue (SWITCHYARD_TYPES=queues/index.ts) and
# the worker entrypoints (SWITCHYARD_WORKERS_DIR=workers). tsconfig.json tells tsx how to compile.
# Files stay owned by root: the processes only read them.
COPY tsconfig.json ./
COPY bin/ ./bin/
COPY src/ ./src/
COPY queues/ ./queues/
COPY workers/ ./workers/
# The dashboard's static files; the wildcard lets the build pass while the folder does not exist yet
# (BuildKit, the default builder, copies nothing when a wildcard matches nothing).
COPY dashboar[d] ./dashboard/

USER node

EXPOSE 3000

# No HEALTHCHECK here: the same image runs agents, which serve no HTTP. docker-compose.yml checks
# the api service through GET /healthz.
ENTRYPOINT ["node", "bin/switchyard.js"]
CMD ["api"]
