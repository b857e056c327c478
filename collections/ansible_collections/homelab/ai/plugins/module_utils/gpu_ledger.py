# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole-GPU ledger: validated GPU facts, CUDA totals, co-tenant footprints, "others".

Everything here is an input to the planner's arithmetic that is NOT a vLLM rule (those live in
vllm_releases.py). Figures marked ESTIMATE are not measured by this project; each says where it
comes from.

GiB = 2**30 bytes throughout.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

GIB = 1024 ** 3
MIB = 1024 ** 2

# CUDA total vs nvidia-smi total. vLLM sizes everything from torch.cuda.mem_get_info()'s total
# (vllm_releases.SOURCES["cuda_total"]). On native Linux the driver keeps part of the card:
# PyTorch's OOM message on an RTX 3090 reads "23.70 GiB total capacity" against nvidia-smi's
# 24576 MiB (24.00 GiB), a factor of 0.9875 (public PyTorch/vLLM issue reports; ESTIMATE for
# other cards, which lose a similar 1-1.5 %).
# WSL2: CUDA goes through the Windows WDDM driver, which reports the full size as total and
# shows its own reservation as used memory instead; PyTorch on Windows reports "24.00 GiB total
# capacity" for the same card. ASSUMPTION for WSL2 (the CUDA-on-WSL user guide does not state
# it): total = nvidia-smi total; the driver/desktop share then appears in memory_used_mib, which
# the ledger counts under "other processes". WSL2's nvidia-smi often lists no processes at all, so
# "others" is never summed from a process list: it is memory.used minus what the previous plan
# predicted for each running member of the stack (others_gib).
LINUX_CUDA_TOTAL_FRACTION = 23.70 / 24.00

# vLLM's own process outside torch's allocator. ESTIMATES:
# - CUDA context: ~0.3 GiB on Ampere under Linux (CUDA context + cuBLAS handles, as vLLM's
#   "non-torch memory" log line shows on a fresh start);
# - WSL2: about 1.3 GiB seen on WSL2 before vLLM's profiler runs (the lead's measurement on the
#   record's host), configurable as wsl_cuda_context_gib; it replaces the Linux figure;
# - workspaces created after vLLM's start-up snapshot (Marlin/cuBLAS workspaces, sampler
#   buffers): 0.2 GiB.
LINUX_CUDA_CONTEXT_GIB = 0.3
DEFAULT_WSL_CUDA_CONTEXT_GIB = 1.3
WORKSPACE_GIB = 0.2
DEFAULT_GPU_RESERVE_GIB = 0.5

# Image-server pipelines: fp16 weight sizes in GiB (ESTIMATES from the public checkpoints) and
# activation peak at the pipeline's native resolution (ESTIMATES: diffusers with SDPA attention,
# batch 1, one image; scaled linearly with pixel count).
# - stable-diffusion-1.5: runwayml/stable-diffusion-v1-5 fp16 variant: UNet 1.72 GB + text
#   encoder 0.25 GB + VAE 0.17 GB = 2.14 GB = 1.99 GiB; ~1.0 GiB peak at 512x512 (diffusers
#   memory docs: ~3 GB total in fp16 at 512x512 with SDPA).
# - sdxl: stabilityai/stable-diffusion-xl-base-1.0 fp16: UNet 5.14 GB + text encoders 1.63 GB +
#   VAE 0.17 GB = 6.94 GB = 6.46 GiB; ~2.5 GiB peak at 1024x1024 (VAE decode dominates).
PIPELINES = {
    "stable-diffusion-1.5": {"weights_gib_fp16": 1.99, "activation_gib": 1.0, "native": (512, 512)},
    "sdxl": {"weights_gib_fp16": 6.46, "activation_gib": 2.5, "native": (1024, 1024)},
}
PIPELINE_ALIASES = {"sd15": "stable-diffusion-1.5", "sd-1.5": "stable-diffusion-1.5",
                    "stable-diffusion-v1-5": "stable-diffusion-1.5", "sdxl-base-1.0": "sdxl"}
DTYPE_FACTOR = {"float16": 1.0, "fp16": 1.0, "bfloat16": 1.0, "bf16": 1.0, "float32": 2.0, "fp32": 2.0}


class GpuFactsError(ValueError):
    """A GPU fact or planner input is missing or malformed; the message names GPU and field."""


class GpuSaturated(GpuFactsError):
    """Other processes grew while the stack serves and the GPU is full: no safe re-plan."""


