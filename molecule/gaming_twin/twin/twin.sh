#!/usr/bin/env bash
# The gaming twin's own Docker world (issue 10): a second dockerd in its own network namespace,
# with the GPU stand-in hook on its PATH and registries that stand in for Docker Hub.
#
#   twin.sh up              netns + registries + twin dockerd (idempotent)
#   twin.sh down [--purge]  stop all of it, remove the netns (--purge: also the registry store
#                           and the twin's data-root)
#   twin.sh status          what runs; exit 0 only when everything answers
#   twin.sh push-images     build the stand-in images on the FIRST daemon and push them under
#                           their Docker Hub names through 127.0.0.1:5055
#   twin.sh docker ARGS     the docker CLI against the twin daemon
#   twin.sh exec CMD...     a command inside the twin's network namespace
#
# Layout (see README.md beside this file):
#   netns homelab-twin: lo + eth0 (veth to the root namespace, NATed, so builds reach PyPI/Debian)
#   root ns  127.0.0.1:5055  docker-registry, the push target of the FIRST daemon
#   twin ns  127.0.0.1:5000  docker-registry, the twin daemon's --registry-mirror
#   twin ns  127.0.0.1:443   docker-registry with TLS, named registry-1.docker.io in the twin's
#                            /etc/hosts: stands in for Docker Hub itself, so an image that was
#                            never pushed fails as a missing image does ("not found"), not as an
#                            unreachable network
#   all three serve ONE filesystem store, with no blob-descriptor cache (a push through 5055 is
#   visible to the others at once).
#   twin dockerd: /run/homelab-twin/docker.sock, data-root /var/lib/homelab-twin/docker,
#   PATH starting with gpu/bin (the nvidia-container-runtime-hook stand-in).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NS=homelab-twin
RUN=/run/homelab-twin
LIB=/var/lib/homelab-twin
STORE="$LIB/registry"
DATA_ROOT="$LIB/docker"
SOCK="$RUN/docker.sock"
GPU_STATE="$RUN/gpu"
NETNS_ETC="/etc/netns/$NS"
VETH_HOST=homelab-twin0
VETH_NS=eth0
HOST_IP=10.231.0.1
NS_IP=10.231.0.2
SUBNET=10.231.0.0/30
PUSH_PORT=5055
MIRROR_PORT=5000
DESKTOP_MIB_DEFAULT="${HOMELAB_TWIN_DESKTOP_MIB:-1536}"

