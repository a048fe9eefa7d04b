#!/usr/bin/env bash
# Installs a Linesight agent on an edge box (Raspberry Pi 4/5 with a 64-bit OS, an industrial
# PC with Debian or Ubuntu) as a systemd service, from a release tarball built with
# `npm run build:release -- --pack`. See docs/edge-install.md.
#
#   sudo scripts/install-agent.sh --token-file line-1.token \
#     --release linesight-0.1.0.tgz --device-id line-1 --cloud https://cloud.plant:8080 \
#     --camera 'mjpeg-exec:ffmpeg -f v4l2 -i /dev/video0 -f mjpeg -' \
#     [--token-actor install-line-1] [--node-tarball node-v20.19.5-linux-arm64.tar.xz | --node /usr/bin/node] \
#     [--mqtt mqtt://cloud.plant:1883] [--agent-args '--http-port 9102'] [--prefix /opt/linesight] [--no-start]
#
# What it does, each step safe to repeat:
#   1. Node: the one given, else one unpacked from an official Node tarball into PREFIX/node,
#      else `node` on the PATH; it must be 20.19 or newer.
#   2. the system user `linesight` (no login, no home of its own), in the video group.
#   3. the release: `npm install --omit=dev` of the tarball into PREFIX/releases/VERSION (npm
#      fetches the native packages built for this machine), a `bin/linesight` wrapper that runs
#      it with that Node, and PREFIX/current pointing at it (switched atomically).
#   4. the data dir /var/lib/linesight/agent-ID (0700, owned by linesight).
#   5. provisioning, unless the data dir already has a device.json: `linesight device provision`
#      with the install token (from LINESIGHT_INSTALL_TOKEN or --token-file, never an argument,
#      which `ps` would show): best a one-device enrolment token (`linesight device
#      enrolment-token ID`), which works once for this id only; an admin token works too, and
#      with --token-actor it is revoked right after.
#   6. /etc/linesight/agent-ID.env (the camera and extra agent options) and the unit
#      linesight-agent@.service; then `systemctl enable --now linesight-agent@ID` and a wait
#      until systemd reports it active (the agent says READY=1 once it runs).
set -euo pipefail

PREFIX=/opt/linesight
STATE_ROOT=/var/lib/linesight
ETC=/etc/linesight
UNIT_DIR=/etc/systemd/system
SERVICE_USER=linesight
RELEASE=''
DEVICE_ID=''
CLOUD=''
MQTT=''
CAMERA=''
AGENT_ARGS=''
NODE_BIN=''
NODE_TARBALL=''
TOKEN_FILE=''
TOKEN_ACTOR=''
UNIT_FILE=''
START=1
MIN_NODE='20.19.0'

die() {
  echo "install-agent: $*" >&2
  exit 1
}
say() { echo "install-agent: $*"; }

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --release) RELEASE=$2; shift 2 ;;
    --device-id) DEVICE_ID=$2; shift 2 ;;
    --cloud) CLOUD=$2; shift 2 ;;
    --mqtt) MQTT=$2; shift 2 ;;
    --camera) CAMERA=$2; shift 2 ;;
    --agent-args) AGENT_ARGS=$2; shift 2 ;;
    --node) NODE_BIN=$2; shift 2 ;;
    --node-tarball) NODE_TARBALL=$2; shift 2 ;;
    --token-file) TOKEN_FILE=$2; shift 2 ;;
    --token-actor) TOKEN_ACTOR=$2; shift 2 ;;
    --unit) UNIT_FILE=$2; shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    -h | --help) usage 0 ;;
    *) echo "install-agent: unknown option $1" >&2; usage 2 ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die 'run as root (sudo)'
