# -*- coding: utf-8 -*-
"""The preflight must refuse a host that cannot serve what the inventory asks, with a clear message.

Runs expect_failure.yml with ansible-playbook against molecule's inventory from the controller.
"""

import os
import subprocess

import pytest

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.dirname(os.path.dirname(SCENARIO))


def run_preflight(limit, *extra):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "MOLECULE_INVENTORY_FILE not set: run through `molecule verify -s gpu_host`"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, "collections"),
               ANSIBLE_ROLES_PATH=os.path.join(PROJECT, "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=os.environ.get("ANSIBLE_CONFIG", ""))
    args = ["ansible-playbook", "-i", inventory, "-l", limit, os.path.join(SCENARIO, "expect_failure.yml")]
    for item in extra:
        args += ["-e", item]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def only_once(host):
    if host.backend.get_hostname() != "linux-nogpu":
        pytest.skip("controller-side test, run once")


def test_nogpu_host_refused_when_gpu_required(host):
    only_once(host)
    rc, out = run_preflight("linux-nogpu", "gpu_host_require_gpu=true")
    assert rc != 0, out
    assert "has no usable NVIDIA GPU (ansible_facts.gpu_summary.usable=false)" in out
    assert "gpu_host_require_gpu=false" in out  # names the fix


def test_rtx3090_refused_below_required_compute_capability(host):
    only_once(host)
    rc, out = run_preflight("wsl2-rtx3090", "gpu_host_min_compute_capability=9.0", "gpu_host_quantization=fp8-hopper")
    assert rc != 0, out
    assert "compute capability" in out and ">= 9.0 (needed by fp8-hopper)" in out
    assert "GPU0 NVIDIA GeForce RTX 3090 has 8.6" in out


def test_gpu_host_not_moved_to_the_cpu_path_when_its_gpu_vanishes(host):
    """converge recorded wsl2-rtx3090 on the GPU path; with nvidia-smi gone (a driver update) and the GPU
    no longer required, it must refuse to serve on the CPU unless asked, naming what it recorded."""
    only_once(host)
    gone = ("gpu_host_require_gpu=false", "gpu_host_nvidia_smi_path=/nonexistent/nvidia-smi")
    rc, out = run_preflight("wsl2-rtx3090", *gone)
    assert rc != 0, out
    assert "the last run put this host on the GPU path (NVIDIA GeForce RTX 3090" in out
    assert "driver 537.13" in out and "nvidia_smi_path=/nonexistent/nvidia-smi" in out
    assert "gpu_host_allow_serving_path_change=true" in out
    rc, out = run_preflight("wsl2-rtx3090", *gone, "gpu_host_allow_serving_path_change=true")
    assert rc == 0, out
