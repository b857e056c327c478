# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gpu_host role's decision: which GPUs fit, which path serves, and what stops the host.

Input: the host's facts as homelab.ai.host_facts sets them (``wsl``, ``gpus``, ``gpu_summary``,
``container_runtime``), the inventory's thresholds and what the last run recorded
(``ansible_local.gpu_host``). Output: the GPUs with enough memory, those that also have the compute
capability, the serving path and every problem, in the order the role used to check them, each
naming the fact and the fix; and what the role shows and remembers of it: the summary, a line each, and
the record it keeps in ``gpu_host.fact``. The role fails with them; the filter ``homelab.ai.gpu_host_verdict``
exposes this.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


def _version(text):
    """'8.6' -> (8, 6); what Jinja's version test compared."""
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _fitting(gpus, min_memory_mib, min_cc):
    """(GPUs with at least min_memory_mib, those of them with compute capability >= min_cc)."""
    big_enough = [g for g in gpus if g.get("memory_total_mib") is not None
                  and g["memory_total_mib"] >= int(min_memory_mib)]
    fitting = [g for g in big_enough if g.get("compute_capability") is not None
               and _version(g["compute_capability"]) >= _version(min_cc)]
    return big_enough, fitting


def _gpu_problems(summary, big_enough, fitting, t):
    """What the GPU thresholds refuse (only with require_gpu)."""
    if not summary.get("usable"):
        return ["gpu_host: this host has no usable NVIDIA GPU (ansible_facts.gpu_summary.usable=false): %s. The "
                "inventory asks for one (gpu_host_require_gpu=true). Fix the driver as said, or serve on the CPU "
                "path by setting gpu_host_require_gpu=false for this host." % summary.get("reason")]
    if not big_enough:
        return ["gpu_host: the largest GPU has %s MiB (ansible_facts.gpu_summary.largest_memory_mib) but the inventory "
                "asks for gpu_host_min_memory_mib=%s. Fix: serve a smaller model or shorter context and lower "
                "gpu_host_min_memory_mib, or use a host with a larger GPU."
                % (summary.get("largest_memory_mib"), t["min_memory_mib"])]
    if not fitting:
        needed = " (needed by %s)" % t["quantization"] if t.get("quantization") else ""
        have = ", ".join("GPU%s %s has %s" % (g.get("index"), g.get("name"), g.get("compute_capability") or "unknown")
                         for g in big_enough)
        return ["gpu_host: no GPU with at least %s MiB has compute capability >= %s%s: %s "
                "(ansible_facts.gpus[].compute_capability). Fix: choose a quantization this GPU supports and lower "
                "gpu_host_min_compute_capability, or use a newer GPU; an unknown capability means the GPU is missing "
                "from module_utils/gpu_catalog.py and nvidia-smi did not report it."
                % (t["min_memory_mib"], t["min_compute_capability"], needed, have)]
    return []


def _path_change_problem(summary, recorded, facts_dir):
    """The last run put the host on the GPU path and now it would serve on the CPU."""
    names = ", ".join(g.get("name", "?") for g in recorded.get("gpus") or []) or "no GPU named"
    return ("gpu_host: the last run put this host on the GPU path (%s, driver %s; %s/gpu_host.fact) but now no GPU "
            "fits, so it would serve on the CPU: %s. A driver update or a hung nvidia-smi does this. Fix the driver "
            "and run again; to move this host to the CPU path on purpose, run once with -e "
            "gpu_host_allow_serving_path_change=true."
            % (names, recorded.get("driver_version") or "unknown", facts_dir,
               summary.get("reason") or "no usable GPU meets the thresholds"))


