# -*- coding: utf-8 -*-
"""What gpu_host recorded on each simulated host (ansible_local.gpu_host) after converge."""

import json

import pytest

FACT = "/etc/ansible/facts.d/gpu_host.fact"


@pytest.fixture()
def fact(host):
    f = host.file(FACT)
    assert f.exists, "gpu_host wrote no %s: the role did not run to the end" % FACT
    return json.loads(f.content_string)


def name(host):
    return host.backend.get_hostname()


def test_wsl2_rtx3090_detected(host, fact):
    if name(host) != "wsl2-rtx3090":
        pytest.skip("WSL2 host only")
    assert fact["is_wsl"] is True and fact["wsl_version"] == 2
    assert fact["kernel_release"] == "5.15.62.1-microsoft-standard-WSL2"
    assert fact["nvidia_smi"] == "/usr/lib/wsl/lib/nvidia-smi"  # not on PATH: found at the WSL location
    assert (fact["driver_version"], fact["cuda_version"]) == ("537.13", "12.2")
    assert fact["gpu_usable"] is True and fact["gpu_count"] == 2 and fact["gpu_reason"] is None
    gpu = fact["gpus"][0]
    assert gpu["name"] == "NVIDIA GeForce RTX 3090" and gpu["memory_total_mib"] == 24576
    assert (gpu["compute_capability"], gpu["compute_capability_source"]) == ("8.6", "catalog")
    assert gpu["memory_bandwidth_gbps"] == 936
    assert "memory_free_mib" not in gpu  # volatile values stay out of the fact file
    assert fact["serving_path"] == "gpu"


def test_wsl2_kernel_strings_really_mounted(host):
    if name(host) != "wsl2-rtx3090":
        pytest.skip("WSL2 host only")
    assert "microsoft-standard-WSL2" in host.file("/proc/version").content_string


def test_nogpu_host_takes_cpu_path(host, fact):
    if name(host) != "linux-nogpu":
        pytest.skip("no-GPU host only")
    assert fact["is_wsl"] is False and fact["wsl_version"] is None
    assert fact["gpu_usable"] is False and fact["gpu_count"] == 0 and fact["gpus"] == []
    assert "nvidia-smi not found" in fact["gpu_reason"]
    assert fact["serving_path"] == "cpu"
