# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release matrix: every boundary as read in vLLM's source (see vllm_releases.py docstring)."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import vllm_releases as vr

BOUNDARIES = [
    # feature, last release without/with, first release with the other value
    ("v0_engine", "0.10.2", "0.11.0", True),
    ("use_v1_env_honoured", "0.10.2", "0.11.0", True),
    ("enable_reasoning_flag", "0.9.2", "0.10.0", True),
    ("enable_reasoning_required", "0.8.5", "0.9.0", True),
    ("reasoning_parser_qwen3", "0.8.5", "0.9.0", False),
    ("max_model_len_auto", "0.13.0", "0.14.0", False),
    ("auto_awq_alias", "0.23.0", "0.24.0", False),
    ("v1_offload_asserts_uva", "0.16.0", "0.17.0", True),
    ("mrv2_without_offloader", "0.27.0", "0.28.0", True),
    ("mrv2_requires_uva", "0.29.0", "0.30.0", True),
    ("wsl2_pin_memory_env", "0.23.0", "0.24.0", False),
    ("cudagraph_memory_in_kv_budget", "0.19.0", "0.20.0", False),
    # vllm/v1/worker/gpu_worker.py determine_available_memory (0.8.5-0.9.0.1) vs init_device snapshot (0.9.1)
    ("other_processes_in_kv_budget", "0.9.0", "0.9.1", True),
    ("startup_free_memory_check", "0.9.0", "0.9.1", False),
    # vllm/engine/arg_utils.py --kv-cache-memory-bytes: absent in 0.10.1.1, present in 0.10.2
    ("kv_cache_memory_bytes_flag", "0.10.1", "0.10.2", False),
    # config.py cuda_graph_sizes default min(max_num_seqs * 2, 512) from 0.10.0
    ("cudagraph_sizes_capped_by_seqs", "0.9.2", "0.10.0", False),
    # v1/sample/ops/topk_topp_triton.py appears in 0.17.0
    ("triton_sampler", "0.16.0", "0.17.0", False),
]


@pytest.mark.parametrize("feature,before,after,held_before", BOUNDARIES)
def test_boundaries(feature, before, after, held_before):
    assert vr.has(feature, before) is held_before
    assert vr.has(feature, after) is (not held_before)


@pytest.mark.parametrize("version,marlin", [("0.8.5", 80), ("0.13.0", 80), ("0.14.0", 75), ("0.32.0", 75)])
def test_marlin_min_capability(version, marlin):
    feats = vr.features(version)
    assert feats["awq_marlin_min_cc"] == marlin
    assert feats["awq_min_cc"] == 75


@pytest.mark.parametrize("text,parsed", [("0.8.5", (0, 8, 5)), ("v0.10.1.1", (0, 10, 1)),
                                         ("0.11.0.post2", (0, 11, 0)), ("0.32.0+cpu", (0, 32, 0)),
                                         ("0.9", (0, 9, 0))])
def test_parse_version(text, parsed):
    assert vr.parse_version(text) == parsed


def test_too_old_and_garbage_refused():
    with pytest.raises(vr.UnsupportedRelease, match="oldest release in the matrix"):
        vr.features("0.7.3")
    with pytest.raises(vr.UnsupportedRelease, match="not a release number"):
        vr.features("latest")


def test_newer_than_read_warns():
    assert vr.features("0.33.0")["warnings"]
    assert not vr.features("0.32.0")["warnings"]


def test_reasoning_args_per_release():
    # 0.8.5: no qwen3 parser; deepseek_r1 is NOT substituted (deepseek_r1_reasoning_parser.py 0.8.5 L162-163
    # returns the whole output as reasoning when </think> is absent, i.e. whenever Qwen3's thinking is off)
    args, warnings = vr.reasoning_args("qwen3", "0.8.5")
    assert args == []
    assert "deepseek_r1 is not substituted" in warnings[0] and "reasoning_content" in warnings[0]
    assert vr.reasoning_args("deepseek_r1", "0.8.5")[0] == ["--enable-reasoning", "--reasoning-parser", "deepseek_r1"]
    assert vr.reasoning_args("qwen3", "0.9.2")[0] == ["--reasoning-parser", "qwen3"]
    assert vr.reasoning_args("qwen3", "0.32.0") == (["--reasoning-parser", "qwen3"], [])
    assert vr.reasoning_args("", "0.32.0") == ([], [])


