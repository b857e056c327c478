# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's routing from each host's own plan: real plans of the repository's models (the planner
itself, as the vllm role runs it), a refused plan left out with its reason, keys only as references."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import fleet
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as vp
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.inventory_models import GAMING, LOCAL, inventory_model
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.test_vllm_plan import gpu, rtx3090_wsl2, wsl2_facts

QWEN3_32B_AWQ = inventory_model(GAMING, "qwen3-32b-awq")
TINY = inventory_model(LOCAL, "tiny-qwen2")
KEY_A = "Vq3nT8pLx2Rk7Wm4Zs9Yb6Hc1Jd5Fg0Ne3Qa8Ur2"
KEY_B = "Pw7Lm2Xq9Tz4Kc8Rv1Hs6Nb3Yd5Gf0Ja2Ue7Oi4"


def module_result(model, gpus, name, wsl=None, **kw):
    """What the vllm role registers as vllm_plan_result: the module's exit (plan) or its refusal (failed, msg)."""
    try:
        return {"changed": False, "plan": vp.plan(dict(model), gpus, wsl or {}, "0.32.0", name=name, **kw)}
    except ValueError as exc:
        return {"failed": True, "msg": str(exc)}


def tiny_host(name, url, key=KEY_A):
    return {"name": name, "plan_result": module_result(TINY, [], "tiny-qwen2", max_model_len=2048), "url": url,
            "api_key": key}


def gaming_host(key=KEY_B):
    result = module_result(QWEN3_32B_AWQ, [rtx3090_wsl2()], "qwen3-32b-awq", wsl=wsl2_facts())
    return {"name": "gaming-pc", "plan_result": result, "url": "http://192.0.2.10:8000", "api_key": key}


def test_each_host_is_routed_under_the_name_its_vllm_serves_with_its_planned_context():
    found = fleet.fleet_backends([gaming_host(), tiny_host("box-2", "http://192.0.2.11:8000")])
    by_host = {backend["host"]: backend for backend in found["backends"]}
    assert found["left_out"] == []
    assert found["models"] == ["qwen3-32b-awq", "tiny-qwen2"]
    assert by_host["gaming-pc"]["model"] == "qwen3-32b-awq"
    # The record's 3090 plan: 8192 tokens (test_vllm_plan's record case); the router carries the same figure.
    assert by_host["gaming-pc"]["max_model_len"] == 8192
    assert by_host["gaming-pc"]["api_base"] == "http://192.0.2.10:8000/v1"
    assert by_host["box-2"]["device"] == "cpu" and by_host["box-2"]["max_model_len"] == 2048


def test_replicas_of_one_model_share_a_model_name_and_keys_are_references_only():
    hosts = [tiny_host("fleet-b", "http://homelab-fleet-b-vllm:18002", KEY_B),
             tiny_host("fleet-a", "http://homelab-fleet-a-vllm:18001", KEY_A)]
    found = fleet.fleet_backends(hosts)
    config = fleet.router_config(found["backends"], {"num_retries": 3, "cooldown_seconds": 5,
                                                     "health_check_interval": 15})
    assert [entry["model_name"] for entry in config["model_list"]] == ["tiny-qwen2", "tiny-qwen2"]
    assert [entry["model_info"]["id"] for entry in config["model_list"]] == ["fleet-a", "fleet-b"]
    assert [entry["model_info"]["health_check_timeout"] for entry in config["model_list"]] == [5, 5]
    assert config["model_list"][0]["litellm_params"] == {
        "model": "hosted_vllm/tiny-qwen2", "api_base": "http://homelab-fleet-a-vllm:18001/v1",
        "api_key": "os.environ/HOMELAB_UPSTREAM_KEY_FLEET_A", "max_retries": 0}
    assert config["router_settings"]["num_retries"] == 3 and config["router_settings"]["cooldown_time"] == 5
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY",
                                          "background_health_checks": True, "health_check_interval": 15,
                                          "enable_health_check_routing": True}
    assert KEY_A not in repr(config) and KEY_B not in repr(config)
    assert fleet.upstream_key_env(hosts) == {"HOMELAB_UPSTREAM_KEY_FLEET_A": KEY_A, "HOMELAB_UPSTREAM_KEY_FLEET_B": KEY_B}


def test_a_refused_plan_leaves_its_host_out_with_the_planners_reason_and_the_rest_are_routed():
    # A 3060 (12 GiB) cannot hold Qwen3-32B-AWQ's ~18 GiB of weights: the planner refuses.
    small = {"name": "box-3060", "plan_result": module_result(QWEN3_32B_AWQ, [gpu("NVIDIA GeForce RTX 3060", 12288)],
                                                              "qwen3-32b-awq", wsl={"is_wsl": False}),
             "url": "http://192.0.2.12:8000", "api_key": KEY_A}
    assert small["plan_result"]["failed"]
    found = fleet.fleet_backends([gaming_host(), small])
    assert [backend["host"] for backend in found["backends"]] == ["gaming-pc"]
    (left,) = found["left_out"]
    assert left["host"] == "box-3060"
    assert left["reason"].startswith("box-3060: its vLLM plan was refused (")
    assert small["plan_result"]["msg"].splitlines()[0] in left["reason"]
    assert left["reason"].endswith("left out of the routing")
    # Its key does not travel to the router either.
    assert fleet.upstream_key_env([gaming_host(), small]) == {"HOMELAB_UPSTREAM_KEY_GAMING_PC": KEY_B}


def test_a_host_without_a_plan_or_an_address_is_left_out_and_says_how_to_fix_it():
    unreachable = {"name": "laptop", "plan_result": None, "url": "http://laptop:8000", "api_key": ""}
    no_address = tiny_host("box-2", "192.0.2.11:8000")
    found = fleet.fleet_backends([unreachable, no_address])
    assert found["backends"] == []
    reasons = [left["reason"] for left in found["left_out"]]
    assert "no vLLM plan this run" in reasons[1] and reasons[1].startswith("laptop: ")
    assert "set router_upstream_url in its host_vars" in reasons[0]
    with pytest.raises(ValueError, match="no inference host has a plan to route to"):
        fleet.router_config(found["backends"], {})


def test_a_keyless_host_gets_a_dummy_key_and_no_environment():
    keyless = tiny_host("box-2", "http://192.0.2.11:8000", key="")
    config = fleet.router_config(fleet.fleet_backends([keyless])["backends"],
                                 {"metrics": False, "health_check_interval": 0})
    assert config["model_list"][0]["litellm_params"]["api_key"] == "none"
    assert "health_check_timeout" not in config["model_list"][0]["model_info"]  # no background checks
    assert "callbacks" not in config["litellm_settings"]
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    assert fleet.upstream_key_env([keyless]) == {}


def test_hosts_whose_names_map_to_one_key_variable_are_refused():
    with pytest.raises(ValueError, match="hosts 'box-2' and 'box_2' map to the same key variable HOMELAB_UPSTREAM_KEY_BOX_2"):
        fleet.fleet_backends([tiny_host("box-2", "http://a:8000"), tiny_host("box_2", "http://b:8000")])


def test_served_model_name_reads_the_plan_args():
    assert fleet.served_model_name({"args": ["--model", "/m", "--served-model-name", "x"], "model": "y"}) == "x"
    assert fleet.served_model_name({"args": ["--model", "/m"], "model": "y"}) == "y"
