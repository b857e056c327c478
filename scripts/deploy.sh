#!/usr/bin/env bash
# Set up this machine and deploy the stack. Default: the local profile (inventories/local) on
# this host's Docker daemon. Extra arguments go to ansible-playbook, e.g. --check --diff.
source "$(dirname "$0")/lib/common.sh"
bash "$REPO_ROOT/scripts/setup.sh"
cd "$REPO_ROOT"
exec ansible-playbook -i "${HOMELAB_INVENTORY:-inventories/local}" site.yml "$@"
