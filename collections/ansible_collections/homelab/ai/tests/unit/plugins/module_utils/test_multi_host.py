# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The multi-host option: pipeline parallelism over several hosts with Ray (module_utils/multi_host.py).

Hand arithmetic for Qwen3-32B-AWQ (the gaming inventory's entry: 19,323,000,000 B of weights, 64 layers,
8 KV heads x 128, hidden 5120, vocab 151936) on vLLM 0.32.0, Linux, gpu_memory_utilization 0.9:

* CUDA total = nvidia-smi total x 23.70/24: RTX 3090 23.70 GiB, RTX 3060 11.85 GiB, RTX 3060 Ti 7.90 GiB.
* Room for weights + KV per GPU = util x total - activations 0.5071 (sampler: 256 x 151936 x 14 B) - workspaces
  0.2 - CUDA graphs 0.406 (0.1 + 0.006 x 51 sizes): 3090 21.33 - 1.1131 = 20.2169 GiB, 3060 10.665 - 1.1131 =
  9.5519 GiB.
* Embeddings: 151936 x 5120 x 2 B = 1,555,824,640 B = 1.4490 GiB, on the first stage (embed_tokens) and on the
  last (lm_head). Layers proportional to the room beside them: 64 x 18.7679 / (18.7679 + 8.1029) = 44.70 ->
  45 on the 3090, 19 on the 3060.
* Stage weights: per layer (19,323,000,000 - 2 x 1,555,824,640) / 64 = 253,302,355 B; 3090: 45 x that + emb =
  12,954,430,615 B; 3060: 19 x that + emb = 6,368,569,385 B. KV at 2048 tokens: 4096 B per layer and token.
* Efficiency (vllm_plan.EFFICIENCY_MARLIN_GRAPHS) = 19 x (19,323,000,000 + 262,144 x 2048) / 936e9 = 0.40314.
* 3090 stage: (12,954,430,615 + 45 x 4096 x 2048) / 936e9 / 0.40314 = 35.33 ms (28.3 tok/s);
  3060 stage: (6,368,569,385 + 19 x 4096 x 2048) / 360e9 / 0.40314 = 44.98 ms (22.2 tok/s, rounded by predict_speed);
  compute 1/28.3 + 1/22.2 = 80.38 ms. Network at 1 Gbit/s: one hop 0.3 ms + 2 x 5120 x 2 B / 125e6 B/s =
  0.164 ms, plus the 0.3 ms return hop = 0.764 ms. 1 / 81.145 ms = 12.3 tok/s.
* One hypothetical 936 GB/s GPU with all the memory: the record's own case, 19.0 tok/s: penalty 1 - 12.32/19.0
  = 35.1 %. At 0.1 Gbit/s the hop carries 1.638 ms: 82.62 ms a token, 12.1 tok/s, penalty 36.3 %.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import multi_host as mh
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as vp
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.inventory_models import GAMING, inventory_model
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.test_vllm_plan import gpu

QWEN3_32B_AWQ = inventory_model(GAMING, "qwen3-32b-awq")
RTX3090 = ("NVIDIA GeForce RTX 3090", 24576)
RTX3060 = ("NVIDIA GeForce RTX 3060", 12288)
RTX3060TI = ("NVIDIA GeForce RTX 3060 Ti", 8192)
# Qwen3-32B-AWQ at its native 32768-token context: 18.0 GiB of weights + 8.0 GiB of KV, more than a 3090 holds.
LONG = 32768


def fleet(**hosts):
    return dict((name, {"gpus": [gpu(*card)], "address": "10.0.0.%d" % (i + 1), "interface": "eno1"})
                for i, (name, card) in enumerate(sorted(hosts.items())))


def option(hosts, **kw):
    return mh.pipeline_option(dict(QWEN3_32B_AWQ), hosts, name="qwen3-32b-awq", **kw)


def test_a_3090_alone_cannot_hold_the_long_context():
    alone = option(fleet(gamer=RTX3090), max_model_len=LONG)
    assert alone["fits"] is False
    assert alone["needed_gib"] == 26.0                      # (19,323,000,000 + 262,144 x 32768) B = 26.00 GiB
    assert alone["available_gib"] == 20.22 and alone["shortfall_gib"] == 5.78


