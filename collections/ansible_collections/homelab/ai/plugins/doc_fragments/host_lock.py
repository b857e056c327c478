# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host lock (module_utils host_lock) that image_build and container_rollout share: one
directory, one timeout, the same behaviour."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # Defaults are module_utils' DEFAULT_STATE_DIR and the 600 s of both argument specs.
    DOCUMENTATION = r"""
options:
  state_dir:
    description:
      - Directory on the Docker host for the module's host locks, one lock file per image name for
        M(homelab.ai.image_build) and one per container (beside the rollout's journal) for
        M(homelab.ai.container_rollout). Both modules default to the same directory.
      - A real run holds its lock for the whole change, so two runs of the play never build one image name or
        roll out one container at once; the second waits (RV(lock_wait) says for whom) up to O(lock_timeout),
        then fails. An interrupted run releases its lock. Check mode takes no lock.
      - M(homelab.ai.image_build) (and the O(homelab.ai.container_rollout#module:build) of a rollout) also keeps
        C(file-digests.json) here, the sha256 of each context file of 1 MiB or more with its device, inode, size, mtime
        and ctime, so that a run that finds such a file as it was does not read it again. Any write to the file makes
        it read again. Check mode does not write it.
    type: path
    default: /var/lib/homelab/rollouts
  lock_timeout:
    description: Seconds to wait for another run that holds the same lock on this host.
    type: int
    default: 600
"""
