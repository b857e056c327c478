# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: Docker device requests by GPU ID from a vllm_plan result (module_utils/gpu_placement.py)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils.gpu_placement import PlacementError, device_requests


def gpu_device_requests(plan, member="vllm"):
    try:
        return device_requests(plan, member)
    except PlacementError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"gpu_device_requests": gpu_device_requests}
