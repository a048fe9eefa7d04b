# syntax=docker/dockerfile:1
# The Linesight agent of one line. Build from the repository root:
#   docker build -f manifests/containers/agent.Dockerfile -t linesight-agent:0.1.0 .
#   docker run -v linesight-line-1:/var/lib/linesight --device /dev/video0 --group-add video \
#     linesight-agent:0.1.0 --device-id line-1 --data-dir /var/lib/linesight/agent-line-1 \
#     --camera 'mjpeg-exec:ffmpeg -f v4l2 -i /dev/video0 -f mjpeg -'
# (device.json in the volume comes from `linesight device provision`; docs/containers.md.)
# On an edge box the systemd unit (manifests/systemd) is the first choice: the container is
# for boxes that already run everything in containers.
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
# ffmpeg reads USB and IP cameras for the mjpeg-exec camera.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ffmpeg \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --system --gid 10001 linesight \
  && useradd --system --uid 10001 --gid linesight --groups video --home-dir /var/lib/linesight --no-create-home linesight \
  && install -d -o linesight -g linesight -m 0700 /var/lib/linesight
COPY --from=build --chown=root:root /opt/linesight /opt/linesight
ENV NODE_ENV=production
USER 10001:10001
VOLUME ["/var/lib/linesight"]
# The agent's local endpoint (/healthz, /metrics, /verdicts) on 9102, as CMD turns it on.
EXPOSE 9102
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9102/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/linesight/node_modules/linesight/bin/linesight.js", "agent", "--http-port", "9102", "--http-host", "0.0.0.0"]
CMD ["--help"]
