# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU ledger's inputs: validated GPU facts, CUDA totals, co-tenant footprints, 'others'."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import gpu_ledger as gl

# The recorded WSL2 RTX 3090 (fixtures/nvidia_smi/wsl2_rtx3090_537.13.query.csv, GPU 0).
RTX3090 = {"index": 0, "name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576, "memory_free_mib": 24523,
           "memory_used_mib": 53, "compute_capability": "8.6", "memory_bandwidth_gbps": 936}

BAD_GPUS = [
    # field changed, value, words the error must contain
    ("memory_total_mib", float("nan"), "memory_total_mib must be a finite number"),
    ("memory_total_mib", float("inf"), "memory_total_mib must be a finite number"),
    ("memory_total_mib", "24576", "memory_total_mib must be a number"),
    ("memory_total_mib", None, "memory_total_mib is missing"),
    ("memory_total_mib", 0, "memory_total_mib must be positive"),
    ("memory_free_mib", float("nan"), "memory_free_mib must be a finite number"),
    ("memory_free_mib", -1, "memory_free_mib must be >= 0"),
    ("memory_free_mib", 30000, "memory_free_mib 30000 is above memory_total_mib"),
    ("compute_capability", "eight", "compute_capability must look like"),
    ("index", "0", "index must be a non-negative integer"),
]


@pytest.mark.parametrize("field,value,words", BAD_GPUS)
def test_bad_gpu_facts_name_gpu_and_field(field, value, words):
    gpu = dict(RTX3090)
    gpu[field] = value
    with pytest.raises(gl.GpuFactsError) as err:
        gl.validate_gpu(gpu)
    assert words in str(err.value)
    assert "RTX 3090" in str(err.value)


def test_missing_memory_key_is_named():
    gpu = dict(RTX3090)
    del gpu["memory_total_mib"]
    with pytest.raises(gl.GpuFactsError, match="GPU 0 .*memory_total_mib is missing"):
        gl.validate_gpu(gpu)


@pytest.mark.parametrize("cc,expected", [("8.6", 86), (8.6, 86), ("86", 86), (8, 80), ("N/A", None),
                                         ("[N/A]", None), (None, None), ("", None), ("9.0", 90)])
def test_compute_capability_forms(cc, expected):
    """nvidia-smi prints '[N/A]' / 'N/A' for fields it cannot query (WSL2 often): unknown, not an error."""
    assert gl.cc_int(cc) == expected


def test_free_memory_from_used_when_free_missing():
    gpu = gl.validate_gpu(dict(RTX3090, memory_free_mib=None, memory_used_mib=1536))
    assert gpu["free_mib"] == 24576 - 1536
    assert gl.used_gib(gpu) == 1.5
    assert gl.used_gib(gl.validate_gpu(dict(RTX3090, memory_free_mib=None, memory_used_mib=None))) == 0.0


def test_cuda_total_linux_vs_wsl2():
    """Linux: PyTorch reports '23.70 GiB total capacity' for a 3090 (nvidia-smi 24576 MiB); WSL2 (WDDM): 24.00."""
    gpu = gl.validate_gpu(RTX3090)
    assert round(gl.cuda_total_gib(gpu, is_wsl=False), 2) == 23.70
    assert gl.cuda_total_gib(gpu, is_wsl=True) == 24.0


def test_sd15_fp16_footprint_is_an_estimate_with_its_parts():
    tenant = gl.validate_co_tenant({"name": "image_server", "pipeline": "stable-diffusion-1.5", "dtype": "float16",
                                    "width": 512, "height": 512}, 0)
    gib, what = gl.co_tenant_gib(tenant, is_wsl=True, wsl_ctx=1.3)
    linux = gl.co_tenant_gib(tenant, is_wsl=False, wsl_ctx=1.3)[0]
    fp32 = gl.co_tenant_gib(dict(tenant, dtype="float32"), is_wsl=False, wsl_ctx=1.3)[0]
    big = gl.co_tenant_gib(dict(tenant, width=1024, height=1024), is_wsl=False, wsl_ctx=1.3)[0]
    assert round(gib, 2) == round(1.99 + 1.0 + 1.3, 2)
    assert what.startswith("ESTIMATE") and "stable-diffusion-1.5" in what
    assert round(linux, 2) == round(1.99 + 1.0 + gl.LINUX_CUDA_CONTEXT_GIB, 2)
    assert fp32 > linux + 1.9
    assert round(big - linux, 2) == 3.0     # activations scale with pixels