def _docker_problems(runtime, t):
    problems = []
    if t.get("require_docker") and not runtime.get("engine_reachable"):
        problems.append("gpu_host: the Docker engine is not reachable (ansible_facts.container_runtime.engine_reachable="
                        "false): %s. Fix: start dockerd (`sudo service docker start` on WSL without systemd) or enable "
                        "Docker Desktop's WSL integration for this distro." % runtime.get("error"))
    if t.get("require_docker_gpu_runtime") and not runtime.get("gpu_runtime"):
        problems.append("gpu_host: Docker has no GPU runtime (ansible_facts.container_runtime.gpu_runtime=false; "
                        "runtimes: %s; NVIDIA CDI specs: %s). Fix: install nvidia-container-toolkit, run `sudo nvidia-ctk "
                        "runtime configure --runtime=docker` and restart Docker (or use Docker Desktop's WSL2 backend)."
                        % (", ".join(runtime.get("runtimes") or []) or "none",
                           ", ".join(runtime.get("cdi_specs") or []) or "none"))
    probe = runtime.get("probe") or {}
    if t.get("probe_gpu_container") and not probe.get("ok"):
        problems.append("gpu_host: a container with --gpus all did not list a GPU (ansible_facts.container_runtime.probe: "
                        "rc=%s, %s). Fix: check `docker run --rm --gpus all %s nvidia-smi -L` by hand; the image must "
                        "exist locally." % (probe.get("rc"), probe.get("error"), t.get("probe_image")))
    return problems


def _or(value, fallback):
    """Jinja's ``default(fallback, true)``: an empty or missing value shows as the fallback."""
    return value if value else fallback


def _host_line(wsl):
    if wsl.get("is_wsl"):
        return "host: WSL%s (%s), kernel %s, systemd PID 1: %s, pinned memory: %s" % (
            _or(wsl.get("version"), "?"), _or(wsl.get("distro"), "?"), wsl.get("kernel_release"),
            "yes" if wsl.get("systemd") else "no",
            "available" if wsl.get("pin_memory") else "OFF (no CPU offload / UVA)")
    return "host: Linux, not WSL (%s), kernel %s" % (_or(wsl.get("distro"), "?"), wsl.get("kernel_release"))


def _gpu_lines(summary, gpus):
    if not summary.get("usable"):
        return ["GPUs: none usable - %s" % summary.get("reason")]
    lines = ["GPUs: %s, %s MiB in all, driver %s, CUDA %s, nvidia-smi %s" % (
        summary.get("count"), summary.get("memory_total_mib"), summary.get("driver_version"),
        _or(summary.get("cuda_version"), "unknown"), summary.get("nvidia_smi"))]
    for gpu in gpus:
        source = gpu.get("compute_capability_source")
        bandwidth = gpu.get("memory_bandwidth_gbps")
        lines.append("  GPU%s %s: %s MiB, cc %s%s, %s%s" % (
            gpu.get("index"), gpu.get("name"), gpu.get("memory_total_mib"), _or(gpu.get("compute_capability"), "unknown"),
            " (%s)" % source if source else "", "%s GB/s" % bandwidth if bandwidth else "bandwidth unknown",
            ", MIG %s" % gpu.get("mig_mode") if gpu.get("mig_mode") else ""))
    return lines


def _docker_line(runtime):
    if runtime.get("engine_reachable"):
        engine = "engine %s%s" % (runtime.get("engine_version"),
                                  " (Docker Desktop)" if runtime.get("docker_desktop") else " (in this distro)")
    else:
        engine = "not reachable - %s" % runtime.get("error")
    probe = runtime.get("probe") or {}
    return "docker: %s, GPU runtime: %s%s" % (engine, _or(runtime.get("gpu_runtime_method"), "none"),
                                              ", probe %s" % ("ok" if probe.get("ok") else "FAILED") if probe.get("ran") else "")