def test_image_for():
    assert vr.image_for("0.32.0") == "vllm/vllm-openai:v0.32.0"
    assert vr.image_for("0.32.0", cpu=True) == "homelab/vllm-cpu:0.32.0"


def test_reasoning_parsers_report():
    assert "absent" in vr.reasoning_parsers("0.8.5")["qwen3"]
    assert "everything" in vr.reasoning_parsers("0.8.5")["deepseek_r1"] or "whole answer" in \
        vr.reasoning_parsers("0.8.5")["deepseek_r1"]
    assert vr.reasoning_parsers("0.9.0")["qwen3"].startswith("works")
    assert "enable_thinking" in vr.reasoning_parsers("0.32.0")["qwen3"]


# engine/arg_utils.py default_max_num_batched_tokens / default_max_num_seqs (OpenAI server)
SCHEDULER = [
    ("0.8.5", 24.0, "NVIDIA GeForce RTX 3090", (2048, 256)),
    ("0.8.5", 79.2, "NVIDIA A100 80GB PCIe", (8192, 1024)),      # no A100 exclusion before 0.9.0
    ("0.9.0", 79.2, "NVIDIA A100 80GB PCIe", (2048, 256)),       # "NOTE(Kuntai) ... A100 reduces throughput"
    ("0.32.0", 79.1, "NVIDIA H100 80GB HBM3", (8192, 1024)),
    ("0.32.0", 178.0, "NVIDIA B200", (16384, 1024)),             # 160 GiB tier, 0.32.0 L2923
    ("0.24.0", 178.0, "NVIDIA B200", (8192, 1024)),
    ("0.32.0", 23.7, "NVIDIA GeForce RTX 3090", (2048, 256)),
]


@pytest.mark.parametrize("version,gib,name,expected", SCHEDULER)
def test_scheduler_defaults(version, gib, name, expected):
    assert vr.scheduler_defaults(version, gib, name) == expected


# config.py / config/vllm.py capture sizes (research notes section 4)
CAPTURE = [
    ("0.8.5", 256, 67, 512), ("0.8.5", 16, 67, 512), ("0.9.2", 16, 67, 512),   # up to 512 whatever max_num_seqs
    ("0.10.0", 16, 7, 32), ("0.11.0", 256, 67, 512),                            # min(2 x seqs, 512), step 8
    ("0.12.0", 256, 51, 512), ("0.32.0", 256, 51, 512), ("0.32.0", 16, 7, 32),  # step 16 from 256
]


@pytest.mark.parametrize("version,seqs,count,largest", CAPTURE)
def test_cudagraph_capture_sizes(version, seqs, count, largest):
    sizes = vr.cudagraph_capture_sizes(version, seqs)
    assert len(sizes) == count and max(sizes) == largest and sizes[:3] == [1, 2, 4]


def test_sampler_bytes_per_element():
    """topk_topp_sampler.py sort path ~28 B/element until 0.16; in-place Triton kernel ~14 B from 0.17.0."""
    assert vr.sampler_bytes_per_element("0.8.5") == 28
    assert vr.sampler_bytes_per_element("0.16.0") == 28
    assert vr.sampler_bytes_per_element("0.17.0") == 14


# fp8 KV cache per release and compute capability (research notes section 5, sources in vllm_releases.py)
FP8 = [
    ("0.8.5", 86, False, "falls back to V0"),
    ("0.10.2", 86, False, "falls back to V0"),
    ("0.11.0", 86, False, "fails to compile"),          # TRITON_ATTN fp8e4nv on sm_86, vllm issue #26431
    ("0.12.0", 86, True, "FlashInfer"),
    ("0.32.0", 86, True, "FlashInfer"),
    ("0.8.5", 89, False, "falls back to V0"),
    ("0.11.0", 89, True, "Triton"),
    ("0.8.5", 90, True, "FlashAttention 3"),
    ("0.32.0", 75, False, "below sm_80"),
    ("0.32.0", None, False, "unknown"),
]


@pytest.mark.parametrize("version,cc,ok,words", FP8)
def test_fp8_kv_support(version, cc, ok, words):
    supported, why = vr.fp8_kv_support(version, cc)
    assert supported is ok and words in why
