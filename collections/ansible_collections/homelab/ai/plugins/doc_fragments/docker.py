# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the modules that talk to the Docker daemon through the SDK (module_utils docker_common's
``get_client``) document alike: where the daemon is, what they need, where they run."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The Docker SDK modules (image_build, container_rollout). Their argument spec reads
    # docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"])); resolve_docker_host()
    # supplies the socket default, so the option itself has none.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - Docker daemon address, for example C(unix:///var/run/docker.sock) or C(tcp://127.0.0.1:2375).
      - Falls back to the environment variable E(DOCKER_HOST), then C(unix:///var/run/docker.sock).
    type: str
requirements:
  - docker (Python Docker SDK) >= 7.0
  - A reachable Docker daemon (Engine API >= 1.41)
attributes:
  platform:
    support: full
    platforms: posix
    details:
      - Runs where the Docker daemon socket (or O(docker_host)) is reachable.
"""
