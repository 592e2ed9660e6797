# syntax=docker/dockerfile:1
# One image for every Corral process: `corral scheduler`, `corral worker`, and the CLI.
#   docker build -t corral .
#   docker run --rm -p 8080:8080 -e CORRAL_REDIS_URL=redis://redis:6379 -e CORRAL_API_KEYS=lab-a:<key> corral scheduler
# (CORRAL_HOST is 0.0.0.0 here, so the scheduler refuses to start without CORRAL_API_KEYS.)
#   docker run --rm --gpus all -v /srv/models:/models:ro -e CORRAL_REDIS_URL=redis://redis:6379 corral worker
# node-llama-cpp's prebuilt binaries (CPU, Vulkan, and CUDA with its runtime libraries in
# @node-llama-cpp/linux-x64-cuda-ext) come from npm, so a slim Node image is enough; on
# GPU hosts the NVIDIA Container Toolkit adds the driver and nvidia-smi.

ARG NODE_IMAGE=node:20-bookworm-slim

# Only the package manifests, so that `npm ci` stays cached while sources change.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name node_modules -prune -o \( -name package.json -o -name package-lock.json \) -print \
    | while read -r f; do mkdir -p "/manifests/$(dirname "$f")" && cp "$f" "/manifests/$f"; done

# Install everything (dev tools included) and compile the TypeScript projects.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY packages ./packages
COPY apps ./apps
RUN npm run build \
 && mkdir /out \
 && for d in packages/* apps/*; do \
      mkdir -p "/out/$d"; \
      for part in dist bin; do if [ -d "$d/$part" ]; then cp -r "$d/$part" "/out/$d/"; fi; done; \
    done \
 && mkdir -p /out/packages/shared/src/store \
 && cp -r packages/shared/src/store/commands /out/packages/shared/src/store/

# Runtime: production dependencies and the compiled output only.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    CORRAL_SKIP_BUILD=1 \
    CORRAL_MODELS_DIR=/models \
    CORRAL_DATA_DIR=/data \
    CORRAL_HOST=0.0.0.0
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund \
 && node node_modules/node-llama-cpp/dist/cli/cli.js postinstall \
 && mkdir -p /models /data && chown node:node /models /data
# Compiled output (dist/) and the CLI shim (bin/); no sources, so the shim never tries to build.
# The one exception: @corral/shared's Lua scripts (src/store/commands/*.lua), which it reads at run time.
COPY --from=build /out/ ./
USER node
EXPOSE 8080 9464
ENTRYPOINT ["node", "apps/cli/bin/corral.js"]
CMD ["scheduler"]
