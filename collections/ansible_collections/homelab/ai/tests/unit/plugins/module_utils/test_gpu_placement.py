from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils.gpu_placement import PlacementError, device_requests

PLAN = {"model": "qwen3-32b-awq", "device": "cuda", "gpus": [1],
        "co_tenant_placement": {"image_server": {"device": "cuda", "gpu": 0, "memory_gib": 3.5},
                                "tts": {"device": "cpu", "gpu": None, "memory_gib": 0}}}


def test_vllm_gets_the_planned_ids_not_a_count():
    assert device_requests(PLAN) == [{"driver": "nvidia", "device_ids": ["1"], "capabilities": [["gpu"]]}]
    assert "count" not in device_requests(PLAN)[0]


def test_co_tenants_get_their_own_gpu_or_none_on_cpu():
    assert device_requests(PLAN, "image_server")[0]["device_ids"] == ["0"]
    assert device_requests(PLAN, "tts") == []


def test_cpu_plan_has_no_device_requests():
    assert device_requests({"device": "cpu", "gpus": []}) == []


@pytest.mark.parametrize("plan, member, match", [
    ({"device": "cuda", "gpus": []}, "vllm", "without GPU indices"),
    (PLAN, "whisper", "no co-tenant named 'whisper' \\(placed: image_server, tts\\)"),
    ({"co_tenant_placement": {"x": {"device": "cuda"}}}, "x", "without a GPU index"),
    ("not a plan", "vllm", "needs the vllm_plan result"),
])
def test_missing_placements_name_the_member(plan, member, match):
    with pytest.raises(PlacementError, match=match):
        device_requests(plan, member)