log() { printf 'twin: %s\n' "$*" >&2; }
die() { printf 'twin: ERROR: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (netns, dockerd)"; }
# nsenter --net, not `ip netns exec`: the latter remounts /sys, which drops the cgroup mounts
# dockerd needs ("Devices cgroup isn't mounted").
in_ns() { nsenter --net="/run/netns/$NS" "$@"; }
tdocker() { docker -H "unix://$SOCK" "$@"; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

registry_config() { # name addr [tls]
  local name=$1 addr=$2 tls=${3:-}
  {
    echo "version: 0.1"
    echo "log:"
    echo "  level: warn"
    echo "storage:"
    echo "  filesystem:"
    echo "    rootdirectory: $STORE"
    echo "  delete:"
    echo "    enabled: true"
    echo "  # no cache: section: no blob-descriptor cache, so every instance reads the store as it is"
    echo "http:"
    echo "  addr: $addr"
    echo "  secret: homelab-twin-shared-store"
    if [ -n "$tls" ]; then
      echo "  tls:"
      echo "    certificate: $RUN/hub/hub.crt"
      echo "    key: $RUN/hub/hub.key"
    fi
  } >"$RUN/registry-$name.yml"
}

wait_http() { # what url [ns]
  local what=$1 url=$2 ns=${3:-}
  for _ in $(seq 1 60); do
    if [ -n "$ns" ]; then in_ns curl -fsk -o /dev/null "$url" && return 0
    else curl -fsk -o /dev/null "$url" && return 0; fi
    sleep 0.5
  done
  die "$what did not answer at $url (logs under $RUN)"
}

start_bg() { # pidfile log cmd...  (setsid: survives the caller; pid = the command itself)
  local pidfile=$1 logfile=$2; shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null 9>&- &  # 9>&-: never hold the twin.sh lock
  echo $! >"$pidfile"
}

netns_up() {
  if ! ip netns list | grep -qw "$NS"; then
    log "creating network namespace $NS"
    ip netns add "$NS"
  fi
  ip -n "$NS" link set lo up
  if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
    ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NS"
    ip addr add "$HOST_IP/30" dev "$VETH_HOST"
    ip -n "$NS" addr add "$NS_IP/30" dev "$VETH_NS"
  fi
  ip link set "$VETH_HOST" up
  ip -n "$NS" link set "$VETH_NS" up
  ip -n "$NS" route replace default via "$HOST_IP"
  sysctl -qw net.ipv4.ip_forward=1
  iptables -t nat -C POSTROUTING -s "$SUBNET" ! -o "$VETH_HOST" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$SUBNET" ! -o "$VETH_HOST" -j MASQUERADE
  iptables -C FORWARD -i "$VETH_HOST" -j ACCEPT 2>/dev/null || iptables -I FORWARD 1 -i "$VETH_HOST" -j ACCEPT
  iptables -C FORWARD -o "$VETH_HOST" -j ACCEPT 2>/dev/null || iptables -I FORWARD 1 -o "$VETH_HOST" -j ACCEPT
  # The twin dockerd's own /etc/hosts (registry-1.docker.io = the Hub stand-in), bind-mounted in
  # its private mount namespace (dockerd_up); nothing else in /etc changes.
  mkdir -p "$NETNS_ETC" "$RUN/hub"
  if [ ! -s "$RUN/hub/hub.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=registry-1.docker.io" \
      -addext "subjectAltName=DNS:registry-1.docker.io,DNS:index.docker.io,DNS:docker.io" \
      -keyout "$RUN/hub/hub.key" -out "$RUN/hub/hub.crt" 2>/dev/null
  fi
  # dockerd verifies Docker Hub against the system roots only (no certs.d for the official
  # index): the twin dockerd gets SSL_CERT_FILE = the host's bundle + the stand-in's CA.
  cat /etc/ssl/certs/ca-certificates.crt "$RUN/hub/hub.crt" >"$RUN/hub/ca-bundle.crt"
  printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 registry-1.docker.io index.docker.io docker.io\n' \
    >"$NETNS_ETC/hosts"
}

registries_up() {
  mkdir -p "$STORE"
  registry_config push "127.0.0.1:$PUSH_PORT"
  registry_config mirror "127.0.0.1:$MIRROR_PORT"
  registry_config hub "127.0.0.1:443" tls
  alive "$RUN/registry-push.pid" || start_bg "$RUN/registry-push.pid" "$RUN/registry-push.log" \
    /usr/bin/docker-registry serve "$RUN/registry-push.yml"
  alive "$RUN/registry-mirror.pid" || start_bg "$RUN/registry-mirror.pid" "$RUN/registry-mirror.log" \
    nsenter --net="/run/netns/$NS" /usr/bin/docker-registry serve "$RUN/registry-mirror.yml"
  alive "$RUN/registry-hub.pid" || start_bg "$RUN/registry-hub.pid" "$RUN/registry-hub.log" \
    nsenter --net="/run/netns/$NS" /usr/bin/docker-registry serve "$RUN/registry-hub.yml"
  wait_http "push registry" "http://127.0.0.1:$PUSH_PORT/v2/"
  wait_http "mirror registry" "http://127.0.0.1:$MIRROR_PORT/v2/" ns
  wait_http "Docker Hub stand-in" "https://127.0.0.1:443/v2/" ns
}

gpu_state_up() {
  mkdir -p "$GPU_STATE/containers"
  python3 "$HERE/gpu/twin_gpu.py" init --state "$GPU_STATE" --desktop-mib "$DESKTOP_MIB_DEFAULT" >/dev/null
}

dockerd_up() {
  if alive "$RUN/docker.pid" && tdocker info >/dev/null 2>&1; then return 0; fi
  mkdir -p "$DATA_ROOT" "$RUN/exec"
  echo '{}' >"$RUN/daemon.json"
  log "starting the twin dockerd in netns $NS"
  # Own network namespace (nsenter --net) and own mount namespace (unshare -m, slave: the host's
  # mounts reach in, the twin's container mounts stay inside) where /etc/hosts names the Hub
  # stand-in. dockerd writes its own pid to --pidfile.
  # HOMELAB_TWIN_DOCKER_DESKTOP=1: its /etc/os-release says PRETTY_NAME="Docker Desktop", so
  # `docker info` reports Operating System "Docker Desktop" as Docker Desktop's engine does (a
  # stand-in at the Docker Desktop boundary: docker_engine_mode auto then finds Desktop's engine).
  rm -f "$NETNS_ETC/os-release"
  if [ "${HOMELAB_TWIN_DOCKER_DESKTOP:-0}" = 1 ]; then
    printf 'PRETTY_NAME="Docker Desktop"\nNAME="Docker Desktop"\nID=docker-desktop\n# homelab-twin stand-in\n' \
      >"$NETNS_ETC/os-release"
  fi
  setsid nsenter --net="/run/netns/$NS" unshare -m --propagation slave sh -c '
    mount --bind "$1/hosts" /etc/hosts &&
    { [ ! -f "$1/os-release" ] || mount --bind "$1/os-release" /etc/os-release; } &&
    shift && exec "$@"' twin-dockerd "$NETNS_ETC" \
    env PATH="$HERE/gpu/bin:$PATH" SSL_CERT_FILE="$RUN/hub/ca-bundle.crt" \
    dockerd --config-file "$RUN/daemon.json" \
      --host "unix://$SOCK" --data-root "$DATA_ROOT" --exec-root "$RUN/exec" \
      --pidfile "$RUN/docker.pid" --registry-mirror "http://127.0.0.1:$MIRROR_PORT" \
      --cgroup-parent /homelab-twin \
      >"$RUN/dockerd.log" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 60); do tdocker info >/dev/null 2>&1 && break; sleep 1; done
  tdocker info >/dev/null 2>&1 || { tail -20 "$RUN/dockerd.log" >&2; die "twin dockerd did not answer on $SOCK"; }
  tdocker info --format '{{json .Runtimes}}' >/dev/null
}

cmd_up() {
  need_root
  command -v docker-registry >/dev/null || die "docker-registry missing (apt-get install docker-registry)"
  mkdir -p "$RUN" "$LIB"
  netns_up
  registries_up
  gpu_state_up
  dockerd_up
  log "up: twin daemon unix://$SOCK (netns $NS), push to 127.0.0.1:$PUSH_PORT/<name>"
}

stop_pid() { # pidfile what
  local pidfile=$1 what=$2 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "$what did not stop in 30 s: SIGKILL"; kill -9 "$pid" || true; fi
  fi
  rm -f "$pidfile"
}

cmd_down() {
  need_root
  local purge=${1:-}
  stop_pid "$RUN/docker.pid" "twin dockerd"
  for r in hub mirror push; do stop_pid "$RUN/registry-$r.pid" "registry $r"; done
  iptables -D FORWARD -i "$VETH_HOST" -j ACCEPT 2>/dev/null || true
  iptables -D FORWARD -o "$VETH_HOST" -j ACCEPT 2>/dev/null || true
  iptables -t nat -D POSTROUTING -s "$SUBNET" ! -o "$VETH_HOST" -j MASQUERADE 2>/dev/null || true
  ip link del "$VETH_HOST" 2>/dev/null || true
  if ip netns list | grep -qw "$NS"; then ip netns del "$NS"; fi
  rm -rf "$NETNS_ETC"
  rm -rf "$RUN"
  if [ "$purge" = "--purge" ]; then rm -rf "$LIB"; log "purged $LIB"; fi
  log "down"
}

cmd_status() {
  local rc=0
  if ip netns list | grep -qw "$NS"; then echo "netns $NS: present"; else echo "netns $NS: absent"; rc=1; fi
  for r in push mirror hub; do
    if alive "$RUN/registry-$r.pid"; then echo "registry $r: running (pid $(cat "$RUN/registry-$r.pid"))"
    else echo "registry $r: stopped"; rc=1; fi
  done
  if alive "$RUN/docker.pid" && tdocker info >/dev/null 2>&1; then
    echo "twin dockerd: running (pid $(cat "$RUN/docker.pid"), $SOCK)"
    tdocker info --format 'twin dockerd: server {{.ServerVersion}}, mirrors {{.RegistryConfig.Mirrors}}, containers running {{.ContainersRunning}}'
  else echo "twin dockerd: stopped"; rc=1; fi
  if [ -f "$GPU_STATE/gpu.json" ]; then
    echo "gpu state: $GPU_STATE (desktop $(cat "$GPU_STATE/desktop_mib") MiB)"
  else echo "gpu state: absent"; rc=1; fi
  return $rc
}

# name on Docker Hub -> image on the first daemon (built here when it is a stand-in)
IMAGES=(
  "vllm/vllm-openai:v0.32.0=homelab-twin/vllm-openai:v0.32.0"
  "pytorch/pytorch:2.4.1-cuda12.1-cudnn9-runtime=homelab-twin/pytorch:2.4.1-cuda12.1-cudnn9-runtime"
  "nvidia/cuda:12.4.1-base-ubuntu22.04=homelab-twin/cuda:12.4.1-base-ubuntu22.04"
  "library/debian:bookworm=homelab/debian:bookworm"
  "homelab/debian:bookworm=homelab/debian:bookworm"
)

# The stand-ins start FROM the local profile's images. On a fresh machine (a cold CI cache) they do
# not exist yet and a build would try Docker Hub: build them the way the local profile does.
LOCAL_BASES=(homelab/vllm-cpu:0.32.0 homelab/torch-cpu:2.13.0)
ensure_local_bases() {
  local img missing=()
  for img in "${LOCAL_BASES[@]}"; do docker image inspect "$img" >/dev/null 2>&1 || missing+=("$img"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local repo t0; repo="$(cd "$HERE/../../.." && pwd)"; t0=$(date +%s)
  log "building ${missing[*]} with playbooks/local_images.yml (about 10 min on a cold cache)"
  ( source "$repo/scripts/lib/common.sh" && cd "$repo" \
      && ansible-playbook -i inventories/local playbooks/local_images.yml ) >"$RUN/local_images.log" 2>&1 \
    || { tail -40 "$RUN/local_images.log" >&2; die "playbooks/local_images.yml failed (log: $RUN/local_images.log)"; }
  for img in "${LOCAL_BASES[@]}"; do
    docker image inspect "$img" >/dev/null 2>&1 || die "$img is still missing after playbooks/local_images.yml"
  done
  log "local images built in $(( $(date +%s) - t0 )) s"
}

cmd_build_images() {
  # Build contexts are assembled in a temporary folder (nothing generated lands in the tree).
  local t0 ctx
  ensure_local_bases
  t0=$(date +%s)
  ctx=$(mktemp -d /tmp/homelab-twin-build.XXXXXX)
  cp -r "$HERE/images/vllm-openai" "$ctx/vllm"
  cp "$HERE/../../../roles/vllm_cpu_image/files/make_tiny_qwen2_model.py" "$ctx/vllm/"
  docker build -q -t homelab-twin/vllm-openai:v0.32.0 "$ctx/vllm" >/dev/null
  cp -r "$HERE/images/pytorch" "$ctx/pytorch"
  docker build -q -t homelab-twin/pytorch:2.4.1-cuda12.1-cudnn9-runtime "$ctx/pytorch" >/dev/null
  cp -r "$HERE/images/cuda-probe" "$ctx/cuda-probe"
  docker build -q -t homelab-twin/cuda:12.4.1-base-ubuntu22.04 "$ctx/cuda-probe" >/dev/null
  rm -rf "$ctx"
  log "stand-in images built in $(( $(date +%s) - t0 )) s"
}

cmd_push_images() {
  need_root
  alive "$RUN/registry-push.pid" || die "the registries are not running: twin.sh up first"
  cmd_build_images
  local entry hub src t0
  for entry in "${IMAGES[@]}"; do
    hub=${entry%%=*}; src=${entry#*=}
    t0=$(date +%s)
    docker tag "$src" "127.0.0.1:$PUSH_PORT/$hub"
    docker push -q "127.0.0.1:$PUSH_PORT/$hub" >/dev/null
    docker image rm "127.0.0.1:$PUSH_PORT/$hub" >/dev/null
    log "pushed $hub ($src) in $(( $(date +%s) - t0 )) s"
  done
}

# One mutating command at a time (a scenario's prepare and a selfcheck may overlap).
case "${1:-}" in
  up|down|push-images|build-images)
    exec 9>/run/homelab-twin.lock
    flock -w 600 9 || die "another twin.sh holds /run/homelab-twin.lock" ;;
esac

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "${1:-}" ;;
  status) cmd_status ;;
  push-images) cmd_push_images ;;
  build-images) cmd_build_images ;;
  docker) shift; tdocker "$@" ;;
  exec) shift; in_ns "$@" ;;
  *) echo "usage: $0 up|down [--purge]|status|push-images|docker ARGS|exec CMD" >&2; exit 2 ;;
esac
