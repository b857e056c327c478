#!/usr/bin/env bash
# ansible-test for the homelab.ai collection, offline: it must run from inside
# ansible_collections/homelab/ai, in its own venv (--venv) on this Python.
# Usage: scripts/ansible-test.sh sanity [targets...] | units [targets...]
source "$(dirname "$0")/lib/common.sh"
cd "$COLLECTIONS_DIR/ansible_collections/homelab/ai"
cmd="$1"; shift
py="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$cmd" in
  sanity) exec ansible-test sanity --venv --python "$py" --color no "$@" ;;
  units)  exec ansible-test units --venv --requirements --python "$py" --color no "$@" ;;
  *) die "usage: $0 sanity|units [ansible-test options]" ;;
esac