def summary_lines(facts, thresholds, decided):
    """What the role shows, pass or fail: the host, its GPUs, Docker, what the inventory needs, the engine's
    deferred problems, the serving path and nvidia-smi's warnings, a line each."""
    summary = facts.get("gpu_summary") or {}
    quantization = thresholds.get("quantization")
    lines = [_host_line(facts.get("wsl") or {})] + _gpu_lines(summary, facts.get("gpus") or [])
    lines.append(_docker_line(facts.get("container_runtime") or {}))
    lines.append("needs: GPU %s, >= %s MiB, cc >= %s%s, docker GPU runtime %s" % (
        "required" if thresholds.get("require_gpu") else "optional", thresholds.get("min_memory_mib"),
        thresholds.get("min_compute_capability"), " (%s)" % quantization if quantization else "",
        "required" if thresholds.get("require_docker_gpu_runtime") else "optional"))
    lines += ["deferred (a later play installs or fixes the engine): %s" % p for p in decided["deferred_problems"]]
    lines.append("path: GPU path on %s" % ", ".join(g.get("name", "?") for g in decided["fitting_gpus"])
                 if decided["serving_path"] == "gpu" else "path: CPU path")
    lines += ["warning: %s" % w for w in summary.get("warnings") or []]
    return lines


def record(facts, serving_path):
    """What gpu_host.fact keeps for the next run (read back as ansible_local.gpu_host): only values that stay
    the same between runs (no free memory), so a second run writes nothing."""
    wsl, summary = facts.get("wsl") or {}, facts.get("gpu_summary") or {}
    runtime = facts.get("container_runtime") or {}
    return {
        "is_wsl": wsl.get("is_wsl"), "wsl_version": wsl.get("version"), "kernel_release": wsl.get("kernel_release"),
        "serving_path": serving_path, "gpu_count": summary.get("count"), "gpu_usable": summary.get("usable"),
        "gpu_reason": summary.get("reason"), "driver_version": summary.get("driver_version"),
        "cuda_version": summary.get("cuda_version"), "nvidia_smi": summary.get("nvidia_smi"),
        "gpus": [dict((k, v) for k, v in gpu.items() if k != "memory_free_mib") for gpu in facts.get("gpus") or []],
        "docker_engine_reachable": runtime.get("engine_reachable"), "docker_desktop": runtime.get("docker_desktop"),
        "docker_gpu_runtime": runtime.get("gpu_runtime_method"),
    }


def verdict(facts, thresholds, recorded=None, allow_path_change=False, facts_dir="/etc/ansible/facts.d"):
    """The decision. ``thresholds``: require_gpu, min_memory_mib, min_compute_capability, quantization,
    require_docker, require_docker_gpu_runtime, probe_gpu_container, probe_image, defer_engine_checks (the
    role's variables without their prefix).

    With defer_engine_checks (the preflight play, before playbooks/gaming_host.yml installs the engine) the
    engine's problems are deferred, not refused. engine_ready says the engine already meets the inventory's
    requirements, so a later play of the same run need not detect it again. ``summary`` and ``record`` are
    what the role shows and keeps of it (summary_lines, record)."""
    summary = facts.get("gpu_summary") or {}
    big_enough, fitting = _fitting(facts.get("gpus") or [], thresholds.get("min_memory_mib") or 0,
                                   thresholds.get("min_compute_capability") or "0.0")
    serving_path = "gpu" if summary.get("usable") and fitting else "cpu"
    if thresholds.get("require_gpu"):
        problems = _gpu_problems(summary, big_enough, fitting, thresholds)
    elif (recorded or {}).get("serving_path") == "gpu" and serving_path == "cpu" and not allow_path_change:
        problems = [_path_change_problem(summary, recorded, facts_dir)]
    else:
        problems = []
    runtime = facts.get("container_runtime") or {}
    engine_problems = _docker_problems(runtime, thresholds)
    deferred = engine_problems if thresholds.get("defer_engine_checks") else []
    if not deferred:
        problems += engine_problems
    decided = {"big_enough_gpus": big_enough, "fitting_gpus": fitting, "serving_path": serving_path,
               "problems": problems, "deferred_problems": deferred,
               "engine_ready": bool(runtime.get("engine_reachable")) and not engine_problems}
    decided["summary"] = summary_lines(facts, thresholds, decided)
    decided["record"] = record(facts, serving_path)
    return decided
