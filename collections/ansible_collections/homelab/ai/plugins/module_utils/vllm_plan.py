# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment planner: the decision record (2026-02-27) as code.

Given a model registry entry, the GPUs (as gpu_facts returns them), WSL facts
and a vLLM release, decide quantization kernel, context, offload, CUDA graphs,
engine variables and vLLM arguments, and predict decode speed for every option
the record considered (A to D). Release rules come from vllm_releases.py only.

Memory model (per GPU, GiB = 2**30 bytes), after vLLM's own accounting in
``v1/worker/gpu_worker.py determine_available_memory``:

    kv_budget = total * gpu_memory_utilization
                - weights / tp                     (registry weight_bytes)
                - activation peak of the profile run
                - RUNTIME_RESERVE_GIB              (CUDA context, cuBLAS/Marlin
                                                    workspaces: non-torch bytes)
                - memory other processes hold      (total - free at plan time:
                                                    vLLM counts every non-torch
                                                    byte on the device; on a
                                                    gaming PC that is Windows)
                - CUDA graph reserve               (only from vLLM 0.20, which
                                                    subtracts its graph estimate;
                                                    before, graphs must fit in the
                                                    (1 - utilization) headroom,
                                                    checked separately)

Activation peak: the profile run pushes max_num_batched_tokens (2048, vLLM's
OpenAI-server default on GPUs under 70 GiB, ``engine/arg_utils.py``) through
one layer at a time: gate_up (2 x intermediate) + activation (intermediate)
+ qkv/out (~3 x hidden) fp16 values per token, plus the sampler's logits and
probabilities for max_num_seqs (256) rows in fp32. Qwen3-32B: 2048 x (3 x
25600 + 3 x 5120) x 2 B = 0.35 GiB + 256 x 151936 x 4 B x 2 = 0.29 GiB
-> 0.64 GiB. Without hidden/intermediate/vocab in the registry: 1.0 GiB.
RUNTIME_RESERVE_GIB = 0.5: CUDA context (~0.3 GiB on Ampere) + workspaces.
CUDA graphs: CUDAGRAPH_RESERVE_GIB = 0.5 at vLLM's default max_num_seqs 256 (67
capture sizes up to 512), scaled down to 0.1 GiB as max_num_seqs shrinks
(``cudagraph_gib``); ``max_num_seqs`` also shrinks the sampler reserve. A
single-user homelab gains ~0.7 GiB of KV cache (~2.8K tokens) with 16.

A context is KV bytes per token (2 x layers x kv_heads x head_dim x 2 B for
fp16; Qwen3-32B 256 KiB) times tokens; the largest context is rounded down to
a multiple of CONTEXT_STEP (256, a multiple of vLLM's 16-token block).

Speed model: decode at batch 1 reads every weight byte and the KV cache of the
context once per token. The ceiling (``predicted_tokens_per_second``) is
bandwidth / (weights + KV at the FULL planned context): the speed at the end
of a conversation that fills the context, i.e. the pessimistic end. Offloaded
weights cross PCIe every token: t = vram_bytes / bandwidth + offload_bytes /
pcie, with pcie halved for pageable (unpinned, WSL2) copies.
``expected_tokens_per_second`` applies kernel efficiency: EFFICIENCY_MARLIN_GRAPHS
= 0.44 calibrated from the record's measured ~19 tok/s (option C, whose
ceiling is 43.6); the record's own factors for the generic AWQ kernel (2-3x
slower -> /2.5) and eager mode (1.5-2x -> /1.75) divide it. Check, not
calibration: option A with the record's 4 GB offload predicts ~1.8 tok/s, the
record measured ~1.6. ``min_tokens_per_second`` is checked against the
expected figure, not the ceiling.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.homelab.ai.plugins.module_utils import model_registry
from ansible_collections.homelab.ai.plugins.module_utils import vllm_releases

GIB = 1024 ** 3
MIB = 1024 ** 2

RUNTIME_RESERVE_GIB = 0.5
CUDAGRAPH_RESERVE_GIB = 0.5
DEFAULT_ACTIVATION_GIB = 1.0
MAX_NUM_BATCHED_TOKENS = 2048
MAX_NUM_SEQS = 256
CONTEXT_STEP = 256
MIN_USEFUL_CONTEXT = 2048
EFFICIENCY_MARLIN_GRAPHS = 0.44
AWQ_GENERIC_PENALTY = 2.5
EAGER_PENALTY = 1.75
PAGEABLE_PCIE_FACTOR = 0.5
DEFAULT_PCIE_GBPS = 25.0