def test_3090_and_3060_pipeline_two_stages_layers_by_memory():
    opt = option(fleet(gamer=RTX3090, den=RTX3060), head="gamer", max_model_len=LONG)
    assert opt["fits"] is True
    assert (opt["pipeline_parallel_size"], opt["tensor_parallel_size"]) == (2, 1)
    assert opt["hosts"] == ["gamer", "den"] and opt["head"] == "gamer"
    assert [s["room_gib"] for s in opt["stages"]] == [20.22, 9.55]
    assert opt["layer_partition"] == "45,19"
    assert [(s["first_layer"], s["last_layer"]) for s in opt["stages"]] == [(0, 44), (45, 63)]
    assert [s["weights_gib"] for s in opt["stages"]] == [12.06, 5.93]   # 12,954,430,615 B and 6,368,569,385 B
    assert opt["max_model_len"] == LONG and opt["quantization"] == "awq_marlin"
    assert opt["env"]["VLLM_PP_LAYER_PARTITION"] == "45,19"


def test_3090_room_is_the_planners_own_ledger():
    """One fact, one place: the stage's room is what the planner gives weights + KV on a lone 3090."""
    opt = option(fleet(gamer=RTX3090, den=RTX3060), head="gamer", max_model_len=LONG)
    alone = vp.plan(dict(QWEN3_32B_AWQ), [gpu(*RTX3090)], {"is_wsl": False}, "0.32.0", name="qwen3-32b-awq")
    held = dict((e["name"], e["gib"]) for e in alone["ledger"]["0"]["entries"])
    assert opt["stages"][0]["room_gib"] == pytest.approx(held["weights"] + held["kv_cache"], abs=0.01)


def test_speed_and_penalty_by_hand():
    speed = option(fleet(gamer=RTX3090, den=RTX3060), head="gamer", max_model_len=LONG)["speed"]
    assert speed["context"] == 2048
    assert speed["compute_ms_per_token"] == pytest.approx(80.38, abs=0.01)
    assert speed["network_ms_per_token"] == pytest.approx(0.764, abs=0.001)
    assert speed["activation_bytes_per_token"] == 20480
    assert speed["expected_tokens_per_second"] == 12.3
    assert speed["single_gpu_tokens_per_second"] == 19.0
    assert speed["penalty_percent"] == 35.1


def test_penalty_grows_with_a_slower_link():
    hosts = fleet(gamer=RTX3090, den=RTX3060)
    fast = option(hosts, head="gamer", max_model_len=LONG, link_gbps=10.0)["speed"]
    gige = option(hosts, head="gamer", max_model_len=LONG, link_gbps=1.0)["speed"]
    slow = option(hosts, head="gamer", max_model_len=LONG, link_gbps=0.1)["speed"]
    assert fast["penalty_percent"] < gige["penalty_percent"] < slow["penalty_percent"]
    assert slow["network_ms_per_token"] == pytest.approx(2.238, abs=0.001)
    assert (slow["expected_tokens_per_second"], slow["penalty_percent"]) == (12.1, 36.3)


def test_too_big_for_the_whole_fleet_is_refused_with_the_shortfall():
    # 3060 Ti: util_max (7.90 - 0.3 context - 0.5 reserve) / 7.90 = 0.8987 -> 0.89 for every worker (one flag);
    # rooms 0.89 x 11.85 - 1.1131 = 9.4334 and 0.89 x 7.90 - 1.1131 = 5.9179 (15.3512 in all); needed
    # 19,859,870,912 B (weights + 2048 tokens of KV) = 18.4957 GiB: short by 3.1445 GiB.
    opt = option(fleet(den=RTX3060, attic=RTX3060TI))
    assert opt["fits"] is False
    assert opt["gpu_memory_utilization"] == 0.89
    assert opt["rooms_gib"] == {"den": 9.43, "attic": 5.92}
    assert opt["needed_gib"] == 18.5 and opt["shortfall_gib"] == 3.14
    assert "short by 3.14 GiB" in opt["why"][0]
    assert "does not hold it" in mh.summary(opt)


