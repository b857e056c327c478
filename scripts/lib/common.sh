# Shared helpers for scripts/*.sh. Sourced, never run.
# shellcheck shell=bash
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE_DIR="${HOMELAB_CACHE_DIR:-$REPO_ROOT/.cache}"
VENV="${HOMELAB_VENV:-$REPO_ROOT/.venv}"
COLLECTIONS_DIR="$REPO_ROOT/collections"
# Every image name is a variable; these are the local profile's defaults.
HOMELAB_BASE_IMAGE="${HOMELAB_BASE_IMAGE:-homelab/debian:bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The wheel of ansible that carries community.docker & co. (Galaxy is not reachable in CI).
ANSIBLE_BUNDLE_VERSION="${ANSIBLE_BUNDLE_VERSION:-12.3.0}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

export PATH="$VENV/bin:$PATH"
export ANSIBLE_CONFIG="$REPO_ROOT/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR"
export PYTHONPATH="$COLLECTIONS_DIR${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$CACHE_DIR"
