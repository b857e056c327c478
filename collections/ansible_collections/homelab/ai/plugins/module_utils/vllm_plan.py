# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deployment planner: the decision record (2026-02-27) as code, as a ledger of the whole GPU.

Given a model registry entry, the GPUs (as gpu_facts returns them), WSL facts, a vLLM release and
the stack's other GPU workloads (co-tenants: the image server), decide quantization kernel,
context, KV dtype, utilization, offload, CUDA graphs, engine variables and vLLM arguments, place
the co-tenants, and predict decode speed for every option the record considered (A to D). vLLM
rules come from vllm_releases.py only; co-tenant, CUDA-total and context figures from
gpu_ledger.py.

Memory model, per GPU (GiB = 2**30 B; T = CUDA total, gpu_ledger.cuda_total_gib; O = other
processes = used - what the stack's own running members hold, gpu_ledger.others_gib; ctx =
vLLM's CUDA context; ws = workspaces; W = weights / tp; A = profile peak; G = CUDA graphs;
C = co-tenants placed on this GPU, which start AFTER vLLM (site.yml: vllm role, then
image_server); R = gpu_reserve_gib):

* vLLM 0.8.5 .. 0.9.0.x (vllm_releases "other_processes_in_kv_budget"): vLLM fills the device to
  util x T counting every non-torch byte: KV = util*T - W - A - ctx - ws - O. Graphs are
  captured afterwards, outside that. Co-tenants fit when util*T + G + C + R <= T; the planned
  utilization is min(requested + O/T, that bound): on these releases O costs KV, so the plan
  raises util by O/T where the card has room, giving the KV a newer release would give.
* from 0.9.1 ("startup_free_memory_check"): KV = util*T - W - A - ws (- G from 0.20, or with
  --kv-cache-memory-bytes, where the planner counts G inside util*T itself); vLLM refuses to
  start when free < util*T, free being T - O - ctx at its snapshot. Co-tenants fit when
  O + ctx + util*T (+ G before 0.20) + C + R <= T; planned util = min(requested, that bound).
* where the release has --kv-cache-memory-bytes (0.10.2+), the plan emits the KV size in bytes,
  so vLLM's own graph estimate no longer moves it, and a utilization that passes the start check.