def test_explicit_memory_wins_and_cpu_needs_nothing():
    tenant = gl.validate_co_tenant({"name": "image_server", "memory_gib": 3.5}, 0)
    assert gl.co_tenant_gib(tenant, True, 1.3)[0] == 3.5
    cpu = gl.validate_co_tenant({"name": "image_server", "device": "cpu"}, 0)
    assert cpu["device"] == "cpu" and cpu["memory_gib"] is None


@pytest.mark.parametrize("item,words", [
    ({}, "needs a name"),
    ({"name": "x", "device": "tpu", "memory_gib": 1}, "device must be cuda or cpu"),
    ({"name": "x", "memory_gib": float("nan")}, "memory_gib must be a finite number"),
    ({"name": "x", "memory_gib": "3"}, "memory_gib must be a number"),
    ({"name": "x", "pipeline": "flux"}, "pipeline 'flux' is not in gpu_ledger.PIPELINES"),
    ({"name": "x"}, "give memory_gib or a pipeline"),
    ({"name": "x", "memory_gib": 1, "gpu": -1}, "gpu must be a GPU index or null"),
    ({"name": "x", "pipeline": "sdxl", "width": 0}, "width must be positive"),
])
def test_bad_co_tenants(item, words):
    with pytest.raises(gl.GpuFactsError) as err:
        gl.validate_co_tenant(item, 0)
    assert words in str(err.value) and "co_tenants[0]" in str(err.value)


def _busy(used_mib):
    return gl.validate_gpu(dict(RTX3090, memory_free_mib=24576 - used_mib))


def test_others_subtracts_the_stacks_own_running_members():
    previous = {"others_gib": {"0": 1.5}, "stack": {"0": {"vllm": 18.0}}}
    gib, stable, note = gl.others_gib(_busy(int(19.5 * 1024)), ["vllm"], previous, 512)
    assert (gib, stable, note) == (1.5, True, None)


def test_others_within_tolerance_keeps_previous_figure():
    previous = {"others_gib": {"0": 1.5}, "stack": {"0": {"vllm": 18.0}}}
    gib, stable = gl.others_gib(_busy(int(19.8 * 1024)), ["vllm"], previous, 512)[:2]
    assert gib == 1.5 and stable


def test_others_beyond_tolerance_says_what_changed():
    previous = {"others_gib": {"0": 1.5}, "stack": {"0": {"vllm": 18.0}}}
    gib, stable, note = gl.others_gib(_busy(int(22.5 * 1024)), ["vllm"], previous, 512)
    assert round(gib, 1) == 4.5 and not stable
    assert note == ("other processes now hold 4.5 GiB on GPU 0, 3.0 GiB more than at the last plan (1.5 GiB)")


def test_running_member_without_previous_is_flagged():
    gib, stable, note = gl.others_gib(_busy(20480), ["vllm"], {}, 512)
    assert gib == 20.0 and not stable and "vllm running without a previous plan" in note
    assert "counted as other processes" in note


def test_running_vllm_without_previous_is_estimated():
    gib, stable, note = gl.others_gib(_busy(20480), ["vllm"], {}, 512, {"vllm": 19.0})
    assert gib == 1.0 and not stable and "estimated at 19.00 GiB" in note
    # an estimate larger than what the GPU holds cannot be vLLM on this GPU
    assert gl.others_gib(_busy(1024), ["vllm"], {}, 512, {"vllm": 19.0})[0] == 1.0


def test_member_on_another_gpu_or_cpu_is_not_unknown():
    """The image server on the CPU holds nothing on any GPU: 'members' says the plan knows it."""
    previous = {"others_gib": {"1": 0.0}, "stack": {"0": {"vllm": 18.0}}, "members": ["image_server", "vllm"]}
    gpu1 = gl.validate_gpu(dict(RTX3090, index=1, memory_free_mib=24576))
    assert gl.others_gib(gpu1, ["vllm", "image_server"], previous, 512) == (0.0, True, None)
