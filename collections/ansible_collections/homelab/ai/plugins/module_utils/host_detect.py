# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host detection as the fact modules run it: one function per aspect, each taking the AnsibleModule.

``homelab.ai.wsl_facts``, ``gpu_facts`` and ``container_runtime_facts`` each call one of these;
``homelab.ai.host_facts`` calls the ones it is asked for in a single module run. A module's start-up
(AnsiballZ, a Python interpreter, the imports) costs more than the detection itself, so a play that
wants all three aspects pays it once. The parsing stays in ``wsl``, ``nvidia_smi`` and
``container_runtime``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.homelab.ai.plugins.module_utils import container_runtime, nvidia_smi, wsl

ASPECTS = ("wsl", "gpu", "container_runtime")
# The ansible_facts keys each aspect sets.
FACT_KEYS = {"wsl": ("wsl",), "gpu": ("gpus", "gpu_summary"), "container_runtime": ("container_runtime",)}


def detect_wsl(module=None):
    """``{"wsl": ...}``: reads files only."""
    return {"wsl": wsl.detect("/")}


def detect_gpus(module, nvidia_smi_path=None, timeout=15):
    """``{"gpus": [...], "gpu_summary": {...}}``: nvidia-smi, each run under coreutils' timeout."""
    timeout_cmd = module.get_bin_path("timeout")

    def runner(args):
        if timeout_cmd and timeout > 0:
            args = [timeout_cmd, "-k", "2", str(timeout)] + list(args)
        return module.run_command(args, environ_update={"LC_ALL": "C"})

    gpus, summary = nvidia_smi.gather(runner, nvidia_smi_path=nvidia_smi_path)
    if not timeout_cmd:
        summary["warnings"].append("coreutils timeout not found: nvidia-smi ran without a time limit")
    return {"gpus": gpus, "gpu_summary": summary}


def detect_container_runtime(module, docker_cli=None, docker_host=None, probe=False,
                             probe_image="homelab/debian:bookworm", probe_timeout=60):
    """``{"container_runtime": ...}``: the docker CLI (the SDK when there is none), optionally a GPU probe."""

    def runner(args):
        return module.run_command(list(args), environ_update={"LC_ALL": "C"})

    facts = container_runtime.gather(runner, docker=docker_cli, docker_host=docker_host, probe=probe,
                                     probe_image=probe_image, timeout_cmd=module.get_bin_path("timeout"),
                                     probe_timeout=probe_timeout, sdk=container_runtime.query_sdk)
    return {"container_runtime": facts}


def detect(module, aspects, gpu_options=None, runtime_options=None):
    """The facts of the asked aspects, in ASPECTS order, each aspect detected once."""
    unknown = [a for a in aspects if a not in ASPECTS]
    if unknown:
        raise ValueError("unknown aspect(s) %s: choose from %s" % (", ".join(unknown), ", ".join(ASPECTS)))
    facts = {}
    for aspect in ASPECTS:
        if aspect not in aspects:
            continue
        if aspect == "wsl":
            facts.update(detect_wsl(module))
        elif aspect == "gpu":
            facts.update(detect_gpus(module, **(gpu_options or {})))
        else:
            facts.update(detect_container_runtime(module, **(runtime_options or {})))
    return facts
