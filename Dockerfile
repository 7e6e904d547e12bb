# nsq-ts daemons in one image: `nsqd`, `nsqlookupd`, `nsqadmin` and the `nsq` CLI are on the PATH, so
#   docker run --rm -p 4150:4150 -p 4151:4151 nsq-ts nsqd --broadcast-address=127.0.0.1
#   docker run --rm -p 4160:4160 -p 4161:4161 nsq-ts nsqlookupd
#   docker run --rm -p 4171:4171 nsq-ts nsqadmin --lookupd-http-address=<lookupd host>:4161
#   docker compose exec nsqd-1 nsq topics --nsqd-http-address=127.0.0.1:4151
# docker-compose.yml builds it for a 2 × nsqlookupd, 3 × nsqd, nsqadmin cluster.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: every workspace with its dev dependencies, compiled by tsc -b ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# The whole context at once (.dockerignore keeps it to the sources), so this file needs no list of
# the workspaces; dependency layers are not cached separately from source changes as a result.
COPY . .
# --ignore-scripts: the root `prepare` script would run the build inside `npm ci`; it runs as its
# own step below instead, and no dependency needs an install script to compile (msgpackr-extract,
# the only one, is optional and msgpackr falls back to JavaScript).
RUN npm ci --ignore-scripts --no-audit --no-fund
RUN npm run build
# What the runtime stage needs, whatever the workspaces are: the root manifests and, per package,
# its package.json, dist/, bin/ and static/ (nsqadmin's UI files, read from ../static/ at start-up).
RUN set -eu; \
    mkdir -p /out/packages; \
    cp package.json package-lock.json /out/; \
    for pkg in packages/*; do \
      mkdir -p "/out/$pkg"; \
      cp "$pkg/package.json" "/out/$pkg/"; \
      for sub in dist bin static; do \
        if [ -d "$pkg/$sub" ]; then cp -R "$pkg/$sub" "/out/$pkg/"; fi; \
      done; \
    done

# ---- runtime: production dependencies and the compiled packages only ----
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out/ ./
# --ignore-scripts: without TypeScript here, the root `prepare` script (npm run build) must not run.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && chmod +x packages/nsqd/bin/nsqd.js packages/lookupd/bin/nsqlookupd.js packages/admin/bin/nsqadmin.js \
      packages/cli/bin/nsq.js \
 && ln -s /app/packages/nsqd/bin/nsqd.js /usr/local/bin/nsqd \
 && ln -s /app/packages/lookupd/bin/nsqlookupd.js /usr/local/bin/nsqlookupd \
 && ln -s /app/packages/admin/bin/nsqadmin.js /usr/local/bin/nsqadmin \
 && ln -s /app/packages/cli/bin/nsq.js /usr/local/bin/nsq \
 && mkdir -p /data \
 && chown node:node /data
# /data is where docker-compose.yml mounts each nsqd's --data-path volume; a named volume copies
# this directory's owner, so the unprivileged user can write to it.
USER node
# nsqd TCP, HTTP, HTTPS; nsqlookupd TCP, HTTP; nsqadmin HTTP (NSQ's default ports).
EXPOSE 4150 4151 4152 4160 4161 4171
# No ENTRYPOINT: the command names the daemon (`nsqd ...`, `nsqlookupd ...` or `nsqadmin ...`). Node
# runs as PID 1 and every daemon handles SIGTERM itself, so `docker stop` shuts it down cleanly.
CMD ["nsqd"]
