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
  - Plans the whole GPU as a ledger (weights, KV cache, activations, CUDA graphs, runtime, each
    co-tenant such as the image server, other processes, reserve) by the memory rules of the
    chosen vLLM release, and hands vLLM a utilization (and C(--kv-cache-memory-bytes) where the
    release has it) that the release accepts beside what else the GPU holds.
  - Fails, naming model, GPU, requirement and alternatives, when no plan can work, and refuses a
    requested context that does not fit instead of letting vLLM crash on it. When vLLM and the
    co-tenants cannot share a GPU it fails listing the choices with figures.
  - Without O(write_files) it computes only and changes nothing on the host. With it, it also writes the files
    the plan is served from (C(models.json), C(launch.json), C(plan.json)) in the same module run, each only when
    its content differs.
author:
  - homelab.ai contributors (@homelab-ai)
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.docker
attributes:
  check_mode:
    support: full
    details:
      - Computation and read-only queries (the previous plan's file, the running containers), identical in check mode.
      - With O(write_files), reports which files would change and writes nothing.
  diff_mode:
    support: full
    details: With O(write_files), one diff per file whose content changes.
  idempotent:
    support: full
    details: The plan is stable for the same inputs; a second run with O(write_files) writes nothing and reports no change.
  platform:
    details:
      - Runs anywhere; the facts it needs are parameters (or detected, when left out).
      - The Docker daemon is asked only for O(stack_containers).
options:
  model:
    description:
      - One entry of the model registry (see M(homelab.ai.model_registry)). Exactly one of I(model) and I(models).
    type: dict
  models:
    description:
      - The whole model registry; every entry is validated (each error named, as M(homelab.ai.model_registry)
        does) and the entry I(name) is planned. This spares a play the separate validation task.
    type: dict
  name:
    description: Model name (the registry key), used as C(--served-model-name).
    type: str
    required: true
  gpus:
    description:
      - GPUs as C(ansible_facts.gpus) of M(homelab.ai.gpu_facts); empty for a CPU host.
      - Omitted, the module detects them on the host as M(homelab.ai.host_facts) does (C(nvidia-smi)) and
        returns them in RV(ansible_facts), so a play without the gpu_host role needs no detection task.
    type: list
    elements: dict
  wsl:
    description:
      - C(ansible_facts.wsl) of M(homelab.ai.wsl_facts) (C(is_wsl), C(kernel_release)...).
      - Omitted, detected on the host (files only) and returned in RV(ansible_facts), as for O(gpus).
    type: dict
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
  co_tenants:
    description:
      - Other workloads of the stack that use a GPU; they start after vLLM.
      - Each has C(name) (required), and C(memory_gib) or a C(pipeline) (C(stable-diffusion-1.5),
        C(sdxl)) with C(dtype) (default C(float16)), C(width), C(height); C(device) (C(cuda) or
        C(cpu), default C(cuda)); C(gpu) (an index, or null to let the planner place it).
    type: list
    elements: dict
    default: []
  gpu_reserve_gib:
    description: GiB kept free on every GPU beside everything planned (desktop spikes, fragmentation).
    type: float
    default: 0.5
  wsl_cuda_context_gib:
    description: GiB a CUDA process's context holds on WSL2 (applied to vLLM and each co-tenant when C(wsl.is_wsl)).
    type: float
    default: 1.3
  running:
    description:
      - Members of the stack running now (C(vllm) and co-tenant names), as the caller knows them.
      - Joined with those O(stack_containers) finds running.
    type: list
    elements: str
    default: []
  stack_containers:
    description:
      - The stack's members (C(vllm) and co-tenant names) to the name of their container. The module asks the
        Docker daemon (O(docker_host)) which of them run now, by exact name, so a play needs no separate
        container listing. Empty asks nothing (a host whose engine is not installed yet).
      - A daemon that cannot be reached fails the task, naming the socket and the fix.
    type: dict
    default: {}
  previous:
    description: The C(remember) dict of the previous plan, passed back verbatim.
    type: dict
    default: {}
  previous_fact:
    description:
      - A local fact file (JSON, as the vllm role's C(homelab_vllm.fact)) on the managed host whose C(remember)
        key is the previous plan's; read when I(previous) is empty, DebOps-style, without re-gathering facts.
        A missing file means no previous plan; a file that is not JSON fails naming the file.
    type: path
  replan_tolerance_mib:
    description: A re-run whose other-process memory moved less than this plans exactly the previous launch.
    type: int
    default: 512
  kv_cache_dtype:
    description: KV cache dtype; C(auto) is the model dtype, fp8 variants are refused where the release and GPU cannot run them.
    type: str
    choices: [auto, fp8, fp8_e4m3, fp8_e5m2]
    default: auto
  fleet_gpus:
    description:
      - The other inference hosts' GPUs, host name to the list of GPUs as M(homelab.ai.gpu_facts) returns them
        (or to a dict with C(gpus) and optionally C(address) and C(interface)).
      - Where the model fits no GPU of this host, the refusal then names pipeline parallelism over several hosts
        with Ray (this host as the head) and returns it as RV(multi_host); without it the refusal says that this
        option needs these facts.
    type: dict
  write_files:
    description:
      - After planning, write the files the plan is served from, with the code of M(homelab.ai.state_files), each
        only when its content differs, atomically, as a diff in diff mode, nothing in check mode. C(models.json)
        (llm-manager's registry, every entry of O(models) with the planned kernel and context for O(name)) and
        C(launch.json) (image, model, arguments, environment) go to O(write_files.state_dir); C(plan.json) (the
        plan without its C(replan) note, so a re-run that plans the same rewrites nothing) to O(write_files.status_dir).
        Missing folders are created (C(0755)); the files are C(0644).
      - Writing in the run that plans spares a play a second module run on every run.
      - Left out, the module writes nothing and reports no change. A refused plan writes nothing either.
      - With O(write_files.defer), the files are returned instead, for the rollout that serves the plan to write.
    type: dict
    suboptions:
      defer:
        description:
          - Write nothing; return the folders and files as RV(state_files), for
            O(homelab.ai.container_rollout#module:state_files) to write once vLLM serves the plan. A rollout that
            fails then leaves the files describing the plan that still serves, not the one that failed.
        type: bool
        default: false
      state_dir:
        description: Folder of C(models.json) and C(launch.json).
        type: path
        required: true
      status_dir:
        description: Folder of C(plan.json) (the dashboard's status page reads it).
        type: path
        required: true
      image:
        description: The image C(launch.json) names (the one vLLM runs from).
        type: str
        required: true
      extra_args:
        description: vLLM arguments that C(launch.json) lists after the plan's.
        type: list
        elements: str
        default: []
      extra_env:
        description: Environment that C(launch.json) merges over the plan's.
        type: dict
        default: {}
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
    co_tenants:
      - name: image_server
        pipeline: stable-diffusion-1.5
        dtype: float16
        width: 512
        height: 512
    stack_containers:
      vllm: homelab-vllm
      image_server: homelab-image-server
    previous: "{{ ansible_local.vllm_plan.remember | default({}) }}"
    write_files:
      state_dir: /var/lib/homelab/vllm
      status_dir: /var/lib/homelab/status
      image: vllm/vllm-openai:v0.32.0
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
    ceiling_tokens_per_second:
      description: Decode ceiling at the full planned context (bandwidth / bytes per token).
      type: float
    predicted_tokens_per_second:
      description: Deprecated alias of C(ceiling_tokens_per_second).
      type: float
    expected_tokens_per_second:
      description: What one stream should decode at a 2048-token conversation (calibrated on the record's 19 tok/s).
      type: float
    expected_tokens_per_second_full_context:
      description: The expected figure when the context is full.
      type: float
    gpu_memory_utilization:
      description: The utilization handed to vLLM (the explanation says why when it differs from the request).
      type: float
    gpus:
      description: GPU indices vLLM uses.
      type: list
      elements: int
    ledger:
      description: Per GPU index (str) the total, the entries (name, gib, what) and the headroom, in GiB.
      type: dict
    co_tenant_placement:
      description: Per co-tenant its device (cuda or cpu), gpu index (or null) and memory_gib.
      type: dict
    remember:
      description: Figures to store and pass back as C(previous) on the next run (stable for the same inputs).
      type: dict
    replan:
      description:
        - C(stable) is true when a re-run planned with the previous figures (other processes within
          O(replan_tolerance_mib)), C(note) says so. Kept out of C(explanation) so that an unchanged
          re-run yields the same plan document.
      type: dict
    report:
      description: Largest context with and without fp8 KV at 0.90 and 0.95; Qwen3 reasoning parser per release.
      type: dict
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
running:
  description: The members counted as the stack's own running ones (O(running) and those O(stack_containers) found running).
  returned: success
  type: list
  elements: str
  sample: [vllm]
multi_host:
  description:
    - On the refusal of a model that fits no GPU of this host, with O(fleet_gpus) given, the multi-host option
      (module_utils/multi_host.py), C(fits) true or false.
    - Hosts and stages (C(pipeline_parallel_size), C(tensor_parallel_size), C(layer_partition), C(stages)), the
      vLLM arguments (C(args)), C(env), C(node_env), the Ray commands (C(launch)), C(network) and C(speed) with
      C(penalty_percent); or, where even the fleet is too small, C(shortfall_gib) and C(why).
  returned: failure, when the model does not fit and O(fleet_gpus) was given
  type: dict
  sample: {"fits": true, "pipeline_parallel_size": 2, "tensor_parallel_size": 1, "layer_partition": "45,19"}
changed_paths:
  description: The folders and files O(write_files) created or changed (in check mode, would).
  returned: when O(write_files) is given without O(write_files.defer)
  type: list
  elements: str
  sample: ["/var/lib/homelab/status/plan.json"]
state_files:
  description:
    - The folders (C(directories)) and files (C(files), each with C(path), C(content) and C(mode)) that
      O(write_files) would write, as M(homelab.ai.state_files) and O(homelab.ai.container_rollout#module:state_files)
      take them.
  returned: when O(write_files.defer) is true
  type: dict
  sample: {"directories": [{"path": "/var/lib/homelab/vllm", "mode": "0755"}],
           "files": [{"path": "/var/lib/homelab/vllm/launch.json", "content": "{...}", "mode": "0644"}]}
ansible_facts:
  description: What the module detected because O(gpus) or O(wsl) was omitted (C(wsl); C(gpus) and C(gpu_summary)).
  returned: success
  type: dict
  sample: {}
"""

import json
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as planner
from ansible_collections.homelab.ai.plugins.module_utils import docker_common
from ansible_collections.homelab.ai.plugins.module_utils.gpu_ledger import GpuFactsError
from ansible_collections.homelab.ai.plugins.module_utils.host_detect import detect
from ansible_collections.homelab.ai.plugins.module_utils import model_registry
from ansible_collections.homelab.ai.plugins.module_utils.model_registry import RegistryError
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan_files as plan_files
from ansible_collections.homelab.ai.plugins.module_utils.state_files import StateFilesError, apply_all, plan_all
from ansible_collections.homelab.ai.plugins.module_utils.vllm_releases import UnsupportedRelease


def registry_entry(module, models, name):
    """The entry name of the validated registry; fails listing every invalid entry, or naming the known ones."""
    try:
        model_registry.validate(models)
    except RegistryError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    if name not in models:
        module.fail_json(msg="model %r is not in the model registry (%s): add its entry, or plan one of those."
                             % (name, ", ".join(sorted(models)) or "empty"))
    return models[name]


def read_previous(module, path):
    """The remember dict of the local fact at path; {} when there is none."""
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path) as fh:
            fact = json.load(fh)
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg="previous_fact %s cannot be read as JSON (%s): fix or delete it; the next deploy "
                             "writes it again." % (path, exc))
    return (fact.get("remember") if isinstance(fact, dict) else None) or {}


def running_members(module, stack_containers, docker_host):
    """The members of ``stack_containers`` whose container runs now, as the Docker daemon says."""
    if not stack_containers:
        return []
    if not docker_common.HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker") + " (stack_containers asks the Docker daemon)",
                         exception=docker_common.DOCKER_IMPORT_ERROR)
    try:
        client = docker_common.get_client(docker_host)
        names = docker_common.running_names(client, stack_containers.values())
    except docker_common.HomelabDockerError as exc:
        module.fail_json(msg="stack_containers: %s" % exc.msg)
    except Exception as exc:  # pylint: disable=broad-except  # an API error other than "no such container"
        module.fail_json(msg="stack_containers: the Docker daemon at %s failed while this module read which of %s "
                             "run: %s. Nothing was planned; check the daemon (docker ps, its log) and run again."
                         % (docker_common.resolve_docker_host(docker_host), ", ".join(sorted(stack_containers.values())),
                            docker_common.api_error_text(exc)),
                         exception=traceback.format_exc())
    return [member for member, name in stack_containers.items() if name in names]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            model=dict(type="dict"),
            models=dict(type="dict"),
            name=dict(type="str", required=True),
            gpus=dict(type="list", elements="dict"),
            wsl=dict(type="dict"),
            vllm_version=dict(type="str", required=True),
            max_model_len=dict(type="str"),
            gpu_memory_utilization=dict(type="float", default=0.9),
            min_tokens_per_second=dict(type="float", no_log=False),
            max_num_seqs=dict(type="int"),
            allow_cpu_offload=dict(type="bool", default=False),
            pcie_gbps=dict(type="float", default=25.0),
            cpu_kvcache_space_gib=dict(type="int", default=1),
            cpu_has_compiler=dict(type="bool", default=False),
            co_tenants=dict(type="list", elements="dict", default=[]),
            gpu_reserve_gib=dict(type="float", default=0.5),
            wsl_cuda_context_gib=dict(type="float", default=1.3),
            running=dict(type="list", elements="str", default=[]),
            stack_containers=dict(type="dict", default={}),
            docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"])),
            previous=dict(type="dict", default={}),
            previous_fact=dict(type="path"),
            replan_tolerance_mib=dict(type="int", default=512),
            kv_cache_dtype=dict(type="str", default="auto", choices=["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]),
            fleet_gpus=dict(type="dict"),
            write_files=dict(type="dict", options=dict(
                state_dir=dict(type="path", required=True), status_dir=dict(type="path", required=True),
                image=dict(type="str", required=True), extra_args=dict(type="list", elements="str", default=[]),
                extra_env=dict(type="dict", default={}), defer=dict(type="bool", default=False))),
        ),
        mutually_exclusive=[["model", "models"]],
        required_one_of=[["model", "models"]],
        supports_check_mode=True,
    )
    p = module.params
    model = p["model"] if p["models"] is None else registry_entry(module, p["models"], p["name"])
    running = sorted(set(p["running"]) | set(running_members(module, p["stack_containers"], p["docker_host"])))
    # What the play did not detect, this run detects (host_facts' own code), and hands back as facts.
    detected = detect(module, [aspect for aspect, given in (("wsl", p["wsl"]), ("gpu", p["gpus"])) if given is None])
    result = plan_model(module, model, running, gpus=p["gpus"] if p["gpus"] is not None else detected["gpus"],
                        wsl=p["wsl"] if p["wsl"] is not None else detected["wsl"])
    outcome = dict(changed=False, plan=result, options_table=planner.options_table(result), running=running,
                   ansible_facts=detected)
    if p["write_files"]:
        outcome.update(write_plan_files(module, p["models"] or {p["name"]: model}, p["name"], result, p["write_files"]))
    module.exit_json(**outcome)


def requested_context(module, max_len):
    """max_model_len as the planner takes it: a number of tokens, 'auto', or None (the model's default)."""
    if max_len in (None, "", "auto"):
        return max_len or None
    try:
        return int(max_len)
    except ValueError:
        module.fail_json(msg="max_model_len must be a number of tokens or 'auto', got %r" % max_len)


def plan_model(module, model, running, gpus, wsl):
    """The planner's plan for the module's parameters; a refusal fails the task with the options weighed."""
    p = module.params
    try:
        return planner.plan(
            model, gpus, wsl, p["vllm_version"], name=p["name"], max_model_len=requested_context(module, p["max_model_len"]),
            gpu_memory_utilization=p["gpu_memory_utilization"], min_tokens_per_second=p["min_tokens_per_second"],
            allow_cpu_offload=p["allow_cpu_offload"], pcie_gbps=p["pcie_gbps"],
            cpu_kvcache_space_gib=p["cpu_kvcache_space_gib"], cpu_has_compiler=p["cpu_has_compiler"],
            max_num_seqs=p["max_num_seqs"], co_tenants=p["co_tenants"], gpu_reserve_gib=p["gpu_reserve_gib"],
            wsl_cuda_context_gib=p["wsl_cuda_context_gib"], running=running,
            previous=p["previous"] or read_previous(module, p["previous_fact"]),
            replan_tolerance_mib=p["replan_tolerance_mib"], kv_cache_dtype=p["kv_cache_dtype"],
            fleet_gpus=p["fleet_gpus"])
    except planner.PlanRefused as exc:
        module.fail_json(msg=str(exc), options=(exc.plan or {}).get("options", []),
                         choices=(exc.plan or {}).get("choices", []), multi_host=(exc.plan or {}).get("multi_host"))
    except (RegistryError, UnsupportedRelease, GpuFactsError) as exc:
        module.fail_json(msg=str(exc))


def write_plan_files(module, registry, name, plan, write):
    """models.json, launch.json and plan.json made right: changed, changed_paths and (in diff mode) diff; or,
    deferred, the same folders and files returned as state_files for the rollout to write."""
    try:
        directories, files = plan_files.entries(registry, name, plan, write)
        planned = plan_all(directories, files)  # checked now, even when the rollout writes them
        if write["defer"]:
            return dict(state_files=dict(directories=directories, files=files))
        return apply_all(module, *planned)
    except StateFilesError as exc:
        module.fail_json(msg="write_files: %s" % exc, changed_paths=exc.changed_paths, plan=plan)


if __name__ == "__main__":
    main()