class PlanRefused(ValueError):
    """No plan can work; the message names model, GPU, requirement, alternatives."""

    def __init__(self, message, plan=None):
        super(PlanRefused, self).__init__(message)
        self.plan = plan


def _cc_int(cc):
    """'8.6' / 8.6 / '86' / 86 -> 86."""
    if cc is None or cc == "":
        return None
    text = str(cc).strip()
    if "." in text:
        major, minor = text.split(".", 1)
        return int(major) * 10 + int(minor[:1] or 0)
    value = int(text)
    return value if value >= 10 else value * 10


def _cc_str(cc_int):
    return "sm_%d" % cc_int if cc_int is not None else "unknown compute capability"


def activation_gib(model, max_num_seqs=None):
    if all(model.get(k) for k in ("hidden_size", "intermediate_size", "vocab_size")):
        per_token = 3 * model["intermediate_size"] + 3 * model["hidden_size"]
        act = MAX_NUM_BATCHED_TOKENS * per_token * 2
        sampler = (max_num_seqs or MAX_NUM_SEQS) * model["vocab_size"] * 4 * 2
        return (act + sampler) / float(GIB)
    return DEFAULT_ACTIVATION_GIB


def cudagraph_gib(max_num_seqs=None):
    """CUDA graph memory: CUDAGRAPH_RESERVE_GIB at vLLM's default 256 sequences (capture sizes up to 512),
    scaled down with fewer sequences (fewer and smaller captured batches), floor 0.1 GiB."""
    seqs = min(max_num_seqs or MAX_NUM_SEQS, MAX_NUM_SEQS)
    return 0.1 + (CUDAGRAPH_RESERVE_GIB - 0.1) * seqs / float(MAX_NUM_SEQS)


def gpu_label(gpu):
    return "GPU %s (%s, %d MiB, %s)" % (gpu.get("index", "?"), gpu.get("name", "unknown"),
                                        int(gpu.get("memory_total_mib") or 0),
                                        _cc_str(_cc_int(gpu.get("compute_capability"))))


def choose_quantization(model, cc, feats, gpu_desc):
    """Return (quantization, kernel_efficiency_factor, warnings) or raise PlanRefused."""
    quant = model["quantization"]
    if quant == "none":
        return "none", 1.0, []
    if cc is None:
        raise PlanRefused(
            "model '%s' is %s-quantized, but the compute capability of %s is unknown; "
            "the planner needs it (gpu_facts takes it from nvidia-smi or module_utils/gpu_catalog.py): "
            "add the GPU to gpu_catalog.py" % (model["_name"], quant, gpu_desc))
    group_ok = model.get("group_size", 128) in feats["marlin_group_sizes"]
    if cc >= feats["awq_marlin_min_cc"] and group_ok:
        return "awq_marlin", 1.0, []
    if cc >= feats["awq_min_cc"]:
        why = ("vLLM %s needs compute capability >= %d for awq_marlin (%s)"
               % (feats["version"], feats["awq_marlin_min_cc"], vllm_releases.SOURCES["awq_marlin_min_cc"])
               if group_ok else "Marlin does not support AWQ group size %s" % model.get("group_size"))
        warn = ("%s has %s: %s; using the generic awq kernel, about %.1fx slower"
                % (gpu_desc, _cc_str(cc), why, AWQ_GENERIC_PENALTY))
        if group_ok and feats["awq_marlin_min_cc"] > 75:
            warn += "; vLLM 0.14.0 and newer run awq_marlin from sm_75"
        return "awq", 1.0 / AWQ_GENERIC_PENALTY, [warn]
    raise PlanRefused(
        "model '%s' (AWQ) cannot run on %s: vLLM %s needs compute capability >= %d for awq and >= %d "
        "for awq_marlin (%s; %s). Alternatives: a GPU of sm_75 (Turing) or newer, sm_80 (Ampere) for "
        "Marlin before vLLM 0.14; an unquantized or GGUF build of the model on another server; or a "
        "smaller unquantized model that fits this GPU."
        % (model["_name"], gpu_desc, feats["version"], feats["awq_min_cc"], feats["awq_marlin_min_cc"],
           vllm_releases.SOURCES["awq_min_cc"], vllm_releases.SOURCES["awq_marlin_min_cc"]))


