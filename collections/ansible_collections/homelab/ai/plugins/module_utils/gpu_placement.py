# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker device requests for the GPUs the plan chose, by device ID.

A count (``count: -1`` = every GPU) hands a container whatever GPUs exist, so on a host with two
cards vLLM and the image server could both land on the one the plan reserved for vLLM. The plan of
module_utils/vllm_plan.py names the devices: ``gpus`` for vLLM, ``co_tenant_placement`` for the
other members of the stack. This turns that into ``device_requests`` of the Docker Engine API
(``DeviceIDs``, never together with ``Count``, which the daemon refuses).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PlacementError(ValueError):
    """The plan does not say where a member runs."""


def _device_request(ids):
    ids = [str(int(i)) for i in ids]
    if not ids:
        raise PlacementError("no GPU index given")
    return [{"driver": "nvidia", "device_ids": ids, "capabilities": [["gpu"]]}]


def device_requests(plan, member="vllm"):
    """``device_requests`` for ``member`` ("vllm" or a co-tenant name) from a vllm_plan result.

    A CPU plan or a member placed on the CPU gets none. Raises PlacementError naming the member
    when the plan has no placement for it."""
    if not isinstance(plan, dict):
        raise PlacementError("device_requests needs the vllm_plan result (a dict), got %s" % type(plan).__name__)
    if member == "vllm":
        if plan.get("device") != "cuda":
            return []
        gpus = plan.get("gpus") or []
        if not gpus:
            raise PlacementError("the vLLM plan for %s is a CUDA plan without GPU indices ('gpus')"
                                 % plan.get("model", "?"))
        return _device_request(gpus)
    placement = (plan.get("co_tenant_placement") or {}).get(member)
    if placement is None:
        known = sorted((plan.get("co_tenant_placement") or {}).keys())
        raise PlacementError(
            "the vLLM plan places no co-tenant named '%s' (placed: %s); add it to vllm_co_tenants so the "
            "plan counts its GPU memory" % (member, ", ".join(known) or "none"))
    if placement.get("device") != "cuda":
        return []
    if placement.get("gpu") is None:
        raise PlacementError("the plan puts co-tenant '%s' on CUDA without a GPU index" % member)
    return _device_request([placement["gpu"]])