def test_launch_commands_are_complete():
    opt = option(fleet(gamer=RTX3090, den=RTX3060), head="gamer", max_model_len=LONG)
    head, workers = opt["launch"]["head"], opt["launch"]["workers"]
    assert head[0] == "export GLOO_SOCKET_IFNAME=eno1 NCCL_SOCKET_IFNAME=eno1 VLLM_HOST_IP=10.0.0.2"
    assert head[1].startswith("ray start --head --port=6379 --node-ip-address=10.0.0.2 --num-gpus=1 ")
    assert "--node-manager-port=6800" in head[1] and "--min-worker-port=10002" in head[1]
    serve = head[-1]
    assert serve.startswith("VLLM_PP_LAYER_PARTITION=45,19 VLLM_PORT=29500 vllm serve Qwen/Qwen3-32B-AWQ ")
    for flag in ("--pipeline-parallel-size 2", "--tensor-parallel-size 1", "--distributed-executor-backend ray",
                 "--max-model-len 32768", "--quantization awq_marlin", "--reasoning-parser qwen3"):
        assert flag in serve
    assert list(workers) == ["den"]
    assert workers["den"][0] == "export GLOO_SOCKET_IFNAME=eno1 NCCL_SOCKET_IFNAME=eno1 VLLM_HOST_IP=10.0.0.1"
    assert workers["den"][1].startswith("ray start --address=10.0.0.2:6379 --node-ip-address=10.0.0.1 --num-gpus=1 ")
    assert workers["den"][1].endswith(" --block")
    assert opt["node_env"]["den"] == {"VLLM_HOST_IP": "10.0.0.1", "NCCL_SOCKET_IFNAME": "eno1",
                                      "GLOO_SOCKET_IFNAME": "eno1"}
    net = opt["network"]
    assert 6379 in net["ports_head"] and 8000 in net["ports_head"] and 29500 in net["ports_head"]
    assert any("--network host" in d for d in net["docker"])
    assert any("same path" in s for s in net["same_everywhere"])
    assert net["recommended_link_gbps"] == 10.0 and net["prompt_transfer_seconds"] == 0.336


def test_unknown_address_is_a_visible_placeholder():
    opt = option({"gamer": [gpu(*RTX3090)], "den": [gpu(*RTX3060)]}, head="gamer", max_model_len=LONG)
    assert opt["launch"]["workers"]["den"][1].startswith("ray start --address=<IP of gamer>:6379")


def test_layer_split_is_proportional_and_complete():
    assert mh.split_layers(64, [18.77, 8.10]) == [45, 19]
    assert mh.split_layers(10, [1.0, 1.0, 1.0]) == [4, 3, 3]
    assert sum(mh.split_layers(7, [100.0, 0.001])) == 7 and mh.split_layers(7, [100.0, 0.001])[1] == 1


def test_planner_refusal_names_the_multi_host_option():
    card = gpu("NVIDIA GeForce RTX 4090", 16384)
    with pytest.raises(vp.PlanRefused) as err:
        vp.plan(dict(QWEN3_32B_AWQ), [card], {"is_wsl": False}, "0.32.0", name="qwen3-32b-awq",
                fleet_gpus={"den": [gpu(*RTX3060)]})
    msg = str(err.value)
    assert "does not fit" in msg and "tensor parallelism over several GPUs" in msg
    assert "Multi-host option: pipeline parallelism over 2 hosts (this host, den) with Ray, PP 2 x TP 1" in msg
    multi = err.value.plan["multi_host"]
    assert multi["fits"] is True and multi["head"] == mh.THIS_HOST
    speed = multi["speed"]
    expected = "%s tok/s expected (%s%% below" % (speed["expected_tokens_per_second"], speed["penalty_percent"])
    assert expected in msg
    assert err.value.plan["options"]


def test_planner_refusal_without_fleet_says_what_it_needs():
    card = gpu("NVIDIA GeForce RTX 4090", 16384)
    with pytest.raises(vp.PlanRefused) as err:
        vp.plan(dict(QWEN3_32B_AWQ), [card], {"is_wsl": False}, "0.32.0", name="qwen3-32b-awq")
    assert "Pipeline parallelism over several hosts (Ray) is the remaining option" in str(err.value)
    assert "fleet_gpus" in str(err.value) and "multi_host" not in err.value.plan


def test_planner_refusal_with_a_fleet_too_small():
    card = gpu("NVIDIA GeForce RTX 3060", 12288)
    with pytest.raises(vp.PlanRefused) as err:
        vp.plan(dict(QWEN3_32B_AWQ), [card], {"is_wsl": False}, "0.32.0", name="qwen3-32b-awq",
                fleet_gpus={"attic": [gpu(*RTX3060TI)]})
    assert "Even pipeline parallelism over the fleet does not hold it" in str(err.value)
    assert err.value.plan["multi_host"]["shortfall_gib"] > 0
