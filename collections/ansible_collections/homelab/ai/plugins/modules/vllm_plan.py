#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: vllm_plan
short_description: Plan a vLLM deployment (kernel, context, offload, CUDA graphs, flags) for a model and GPU
version_added: "0.1.0"
description:
  - Decides how vLLM serves one model on the GPUs found by M(homelab.ai.gpu_facts), the way the
    2026-02-27 decision record did by hand, and predicts decode speed for every option it weighs
    (A generic AWQ + eager + offload, B Marlin + offload, C Marlin + CUDA graphs without offload,
    D offload with pinned memory).
  - Release rules (Marlin thresholds, V0 engine, reasoning flags, Model Runner V2, WSL2 pinned
    memory) come from C(module_utils/vllm_releases.py), read from vLLM's source.
  - Fails, naming model, GPU, requirement and alternatives, when no plan can work, and refuses a
    requested context that does not fit instead of letting vLLM crash on it.
  - Computes only; it changes nothing on the host.
author:
  - homelab.ai contributors (@homelab-ai)
attributes:
  check_mode:
    support: full
    description: Pure computation, identical in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    description: Runs anywhere; the facts it needs are parameters.
options:
  model:
    description: One entry of the model registry (see M(homelab.ai.model_registry)).
    type: dict
    required: true
  name:
    description: Model name (the registry key), used as C(--served-model-name).
    type: str
    required: true
  gpus:
    description: GPUs as C(ansible_facts.gpus) of M(homelab.ai.gpu_facts); empty for a CPU host.
    type: list
    elements: dict
    default: []
  wsl:
    description: C(ansible_facts.wsl) of M(homelab.ai.wsl_facts) (C(is_wsl), C(kernel_release)...).
    type: dict
    default: {}
  vllm_version:
    description: vLLM release to plan for, e.g. C(0.32.0).
    type: str
    required: true
  max_model_len:
    description:
      - Requested context in tokens, or C(auto). Unset plans the model's C(default_context).
      - A number that does not fit is refused with the largest that does.
    type: str
  gpu_memory_utilization:
    description: Fraction of GPU memory vLLM may use.
    type: float
    default: 0.9
  min_tokens_per_second:
    description: Fail when the expected decode speed of the plan is below this.
    type: float
  max_num_seqs:
    description: Pass C(--max-num-seqs); fewer sequences shrink the sampler and CUDA graph reserve.
    type: int
  allow_cpu_offload:
    description: Allow C(--cpu-offload-gb) when nothing fits in VRAM (last resort, PCIe-bound).
    type: bool
    default: false
  pcie_gbps:
    description: Host-to-GPU bandwidth in GB/s for offload predictions (PCIe 4.0 x16 in practice).
    type: float
    default: 25.0
  cpu_kvcache_space_gib:
    description: C(VLLM_CPU_KVCACHE_SPACE) for a CPU plan.
    type: int
    default: 1
  cpu_has_compiler:
    description: The vllm-cpu image has a C++ compiler (else C(--enforce-eager) on CPU).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Plan Qwen3-32B-AWQ on the gaming PC
  homelab.ai.vllm_plan:
    name: qwen3-32b-awq
    model: "{{ vllm_models['qwen3-32b-awq'] }}"
    gpus: "{{ ansible_facts.gpus }}"
    wsl: "{{ ansible_facts.wsl }}"
    vllm_version: "0.32.0"
    min_tokens_per_second: 19
    max_num_seqs: 16
  register: vllm_plan_result

- name: Show why
  ansible.builtin.debug:
    var: vllm_plan_result.plan.explanation
"""

RETURN = r"""
plan:
  description: The plan.
  returned: success
  type: dict
  contains:
    quantization:
      description: awq_marlin, awq or none.
      type: str
      sample: awq_marlin
    max_model_len:
      description: Planned context in tokens.
      type: int
      sample: 8192
    max_model_len_estimate:
      description: Largest context that fits without offload.
      type: int
    cpu_offload_gb:
      description: GiB of weights offloaded to CPU (0 whenever the weights fit).
      type: int
    enforce_eager:
      description: Whether CUDA graphs are off.
      type: bool
    tensor_parallel_size:
      description: GPUs the model is split over.
      type: int
    args:
      description: vLLM server arguments (without host, port and API key).
      type: list
      elements: str
    env:
      description: Environment variables for the vLLM container.
      type: dict
    predicted_tokens_per_second:
      description: Decode ceiling at the full planned context (bandwidth / bytes per token).
      type: float
    expected_tokens_per_second:
      description: Ceiling times kernel efficiency (calibrated on the record's 19 tok/s).
      type: float
    options:
      description: Every option considered (A to D) with speed, context and verdict.
      type: list
      elements: dict
    explanation:
      description: Reasons, in words.
      type: list
      elements: str
    warnings:
      description: Things to know.
      type: list
      elements: str
options_table:
  description: The options as text rows.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as planner
from ansible_collections.homelab.ai.plugins.module_utils.model_registry import RegistryError
from ansible_collections.homelab.ai.plugins.module_utils.vllm_releases import UnsupportedRelease


def main():
    module = AnsibleModule(
        argument_spec=dict(
            model=dict(type="dict", required=True),
            name=dict(type="str", required=True),
            gpus=dict(type="list", elements="dict", default=[]),
            wsl=dict(type="dict", default={}),
            vllm_version=dict(type="str", required=True),
            max_model_len=dict(type="str"),
            gpu_memory_utilization=dict(type="float", default=0.9),
            min_tokens_per_second=dict(type="float", no_log=False),
            max_num_seqs=dict(type="int"),
            allow_cpu_offload=dict(type="bool", default=False),
            pcie_gbps=dict(type="float", default=25.0),
            cpu_kvcache_space_gib=dict(type="int", default=1),
            cpu_has_compiler=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    max_len = p["max_model_len"]
    if max_len not in (None, "", "auto"):
        try:
            max_len = int(max_len)
        except ValueError:
            module.fail_json(msg="max_model_len must be a number of tokens or 'auto', got %r" % max_len)
    elif max_len == "":
        max_len = None
    try:
        result = planner.plan(
            p["model"], p["gpus"], p["wsl"], p["vllm_version"], name=p["name"], max_model_len=max_len,
            gpu_memory_utilization=p["gpu_memory_utilization"], min_tokens_per_second=p["min_tokens_per_second"],
            allow_cpu_offload=p["allow_cpu_offload"], pcie_gbps=p["pcie_gbps"],
            cpu_kvcache_space_gib=p["cpu_kvcache_space_gib"], cpu_has_compiler=p["cpu_has_compiler"],
            max_num_seqs=p["max_num_seqs"])
    except planner.PlanRefused as exc:
        module.fail_json(msg=str(exc), options=(exc.plan or {}).get("options", []))
    except (RegistryError, UnsupportedRelease) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, plan=result, options_table=planner.options_table(result))


if __name__ == "__main__":
    main()
