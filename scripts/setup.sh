#!/usr/bin/env bash
# Idempotent setup of a fresh Debian bookworm machine (root, no systemd, only PyPI and
# Debian reachable): system packages, the pinned Python toolchain, community collections
# without Galaxy, a running Docker daemon and the locally built base image.
# A second run with nothing changed only checks stamps and takes seconds.
source "$(dirname "$0")/lib/common.sh"

stamp_ok() { [ -f "$CACHE_DIR/$1.stamp" ] && [ "$(cat "$CACHE_DIR/$1.stamp")" = "$2" ]; }
stamp_set() { printf '%s' "$2" > "$CACHE_DIR/$1.stamp"; }

system_packages() {
  local pkgs=(docker.io debootstrap rsync iproute2 chromium chromium-driver libjs-chart.js curl docker-registry)
  local missing=()
  for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing system packages (${missing[*]}); run as root or install them"
  log "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_toolchain() {
  local want; want="$(sha256sum "$REPO_ROOT/requirements.txt" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/python" ] && stamp_ok venv "$want"; then return 0; fi
  log "installing the pinned Python toolchain into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO_ROOT/requirements.txt"
  stamp_set venv "$want"
}

community_collections() {
  # community.docker, ansible.posix and their filtering helper ship inside the `ansible` wheel.
  local want="ansible-$ANSIBLE_BUNDLE_VERSION"
  if [ -d "$COLLECTIONS_DIR/ansible_collections/community/docker" ] && stamp_ok collections "$want"; then return 0; fi
  log "extracting community collections from the ansible $ANSIBLE_BUNDLE_VERSION wheel (no Galaxy)"
  local dl="$CACHE_DIR/wheels"; mkdir -p "$dl"
  ls "$dl"/ansible-"$ANSIBLE_BUNDLE_VERSION"-*.whl >/dev/null 2>&1 \
    || "$VENV/bin/pip" download -q --no-deps --disable-pip-version-check -d "$dl" "ansible==$ANSIBLE_BUNDLE_VERSION"
  rm -rf "$COLLECTIONS_DIR/ansible_collections/community" "$COLLECTIONS_DIR/ansible_collections/ansible"
  "$VENV/bin/python" - "$dl"/ansible-"$ANSIBLE_BUNDLE_VERSION"-*.whl "$COLLECTIONS_DIR" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
keep = ("ansible_collections/community/docker/", "ansible_collections/ansible/posix/",
        "ansible_collections/community/library_inventory_filtering_v1/")
with zipfile.ZipFile(wheel) as zf:
    members = [m for m in zf.namelist() if m.startswith(keep)]
    zf.extractall(dest, members)
print(f"extracted {len(members)} files")
PY
  stamp_set collections "$want"
}

ansible_test_offline() {
  # ansible-test bootstraps pip in its venvs from a script on an unreachable host: give it a
  # cached stand-in that installs pip from a wheel fetched through the package index.
  local pip_version; pip_version="$("$VENV/bin/python" -c 'from ansible_test._internal.python_requirements import get_venv_packages; print(get_venv_packages(type("P", (), {"version": "3.11"})())["pip"])' 2>/dev/null || echo 24.2)"
  local cache="$HOME/.ansible/test/cache" name; name="get_pip_${pip_version//./_}.py"
  if [ -f "$cache/$name" ] && ls "$cache"/pip-"$pip_version"-py3-none-any.whl >/dev/null 2>&1 \
     && cmp -s "$REPO_ROOT/scripts/lib/get_pip_offline.py" "$cache/$name"; then return 0; fi
  log "preparing ansible-test's offline pip bootstrap (pip $pip_version)"
  mkdir -p "$cache"
  "$VENV/bin/pip" download -q --no-deps --disable-pip-version-check -d "$cache" "pip==$pip_version"
  cp "$REPO_ROOT/scripts/lib/get_pip_offline.py" "$cache/$name"
}

# After a machine restart the old pid files can name a process that now is something else (dockerd
# then waits for a containerd that is not there and gives up): drop those that do not name their daemon.
clear_stale_pid_files() {
  local file pid want
  for file in /var/run/docker/containerd/containerd.pid:containerd /var/run/docker.pid:dockerd; do
    want="${file##*:}"; file="${file%:*}"
    [ -f "$file" ] || continue
    pid="$(cat "$file")"
    if [ "$(ps -p "$pid" -o comm= 2>/dev/null)" != "$want" ]; then
      log "removing stale $file (pid $pid is not $want)"
      rm -f "$file"
    fi
  done
}

docker_daemon() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || die "no dockerd found; install docker.io"
  clear_stale_pid_files
  log "starting dockerd (no systemd here)"
  nohup dockerd >"$CACHE_DIR/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  tail -20 "$CACHE_DIR/dockerd.log" >&2
  die "dockerd did not answer within 60 s (log: $CACHE_DIR/dockerd.log)"
}

base_image() {
  # No registry: the Debian base every local image builds FROM comes from debootstrap.
  if docker image inspect "$HOMELAB_BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
  local rootfs="$CACHE_DIR/rootfs-bookworm"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    log "debootstrapping a Debian bookworm root (about a minute)"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" "$DEBIAN_MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  fi
  log "importing $HOMELAB_BASE_IMAGE"
  tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$HOMELAB_BASE_IMAGE" >/dev/null
}

system_packages
python_toolchain
community_collections
ansible_test_offline
docker_daemon
base_image
log "setup complete"