def _number(value, where, field, positive=True, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GpuFactsError("%s: %s must be a number, got %r" % (where, field, value))
    if math.isnan(value) or math.isinf(value):
        raise GpuFactsError("%s: %s must be a finite number, got %r" % (where, field, value))
    if value < 0 or (positive and value == 0):
        raise GpuFactsError("%s: %s must be %s, got %r" % (where, field, "positive" if positive else ">= 0", value))
    return float(value)


def cc_int(cc, where="GPU"):
    """'8.6' / 8.6 / '86' / 86 -> 86; None, '', 'N/A', '[N/A]' -> None (unknown)."""
    if cc is None:
        return None
    text = str(cc).strip().strip("[]")
    if text in ("", "N/A", "n/a", "unknown", "None"):
        return None
    try:
        if "." in text:
            major, minor = text.split(".", 1)
            return int(major) * 10 + int(minor[:1] or 0)
        value = int(text)
    except ValueError:
        raise GpuFactsError("%s: compute_capability must look like '8.6', got %r" % (where, cc))
    return value if value >= 10 else value * 10


def validate_gpu(gpu):
    """gpu_facts dict -> normalised dict; GpuFactsError naming the GPU and the field."""
    if not isinstance(gpu, dict):
        raise GpuFactsError("gpus: each GPU must be a dict as gpu_facts returns it, got %r" % (gpu,))
    where = "GPU %s (%s)" % (gpu.get("index", "?"), gpu.get("name", "unknown"))
    index = gpu.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise GpuFactsError("%s: index must be a non-negative integer, got %r" % (where, index))
    if "memory_total_mib" not in gpu or gpu.get("memory_total_mib") is None:
        raise GpuFactsError("%s: memory_total_mib is missing" % where)
    total = _number(gpu["memory_total_mib"], where, "memory_total_mib")
    free = _number(gpu.get("memory_free_mib"), where, "memory_free_mib", positive=False, allow_none=True)
    used = _number(gpu.get("memory_used_mib"), where, "memory_used_mib", positive=False, allow_none=True)
    if free is not None and free > total:
        raise GpuFactsError("%s: memory_free_mib %g is above memory_total_mib %g" % (where, free, total))
    if free is None:
        free = total - used if used is not None else None
    bandwidth = gpu.get("memory_bandwidth_gbps")
    bandwidth = _number(bandwidth, where, "memory_bandwidth_gbps", allow_none=True) if bandwidth else None
    return {"index": index, "name": str(gpu.get("name") or "unknown"), "total_mib": total, "free_mib": free,
            "cc": cc_int(gpu.get("compute_capability"), where), "bandwidth_gbps": bandwidth,
            "label": "GPU %d (%s, %d MiB)" % (index, gpu.get("name") or "unknown", int(total))}


def cuda_total_gib(gpu, is_wsl):
    """What torch.cuda.mem_get_info() reports as total (see LINUX_CUDA_TOTAL_FRACTION)."""
    smi = gpu["total_mib"] * MIB / GIB
    return smi if is_wsl else smi * LINUX_CUDA_TOTAL_FRACTION


def used_gib(gpu):
    """Device memory in use now (nvidia-smi total - free), 0 when free is unknown."""
    if gpu["free_mib"] is None:
        return 0.0
    return max(0.0, (gpu["total_mib"] - gpu["free_mib"]) * MIB / GIB)


def process_context_gib(is_wsl, wsl_ctx):
    return float(wsl_ctx) if is_wsl else LINUX_CUDA_CONTEXT_GIB


def validate_co_tenant(item, position):
    """A co_tenants element -> normalised dict, or GpuFactsError naming the field."""
    where = "co_tenants[%d]" % position
    if not isinstance(item, dict) or not item.get("name"):
        raise GpuFactsError("%s: each co-tenant needs a name (e.g. image_server), got %r" % (where, item))
    where = "co_tenants[%d] (%s)" % (position, item["name"])
    device = item.get("device") or "cuda"
    if device not in ("cuda", "cpu"):
        raise GpuFactsError("%s: device must be cuda or cpu, got %r" % (where, device))
    gpu = item.get("gpu")
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
        raise GpuFactsError("%s: gpu must be a GPU index or null, got %r" % (where, gpu))
    out = {"name": str(item["name"]), "device": device, "gpu": gpu, "memory_gib": None,
           "pipeline": item.get("pipeline"), "dtype": item.get("dtype") or "float16",
           "width": item.get("width"), "height": item.get("height")}
    if item.get("memory_gib") is not None:
        out["memory_gib"] = _number(item["memory_gib"], where, "memory_gib")
    elif out["pipeline"]:
        key = PIPELINE_ALIASES.get(str(out["pipeline"]).lower(), str(out["pipeline"]).lower())
        if key not in PIPELINES:
            raise GpuFactsError("%s: pipeline %r is not in gpu_ledger.PIPELINES (%s); give memory_gib instead"
                                % (where, out["pipeline"], ", ".join(sorted(PIPELINES))))
        out["pipeline"] = key
        if out["dtype"] not in DTYPE_FACTOR:
            known = ", ".join(sorted(DTYPE_FACTOR))
            raise GpuFactsError("%s: dtype must be one of %s, got %r" % (where, known, out["dtype"]))
        for field in ("width", "height"):
            if out[field] is not None:
                _number(out[field], where, field)
    elif device == "cuda":
        raise GpuFactsError("%s: give memory_gib or a pipeline (%s) to size it" % (where, ", ".join(sorted(PIPELINES))))
    return out


def co_tenant_gib(tenant, is_wsl, wsl_ctx):
    """(total GiB on its GPU, description) for a CUDA co-tenant: weights + activations + its CUDA context."""
    if tenant["memory_gib"] is not None:
        return tenant["memory_gib"], "%.2f GiB as configured (memory_gib)" % tenant["memory_gib"]
    spec = PIPELINES[tenant["pipeline"]]
    width = tenant["width"] or spec["native"][0]
    height = tenant["height"] or spec["native"][1]
    weights = spec["weights_gib_fp16"] * DTYPE_FACTOR[tenant["dtype"]]
    act = spec["activation_gib"] * DTYPE_FACTOR[tenant["dtype"]] * (width * height) / float(
        spec["native"][0] * spec["native"][1])
    ctx = process_context_gib(is_wsl, wsl_ctx)
    total = weights + act + ctx
    return total, ("ESTIMATE %s %s %dx%d: weights %.2f + activations %.2f + CUDA context %.2f GiB"
                   % (tenant["pipeline"], tenant["dtype"], width, height, weights, act, ctx))


def others_gib(gpu, running, previous, tolerance_mib, estimates=None):
    """Memory of processes outside the stack on one GPU, and a note when it moved.

    used - what the previous plan predicted each running stack member holds on this GPU. Within
    ``tolerance_mib`` of the previous plan's figure, the previous figure is returned (stable
    launch). A running member the previous plan does not know at all (no ``previous``: first run
    of this planner while the stack serves) is subtracted by ``estimates[member]`` when given and
    the GPU's used memory is at least that much, else counted as other processes; the note says
    which. Returns (gib, stable_previous_used, note or None).
    """
    key = str(gpu["index"])
    used = used_gib(gpu)
    stacks = previous.get("stack") or {}
    stack = stacks.get(key) or {}
    known = set(m for members in stacks.values() for m in (members or {})) | set(previous.get("members") or [])
    own = sum(float(stack.get(member) or 0.0) for member in running)
    notes = []
    for member in running:
        if member in known:
            continue
        guess = (estimates or {}).get(member)
        if guess is not None and used - own >= guess:
            own += guess
            notes.append("%s running without a previous plan's figure: its memory on GPU %s is estimated at "
                         "%.2f GiB (pass the previous plan's remember as previous)" % (member, key, guess))
        else:
            notes.append("GPU %s: %s running without a previous plan's figure; its memory is counted as other "
                         "processes (pass the previous plan's remember as previous)" % (key, member))
    measured = max(0.0, used - own)
    before = (previous.get("others_gib") or {}).get(key)
    if before is None:
        return measured, False, "; ".join(notes) or None
    before = float(before)
    if abs(measured - before) * GIB / MIB < tolerance_mib and not notes:
        return before, True, None
    more = measured - before
    change = ("other processes now hold %.1f GiB on GPU %s, %.1f GiB %s than at the last plan (%.1f GiB)"
              % (measured, key, abs(more), "more" if more > 0 else "less", before))
    _refuse_when_saturated(gpu, own, more, tolerance_mib, change)
    notes.insert(0, change)
    return measured, False, "; ".join(notes)


def _refuse_when_saturated(gpu, own, more, tolerance_mib, change):
    """Other processes grew while the stack serves and the card is full: the figure is a floor.

    A desktop cannot take more than what is free while vLLM holds its memory; once vLLM stops for
    a new launch, it takes the rest (seen on the gaming twin: a re-plan from the capped figure
    started a vLLM that refused, and the previous launch no longer fit either). Nothing can be
    planned safely from here, so refuse before anything is touched."""
    free_mib = gpu["free_mib"]
    if own <= 0 or more * GIB / MIB < tolerance_mib or free_mib is None or free_mib >= tolerance_mib:
        return
    raise GpuSaturated(
        "%s, and GPU %s has only %d MiB free: while the stack serves, what other processes hold is capped by "
        "what is free, so they may hold more once vLLM stops and a new launch could fail to start. Nothing "
        "was changed and the running stack keeps serving. Free GPU memory on the host (close what took it) "
        "and rerun, or stop the stack's containers and rerun to plan from a clean measurement."
        % (change, gpu["index"], free_mib))


def ledger_entry(name, gib, what):
    return {"name": name, "gib": round(gib, 3), "what": what}


def ledger(total_gib, entries):
    held = sum(e["gib"] for e in entries)
    return {"total_gib": round(total_gib, 3), "entries": entries, "headroom_gib": round(total_gib - held, 3)}