def _round_context(tokens):
    return int(tokens // CONTEXT_STEP * CONTEXT_STEP)


class _Budget(object):
    """Memory arithmetic for one GPU slice (one of ``tp`` equal GPUs)."""

    def __init__(self, model, gpu, util, tp, feats, max_num_seqs=None):
        self.total_gib = float(gpu["memory_total_mib"]) * MIB / GIB
        free = gpu.get("memory_free_mib")
        used = gpu["memory_total_mib"] - free if free is not None else 0
        self.others_gib = max(0.0, float(used) * MIB / GIB)
        self.util = util
        self.tp = tp
        self.weights_gib = model["weight_bytes"] / float(GIB) / tp
        self.activation_gib = activation_gib(model, max_num_seqs)
        self.graph_gib = cudagraph_gib(max_num_seqs)
        self.graphs_in_budget = feats["cudagraph_memory_in_kv_budget"]
        self.kv_token_bytes = model_registry.kv_bytes_per_token(model) / float(tp)

    def kv_budget_gib(self, offload_gib=0.0, graphs=True):
        budget = (self.total_gib * self.util - (self.weights_gib - offload_gib)
                  - self.activation_gib - RUNTIME_RESERVE_GIB - self.others_gib)
        if graphs and self.graphs_in_budget:
            budget -= self.graph_gib
        return budget

    def max_context(self, cap, offload_gib=0.0, graphs=True):
        budget = self.kv_budget_gib(offload_gib, graphs)
        if budget <= 0:
            return 0
        return min(cap, _round_context(budget * GIB / self.kv_token_bytes))

    def kv_gib(self, tokens):
        return tokens * self.kv_token_bytes / float(GIB)

    def offload_needed_gib(self, tokens, graphs):
        short = self.kv_gib(tokens) - self.kv_budget_gib(0.0, graphs)
        return 0 if short <= 0 else int(math.ceil(short))

    def to_dict(self):
        return {
            "total_gib": round(self.total_gib, 2),
            "budget_gib": round(self.total_gib * self.util, 2),
            "weights_gib": round(self.weights_gib, 2),
            "activation_gib": round(self.activation_gib, 2),
            "runtime_reserve_gib": RUNTIME_RESERVE_GIB,
            "other_processes_gib": round(self.others_gib, 2),
            "cudagraph_reserve_gib": round(self.graph_gib, 3),
            "cudagraph_reserve_in_budget": self.graphs_in_budget,
            "kv_bytes_per_token": int(self.kv_token_bytes),
            "tensor_parallel_size": self.tp,
        }


def predict_speed(model, bandwidth_gbps, context, tp=1, offload_gib=0.0, pcie_gbps=DEFAULT_PCIE_GBPS,
                  pinned=True, efficiency=1.0):
    """(ceiling, expected) decode tokens/s at batch 1 with ``context`` tokens of KV read per token."""
    if not bandwidth_gbps:
        return None, None
    kv = model_registry.kv_bytes_per_token(model) * context
    vram_bytes = (model["weight_bytes"] - offload_gib * GIB + kv) / float(tp)
    t_vram = vram_bytes / (bandwidth_gbps * 1e9)
    t_pcie = 0.0
    if offload_gib:
        pcie = pcie_gbps * (1.0 if pinned else PAGEABLE_PCIE_FACTOR)
        t_pcie = offload_gib * GIB / (pcie * 1e9)
    ceiling = 1.0 / (t_vram + t_pcie)
    expected = 1.0 / (t_vram / efficiency + t_pcie)
    return round(ceiling, 1), round(expected, 1)


def wsl_kernel_allows_pinning(wsl):
    """vLLM (platforms/cuda.py) pins on WSL2 only from kernel 4.19.121 (and only when asked).

    wsl_facts' ``pin_memory`` is vLLM's default (False on WSL), not the kernel's ability, so the
    kernel release decides here; unknown counts as too old, as in vLLM.
    """
    release = str(wsl.get("kernel_release") or "")
    parts = release.split("-", maxsplit=1)[0].split(".")
    try:
        return tuple(int(x) for x in parts[:3]) >= (4, 19, 121)
    except ValueError:
        return False


def _offload_path(feats, wsl, pinned_wanted):
    """How the release offloads weights on this host.

    Returns dict(feasible, env, pinned, eager_required, engine, why) .
    """
    is_wsl = bool(wsl and wsl.get("is_wsl"))
    kernel_pin_ok = wsl_kernel_allows_pinning(wsl) if is_wsl else True
    env, notes = {}, []
    if feats["mrv2_without_offloader"] and feats["mrv2_env"]:
        env["VLLM_USE_V2_MODEL_RUNNER"] = "0"
        notes.append("Model Runner V2 of vLLM %s has no offloader (--cpu-offload-gb would be a silent no-op, "
                     "%s): VLLM_USE_V2_MODEL_RUNNER=0" % (feats["version"], vllm_releases.SOURCES["mrv2_without_offloader"]))
    if not is_wsl:
        return dict(feasible=True, env=env, pinned=True, eager_required=False,
                    engine="V1" if not feats["v0_engine"] else "V1 (UVA offload)", why=notes)
    if pinned_wanted:
        if not feats["wsl2_pin_memory_env"]:
            return dict(feasible=False, why=["vLLM %s cannot use pinned memory on WSL2 (VLLM_WSL2_ENABLE_PIN_MEMORY "
                                             "exists from 0.24.0)" % feats["version"]])
        if not kernel_pin_ok:
            return dict(feasible=False, why=["the WSL2 kernel is older than 4.19.121: no pinned memory "
                                             "(vllm/platforms/cuda.py is_pin_memory_available)"])
        env["VLLM_WSL2_ENABLE_PIN_MEMORY"] = "1"
        notes.append("VLLM_WSL2_ENABLE_PIN_MEMORY=1: pinned memory on WSL2; Windows caps pinned memory at about "
                     "50% of RAM for all processes (vllm/platforms/cuda.py warning)")
        return dict(feasible=True, env=env, pinned=True, eager_required=False, engine="V1", why=notes)
    if feats["v0_engine"]:
        env = {"VLLM_USE_V1": "0"}
        return dict(feasible=True, env=env, pinned=False, eager_required=True, engine="V0",
                    why=["WSL2 has no pinned memory and V1 offloading asserts UVA (%s): VLLM_USE_V1=0 (V0 exists "
                         "before 0.11); unpinned weights are copied every forward, which CUDA graphs cannot "
                         "capture: --enforce-eager" % vllm_releases.SOURCES["v1_offload_asserts_uva"]])
    if feats["v1_offload_asserts_uva"]:
        return dict(feasible=False, why=["vLLM %s has no V0 engine (gone in 0.11.0, VLLM_USE_V1 is ignored) and "
                                         "its V1 offloading asserts UVA, which WSL2 lacks (%s)"
                                         % (feats["version"], vllm_releases.SOURCES["v1_offload_asserts_uva"])])
    notes.append("WSL2 without pinned memory: vLLM %s offloads through the non-UVA fallback (%s), copying "
                 "weights every forward; CUDA graphs need pinned memory for that: --enforce-eager"
                 % (feats["version"], vllm_releases.SOURCES["offloader_non_uva_fallback"]))
    return dict(feasible=True, env=env, pinned=False, eager_required=True, engine="V1", why=notes)


def _engine_env(feats, wsl):
    """Variables every GPU plan of this release needs on this host (no offload case)."""
    env, why = {}, []
    is_wsl = bool(wsl and wsl.get("is_wsl"))
    if is_wsl and feats["mrv2_requires_uva"] and _mrv2_may_default(feats):
        env["VLLM_USE_V2_MODEL_RUNNER"] = "0"
        why.append("on WSL2 without pinned memory Model Runner V2 of vLLM %s stops with 'UVA is not available' "
                   "(%s): VLLM_USE_V2_MODEL_RUNNER=0 keeps the V1 model runner"
                   % (feats["version"], vllm_releases.SOURCES["mrv2_requires_uva"]))
    return env, why


def _mrv2_may_default(feats):
    ver = vllm_releases.parse_version(feats["version"])
    return ver >= (0, 22, 0)


def plan(model, gpus, wsl=None, vllm_version="0.32.0", name=None, max_model_len=None,
         gpu_memory_utilization=0.9, min_tokens_per_second=None, allow_cpu_offload=False,
         pcie_gbps=DEFAULT_PCIE_GBPS, cpu_kvcache_space_gib=1, cpu_has_compiler=False, max_num_seqs=None):
    """Plan one model; return the plan dict or raise PlanRefused / RegistryError / UnsupportedRelease."""
    name = name or model.get("_name") or "model"
    entry, errors = model_registry.validate_entry(name, dict((k, v) for k, v in model.items() if k != "_name"))
    if errors:
        raise model_registry.RegistryError(errors)
    entry["_name"] = name
    feats = vllm_releases.features(vllm_version)
    wsl = wsl or {}
    if not 0.1 <= float(gpu_memory_utilization) <= 0.98:
        raise PlanRefused("gpu_memory_utilization %s for model '%s' is outside 0.1..0.98"
                          % (gpu_memory_utilization, name))
    requested = max_model_len
    if isinstance(requested, str) and requested != "auto":
        requested = int(requested)
    if isinstance(requested, int) and requested > entry["max_context"]:
        raise PlanRefused("model '%s': requested max_model_len %d is above the model's maximum %d "
                          "(max_context, from its config.json); request %d or less"
                          % (name, requested, entry["max_context"], entry["max_context"]))
    if not gpus:
        result = _cpu_plan(entry, feats, requested, cpu_kvcache_space_gib, cpu_has_compiler)
    else:
        result = _gpu_plan(entry, gpus, wsl, feats, requested, float(gpu_memory_utilization),
                           min_tokens_per_second, allow_cpu_offload, float(pcie_gbps), max_num_seqs)
    if max_num_seqs:
        result["args"] += ["--max-num-seqs", str(int(max_num_seqs))]
        result["explanation"].append("--max-num-seqs %d: fewer concurrent sequences shrink the sampler and CUDA "
                                     "graph reserve" % max_num_seqs)
    result["max_num_seqs"] = max_num_seqs
    return result


def _base_args(entry, quant, dtype):
    args = ["--model", entry["source"], "--served-model-name", entry["_name"]]
    if quant != "none":
        args += ["--quantization", quant]
    if dtype and dtype != "auto":
        args += ["--dtype", dtype]
    return args


def _cpu_plan(entry, feats, requested, kv_space_gib, has_compiler):
    name = entry["_name"]
    if not entry.get("cpu_ok"):
        raise PlanRefused(
            "model '%s' needs a GPU: the host has none (gpu_facts found no NVIDIA GPU) and the registry entry "
            "does not allow CPU serving (cpu_ok: false). Alternatives: run it on a GPU host (inventory group "
            "gaming), or pick a small unquantized model with cpu_ok: true for this host" % name)
    if entry["quantization"] != "none":
        raise PlanRefused("model '%s' is %s-quantized; the CPU plan serves unquantized models only "
                          "(set quantization: none and an unquantized source)" % (name, entry["quantization"]))
    kv_token = model_registry.kv_bytes_per_token(entry, 4 if entry["dtype"] == "float32" else 2)
    fits = min(entry["max_context"], _round_context(kv_space_gib * GIB / kv_token))
    if requested == "auto":
        context = fits
    else:
        context = requested or min(entry["default_context"], fits)
    if context > fits:
        raise PlanRefused("model '%s': context %d needs %.2f GiB of KV cache, more than VLLM_CPU_KVCACHE_SPACE=%s "
                          "GiB; the largest that fits is %d (or raise vllm_cpu_kvcache_space_gib)"
                          % (name, context, context * kv_token / float(GIB), kv_space_gib, fits))
    dtype = entry["dtype"] if entry["dtype"] != "auto" else "bfloat16"
    args = _base_args(entry, "none", dtype) + ["--max-model-len", str(context)]
    explanation = ["no GPU on the host and the model allows CPU serving (cpu_ok): vllm-cpu",
                   "KV cache in RAM: VLLM_CPU_KVCACHE_SPACE=%s GiB holds %d tokens" % (kv_space_gib, fits)]
    if not has_compiler:
        args.append("--enforce-eager")
        explanation.append("no C++ compiler in the image: torch.compile cannot build, --enforce-eager")
    if entry.get("reasoning_parser"):
        rargs, rwarn = vllm_releases.reasoning_args(entry["reasoning_parser"], feats["version"])
        args += rargs
    return {
        "model": name, "device": "cpu", "vllm_version": feats["version"],
        "quantization": "none", "max_model_len": context, "max_model_len_estimate": fits,
        "cpu_offload_gb": 0, "enforce_eager": not has_compiler, "tensor_parallel_size": 1,
        "engine": "V1 (cpu)", "args": args, "env": {"VLLM_CPU_KVCACHE_SPACE": str(kv_space_gib)},
        "predicted_tokens_per_second": None, "expected_tokens_per_second": None,
        "options": [], "explanation": explanation, "warnings": list(feats["warnings"]),
        "memory": {"kv_bytes_per_token": kv_token, "kv_space_gib": kv_space_gib},
    }


def _pick_gpus(entry, gpus, feats, util, max_num_seqs):
    """Return (gpu list used, tp). One GPU when the weights fit one, else the smallest TP that fits."""
    ordered = sorted(gpus, key=lambda g: -int(g.get("memory_total_mib") or 0))
    heads = entry.get("attention_heads") or entry["kv_heads"]
    for tp in (1, 2, 4, 8):
        if tp > len(ordered):
            break
        if heads % tp or (entry["kv_heads"] % tp and tp % entry["kv_heads"]):
            continue
        use = ordered[:tp]
        smallest = min(use, key=lambda g: int(g.get("memory_total_mib") or 0))
        if _Budget(entry, smallest, util, tp, feats, max_num_seqs).max_context(entry["max_context"]) >= MIN_USEFUL_CONTEXT:
            return use, tp
    return ordered[:1], 1


def _option(key, title, quant, eager, offload, context, engine, env, speed, feasible=True, why=None):
    return {"key": key, "title": title, "quantization": quant, "enforce_eager": eager, "cpu_offload_gb": offload,
            "max_model_len": context, "engine": engine, "env": env,
            "predicted_tokens_per_second": speed[0], "expected_tokens_per_second": speed[1],
            "feasible": feasible, "chosen": False, "why": list(why or [])}


def _gpu_plan(entry, gpus, wsl, feats, requested, util, min_tps, allow_offload, pcie_gbps, max_num_seqs):
    name = entry["_name"]
    warnings = list(feats["warnings"])
    used, tp = _pick_gpus(entry, gpus, feats, util, max_num_seqs)
    gpu = min(used, key=lambda g: int(g.get("memory_total_mib") or 0))
    desc = gpu_label(gpu) if tp == 1 else "%d x %s" % (tp, gpu_label(gpu))
    cc = min((_cc_int(g.get("compute_capability")) for g in used), key=lambda c: c if c is not None else -1)
    quant, kernel_eff, qwarn = choose_quantization(entry, cc, feats, desc)
    warnings += qwarn
    bandwidth = gpu.get("memory_bandwidth_gbps")
    if not bandwidth:
        warnings.append("memory bandwidth of %s unknown (gpu_catalog.py): no speed prediction" % desc)
    budget = _Budget(entry, gpu, util, tp, feats, max_num_seqs)
    cap = entry["max_context"]
    fit = budget.max_context(cap)
    is_wsl = bool(wsl.get("is_wsl"))
    base_env, env_why = _engine_env(feats, wsl)

    default_ctx = entry["default_context"]
    target = requested if isinstance(requested, int) else (fit if requested == "auto" and fit else default_ctx)
    offload_target = requested if isinstance(requested, int) and requested > fit else min(2 * default_ctx, cap)
    eff_best = EFFICIENCY_MARLIN_GRAPHS * kernel_eff

    def speed(context, offload=0, pinned=True, eager=False, generic=False):
        eff = EFFICIENCY_MARLIN_GRAPHS * (1.0 / AWQ_GENERIC_PENALTY if generic else kernel_eff)
        if eager:
            eff /= EAGER_PENALTY
        return predict_speed(entry, bandwidth, context, tp, offload, pcie_gbps, pinned, eff)

    options = []
    # A: the record's status quo: generic awq kernel, eager, offload, (V0 on WSL2 before 0.11).
    path_plain = _offload_path(feats, wsl, pinned_wanted=False)
    need_a = max(1, budget.offload_needed_gib(offload_target, graphs=False))
    if entry["quantization"] == "none":
        a_quant = "none"
    else:
        a_quant = "awq"
    if path_plain["feasible"]:
        options.append(_option("A", "generic kernel + --enforce-eager + CPU offload", a_quant, True, need_a,
                               offload_target, path_plain["engine"], path_plain["env"],
                               speed(offload_target, need_a, path_plain["pinned"], True,
                                     a_quant == "awq" and not feats["auto_awq_alias"]),
                               why=["offload buys context %d for %d GiB over PCIe every token" % (offload_target, need_a)]
                               + path_plain["why"]))
    else:
        options.append(_option("A", "generic kernel + --enforce-eager + CPU offload", a_quant, True, need_a,
                               offload_target, "-", {}, (None, None), False, path_plain["why"]))
    # B: best kernel + offload by the path this release has on this host without pinned memory.
    eager_b = path_plain.get("eager_required", False)
    need_b = max(1, budget.offload_needed_gib(offload_target, graphs=not eager_b))
    if path_plain["feasible"]:
        options.append(_option("B", "best kernel + CPU offload", quant, eager_b, need_b, offload_target,
                               path_plain["engine"], path_plain["env"],
                               speed(offload_target, need_b, path_plain["pinned"], eager_b),
                               why=["PCIe traffic of the offload stays the bottleneck"] + path_plain["why"]))
    else:
        options.append(_option("B", "best kernel + CPU offload", quant, eager_b, need_b, offload_target, "-", {},
                               (None, None), False, path_plain["why"]))
    # C: best kernel, CUDA graphs, no offload, the context that fits.
    c_ctx = target if target <= fit else fit
    c_env = dict(base_env)
    c_feasible = fit >= MIN_USEFUL_CONTEXT or (fit > 0 and target <= fit)
    c_why = ["weights %.2f GiB + KV %.2f GiB at %d tokens fit in %.2f GiB x %.2f"
             % (budget.weights_gib, budget.kv_gib(c_ctx), c_ctx, budget.total_gib, util)] if c_feasible else \
        ["weights %.2f GiB leave %.2f GiB for KV at utilization %.2f: not even %d tokens"
         % (budget.weights_gib, budget.kv_budget_gib(), util, MIN_USEFUL_CONTEXT)]
    options.append(_option("C", "best kernel + CUDA graphs, no offload", quant, False, 0, c_ctx,
                           "V1", c_env, speed(c_ctx) if c_feasible else (None, None), c_feasible, c_why + env_why))
    # D: offload with pinned memory (the record's "newer torch for UVA"): graphs stay on.
    if is_wsl:
        path_pin = _offload_path(feats, wsl, pinned_wanted=True)
    else:
        path_pin = dict(path_plain)
    need_d = max(1, budget.offload_needed_gib(offload_target, graphs=True))
    if path_pin["feasible"]:
        options.append(_option("D", "best kernel + CPU offload with pinned memory (UVA)", quant, False, need_d,
                               offload_target, path_pin["engine"], path_pin["env"],
                               speed(offload_target, need_d, True, False),
                               why=["pinned memory keeps CUDA graphs, PCIe still bounds every token"] + path_pin["why"]))
    else:
        options.append(_option("D", "best kernel + CPU offload with pinned memory (UVA)", quant, False, need_d,
                               offload_target, "-", {}, (None, None), False, path_pin["why"]))
    opts = dict((o["key"], o) for o in options)

    def meets(opt):
        return (min_tps is None or opt["expected_tokens_per_second"] is None
                or opt["expected_tokens_per_second"] >= min_tps)

    def table():
        return "; ".join("%s (%s): %s" % (o["key"], o["title"], _opt_summary(o)) for o in options)

    chosen, explanation = None, []
    auto = requested == "auto"
    if c_feasible and (target <= fit or auto or requested is None):
        chosen = opts["C"]
        if requested is None and target > fit:
            warnings.append("default_context %d of model '%s' does not fit on %s; planned %d, the largest that fits"
                            % (default_ctx, name, desc, fit))
        explanation.append("no offload: weights and KV cache fit in VRAM, CUDA graphs on, %s kernel" % quant)
    else:
        offload_choices = [o for o in (opts["D"], opts["B"]) if o["feasible"] and meets(o)]
        offload_choices.sort(key=lambda o: -(o["expected_tokens_per_second"] or 0))
        if allow_offload and offload_choices:
            chosen = offload_choices[0]
            explanation.append("CPU offload (allowed by allow_cpu_offload) as the last resort: %d GiB" % chosen["cpu_offload_gb"])
        elif isinstance(requested, int) and c_feasible:
            raise PlanRefused(
                "model '%s' on %s: requested max_model_len %d needs %.2f GiB of KV cache but only %.2f GiB is left "
                "beside %.2f GiB of weights at gpu_memory_utilization %.2f; the largest context that fits is %d. "
                "Alternatives: request %d or less, raise gpu_memory_utilization, free GPU memory held by other "
                "processes (%.2f GiB), or allow CPU offload (allow_cpu_offload) at the speed shown. Options: %s"
                % (name, desc, requested, budget.kv_gib(requested), budget.kv_budget_gib(), budget.weights_gib, util,
                   fit, fit, budget.others_gib, table()), {"options": options})
        else:
            need_gib = budget.weights_gib + budget.activation_gib + RUNTIME_RESERVE_GIB + budget.others_gib \
                + budget.kv_gib(MIN_USEFUL_CONTEXT)
            raise PlanRefused(
                "model '%s' (%.2f GiB of weights) does not fit on %s: it needs about %.1f GiB at "
                "gpu_memory_utilization %.2f for %d tokens of context, the GPU offers %.1f GiB. Alternatives: a GPU "
                "with at least %.0f GiB, tensor parallelism over several GPUs, a smaller or more quantized model%s. "
                "Options: %s"
                % (name, entry["weight_bytes"] / float(GIB), desc, need_gib, util, MIN_USEFUL_CONTEXT,
                   budget.total_gib * util, math.ceil(need_gib / util),
                   ", or CPU offload (allow_cpu_offload) if its speed is acceptable" if not allow_offload else
                   " (CPU offload is not possible or too slow here)", table()), {"options": options})

    if min_tps is not None and chosen["expected_tokens_per_second"] is not None and not meets(chosen):
        raise PlanRefused(
            "model '%s' on %s: the plan (option %s) is expected to decode %.1f tok/s (ceiling %.1f), below the "
            "required min_tokens_per_second %s. Alternatives: a faster GPU, a smaller context, a smaller model. "
            "Options: %s" % (name, desc, chosen["key"], chosen["expected_tokens_per_second"],
                             chosen["predicted_tokens_per_second"], min_tps, table()), {"options": options})

    chosen["chosen"] = True
    for opt in options:
        if opt is chosen:
            opt["why"].insert(0, "chosen")
        elif not opt["feasible"]:
            opt["why"].insert(0, "rejected: not possible with vLLM %s on this host" % feats["version"])
        elif opt["cpu_offload_gb"] and not chosen["cpu_offload_gb"]:
            opt["why"].insert(0, "rejected: offload is the last resort and the model fits without it")
        else:
            opt["why"].insert(0, "rejected: slower than option %s" % chosen["key"])

    context = chosen["max_model_len"]
    max_len_arg = str(context)
    if auto and chosen["key"] == "C":
        if feats["max_model_len_auto"]:
            max_len_arg = "auto"
            explanation.append("--max-model-len auto (vLLM >= 0.14 fits it itself); planner estimate %d" % fit)
        else:
            explanation.append("max_model_len auto requested, vLLM %s has no 'auto' (0.14+): planned %d"
                               % (feats["version"], fit))
    args = _base_args(entry, chosen["quantization"], entry["dtype"])
    args += ["--max-model-len", max_len_arg, "--gpu-memory-utilization", "%g" % util]
    if tp > 1:
        args += ["--tensor-parallel-size", str(tp)]
        explanation.append("tensor parallel over %d GPUs: one GPU cannot hold the weights" % tp)
    if chosen["enforce_eager"]:
        args.append("--enforce-eager")
    if chosen["cpu_offload_gb"]:
        args += ["--cpu-offload-gb", str(chosen["cpu_offload_gb"])]
    if entry.get("reasoning_parser"):
        rargs, rwarn = vllm_releases.reasoning_args(entry["reasoning_parser"], feats["version"])
        args += rargs
        warnings += rwarn
    env = dict(base_env)
    env.update(chosen["env"])
    explanation += list(chosen["why"][1:])
    if not feats["cudagraph_memory_in_kv_budget"] and not chosen["enforce_eager"]:
        head = budget.total_gib * (1 - util) - budget.others_gib
        if head < budget.graph_gib:
            warnings.append("vLLM %s captures CUDA graphs after the KV cache, outside gpu_memory_utilization: "
                            "only %.2f GiB headroom is left for them (%.2f GiB assumed)"
                            % (feats["version"], head, budget.graph_gib))
    if chosen["quantization"] == "awq_marlin" and feats["auto_awq_alias"]:
        explanation.append("vLLM %s maps awq_marlin to AutoAWQ, which picks the Marlin kernel" % feats["version"])
    explanation.append("decode ceiling %s tok/s (memory bandwidth / bytes read per token at full context %d), "
                       "expected about %s tok/s" % (chosen["predicted_tokens_per_second"], context,
                                                    chosen["expected_tokens_per_second"]))
    return {
        "model": name, "device": "cuda", "vllm_version": feats["version"],
        "gpus": [g.get("index") for g in used], "gpu": gpu_label(gpu),
        "quantization": chosen["quantization"], "max_model_len": context, "max_model_len_estimate": fit,
        "max_model_len_arg": max_len_arg,
        "cpu_offload_gb": chosen["cpu_offload_gb"], "enforce_eager": chosen["enforce_eager"],
        "tensor_parallel_size": tp, "engine": chosen["engine"], "option": chosen["key"],
        "args": args, "env": env,
        "predicted_tokens_per_second": chosen["predicted_tokens_per_second"],
        "expected_tokens_per_second": chosen["expected_tokens_per_second"],
        "min_tokens_per_second": min_tps,
        "options": options, "explanation": explanation, "warnings": warnings,
        "memory": budget.to_dict(),
    }


def _opt_summary(opt):
    if not opt["feasible"]:
        return "not possible (%s)" % "; ".join(opt["why"][-1:])
    return "%s tok/s expected (ceiling %s) at %d tokens, offload %d GiB%s" % (
        opt["expected_tokens_per_second"], opt["predicted_tokens_per_second"], opt["max_model_len"],
        opt["cpu_offload_gb"], ", eager" if opt["enforce_eager"] else "")


def options_table(result):
    """Text table of the options, for the role's debug output."""
    rows = ["opt  quant       ctx     offload eager  ceiling  expected  verdict"]
    for o in result.get("options", []):
        rows.append("%-4s %-11s %-7s %-7s %-6s %-8s %-9s %s" % (
            o["key"], o["quantization"], o["max_model_len"], o["cpu_offload_gb"], o["enforce_eager"],
            o["predicted_tokens_per_second"], o["expected_tokens_per_second"], o["why"][0] if o["why"] else ""))
    return rows
