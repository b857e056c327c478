# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How container_runtime_facts and host_facts reach the engine and probe a GPU container
(module_utils host_detect.detect_container_runtime): the same options, documented once."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The probe's time limit is not here: container_runtime_facts calls it timeout, host_facts probe_timeout.
    DOCUMENTATION = r"""
options:
  docker_cli:
    description: Path of the docker CLI; default is C(docker) from PATH.
    type: path
  docker_host:
    description: Engine URL for the SDK fallback (for example C(unix:///var/run/docker.sock)); the CLI uses its own context.
    type: str
  probe_gpu_container:
    description: Start a container with all GPUs to prove the GPU runtime works.
    type: bool
    default: false
  probe_image:
    description: Image for the probe; must exist locally (it is never pulled).
    type: str
    default: homelab/debian:bookworm
"""
