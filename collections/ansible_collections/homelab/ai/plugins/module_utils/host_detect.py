# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host detection as the fact modules run it: one function per aspect, each taking the AnsibleModule.

``homelab.ai.wsl_facts``, ``gpu_facts`` and ``container_runtime_facts`` each call one of these;
``homelab.ai.host_facts`` calls the ones it is asked for in a single module run. A module's start-up
(AnsiballZ, a Python interpreter, the imports) costs more than the detection itself, so a play that
wants all three aspects pays it once. The parsing stays in ``wsl``, ``nvidia_smi`` and
``container_runtime``.

``aspects_to_detect`` is the gpu_host role's choice of what a task must detect again after the gathering.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.homelab.ai.plugins.module_utils import container_runtime, nvidia_smi, wsl

ASPECTS = ("wsl", "gpu", "container_runtime")
# The ansible_facts keys each aspect sets.
FACT_KEYS = {"wsl": ("wsl",), "gpu": ("gpus", "gpu_summary"), "container_runtime": ("container_runtime",)}


def aspects_to_detect(facts, probe_image=None, detected_earlier=False):
    """The aspects a task must detect, given the facts the host already has.

    WSL and the GPUs do not change within a run: detected once. The container runtime is detected
    again when an earlier role of this run saw it (``detected_earlier``: the engine may have been
    installed or restarted since), and when a GPU probe is asked (``probe_image``) that the facts
    did not run with that image.
    """
    facts = facts if isinstance(facts, dict) else {}
    aspects = [a for a in ("wsl", "gpu") if any(k not in facts for k in FACT_KEYS[a])]
    runtime = facts.get("container_runtime")
    probe = (runtime or {}).get("probe") or {}
    probe_missing = bool(probe_image) and (probe.get("image") != probe_image
                                           or (not probe.get("ran") and not probe.get("error")))
    if not isinstance(runtime, dict) or detected_earlier or probe_missing:
        aspects.append("container_runtime")
    return aspects


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
