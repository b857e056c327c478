# -*- coding: utf-8 -*-
"""The fact modules (the three and host_facts, which is them in one run) run for real through ansible on this machine (no GPU, not WSL, Docker up)."""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
           ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"),
           ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")


def module(name, args="", check=True):
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-c", "local", "-m", name,
           "-e", "ansible_python_interpreter=" + os.path.join(ROOT, ".venv", "bin", "python")]
    if args:
        cmd += ["-a", args]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False
    return result["ansible_facts"]


def test_wsl_facts_here():
    wsl = module("homelab.ai.wsl_facts")["wsl"]
    assert wsl["is_wsl"] is False and wsl["pin_memory"] is True
    with open("/proc/sys/kernel/osrelease") as handle:
        assert wsl["kernel_release"] == handle.read().strip()


def test_gpu_facts_here_no_gpu():
    facts = module("homelab.ai.gpu_facts")
    assert facts["gpus"] == []
    assert facts["gpu_summary"]["usable"] is False and "nvidia-smi not found" in facts["gpu_summary"]["reason"]


def test_gpu_facts_bad_override_is_reported():
    facts = module("homelab.ai.gpu_facts", "nvidia_smi_path=/nonexistent/nvidia-smi timeout=3")
    assert "nvidia_smi_path=/nonexistent/nvidia-smi" in facts["gpu_summary"]["reason"]


def test_container_runtime_facts_here():
    assert subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0, \
        "needs the project's Docker daemon: run scripts/setup.sh"
    runtime = module("homelab.ai.container_runtime_facts")["container_runtime"]
    assert runtime["engine_reachable"] is True and runtime["engine_version"]
    assert runtime["nvidia_runtime"] is False and runtime["gpu_runtime"] is False
    assert runtime["docker_desktop"] is False


def test_host_facts_is_the_three_modules_in_one_run():
    """The same facts as the three modules, minus what differs run to run (times, free memory)."""
    together = module("homelab.ai.host_facts", '{"setup_subset": []}')
    apart = {}
    for name in ("wsl_facts", "gpu_facts", "container_runtime_facts"):
        apart.update(module("homelab.ai." + name))
    assert set(together) == set(apart) == {"wsl", "gpus", "gpu_summary", "container_runtime"}
    assert together == apart


def test_host_facts_leaves_out_what_it_is_not_asked_for():
    facts = module("homelab.ai.host_facts", '{"detect": ["container_runtime"], "setup_subset": []}')
    assert set(facts) == {"container_runtime"} and facts["container_runtime"]["engine_reachable"] is True
    gpu = module("homelab.ai.host_facts", json.dumps({"detect": ["gpu"], "nvidia_smi_path": "/nonexistent/nvidia-smi",
                                                      "nvidia_smi_timeout": 3, "setup_subset": []}))
    assert set(gpu) == {"gpus", "gpu_summary"}
    assert "nvidia_smi_path=/nonexistent/nvidia-smi" in gpu["gpu_summary"]["reason"]


def play(text, tmp_path):
    path = tmp_path / "play.yml"
    path.write_text(text)
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", "localhost,", str(path)],
                          capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["plays"][0]["tasks"]


GATHER = """
- hosts: localhost
  connection: local
  gather_facts: true
  gather_subset: [min]
  vars:
    ansible_python_interpreter: %s
    ansible_facts_modules: [%s]
  tasks:
    - name: the facts
      ansible.builtin.debug:
        var: ansible_facts
"""


def test_host_facts_as_the_plays_facts_module_is_setup_min_plus_the_detection(tmp_path):
    """What preflight.yml and stack.yml gather with: the same keys as setup min, and the detection, in one task."""
    python = os.path.join(ROOT, ".venv", "bin", "python")
    facts = {}
    for name in ("ansible.builtin.setup", "homelab.ai.host_facts"):
        tasks = play(GATHER % (python, name), tmp_path)
        assert tasks[0]["task"]["name"] == "Gathering Facts" and len(tasks) == 2
        facts[name] = tasks[1]["hosts"]["localhost"]["ansible_facts"]
    setup, ours = facts["ansible.builtin.setup"], facts["homelab.ai.host_facts"]
    assert set(ours) - set(setup) == {"wsl", "gpus", "gpu_summary", "container_runtime"}
    assert set(setup) <= set(ours)
    for key in ("distribution", "distribution_release", "os_family", "service_mgr", "python", "user_id", "ansible_local"):
        assert ours[key] == setup[key], key
    assert ours["container_runtime"]["engine_reachable"] is True
    assert ours["gather_subset"] == ["min"] and "interfaces" not in ours  # host_facts' own default, not the play's


def test_host_facts_refuses_a_subset_setup_does_not_know():
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible"), "localhost", "-c", "local", "-m", "homelab.ai.host_facts",
           "-a", '{"setup_subset": ["gpus"]}', "-e", "ansible_python_interpreter=" + os.path.join(ROOT, ".venv", "bin", "python")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=180, check=False)
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["failed"] and "setup_subset=['gpus']: Bad subset 'gpus' given to Ansible." in result["msg"]
