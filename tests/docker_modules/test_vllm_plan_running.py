# -*- coding: utf-8 -*-
"""vllm_plan asks the real Docker daemon which of the stack's containers run (stack_containers)."""
import os
import sys

from conftest import BASE_IMAGE, docker, run_module

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections", "ansible_collections", "homelab",
                                 "ai", "tests", "unit", "plugins", "module_utils"))
from inventory_models import LOCAL, inventory_model  # noqa: E402  pylint: disable=wrong-import-position

WSL = {"is_wsl": False, "wsl_version": None, "kernel_release": "6.1.0", "pin_memory": True}


def plan(**extra):
    args = dict(name="tiny-qwen2", model=inventory_model(LOCAL, "tiny-qwen2"), gpus=[], wsl=WSL,
                vllm_version="0.32.0", allow_cpu_offload=False)
    args.update(extra)
    return run_module("vllm_plan", args)


def test_only_running_containers_of_the_stack_count(prefix):
    running, stopped = prefix + "-vllm", prefix + "-image-server"
    docker("run", "-d", "--name", running, BASE_IMAGE, "sleep", "300")
    docker("create", "--name", stopped, BASE_IMAGE, "sleep", "300")
    result = plan(stack_containers={"vllm": running, "image_server": stopped, "dashboard": prefix + "-missing"})
    assert not result.get("failed"), result.get("msg")
    assert result["running"] == ["vllm"]
    # Exact names: Docker's own name filter would also match "<name>-rollback".
    docker("rm", "-f", running)
    docker("run", "-d", "--name", running + "-rollback", BASE_IMAGE, "sleep", "300")
    assert plan(stack_containers={"vllm": running})["running"] == []
    # What the caller passes is kept; nothing asked of the daemon without stack_containers.
    assert plan(running=["image_server"])["running"] == ["image_server"]


def test_an_unreachable_daemon_fails_naming_the_socket(tmp_path):
    result = plan(stack_containers={"vllm": "homelab-vllm"}, docker_host="unix://%s/none.sock" % tmp_path)
    assert result.get("failed")
    assert "stack_containers: Cannot reach the Docker daemon at unix://%s/none.sock" % tmp_path in result["msg"]
