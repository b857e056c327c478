# -*- coding: utf-8 -*-
"""gpu_host_verdict: the gpu_host role's decision, each refusal naming the fact and the fix."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import gpu_catalog
from ansible_collections.homelab.ai.plugins.module_utils.gpu_host_verdict import verdict

GAMING = {"require_gpu": True, "min_memory_mib": 20000, "min_compute_capability": "8.0",
          "quantization": "awq_marlin", "require_docker": True, "require_docker_gpu_runtime": True,
          "probe_gpu_container": False, "probe_image": "homelab/debian:bookworm"}
LOCAL = {"require_gpu": False, "min_memory_mib": 0, "min_compute_capability": "0.0", "quantization": "",
         "require_docker": True, "require_docker_gpu_runtime": False, "probe_gpu_container": False,
         "probe_image": "homelab/debian:bookworm"}
DOCKER_DESKTOP = {"engine_reachable": True, "error": None, "gpu_runtime": True, "runtimes": ["runc"],
                  "cdi_specs": [], "probe": {"ran": False, "ok": None, "rc": None, "error": None}}


def gpu(name, total_mib, index=0):
    """As gpu_facts reports it: memory from nvidia-smi, capability from the catalog when nvidia-smi has none."""
    cat = gpu_catalog.lookup(name) or {}
    return {"index": index, "name": name, "memory_total_mib": total_mib,
            "compute_capability": cat.get("compute_capability"), "memory_bandwidth_gbps": cat.get("memory_bandwidth_gbps")}


def facts(gpus, usable=True, reason=None, runtime=None):
    return {"gpus": gpus, "container_runtime": dict(DOCKER_DESKTOP, **(runtime or {})),
            "gpu_summary": {"usable": usable, "reason": reason, "count": len(gpus),
                            "largest_memory_mib": max([g["memory_total_mib"] for g in gpus] or [0])}}


def test_the_record_host_fits_and_serves_on_the_gpu():
    v = verdict(facts([gpu("NVIDIA GeForce RTX 3090", 24576)]), GAMING)
    assert v["serving_path"] == "gpu" and v["problems"] == []
    assert [g["name"] for g in v["fitting_gpus"]] == ["NVIDIA GeForce RTX 3090"]


def test_no_usable_gpu_is_refused_naming_the_reason_and_the_fix():
    v = verdict(facts([], usable=False, reason="nvidia-smi not found"), GAMING)
    assert v["serving_path"] == "cpu" and len(v["problems"]) == 1
    assert v["problems"][0].startswith("gpu_host: this host has no usable NVIDIA GPU "
                                       "(ansible_facts.gpu_summary.usable=false): nvidia-smi not found.")
    assert "gpu_host_require_gpu=false" in v["problems"][0]


def test_too_little_memory_names_the_largest_gpu_and_the_threshold():
    v = verdict(facts([gpu("NVIDIA GeForce RTX 3060", 12288)]), GAMING)
    assert "the largest GPU has 12288 MiB" in v["problems"][0] and "gpu_host_min_memory_mib=20000" in v["problems"][0]


def test_too_low_a_compute_capability_lists_every_big_enough_gpu():
    # Turing: 24 GiB but compute capability 7.5, below awq_marlin's 8.0
    v = verdict(facts([gpu("NVIDIA TITAN RTX", 24576), gpu("NVIDIA Mystery GPU", 24576, index=1)]), GAMING)
    text = v["problems"][0]
    assert ">= 8.0 (needed by awq_marlin): GPU0 NVIDIA TITAN RTX has 7.5, GPU1 NVIDIA Mystery GPU has unknown " in text
    assert v["serving_path"] == "cpu" and len(v["big_enough_gpus"]) == 2


def test_capabilities_compare_as_versions_not_strings():
    # "10.0" < "8.0" as strings; Blackwell must fit a cc 8.0 threshold
    g = dict(gpu("NVIDIA GeForce RTX 3090", 24576), compute_capability="10.0")
    assert verdict(facts([g]), GAMING)["serving_path"] == "gpu"


def test_every_docker_problem_is_reported_in_order():
    down = {"engine_reachable": False, "error": "Cannot connect to the Docker daemon", "gpu_runtime": False,
            "runtimes": [], "cdi_specs": []}
    v = verdict(facts([gpu("NVIDIA GeForce RTX 3090", 24576)], runtime=down), dict(GAMING, probe_gpu_container=True))
    assert [p.split(" (")[0] for p in v["problems"]] == [
        "gpu_host: the Docker engine is not reachable", "gpu_host: Docker has no GPU runtime",
        "gpu_host: a container with --gpus all did not list a GPU"]
    assert "runtimes: none; NVIDIA CDI specs: none" in v["problems"][1]


def test_preflight_defers_the_engine_and_says_whether_it_is_ready_already():
    rtx = [gpu("NVIDIA GeForce RTX 3090", 24576)]
    fresh = {"engine_reachable": False, "error": "no docker", "gpu_runtime": False, "runtimes": [], "cdi_specs": []}
    deferred = verdict(facts(rtx, runtime=fresh), dict(GAMING, defer_engine_checks=True))
    assert deferred["problems"] == [] and not deferred["engine_ready"]
    assert [p.split(" (")[0] for p in deferred["deferred_problems"]] == [
        "gpu_host: the Docker engine is not reachable", "gpu_host: Docker has no GPU runtime"]
    no_runtime = verdict(facts(rtx, runtime={"gpu_runtime": False}), dict(GAMING, defer_engine_checks=True))
    assert not no_runtime["engine_ready"] and len(no_runtime["deferred_problems"]) == 1
    ready = verdict(facts(rtx), dict(GAMING, defer_engine_checks=True))
    assert ready["engine_ready"] and ready["problems"] == ready["deferred_problems"] == []
    strict = verdict(facts(rtx, runtime=fresh), GAMING)
    assert len(strict["problems"]) == 2 and strict["deferred_problems"] == [] and not strict["engine_ready"]
    gpu_problem = verdict(facts(rtx, runtime=fresh), dict(GAMING, min_memory_mib=30000, defer_engine_checks=True))
    assert len(gpu_problem["problems"]) == 1 and "MiB" in gpu_problem["problems"][0]   # never deferred


@pytest.mark.parametrize("recorded, allow, refused", [
    ({"serving_path": "gpu", "gpus": [{"name": "NVIDIA GeForce RTX 3090"}], "driver_version": "537.13"}, False, True),
    ({"serving_path": "gpu"}, True, False),
    ({"serving_path": "cpu"}, False, False),
    ({}, False, False),
])
def test_a_gpu_host_does_not_move_to_the_cpu_path_unasked(recorded, allow, refused):
    v = verdict(facts([], usable=False, reason="nvidia-smi timed out after 15 s"), LOCAL, recorded=recorded,
                allow_path_change=allow)
    assert v["serving_path"] == "cpu" and bool(v["problems"]) is refused
    if refused:
        assert v["problems"][0] == (
            "gpu_host: the last run put this host on the GPU path (NVIDIA GeForce RTX 3090, driver 537.13; "
            "/etc/ansible/facts.d/gpu_host.fact) but now no GPU fits, so it would serve on the CPU: nvidia-smi timed "
            "out after 15 s. A driver update or a hung nvidia-smi does this. Fix the driver and run again; to move "
            "this host to the CPU path on purpose, run once with -e gpu_host_allow_serving_path_change=true.")


WSL2 = {"is_wsl": True, "version": 2, "distro": "Ubuntu 24.04.1 LTS", "kernel_release": "5.15.167.4-microsoft-standard-WSL2",
        "systemd": True, "pin_memory": False}


def wsl_rtx3090(free_mib=23000):
    """The record host as host_facts reports it: WSL2, one RTX 3090 behind Docker Desktop."""
    rtx = dict(gpu("NVIDIA GeForce RTX 3090", 24576), memory_free_mib=free_mib, compute_capability_source="catalog",
               mig_mode=None)
    host = facts([rtx], runtime={"engine_version": "27.3.1", "docker_desktop": True, "gpu_runtime_method": "docker-desktop"})
    host["wsl"] = WSL2
    host["gpu_summary"].update(memory_total_mib=24576, driver_version="566.36", cuda_version="12.7",
                               nvidia_smi="/usr/lib/wsl/lib/nvidia-smi", warnings=["GPU0 drives a display"])
    return host


def test_the_summary_says_the_host_its_gpus_docker_what_is_needed_and_the_path():
    assert verdict(wsl_rtx3090(), GAMING)["summary"] == [
        "host: WSL2 (Ubuntu 24.04.1 LTS), kernel 5.15.167.4-microsoft-standard-WSL2, systemd PID 1: yes, "
        "pinned memory: OFF (no CPU offload / UVA)",
        "GPUs: 1, 24576 MiB in all, driver 566.36, CUDA 12.7, nvidia-smi /usr/lib/wsl/lib/nvidia-smi",
        "  GPU0 NVIDIA GeForce RTX 3090: 24576 MiB, cc 8.6 (catalog), 936 GB/s",
        "docker: engine 27.3.1 (Docker Desktop), GPU runtime: docker-desktop",
        "needs: GPU required, >= 20000 MiB, cc >= 8.0 (awq_marlin), docker GPU runtime required",
        "path: GPU path on NVIDIA GeForce RTX 3090",
        "warning: GPU0 drives a display"]


def test_the_summary_of_a_host_without_a_gpu_or_an_engine_lists_what_a_later_play_must_fix():
    down = {"engine_reachable": False, "error": "Cannot connect to the Docker daemon", "gpu_runtime": False,
            "runtimes": [], "cdi_specs": [], "probe": {"ran": True, "ok": False, "rc": 125, "error": "no such image"}}
    host = facts([], usable=False, reason="nvidia-smi not found", runtime=down)
    host["wsl"] = {"is_wsl": False, "distro": None, "kernel_release": "6.1.0-18-amd64"}
    lines = verdict(host, dict(LOCAL, require_docker_gpu_runtime=True, probe_gpu_container=True,
                               defer_engine_checks=True))["summary"]
    assert lines[:4] == ["host: Linux, not WSL (?), kernel 6.1.0-18-amd64", "GPUs: none usable - nvidia-smi not found",
                         "docker: not reachable - Cannot connect to the Docker daemon, GPU runtime: none, probe FAILED",
                         "needs: GPU optional, >= 0 MiB, cc >= 0.0, docker GPU runtime required"]
    assert [line.split(" (ansible_facts")[0] for line in lines[4:7]] == [
        "deferred (a later play installs or fixes the engine): gpu_host: the Docker engine is not reachable",
        "deferred (a later play installs or fixes the engine): gpu_host: Docker has no GPU runtime",
        "deferred (a later play installs or fixes the engine): gpu_host: a container with --gpus all did not list a GPU"]
    assert lines[7:] == ["path: CPU path"]


def test_the_record_keeps_what_stays_the_same_between_runs():
    first, second = verdict(wsl_rtx3090(free_mib=23000), GAMING), verdict(wsl_rtx3090(free_mib=1200), GAMING)
    assert first["record"] == second["record"]   # free memory moves; the record must not (a no-op run writes nothing)
    assert first["record"] == {
        "is_wsl": True, "wsl_version": 2, "kernel_release": "5.15.167.4-microsoft-standard-WSL2", "serving_path": "gpu",
        "gpu_count": 1, "gpu_usable": True, "gpu_reason": None, "driver_version": "566.36", "cuda_version": "12.7",
        "nvidia_smi": "/usr/lib/wsl/lib/nvidia-smi", "docker_engine_reachable": True, "docker_desktop": True,
        "docker_gpu_runtime": "docker-desktop",
        "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576, "compute_capability": "8.6",
                  "memory_bandwidth_gbps": 936, "compute_capability_source": "catalog", "mig_mode": None}]}
