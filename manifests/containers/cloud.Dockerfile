# syntax=docker/dockerfile:1
# The Linesight cloud (control plane, embedded MQTT broker, SQLite registry, blob store).
# Build from the repository root:
#   docker build -f manifests/containers/cloud.Dockerfile -t linesight-cloud:0.1.0 .
#   docker run -p 8080:8080 -p 1883:1883 -v linesight-data:/var/lib/linesight \
#     -e LINESIGHT_ADMIN_TOKEN=... linesight-cloud:0.1.0 --advertised-url http://HOST:8080 \
#     --advertised-mqtt-url mqtt://HOST:1883
# Stage 1 compiles the release (npm run build:release) and installs its production
# dependencies with the compiler that native packages may need; the final stage gets only
# the installed release, on the slim Node image, as a non-root user. See docs/containers.md.
ARG NODE_IMAGE=node:20.19.5-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends g++ make python3 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --no-audit --no-fund \
  && npm run build:release -- --out /tmp/release --pack
WORKDIR /opt/linesight
# The release's allowScripts (which install scripts may run) apply to the project npm installs into.
RUN node -e "const p = require('/tmp/release/linesight/package.json'); require('fs').writeFileSync('package.json', JSON.stringify({ private: true, allowScripts: p.allowScripts }))" \
  && npm install --omit=dev --no-audit --no-fund /tmp/release/linesight-*.tgz \
  && npm cache clean --force

FROM ${NODE_IMAGE}
RUN groupadd --system --gid 10001 linesight \
  && useradd --system --uid 10001 --gid linesight --home-dir /var/lib/linesight --no-create-home linesight \
  && install -d -o linesight -g linesight -m 0700 /var/lib/linesight
COPY --from=build --chown=root:root /opt/linesight /opt/linesight
ENV NODE_ENV=production
USER 10001:10001
VOLUME ["/var/lib/linesight"]
EXPOSE 8080 1883
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/linesight/node_modules/linesight/bin/linesight.js", "cloud"]
CMD ["--host", "0.0.0.0", "--http-port", "8080", "--mqtt-port", "1883", "--data-dir", "/var/lib/linesight/cloud"]