A = max(layer activations of max_num_batched_tokens tokens, the sampler's sort of
min(max_num_seqs, max_num_batched_tokens) x vocab logits at vllm_releases.sampler_bytes_per_element)
(profile_run runs the two one after the other); batched tokens and sequences default per release
and GPU size (vllm_releases.scheduler_defaults). G = CUDAGRAPH_BASE_GIB + CUDAGRAPH_GIB_PER_SIZE
per capture size (vllm_releases.cudagraph_capture_sizes: 67 sizes up to 512 before 0.10, capped
by 2 x max_num_seqs after), ESTIMATE: 0.5 GiB at 67 sizes, the figure the planner assumed before
this ledger (not measured here; vLLM logs its own as "Graph capturing finished in N secs, took X
GiB", which is the figure to replace this estimate with).

The plan returns ``ledger`` (per GPU: weights, kv_cache, activations, cuda_graphs, runtime, each
co-tenant, other processes, reserve, headroom) and ``remember``, which the role stores and passes
back as ``previous`` with ``running``: the stack's own memory then is not counted as a stranger's,
and a re-run whose other-process figure moved less than ``replan_tolerance_mib`` plans exactly the
same launch.

Speed: decode at batch 1 reads every weight byte and the KV of the context once per token.
``ceiling_tokens_per_second`` = bandwidth / (weights + KV at the FULL planned context): the upper
bound at the end of a conversation that fills the context. ``expected_tokens_per_second`` = the
ceiling at TYPICAL_CONTEXT (2048 tokens: the smoke test's prompt plus its 256-token answer and a
few turns of chat sit below it) times kernel efficiency; ``expected_tokens_per_second_full_context``
the same at the full context. Efficiency EFFICIENCY_MARLIN_GRAPHS is calibrated so that the
record's case (RTX 3090, 936 GB/s, Qwen3-32B-AWQ, awq_marlin, CUDA graphs, one stream) predicts
the ~19 tok/s it measured at TYPICAL_CONTEXT; the record's factors for the generic AWQ kernel
(2-3x -> /2.5) and eager mode (1.5-2x -> /1.75) divide it. ``min_tokens_per_second`` is checked
against the expected figure at the typical context. ``predicted_tokens_per_second`` is a
DEPRECATED alias of the ceiling, kept for its consumers.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.homelab.ai.plugins.module_utils import gpu_ledger as gl
from ansible_collections.homelab.ai.plugins.module_utils import model_registry
from ansible_collections.homelab.ai.plugins.module_utils import vllm_releases

GIB = 1024 ** 3
MIB = 1024 ** 2

CUDAGRAPH_BASE_GIB = 0.1
CUDAGRAPH_GIB_PER_SIZE = 0.006
DEFAULT_ACTIVATION_GIB = 1.0
CONTEXT_STEP = 256
MIN_USEFUL_CONTEXT = 2048
TYPICAL_CONTEXT = 2048
AWQ_GENERIC_PENALTY = 2.5
EAGER_PENALTY = 1.75
PAGEABLE_PCIE_FACTOR = 0.5
DEFAULT_PCIE_GBPS = 25.0
REPORT_UTILIZATIONS = (0.90, 0.95)
REPORT_RELEASES = ("0.8.5", "0.9.0", "0.32.0")
# The record's case: Qwen3-32B-AWQ (19.323e9 B of weights, 256 KiB of fp16 KV per token) on an
# RTX 3090 (936 GB/s), awq_marlin + CUDA graphs, ~19 tok/s measured (1 / mean TPOT, one stream).
RECORD_TPS, RECORD_WEIGHT_BYTES, RECORD_KV_TOKEN_BYTES, RECORD_BANDWIDTH_GBPS = 19.0, 19323000000, 262144, 936
EFFICIENCY_MARLIN_GRAPHS = RECORD_TPS * (RECORD_WEIGHT_BYTES + RECORD_KV_TOKEN_BYTES * TYPICAL_CONTEXT) / (
    RECORD_BANDWIDTH_GBPS * 1e9)
KV_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")


class PlanRefused(ValueError):
    """No plan can work; the message names model, GPU, requirement, alternatives."""

    def __init__(self, message, plan=None):
        super(PlanRefused, self).__init__(message)
        self.plan = plan


def _cc_str(cc_int):
    return "sm_%d" % cc_int if cc_int is not None else "unknown compute capability"


def _round_context(tokens):
    return int(tokens // CONTEXT_STEP * CONTEXT_STEP)


def _floor2(value):
    return math.floor(value * 100 + 1e-9) / 100.0


def activation_gib(model, feats, max_num_batched_tokens, max_num_seqs):
    """Profile-run peak: the larger of one layer's activations and the sampler's sort."""
    if not all(model.get(k) for k in ("hidden_size", "intermediate_size", "vocab_size")):
        return DEFAULT_ACTIVATION_GIB
    layer = max_num_batched_tokens * (3 * model["intermediate_size"] + 3 * model["hidden_size"]) * 2
    rows = min(max_num_seqs, max_num_batched_tokens)
    sampler = rows * model["vocab_size"] * vllm_releases.sampler_bytes_per_element(feats["version"])
    return max(layer, sampler) / float(GIB)


def cudagraph_gib(feats, max_num_seqs):
    sizes = vllm_releases.cudagraph_capture_sizes(feats["version"], max_num_seqs)
    return CUDAGRAPH_BASE_GIB + CUDAGRAPH_GIB_PER_SIZE * len(sizes)


def kv_token_bytes(model, kv_dtype, tp=1):
    return model_registry.kv_bytes_per_token(model, 1 if kv_dtype.startswith("fp8") else 2) / float(tp)


class _Slice(object):
    """Memory arithmetic for one GPU of vLLM's tensor-parallel group, with what else it holds."""

    def __init__(self, model, gpu, host, feats, tp, seqs, tenants_gib=0.0, kv_dtype="auto"):
        self.gpu, self.feats, self.tp = gpu, feats, tp
        self.total = gl.cuda_total_gib(gpu, host["is_wsl"])
        self.others = host["others"][gpu["index"]]
        self.ctx = host["ctx"]
        self.reserve = host["reserve"]
        self.tenants = tenants_gib
        tokens, default_seqs = vllm_releases.scheduler_defaults(feats["version"], self.total, gpu["name"])
        self.seqs = seqs or default_seqs
        self.batched_tokens = tokens
        self.weights = model["weight_bytes"] / float(GIB) / tp
        self.act = activation_gib(model, feats, tokens, self.seqs)
        self.graphs = cudagraph_gib(feats, self.seqs)
        self.legacy = feats["other_processes_in_kv_budget"]
        self.kv_bytes_flag = feats["kv_cache_memory_bytes_flag"]
        self.graphs_inside = feats["cudagraph_memory_in_kv_budget"] or self.kv_bytes_flag
        self.kv_dtype = kv_dtype
        self.kv_token = kv_token_bytes(model, kv_dtype, tp)

    def with_(self, tenants_gib=None, kv_dtype=None, model=None):
        other = object.__new__(_Slice)
        other.__dict__.update(self.__dict__)
        if tenants_gib is not None:
            other.tenants = tenants_gib
        if kv_dtype is not None:
            other.kv_dtype, other.kv_token = kv_dtype, kv_token_bytes(model, kv_dtype, self.tp)
        return other

    def util_max(self, eager=False):
        """Highest utilization this release accepts that leaves room for co-tenants and reserve."""
        graphs = 0.0 if eager else self.graphs
        if self.legacy:
            room = self.total - graphs - self.tenants - self.reserve
        else:
            room = self.total - self.others - self.ctx - self.tenants - self.reserve
            if not self.graphs_inside:
                room -= graphs
        return room / self.total

    def planned_util(self, requested, eager=False):
        want = requested + (self.others / self.total if self.legacy else 0.0)
        return max(0.0, min(_floor2(want), _floor2(self.util_max(eager))))

    def util_for(self, requested, target, cap):
        """Utilization to hand vLLM: the requested one (plus others on 0.8.5-0.9.0), raised to what ``target``
        tokens need as long as the ledger keeps its reserve; never above what the release accepts."""
        base = self.planned_util(requested)
        if target is None or self.max_context(base, cap) >= min(target, cap):
            return base
        needed = base + (self.need_gib(target) - self.kv_gib(base)) / self.total
        return max(base, min(_floor2(self.util_max()), math.ceil(needed * 100 - 1e-9) / 100.0))

    def kv_gib(self, util, offload_gib=0.0, eager=False):
        budget = util * self.total - (self.weights - offload_gib) - self.act - gl.WORKSPACE_GIB
        if self.legacy:
            return budget - self.ctx - self.others
        if self.graphs_inside and not eager:
            budget -= self.graphs
        return budget

    def max_context(self, util, cap, offload_gib=0.0, eager=False):
        kv = self.kv_gib(util, offload_gib, eager)
        return 0 if kv <= 0 else min(cap, _round_context(kv * GIB / self.kv_token))

    def need_gib(self, tokens):
        return tokens * self.kv_token / float(GIB)

    def starts(self, util):
        """vLLM's start-up check (0.9.1+): free at its snapshot >= util x total."""
        return self.legacy or util * self.total <= self.total - self.others - self.ctx + 1e-9

    def ledger(self, util, tenant_entries, eager=False):
        kv = max(0.0, self.kv_gib(util, eager=eager))
        graphs = 0.0 if eager else self.graphs
        entries = [
            gl.ledger_entry("weights", self.weights, "model weights / tensor parallel %d" % self.tp),
            gl.ledger_entry("kv_cache", kv, "KV cache vLLM allocates (%s, %d B/token)" % (
                self.kv_dtype if self.kv_dtype != "auto" else "fp16", self.kv_token)),
            gl.ledger_entry("activations", self.act, "profile peak: max(layer activations of %d tokens, sampler "
                            "sort of %d x vocab)" % (self.batched_tokens, self.seqs)),
            gl.ledger_entry("cuda_graphs", graphs, "ESTIMATE: CUDA graphs for %d capture sizes" % len(
                vllm_releases.cudagraph_capture_sizes(self.feats["version"], self.seqs)) if graphs else "eager"),
            gl.ledger_entry("runtime", self.ctx + gl.WORKSPACE_GIB, "ESTIMATE: vLLM's CUDA context %.2f + "
                            "workspaces %.2f" % (self.ctx, gl.WORKSPACE_GIB)),
        ] + list(tenant_entries) + [
            gl.ledger_entry("other_processes", self.others, "measured: used memory not held by the stack "
                            "(desktop, other programs)"),
            gl.ledger_entry("reserve", self.reserve, "gpu_reserve_gib: headroom kept free"),
        ]
        return gl.ledger(self.total, entries)

    def vllm_holds(self, util, eager=False):
        return (self.weights + max(0.0, self.kv_gib(util, eager=eager)) + self.act
                + (0.0 if eager else self.graphs) + self.ctx + gl.WORKSPACE_GIB)

    def to_dict(self, util):
        return {
            "total_gib": round(self.total, 2), "budget_gib": round(self.total * util, 2),
            "weights_gib": round(self.weights, 2), "activation_gib": round(self.act, 2),
            "runtime_reserve_gib": round(self.ctx + gl.WORKSPACE_GIB, 2),
            "other_processes_gib": round(self.others, 2), "co_tenants_gib": round(self.tenants, 2),
            "gpu_reserve_gib": self.reserve, "cudagraph_reserve_gib": round(self.graphs, 3),
            "cudagraph_reserve_in_budget": self.graphs_inside, "kv_bytes_per_token": int(self.kv_token),
            "tensor_parallel_size": self.tp, "max_num_seqs": self.seqs,
            "max_num_batched_tokens": self.batched_tokens,
            "accounting": "0.8.5-0.9.0 (others in KV budget)" if self.legacy else "0.9.1+ (start-up snapshot)",
        }


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


def _finite(value, field, name, positive=True):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
        raise PlanRefused("model '%s': %s must be a finite number, got %r" % (name, field, value))
    if positive and value <= 0:
        raise PlanRefused("model '%s': %s must be positive, got %r" % (name, field, value))
    return value


def _check_model_numbers(name, model):
    """NaN, infinite, zero or negative sizes in a registry entry, named before the registry sees them."""
    if not isinstance(model, dict):
        raise model_registry.RegistryError(["model '%s': entry must be a mapping" % name])
    for field in ("layers", "kv_heads", "head_dim", "attention_heads", "hidden_size", "intermediate_size",
                  "vocab_size", "weight_bytes", "weight_gib", "params_b", "default_context", "max_context"):
        if model.get(field) is not None and isinstance(model[field], (int, float)):
            try:
                _finite(model[field], "field '%s'" % field, name)
            except PlanRefused as exc:
                raise model_registry.RegistryError([str(exc)])


def _requested_context(requested, entry, name):
    if isinstance(requested, str) and requested != "auto":
        try:
            requested = int(requested)
        except ValueError:
            raise PlanRefused("model '%s': max_model_len must be a number of tokens or 'auto', got %r"
                              % (name, requested))
    if isinstance(requested, float):
        _finite(requested, "max_model_len", name)
        requested = int(requested)
    if isinstance(requested, int) and not isinstance(requested, bool):
        if requested <= 0:
            raise PlanRefused("model '%s': max_model_len must be a positive number of tokens, got %d"
                              % (name, requested))
        if requested > entry["max_context"]:
            raise PlanRefused("model '%s': requested max_model_len %d is above the model's maximum %d "
                              "(max_context, from its config.json); request %d or less"
                              % (name, requested, entry["max_context"], entry["max_context"]))
    return requested


def _options_in(name, gpu_memory_utilization, co_tenants, gpu_reserve_gib, wsl_cuda_context_gib, running,
                previous, replan_tolerance_mib, kv_cache_dtype):
    util = _finite(gpu_memory_utilization, "gpu_memory_utilization", name)
    if not 0.1 <= float(util) <= 0.98:
        raise PlanRefused("gpu_memory_utilization %s for model '%s' is outside 0.1..0.98" % (util, name))
    _finite(gpu_reserve_gib, "gpu_reserve_gib", name, positive=False)
    _finite(wsl_cuda_context_gib, "wsl_cuda_context_gib", name, positive=False)
    _finite(replan_tolerance_mib, "replan_tolerance_mib", name, positive=False)
    if kv_cache_dtype not in KV_DTYPES:
        raise PlanRefused("model '%s': kv_cache_dtype must be one of %s, got %r"
                          % (name, ", ".join(KV_DTYPES), kv_cache_dtype))
    if not isinstance(previous or {}, dict):
        raise PlanRefused("previous must be the remember dict of the previous plan, got %r" % (previous,))
    tenants = [gl.validate_co_tenant(t, i) for i, t in enumerate(co_tenants or [])]
    if len(set(t["name"] for t in tenants)) != len(tenants):
        raise gl.GpuFactsError("co_tenants: names must be unique")
    return tenants, list(running or []), dict(previous or {})


def registry_entry(model, name):
    """``model`` validated as the registry entry ``name`` (RegistryError listing every problem), named."""
    entry, errors = model_registry.validate_entry(name, dict((k, v) for k, v in model.items() if k != "_name"))
    if errors:
        raise model_registry.RegistryError(errors)
    entry["_name"] = name
    return entry


def plan(model, gpus, wsl=None, vllm_version="0.32.0", name=None, max_model_len=None,
         gpu_memory_utilization=0.9, min_tokens_per_second=None, allow_cpu_offload=False,
         pcie_gbps=DEFAULT_PCIE_GBPS, cpu_kvcache_space_gib=1, cpu_has_compiler=False, max_num_seqs=None,
         co_tenants=None, gpu_reserve_gib=gl.DEFAULT_GPU_RESERVE_GIB,
         wsl_cuda_context_gib=gl.DEFAULT_WSL_CUDA_CONTEXT_GIB, running=None, previous=None,
         replan_tolerance_mib=512, kv_cache_dtype="auto", fleet_gpus=None):
    """Plan one model; return the plan dict or raise PlanRefused / GpuFactsError / RegistryError /
    UnsupportedRelease (all ValueError). ``fleet_gpus`` (other host name -> its gpu_facts GPUs): where the
    model fits no GPU of this host, the refusal names the multi-host option (module_utils/multi_host.py)."""
    name = name or (model.get("_name") if isinstance(model, dict) else None) or "model"
    _check_model_numbers(name, model)
    entry = registry_entry(model, name)
    feats = vllm_releases.features(vllm_version)
    wsl = wsl or {}
    tenants, running, previous = _options_in(name, gpu_memory_utilization, co_tenants, gpu_reserve_gib,
                                             wsl_cuda_context_gib, running, previous, replan_tolerance_mib,
                                             kv_cache_dtype)
    if max_num_seqs is not None and (isinstance(max_num_seqs, bool) or not isinstance(max_num_seqs, int)
                                     or max_num_seqs <= 0):
        raise PlanRefused("model '%s': max_num_seqs must be a positive integer, got %r" % (name, max_num_seqs))
    requested = _requested_context(max_model_len, entry, name)
    if not gpus:
        result = _cpu_plan(entry, feats, requested, cpu_kvcache_space_gib, cpu_has_compiler)
        result["co_tenant_placement"] = dict((t["name"], {"device": "cpu", "gpu": None, "memory_gib": 0.0,
                                                          "what": "no GPU on the host"}) for t in tenants)
    else:
        norm = [gl.validate_gpu(g) for g in gpus]
        if len(set(g["index"] for g in norm)) != len(norm):
            raise gl.GpuFactsError("gpus: GPU indices must be unique, got %s" % [g["index"] for g in norm])
        options = {"util": float(gpu_memory_utilization), "min_tps": min_tokens_per_second,
                   "allow_offload": allow_cpu_offload, "pcie_gbps": float(pcie_gbps), "max_num_seqs": max_num_seqs,
                   "co_tenants": tenants, "gpu_reserve_gib": float(gpu_reserve_gib),
                   "wsl_cuda_context_gib": float(wsl_cuda_context_gib), "running": running, "previous": previous,
                   "replan_tolerance_mib": replan_tolerance_mib, "kv_cache_dtype": kv_cache_dtype}
        try:
            result = _gpu_plan(entry, norm, wsl, feats, requested, options)
        except PlanRefused as exc:
            if (exc.plan or {}).get("refusal") != "does_not_fit":
                raise
            host = _host(norm, wsl, running, previous, replan_tolerance_mib, wsl_cuda_context_gib, gpu_reserve_gib,
                         float(gpu_memory_utilization))
            here = {"gpus": gpus, "is_wsl": host["is_wsl"], "others_gib": host["others"]}
            raise _with_multi_host(exc, entry, here, fleet_gpus, feats["version"], gpu_memory_utilization,
                                   gpu_reserve_gib, max_model_len)
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
        explanation += rwarn
    return {
        "model": name, "device": "cpu", "vllm_version": feats["version"],
        "quantization": "none", "max_model_len": context, "max_model_len_estimate": fits,
        "cpu_offload_gb": 0, "enforce_eager": not has_compiler, "tensor_parallel_size": 1,
        "engine": "V1 (cpu)", "args": args, "env": {"VLLM_CPU_KVCACHE_SPACE": str(kv_space_gib)},
        "predicted_tokens_per_second": None, "expected_tokens_per_second": None,
        "ceiling_tokens_per_second": None, "expected_tokens_per_second_full_context": None,
        "gpus": [], "ledger": {}, "gpu_memory_utilization": None, "remember": {}, "report": {},
        "options": [], "explanation": explanation, "warnings": list(feats["warnings"]),
        "memory": {"kv_bytes_per_token": kv_token, "kv_space_gib": kv_space_gib},
    }


def _host(gpus, wsl, running, previous, tolerance_mib, wsl_ctx, reserve, requested_util):
    """Validated GPUs and what the host around vLLM holds on each (others, contexts, reserve).

    A running vLLM the previous plan does not know is estimated at requested utilization x total +
    its CUDA context: what vLLM >= 0.9.1 holds once its profiler has filled the budget.
    """
    is_wsl = bool(wsl.get("is_wsl"))
    others, notes, stable = {}, [], True
    for gpu in gpus:
        guess = requested_util * gl.cuda_total_gib(gpu, is_wsl) + gl.process_context_gib(is_wsl, wsl_ctx)
        gib, same, note = gl.others_gib(gpu, running, previous, tolerance_mib, {"vllm": guess})
        others[gpu["index"]] = gib
        stable = stable and same
        if note:
            notes.append(note)
    return {"is_wsl": is_wsl, "others": others, "notes": notes, "stable": stable and bool(previous),
            "ctx": gl.process_context_gib(is_wsl, wsl_ctx), "reserve": float(reserve), "wsl_ctx": wsl_ctx}


def _usable(gpu, host):
    return gl.cuda_total_gib(gpu, host["is_wsl"]) - host["others"][gpu["index"]]


def _pick_gpus(entry, gpus, host, feats, util, seqs):
    """(GPUs vLLM uses, tp): one GPU when the weights fit the one with most USABLE memory, else the smallest TP."""
    ordered = sorted(gpus, key=lambda g: (-_usable(g, host), g["index"]))
    heads = entry.get("attention_heads") or entry["kv_heads"]
    for tp in (1, 2, 4, 8):
        if tp > len(ordered):
            break
        if heads % tp or (entry["kv_heads"] % tp and tp % entry["kv_heads"]):
            continue
        use = ordered[:tp]
        smallest = _Slice(entry, min(use, key=lambda g: _usable(g, host)), host, feats, tp, seqs)
        top = _floor2(smallest.util_max())
        if smallest.max_context(top, entry["max_context"]) >= MIN_USEFUL_CONTEXT:
            return use, tp
    return ordered[:1], 1


def _place_tenants(tenants, used, gpus, host):
    """Put each co-tenant on a GPU (or the CPU): explicit first, else a GPU vLLM does not use with room."""
    placement, on_gpu = {}, dict((g["index"], []) for g in gpus)
    by_index = dict((g["index"], g) for g in gpus)
    vllm_idx = [g["index"] for g in used]
    for tenant in tenants:
        gib, what = gl.co_tenant_gib(tenant, host["is_wsl"], host["wsl_ctx"]) if tenant["device"] == "cuda" \
            else (0.0, "on the CPU: no GPU memory")
        target = tenant["gpu"]
        if tenant["device"] == "cpu":
            target = None
        elif target is not None and target not in by_index:
            raise gl.GpuFactsError("co_tenants (%s): gpu %s is not one of the GPUs found (%s)"
                                   % (tenant["name"], target, ", ".join(str(i) for i in sorted(by_index))))
        elif target is None:
            spare = [g for g in gpus if g["index"] not in vllm_idx
                     and _usable(g, host) - sum(x[1] for x in on_gpu[g["index"]]) - host["reserve"] >= gib]
            spare.sort(key=lambda g: (-_usable(g, host), g["index"]))
            target = spare[0]["index"] if spare else vllm_idx[0]
        if target is not None:
            on_gpu[target].append((tenant["name"], gib, what))
        placement[tenant["name"]] = {"device": tenant["device"], "gpu": target, "memory_gib": round(gib, 3),
                                     "what": what, "auto": tenant["gpu"] is None and tenant["device"] == "cuda"}
    return placement, on_gpu


def _slices(entry, used, host, feats, tp, seqs, on_gpu, kv_dtype, requested_util, target):
    """One _Slice per vLLM GPU; vLLM runs one utilization on all: the lowest any GPU accepts."""
    slices = [_Slice(entry, g, host, feats, tp, seqs, sum(t[1] for t in on_gpu[g["index"]]), kv_dtype)
              for g in used]
    util = min(s.util_for(requested_util, target, entry["max_context"]) for s in slices)
    binding = min(slices, key=lambda s: s.kv_gib(util))
    return slices, binding, util


def _util_why(binding, util, requested):
    if abs(util - requested) < 1e-9:
        return []
    if util > requested:
        legacy = (" (vLLM %s counts the %.2f GiB other processes and the %.2f GiB CUDA context against util x "
                  "total)" % (binding.feats["version"], binding.others, binding.ctx)) if binding.legacy else ""
        return ["gpu_memory_utilization %.2f instead of %.2f: at %.2f the planned context does not fit%s; the "
                "ledger keeps the %.2f GiB reserve and room for the co-tenants and graphs at %.2f"
                % (util, requested, requested, legacy, binding.reserve, util)]
    return ["gpu_memory_utilization %.2f instead of %.2f: at %.2f the co-tenants (%.2f GiB), other processes "
            "(%.2f GiB), CUDA context and graphs and the %.2f GiB reserve would not fit beside vLLM on %s"
            % (util, requested, requested, binding.tenants, binding.others, binding.reserve, binding.gpu["label"])]


def _target(entry, requested):
    """Tokens the plan aims at: the requested number, the default context, or None for auto."""
    if isinstance(requested, int):
        return requested
    if requested == "auto":
        return None
    return entry["default_context"]


def _speeds(entry, bandwidth, context, tp, offload=0, pcie=DEFAULT_PCIE_GBPS, pinned=True, eff=1.0):
    """Ceiling at the full context, expected at the typical and at the full context (tok/s)."""
    ceiling, full = predict_speed(entry, bandwidth, context, tp, offload, pcie, pinned, eff)
    typical = predict_speed(entry, bandwidth, min(context, TYPICAL_CONTEXT), tp, offload, pcie, pinned, eff)[1]
    return {"ceiling_tokens_per_second": ceiling, "expected_tokens_per_second": typical,
            "expected_tokens_per_second_full_context": full, "predicted_tokens_per_second": ceiling}


def _option(key, title, quant, eager, offload, context, engine, env, speed, feasible=True, why=None):
    opt = {"key": key, "title": title, "quantization": quant, "enforce_eager": eager, "cpu_offload_gb": offload,
           "max_model_len": context, "engine": engine, "env": env, "feasible": feasible, "chosen": False,
           "why": list(why or [])}
    opt.update(speed or _speeds(None, None, context, 1))
    return opt


def _offload_needed(binding, util, tokens, eager):
    short = binding.need_gib(tokens) - binding.kv_gib(util, eager=eager)
    return max(1, int(math.ceil(short))) if short > 0 else 1


def _offload_option(ctx, key, title, quant, path, pinned_speed, generic=False):
    """Options A, B, D: weights partly in RAM, the context the record wanted (offload_target)."""
    eager = bool(path.get("eager_required")) or key == "A"
    need = _offload_needed(ctx["binding"], ctx["util"], ctx["offload_target"], eager)
    if not path["feasible"]:
        return _option(key, title, quant, eager, need, ctx["offload_target"], "-", {}, None, False, path["why"])
    speed = ctx["speed"](ctx["offload_target"], need, pinned_speed if pinned_speed is not None else path["pinned"],
                         eager, generic)
    why = {"A": ["offload buys context %d for %d GiB over PCIe every token" % (ctx["offload_target"], need)],
           "B": ["PCIe traffic of the offload stays the bottleneck"],
           "D": ["pinned memory keeps CUDA graphs, PCIe still bounds every token"]}[key]
    return _option(key, title, quant, eager, need, ctx["offload_target"], path["engine"], path["env"], speed,
                   True, why + path["why"])


def _vram_option(ctx, quant, env_why):
    """Option C: best kernel, CUDA graphs, no offload, the context that fits."""
    b, util, fit, target = ctx["binding"], ctx["util"], ctx["fit"], ctx["target"]
    c_ctx = target if target <= fit else fit
    feasible = fit >= MIN_USEFUL_CONTEXT or (fit > 0 and target <= fit)
    why = (["weights %.2f GiB + KV %.2f GiB at %d tokens fit in %.2f GiB x %.2f"
            % (b.weights, b.need_gib(c_ctx), c_ctx, b.total, util)] if feasible else
           ["weights %.2f GiB leave %.2f GiB for KV at utilization %.2f: not even %d tokens"
            % (b.weights, b.kv_gib(util), util, MIN_USEFUL_CONTEXT)])
    return _option("C", "best kernel + CUDA graphs, no offload", quant, False, 0, c_ctx, "V1", dict(ctx["base_env"]),
                   ctx["speed"](c_ctx) if feasible else None, feasible, why + env_why)


def _options(ctx, entry, feats, wsl, quant, env_why):
    path_plain = _offload_path(feats, wsl, pinned_wanted=False)
    path_pin = _offload_path(feats, wsl, pinned_wanted=True) if ctx["is_wsl"] else dict(path_plain)
    a_quant = "none" if entry["quantization"] == "none" else "awq"
    return [
        _offload_option(ctx, "A", "generic kernel + --enforce-eager + CPU offload", a_quant, path_plain, None,
                        generic=a_quant == "awq" and not feats["auto_awq_alias"]),
        _offload_option(ctx, "B", "best kernel + CPU offload", quant, path_plain, None),
        _vram_option(ctx, quant, env_why),
        _offload_option(ctx, "D", "best kernel + CPU offload with pinned memory (UVA)", quant,
                        dict(path_pin, eager_required=False), True),
    ]


def _table(options):
    return "; ".join("%s (%s): %s" % (o["key"], o["title"], _opt_summary(o)) for o in options)


def _meets(opt, min_tps):
    return min_tps is None or opt["expected_tokens_per_second"] is None or opt["expected_tokens_per_second"] >= min_tps


def _choose(ctx, options, entry, requested, min_tps, allow_offload):
    """The option to launch, or PlanRefused naming model, GPU, figures and alternatives."""
    opts = dict((o["key"], o) for o in options)
    b, util, fit, name, desc = ctx["binding"], ctx["util"], ctx["fit"], entry["_name"], ctx["desc"]
    c = opts["C"]
    if c["feasible"] and (ctx["target"] <= fit or requested in ("auto", None)):
        return c, ["no offload: weights and KV cache fit in VRAM, CUDA graphs on, %s kernel" % c["quantization"]]
    offload = sorted([o for o in (opts["D"], opts["B"]) if o["feasible"] and _meets(o, min_tps)],
                     key=lambda o: -(o["expected_tokens_per_second"] or 0))
    if allow_offload and offload:
        return offload[0], ["CPU offload (allowed by allow_cpu_offload) as the last resort: %d GiB"
                            % offload[0]["cpu_offload_gb"]]
    if isinstance(requested, int) and c["feasible"]:
        raise PlanRefused(
            "model '%s' on %s: requested max_model_len %d needs %.2f GiB of KV cache but only %.2f GiB is left "
            "beside %.2f GiB of weights at gpu_memory_utilization %.2f; the largest context that fits is %d. "
            "Alternatives: request %d or less, raise gpu_memory_utilization, free GPU memory held by other "
            "processes (%.2f GiB), or allow CPU offload (allow_cpu_offload) at the speed shown. Options: %s"
            % (name, desc, requested, b.need_gib(requested), b.kv_gib(util), b.weights, util, fit, fit, b.others,
               _table(options)), {"options": options})
    need = b.weights + b.act + b.ctx + gl.WORKSPACE_GIB + b.others + b.need_gib(MIN_USEFUL_CONTEXT)
    raise PlanRefused(
        "model '%s' (%.2f GiB of weights) does not fit on %s: it needs about %.1f GiB at gpu_memory_utilization "
        "%.2f for %d tokens of context, the GPU offers %.1f GiB. Alternatives: a GPU with at least %.0f GiB, "
        "tensor parallelism over several GPUs, a smaller or more quantized model%s. Options: %s"
        % (name, entry["weight_bytes"] / float(GIB), desc, need, util, MIN_USEFUL_CONTEXT, b.total * util,
           math.ceil(need / max(util, 0.1)),
           ", or CPU offload (allow_cpu_offload) if its speed is acceptable" if not allow_offload else
           " (CPU offload is not possible or too slow here)", _table(options)), {"options": options, "refusal": "does_not_fit"})


def _with_multi_host(exc, entry, here, fleet_gpus, version, util, reserve, max_model_len):
    """The "does not fit" refusal, plus pipeline parallelism over several hosts (module_utils/multi_host.py)."""
    if not fleet_gpus:
        return PlanRefused("%s. Pipeline parallelism over several hosts (Ray) is the remaining option; planning it "
                           "needs the fleet's GPU facts (fleet_gpus)" % exc, exc.plan)
    from ansible_collections.homelab.ai.plugins.module_utils import multi_host  # pylint: disable=import-outside-toplevel
    hosts = dict(fleet_gpus)
    hosts[multi_host.THIS_HOST] = here
    option = multi_host.pipeline_option(entry, hosts, head=multi_host.THIS_HOST, vllm_version=version, gpu_memory_utilization=util,
                                        gpu_reserve_gib=reserve,
                                        max_model_len=max_model_len if isinstance(max_model_len, int) else None)
    return PlanRefused("%s. %s" % (exc, multi_host.summary(option)), dict(exc.plan or {}, multi_host=option))


def _check_speed(chosen, options, entry, desc, min_tps):
    if min_tps is None or chosen["expected_tokens_per_second"] is None or _meets(chosen, min_tps):
        return
    raise PlanRefused(
        "model '%s' on %s: the plan (option %s) is expected to decode %.1f tok/s at a %d-token conversation "
        "(ceiling %.1f at the full context), below the required min_tokens_per_second %s. Alternatives: a faster "
        "GPU, a smaller model. Options: %s"
        % (entry["_name"], desc, chosen["key"], chosen["expected_tokens_per_second"], TYPICAL_CONTEXT,
           chosen["ceiling_tokens_per_second"], min_tps, _table(options)),
        {"options": options})


def _mark(options, chosen, version):
    chosen["chosen"] = True
    for opt in options:
        if opt is chosen:
            opt["why"].insert(0, "chosen")
        elif not opt["feasible"]:
            opt["why"].insert(0, "rejected: not possible with vLLM %s on this host" % version)
        elif opt["cpu_offload_gb"] and not chosen["cpu_offload_gb"]:
            opt["why"].insert(0, "rejected: offload is the last resort and the model fits without it")
        else:
            opt["why"].insert(0, "rejected: slower than option %s" % chosen["key"])


def _conflict_choices(ctx, entry, gpus, host, placement, fp8_ok):
    """When vLLM at the target context and the co-tenants cannot share the GPU: the ways out, with figures."""
    b, target, cap, model = ctx["binding"], ctx["target"], entry["max_context"], entry
    shared = [n for n, p in placement.items() if p["gpu"] == b.gpu["index"] and p["device"] == "cuda"]
    tenant_gib = sum(placement[n]["memory_gib"] for n in shared)
    alone = b.with_(tenants_gib=0.0)
    small_ok = ctx["fit"] >= MIN_USEFUL_CONTEXT
    choices = [{"title": "smaller context", "max_model_len": ctx["fit"], "kv_cache_dtype": "auto",
                "gpu_memory_utilization": ctx["util"], "fits": small_ok,
                "how": "max_model_len: %d" % ctx["fit"] if small_ok else
                "nothing: even %d tokens would need %.2f GiB more than the card has beside the co-tenants"
                % (MIN_USEFUL_CONTEXT, b.need_gib(MIN_USEFUL_CONTEXT) - b.kv_gib(ctx["util"]))}]
    if fp8_ok:
        f8 = b.with_(kv_dtype="fp8", model=model)
        util_f8 = f8.util_for(ctx["requested_util"], target, cap)
        ctx_f8 = f8.max_context(util_f8, cap)
        choices.append({"title": "fp8 KV cache", "max_model_len": min(target, ctx_f8), "largest_context": ctx_f8,
                        "kv_cache_dtype": "fp8", "gpu_memory_utilization": util_f8,
                        "fits": ctx_f8 >= target, "how": "kv_cache_dtype: fp8"})
    others = [g for g in gpus if g["index"] != b.gpu["index"]]
    room = max([(_usable(g, host) - host["reserve"], g["index"]) for g in others] or [(0.0, None)])
    choices.append({"title": "%s on another GPU" % " + ".join(shared), "gpu": room[1],
                    "free_gib": round(room[0], 2), "needs_gib": round(tenant_gib, 2),
                    "fits": room[1] is not None and room[0] >= tenant_gib,
                    "how": "co_tenants[].gpu: %s" % room[1] if room[1] is not None else "no other GPU on this host"})
    util_alone = alone.util_for(ctx["requested_util"], target, cap)
    choices.append({"title": "%s on the CPU" % " + ".join(shared), "max_model_len": min(target, alone.max_context(
        util_alone, cap)), "largest_context": alone.max_context(util_alone, cap),
        "gpu_memory_utilization": util_alone, "fits": alone.max_context(util_alone, cap) >= target,
        "how": "co_tenants[].device: cpu (ESTIMATE: a 512x512 image takes minutes on a CPU instead of seconds)"})
    return choices


def _choices_text(choices):
    rows = []
    for c in choices:
        figures = ", ".join("%s %s" % (k, v) for k, v in sorted(c.items()) if k not in ("title", "how"))
        rows.append("%s (%s; set %s)" % (c["title"], figures, c["how"]))
    return "; ".join(rows)


def _args(entry, chosen, feats, ctx, max_len_arg, kv_dtype):
    args = _base_args(entry, chosen["quantization"], entry["dtype"])
    args += ["--max-model-len", max_len_arg, "--gpu-memory-utilization", "%g" % ctx["util"]]
    kv_bytes = None
    if feats["kv_cache_memory_bytes_flag"] and not chosen["cpu_offload_gb"]:
        kv_bytes = int(ctx["binding"].kv_gib(ctx["util"], eager=chosen["enforce_eager"]) * GIB) // MIB * MIB
        args += ["--kv-cache-memory-bytes", str(kv_bytes)]
    if kv_dtype != "auto":
        args += ["--kv-cache-dtype", kv_dtype]
    if ctx["tp"] > 1:
        args += ["--tensor-parallel-size", str(ctx["tp"])]
    if chosen["enforce_eager"]:
        args.append("--enforce-eager")
    if chosen["cpu_offload_gb"]:
        args += ["--cpu-offload-gb", str(chosen["cpu_offload_gb"])]
    return args, kv_bytes


def _report(entry, binding, fp8_ok, fp8_why, version):
    """The record's follow-ups: largest context with/without fp8 KV at 0.90 and 0.95; reasoning parsers."""
    rows, cap = [], entry["max_context"]
    alone = binding.with_(tenants_gib=0.0)
    for util in REPORT_UTILIZATIONS:
        for dtype in ("auto", "fp8"):
            if dtype == "fp8" and not fp8_ok:
                rows.append({"gpu_memory_utilization": util, "kv_cache_dtype": dtype, "supported": False,
                             "why": fp8_why})
                continue
            with_t = binding.with_(kv_dtype=dtype, model=entry)
            without = alone.with_(kv_dtype=dtype, model=entry)
            rows.append({"gpu_memory_utilization": util, "kv_cache_dtype": dtype, "supported": True,
                         "largest_context": with_t.max_context(util, cap),
                         "largest_context_without_co_tenants": without.max_context(util, cap),
                         "starts": with_t.starts(util),
                         "ledger_balances": with_t.ledger(util, [])["headroom_gib"] >= with_t.tenants - 1e-9,
                         "headroom_gib_before_co_tenants": with_t.ledger(util, [])["headroom_gib"]})
    releases = sorted(set(REPORT_RELEASES + (version,)), key=vllm_releases.parse_version)
    return {"contexts": rows, "reasoning_parser_qwen3": dict((v, vllm_releases.reasoning_parsers(v)) for v in releases)}


def _remember(host, gpus, slices, util, chosen, placement, kv_bytes, kv_dtype, feats):
    stack = {}
    for s in slices:
        stack[str(s.gpu["index"])] = {"vllm": round(s.vllm_holds(util, chosen["enforce_eager"]), 3)}
    for name, place in sorted(placement.items()):
        if place["gpu"] is not None:
            stack.setdefault(str(place["gpu"]), {})[name] = place["memory_gib"]
    return {"format": 1, "vllm_version": feats["version"], "gpu_memory_utilization": util,
            "max_model_len": chosen["max_model_len"], "kv_cache_dtype": kv_dtype, "kv_cache_memory_bytes": kv_bytes,
            "others_gib": dict((str(g["index"]), round(host["others"][g["index"]], 3)) for g in gpus),
            "stack": stack, "members": sorted(["vllm"] + list(placement))}


def _ledgers(slices, gpus, host, util, placement, eager):
    out = {}
    for s in slices:
        tenants = [gl.ledger_entry(n, p["memory_gib"], p["what"]) for n, p in sorted(placement.items())
                   if p["gpu"] == s.gpu["index"]]
        out[str(s.gpu["index"])] = s.ledger(util, tenants, eager)
    for g in gpus:
        if str(g["index"]) in out:
            continue
        tenants = [gl.ledger_entry(n, p["memory_gib"], p["what"]) for n, p in sorted(placement.items())
                   if p["gpu"] == g["index"]]
        entries = tenants + [gl.ledger_entry("other_processes", host["others"][g["index"]], "measured"),
                             gl.ledger_entry("reserve", host["reserve"], "gpu_reserve_gib")]
        out[str(g["index"])] = gl.ledger(gl.cuda_total_gib(g, host["is_wsl"]), entries)
    return out


def _context(entry, binding, util, requested, requested_util, tp, host, base_env, speed, desc):
    fit = binding.max_context(util, entry["max_context"])
    target = _target(entry, requested) or fit or entry["default_context"]
    offload_target = requested if isinstance(requested, int) and requested > fit else \
        min(2 * entry["default_context"], entry["max_context"])
    return {"binding": binding, "util": util, "fit": fit, "target": target, "offload_target": offload_target,
            "requested_util": requested_util, "tp": tp, "is_wsl": host["is_wsl"], "base_env": base_env,
            "speed": speed, "desc": desc}


def _speed_fn(entry, bandwidth, tp, pcie_gbps, kernel_eff):
    def speed(context, offload=0, pinned=True, eager=False, generic=False):
        eff = EFFICIENCY_MARLIN_GRAPHS * (1.0 / AWQ_GENERIC_PENALTY if generic else kernel_eff)
        if eager:
            eff /= EAGER_PENALTY
        return _speeds(entry, bandwidth, context, tp, offload, pcie_gbps, pinned, eff)
    return speed


def _check_tenants_elsewhere(placement, used, gpus, host, name):
    vllm_idx = [g["index"] for g in used]
    for gpu in gpus:
        if gpu["index"] in vllm_idx:
            continue
        need = sum(p["memory_gib"] for p in placement.values() if p["gpu"] == gpu["index"])
        if need and _usable(gpu, host) - host["reserve"] < need:
            raise PlanRefused("co-tenants of model '%s' need %.2f GiB on %s, which has %.2f GiB usable beside "
                              "other processes and the %.2f GiB reserve"
                              % (name, need, gpu["label"], _usable(gpu, host) - host["reserve"], host["reserve"]))


def _gpu_plan(entry, gpus, wsl, feats, requested, o):
    host = _host(gpus, wsl, o["running"], o["previous"], o["replan_tolerance_mib"], o["wsl_cuda_context_gib"],
                 o["gpu_reserve_gib"], o["util"])
    try:
        return _gpu_plan_on(entry, gpus, wsl, feats, requested, o, host)
    except PlanRefused as exc:
        if not host["notes"]:
            raise
        raise PlanRefused("%s. %s" % ("; ".join(host["notes"]), exc), exc.plan)


def _gpu_plan_on(entry, gpus, wsl, feats, requested, o, host):
    name = entry["_name"]
    used, tp = _pick_gpus(entry, gpus, host, feats, o["util"], o["max_num_seqs"])
    placement, on_gpu = _place_tenants(o["co_tenants"], used, gpus, host)
    _check_tenants_elsewhere(placement, used, gpus, host, name)
    cc = min((g["cc"] for g in used), key=lambda c: c if c is not None else -1)
    desc = _label(used[0], cc) if tp == 1 else "%d x %s" % (tp, _label(used[0], cc))
    quant, kernel_eff, warnings = choose_quantization(entry, cc, feats, desc)
    warnings = list(feats["warnings"]) + warnings
    fp8_ok, fp8_why = vllm_releases.fp8_kv_support(feats["version"], cc)
    if o["kv_cache_dtype"] != "auto" and not fp8_ok:
        raise PlanRefused("model '%s' on %s: kv_cache_dtype %s is not possible: %s. Use kv_cache_dtype auto"
                          % (name, desc, o["kv_cache_dtype"], fp8_why))
    slices, binding, util = _slices(entry, used, host, feats, tp, o["max_num_seqs"], on_gpu, o["kv_cache_dtype"],
                                    o["util"], _target(entry, requested))
    bandwidth = used[0]["bandwidth_gbps"]
    if not bandwidth:
        warnings.append("memory bandwidth of %s unknown (gpu_catalog.py): no speed prediction" % desc)
    base_env, env_why = _engine_env(feats, wsl)
    ctx = _context(entry, binding, util, requested, o["util"], tp, host, base_env,
                   _speed_fn(entry, bandwidth, tp, o["pcie_gbps"], kernel_eff), desc)
    options = _options(ctx, entry, feats, wsl, quant, env_why)
    if binding.tenants and ctx["target"] > ctx["fit"] and requested != "auto":
        choices = _conflict_choices(ctx, entry, gpus, host, placement, fp8_ok)
        raise PlanRefused(
            "model '%s' at %d tokens and its co-tenants (%s, %.2f GiB) do not both fit on %s: beside them vLLM %s "
            "gets utilization %.2f and %.2f GiB of KV cache, %d tokens (%.2f GiB needed). Starting both would "
            "let one of them die. Choices: %s" % (
                name, ctx["target"], ", ".join(n for n, p in sorted(placement.items()) if p["gpu"] ==
                                               binding.gpu["index"]), binding.tenants, desc, feats["version"], util,
                binding.kv_gib(util), ctx["fit"], binding.need_gib(ctx["target"]), _choices_text(choices)),
            {"options": options, "choices": choices, "co_tenant_placement": placement})
    chosen, explanation = _choose(ctx, options, entry, requested, o["min_tps"], o["allow_offload"])
    _check_speed(chosen, options, entry, desc, o["min_tps"])
    _mark(options, chosen, feats["version"])
    explanation = host["notes"] + _util_why(binding, util, o["util"]) + explanation
    result = _assemble(entry, feats, ctx, chosen, options, requested, o, warnings, explanation)
    # Kept out of the explanation: a re-run that changes nothing must produce the same plan document.
    result["replan"] = {"stable": bool(host["stable"]), "note": (
        "other processes within %d MiB of the previous plan on every GPU: planned with the previous figures, "
        "the launch is unchanged" % o["replan_tolerance_mib"]) if host["stable"] else None}
    result.update({"gpus": [g["index"] for g in used], "gpu": desc, "gpu_memory_utilization": util,
                   "co_tenant_placement": dict((n, dict((k, v) for k, v in p.items() if k != "auto"))
                                               for n, p in placement.items()),
                   "ledger": _ledgers(slices, gpus, host, util, placement, chosen["enforce_eager"]),
                   "report": _report(entry, binding, fp8_ok, fp8_why, feats["version"]),
                   "memory": binding.to_dict(util)})
    result["remember"] = _remember(host, gpus, slices, util, chosen, placement,
                                   result.pop("_kv_bytes"), o["kv_cache_dtype"], feats)
    for n, p in sorted(placement.items()):
        if p["auto"] and p["gpu"] not in result["gpus"] and p["gpu"] is not None:
            result["explanation"].append("%s placed on GPU %s (%.2f GiB), away from vLLM"
                                         % (n, p["gpu"], p["memory_gib"]))
    return result


def _assemble(entry, feats, ctx, chosen, options, requested, o, warnings, explanation):
    context, fit, b = chosen["max_model_len"], ctx["fit"], ctx["binding"]
    if requested is None and entry["default_context"] > fit and chosen["key"] == "C":
        warnings.append("default_context %d of model '%s' does not fit on %s; planned %d, the largest that fits"
                        % (entry["default_context"], entry["_name"], ctx["desc"], fit))
    max_len_arg = str(context)
    if requested == "auto" and chosen["key"] == "C":
        if feats["max_model_len_auto"]:
            max_len_arg = "auto"
            explanation.append("--max-model-len auto (vLLM >= 0.14 fits it itself); planner estimate %d" % fit)
        else:
            explanation.append("max_model_len auto requested, vLLM %s has no 'auto' (0.14+): planned %d"
                               % (feats["version"], fit))
    args, kv_bytes = _args(entry, chosen, feats, ctx, max_len_arg, o["kv_cache_dtype"])
    if kv_bytes:
        explanation.append("--kv-cache-memory-bytes %d (%.2f GiB): the KV size no longer depends on vLLM's own "
                           "CUDA graph estimate (%s)"
                           % (kv_bytes, kv_bytes / float(GIB), vllm_releases.SOURCES["kv_cache_memory_bytes_flag"]))
    else:
        explanation.append("vLLM %s has no --kv-cache-memory-bytes (0.10.2+): the KV size follows "
                           "gpu_memory_utilization" % feats["version"] if not feats["kv_cache_memory_bytes_flag"]
                           else "CPU offload: the KV size follows gpu_memory_utilization")
    if entry.get("reasoning_parser"):
        rargs, rwarn = vllm_releases.reasoning_args(entry["reasoning_parser"], feats["version"])
        args += rargs
        warnings += rwarn
    env = dict(ctx["base_env"])
    env.update(chosen["env"])
    explanation += list(chosen["why"][1:])
    if ctx["tp"] > 1:
        explanation.append("tensor parallel over %d GPUs: one GPU cannot hold the weights" % ctx["tp"])
    if b.legacy and b.tenants:
        warnings.append("vLLM %s counts every byte on the GPU at its start: restart vLLM only while the "
                        "co-tenants are stopped (site.yml order), or its KV cache shrinks by their %.2f GiB"
                        % (feats["version"], b.tenants))
    if chosen["quantization"] == "awq_marlin" and feats["auto_awq_alias"]:
        explanation.append("vLLM %s maps awq_marlin to AutoAWQ, which picks the Marlin kernel" % feats["version"])
    explanation.append("decode: ceiling %s tok/s at the full context %d (bandwidth bound), expected about %s tok/s "
                       "at a %d-token conversation, %s tok/s when the context is full"
                       % (chosen["ceiling_tokens_per_second"], context, chosen["expected_tokens_per_second"],
                          min(context, TYPICAL_CONTEXT), chosen["expected_tokens_per_second_full_context"]))
    return {
        "model": entry["_name"], "device": "cuda", "vllm_version": feats["version"],
        "quantization": chosen["quantization"], "max_model_len": context, "max_model_len_estimate": fit,
        "max_model_len_arg": max_len_arg, "kv_cache_dtype": o["kv_cache_dtype"],
        "cpu_offload_gb": chosen["cpu_offload_gb"], "enforce_eager": chosen["enforce_eager"],
        "tensor_parallel_size": ctx["tp"], "engine": chosen["engine"], "option": chosen["key"],
        "args": args, "env": env, "_kv_bytes": kv_bytes,
        "ceiling_tokens_per_second": chosen["ceiling_tokens_per_second"],
        "expected_tokens_per_second": chosen["expected_tokens_per_second"],
        "expected_tokens_per_second_full_context": chosen["expected_tokens_per_second_full_context"],
        "predicted_tokens_per_second": chosen["ceiling_tokens_per_second"],
        "typical_context": min(context, TYPICAL_CONTEXT),
        "min_tokens_per_second": o["min_tps"],
        "options": options, "explanation": explanation, "warnings": warnings,
    }


def _label(gpu, cc):
    return "GPU %s (%s, %d MiB, %s)" % (gpu["index"], gpu["name"], int(gpu["total_mib"]), _cc_str(cc))


def gpu_label(gpu):
    """Label of a raw gpu_facts dict (kept for callers)."""
    norm = gl.validate_gpu(gpu)
    return _label(norm, norm["cc"])


def _opt_summary(opt):
    if not opt["feasible"]:
        return "not possible (%s)" % "; ".join(opt["why"][-1:])
    return "%s tok/s expected (ceiling %s) at %d tokens, offload %d GiB%s" % (
        opt["expected_tokens_per_second"], opt["ceiling_tokens_per_second"], opt["max_model_len"],
        opt["cpu_offload_gb"], ", eager" if opt["enforce_eager"] else "")


def options_table(result):
    """Text table of the options, for the role's debug output."""
    rows = ["opt  quant       ctx     offload eager  ceiling  expected  verdict"]
    for o in result.get("options", []):
        rows.append("%-4s %-11s %-7s %-7s %-6s %-8s %-9s %s" % (
            o["key"], o["quantization"], o["max_model_len"], o["cpu_offload_gb"], o["enforce_eager"],
            o["ceiling_tokens_per_second"], o["expected_tokens_per_second"], o["why"][0] if o["why"] else ""))
    return rows
