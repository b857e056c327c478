# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The vLLM stand-in's start-up rule (molecule/gaming_twin/twin/images/vllm-openai/twin_vllm.py),
pure Python: vLLM 0.32.0's request_memory check (vllm/v1/worker/utils.py:716-772) on the twin
GPU's figures, what it then holds, and how the GPU arguments become CPU ones. The parse with
vLLM's own parser and the real serving are exercised in the image (twin.sh, the scenario)."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "twin_vllm", REPO / "molecule/gaming_twin/twin/images/vllm-openai/twin_vllm.py")
tv = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tv)


def gpu(free_mib, total_mib=24576):
    return [{"index": 0, "cuda_total_mib": total_mib, "cuda_free_mib": free_mib}]


def ns(util=0.9, kv=None, model="Qwen/Qwen3-32B-AWQ", tp=1, max_len=7936, served=None):
    return SimpleNamespace(gpu_memory_utilization=util, kv_cache_memory_bytes=kv, model=model,
                           tensor_parallel_size=tp, max_model_len=max_len, served_model_name=served)


def test_desktop_1536_passes_at_0_9_and_holds_the_requested_memory():
    free, total, requested, held, _ = tv.memory_check(ns(), gpu(24576 - 1536))
    assert requested == -(-24576 * 2**20 * 9 // 10)  # ceil(total x 0.9), utils.py:724
    assert held == 22119  # MiB, ceil


def test_desktop_4608_is_refused_with_vllms_message():
    with pytest.raises(ValueError) as err:
        tv.memory_check(ns(), gpu(24576 - 4608))
    assert str(err.value) == (
        "Free memory on device cuda:0 (19.5/24.0 GiB) on startup is less than desired GPU memory "
        "utilization (0.9, 21.6 GiB). Decrease GPU memory utilization or reduce GPU memory used by "
        "other processes.")


def test_a_second_vllm_beside_the_first_is_refused():
    with pytest.raises(ValueError, match=r"\(0\.9/24\.0 GiB\) on startup is less than"):
        tv.memory_check(ns(), gpu(24576 - 1536 - 22119))


def test_kv_cache_memory_bytes_holds_weights_plus_kv_plus_runtime():
    kv = 2094006272
    _, _, _, held, how = tv.memory_check(ns(util=0.86, kv=kv), gpu(24576 - 1536))
    assert held == -(-(19323000000 + kv + tv.RUNTIME_OVERHEAD_MIB * 2**20) // 2**20)
    assert "kv_cache_memory_bytes" in how


def test_kv_cache_memory_bytes_that_do_not_fit_beside_the_weights_are_an_oom():
    # passes the utilization check (0.5 x 24 GiB = 12 GiB free enough) but weights 18 GiB + 8 GiB KV do not fit
    with pytest.raises(MemoryError, match="CUDA out of memory"):
        tv.memory_check(ns(util=0.5, kv=8 * 2**30), gpu(23040))


def test_no_gpu_and_too_many_gpus_are_refused():
    with pytest.raises(RuntimeError, match="Failed to infer device type"):
        tv.memory_check(ns(), [])
    with pytest.raises(ValueError, match=r"World size \(2\) is larger than the number of available GPUs \(1\)"):
        tv.memory_check(ns(tp=2), gpu(23040))


def test_gpu_flags_are_dropped_and_the_cpu_profile_added():
    args = ["--model", "Qwen/Qwen3-32B-AWQ", "--served-model-name", "qwen3-32b-awq", "--quantization", "awq_marlin",
            "--dtype", "float16", "--max-model-len", "7936", "--gpu-memory-utilization", "0.86",
            "--kv-cache-memory-bytes", "2094006272", "--reasoning-parser", "qwen3", "--max-num-seqs", "16",
            "--host", "0.0.0.0", "--port", "8000"]
    out, dropped = tv.cpu_args(args, ns(served=["qwen3-32b-awq"]))
    assert out == ["--model", tv.TINY_MODEL, "--dtype", "float32", "--enforce-eager", "--max-model-len", "7936",
                   "--served-model-name", "qwen3-32b-awq", "--max-num-seqs", "16", "--host", "0.0.0.0",
                   "--port", "8000"]
    assert "--quantization awq_marlin" in dropped and "--kv-cache-memory-bytes 2094006272" in dropped


def test_a_context_beyond_the_tiny_model_is_capped_and_the_name_kept():
    out, _ = tv.cpu_args(["--model", "Qwen/Qwen3-32B-AWQ", "--max-model-len=40960"], ns(max_len=40960))
    assert out[out.index("--max-model-len") + 1] == str(tv.TINY_MAX_LEN)
    assert out[out.index("--served-model-name") + 1] == "Qwen/Qwen3-32B-AWQ"