if [ -z "$RELEASE" ] || [ ! -f "$RELEASE" ]; then die '--release <linesight-VERSION.tgz> is required'; fi
[[ "$DEVICE_ID" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || die '--device-id: 1-64 of A-Z a-z 0-9 _ . -'
[ -n "$CAMERA" ] || die "--camera is required (e.g. 'mjpeg-exec:ffmpeg -f v4l2 -i /dev/video0 -f mjpeg -')"
command -v systemctl >/dev/null || die 'systemd is required'

DATA_DIR="$STATE_ROOT/agent-$DEVICE_ID"
ENV_FILE="$ETC/agent-$DEVICE_ID.env"

# 1. Node
version_ok() {
  "$1" -e "const [a,b,c]=process.versions.node.split('.').map(Number),[x,y,z]='$MIN_NODE'.split('.').map(Number);process.exit(a>x||(a===x&&(b>y||(b===y&&c>=z)))?0:1)" 2>/dev/null
}
if [ -n "$NODE_TARBALL" ]; then
  [ -f "$NODE_TARBALL" ] || die "no file $NODE_TARBALL"
  say "unpacking Node from $NODE_TARBALL into $PREFIX/node"
  mkdir -p "$PREFIX"
  rm -rf "$PREFIX/node.new"
  mkdir "$PREFIX/node.new"
  tar -xf "$NODE_TARBALL" -C "$PREFIX/node.new" --strip-components=1
  rm -rf "$PREFIX/node.old"
  [ -d "$PREFIX/node" ] && mv "$PREFIX/node" "$PREFIX/node.old"
  mv "$PREFIX/node.new" "$PREFIX/node"
  rm -rf "$PREFIX/node.old"
  NODE_BIN="$PREFIX/node/bin/node"
elif [ -z "$NODE_BIN" ]; then
  NODE_BIN=$(command -v node || true)
fi
if [ -z "$NODE_BIN" ] || [ ! -x "$NODE_BIN" ]; then
  die "no Node: pass --node-tarball node-v20.x-linux-$(uname -m).tar.xz (nodejs.org) or --node PATH"
fi
version_ok "$NODE_BIN" || die "$NODE_BIN is Node $("$NODE_BIN" --version); $MIN_NODE or newer is required"
NODE_DIR=$(dirname "$NODE_BIN")
NPM_BIN="$NODE_DIR/npm"
[ -x "$NPM_BIN" ] || NPM_BIN=$(command -v npm || true)
[ -n "$NPM_BIN" ] || die 'no npm beside Node or on the PATH (apt-get install npm, or use --node-tarball)'
say "Node $("$NODE_BIN" --version) at $NODE_BIN"

# 2. the service user
if ! id "$SERVICE_USER" >/dev/null 2>&1; then
  say "creating system user $SERVICE_USER"
  useradd --system --home-dir "$STATE_ROOT" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
fi
if getent group video >/dev/null; then usermod -a -G video "$SERVICE_USER"; fi

# 3. the release
VERSION=$(tar -xOzf "$RELEASE" package/package.json | "$NODE_BIN" -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s).version))")
TARGET="$PREFIX/releases/$VERSION"
say "installing linesight $VERSION into $TARGET (npm fetches its dependencies for $(uname -m))"
rm -rf "$TARGET.new"
mkdir -p "$TARGET.new"
cp "$RELEASE" "$TARGET.new/linesight-$VERSION.tgz"
# onnxruntime-node's install script would download CUDA libraries; its CPU binaries ship in it.
# The release's allowScripts (which install scripts may run) apply to the project npm installs
# into, so that project gets them.
tar -xOzf "$RELEASE" package/package.json | "$NODE_BIN" -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.stringify({private:true,allowScripts:JSON.parse(s).allowScripts})))" >"$TARGET.new/package.json"
(cd "$TARGET.new" &&
  PATH="$NODE_DIR:$PATH" ONNXRUNTIME_NODE_INSTALL=skip "$NPM_BIN" install --omit=dev --no-audit --no-fund \
    "./linesight-$VERSION.tgz")
mkdir -p "$TARGET.new/bin"
cat >"$TARGET.new/bin/linesight" <<EOF
#!/bin/sh
exec "$NODE_BIN" "$TARGET/node_modules/linesight/bin/linesight.js" "\$@"
EOF
chmod 0755 "$TARGET.new/bin/linesight"
rm -rf "$TARGET"
mv "$TARGET.new" "$TARGET"
ln -sfn "releases/$VERSION" "$PREFIX/current.new"
mv -T "$PREFIX/current.new" "$PREFIX/current"
LINESIGHT="$PREFIX/current/bin/linesight"
"$LINESIGHT" --version >/dev/null || die "the installed release does not run: $LINESIGHT --version failed"

# 4. the data dir
install -d -m 0755 -o root -g root "$STATE_ROOT"
install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$DATA_DIR"

# 5. provisioning
if [ -f "$DATA_DIR/device.json" ]; then
  say "$DATA_DIR/device.json exists: keeping the device's credentials"
else
  [ -n "$CLOUD" ] || die '--cloud is required to provision the device'
  TOKEN=${LINESIGHT_INSTALL_TOKEN:-}
  if [ -n "$TOKEN_FILE" ]; then TOKEN=$(cat "$TOKEN_FILE"); fi
  [ -n "$TOKEN" ] || die 'set LINESIGHT_INSTALL_TOKEN or pass --token-file (an enrolment token from: linesight device enrolment-token ID; or an admin token)'
  say "provisioning $DEVICE_ID at $CLOUD"
  (umask 077 && LINESIGHT_ADMIN_TOKEN="$TOKEN" "$LINESIGHT" device provision --id "$DEVICE_ID" \
    --cloud "$CLOUD" --out "$DATA_DIR/device.json")
  chown "$SERVICE_USER:$SERVICE_USER" "$DATA_DIR/device.json"
  chmod 0600 "$DATA_DIR/device.json"
  if [ -n "$TOKEN_ACTOR" ]; then
    say "revoking the install token of $TOKEN_ACTOR: it has done its one job"
    LINESIGHT_ADMIN_TOKEN="$TOKEN" "$LINESIGHT" token revoke "$TOKEN_ACTOR" --cloud "$CLOUD"
  fi
  unset TOKEN
fi

# 6. configuration, unit, start
quote() { printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"; }
install -d -m 0750 -o root -g "$SERVICE_USER" "$ETC"
{
  echo "# linesight-agent@$DEVICE_ID: read by systemd (EnvironmentFile); see linesight agent --help"
  echo "LINESIGHT_CAMERA=$(quote "$CAMERA")"
  extra=$AGENT_ARGS
  if [ -n "$MQTT" ]; then extra="--mqtt $MQTT $extra"; fi
  echo "LINESIGHT_AGENT_ARGS=$(quote "$extra")"
} >"$ENV_FILE.new"
chown "root:$SERVICE_USER" "$ENV_FILE.new"
chmod 0640 "$ENV_FILE.new"
mv "$ENV_FILE.new" "$ENV_FILE"

if [ -z "$UNIT_FILE" ]; then
  for candidate in "$(dirname "$0")/../manifests/systemd/linesight-agent@.service" \
    "$TARGET/node_modules/linesight/deploy/linesight-agent@.service"; do
    if [ -f "$candidate" ]; then UNIT_FILE=$candidate; break; fi
  done
fi
if [ -z "$UNIT_FILE" ] || [ ! -f "$UNIT_FILE" ]; then die 'no linesight-agent@.service found: pass --unit FILE'; fi
sed "s#/opt/linesight/#$PREFIX/#g" "$UNIT_FILE" >"$UNIT_DIR/linesight-agent@.service.new"
mv "$UNIT_DIR/linesight-agent@.service.new" "$UNIT_DIR/linesight-agent@.service"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
else
  say 'systemd is not running here (a container or a chroot?): the unit is in place for the next boot'
  START=0
fi

if [ "$START" -eq 1 ]; then
  systemctl enable "linesight-agent@$DEVICE_ID.service"
  systemctl restart "linesight-agent@$DEVICE_ID.service"
  # Type=notify: `active` only once the agent has sent READY=1.
  for _ in $(seq 1 180); do
    state=$(systemctl is-active "linesight-agent@$DEVICE_ID.service" || true)
    [ "$state" = active ] && break
    [ "$state" = failed ] && break
    sleep 1
  done
  if [ "$state" != active ]; then
    journalctl -u "linesight-agent@$DEVICE_ID.service" -n 30 --no-pager || true
    die "linesight-agent@$DEVICE_ID is $state"
  fi
  say "linesight-agent@$DEVICE_ID is running: journalctl -u linesight-agent@$DEVICE_ID -f"
else
  say "installed; start it with: systemctl enable --now linesight-agent@$DEVICE_ID"
fi
