# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts about the container engine and its GPU plumbing.

* engine reachable and its version: ``docker version`` / ``docker info`` through the CLI
  (``runner(args) -> (rc, out, err)``, the shape of ``AnsibleModule.run_command``), or the
  Docker SDK when there is no CLI (imported lazily and guarded);
* Docker Desktop's engine (``OperatingSystem: Docker Desktop``, name ``docker-desktop``,
  ``/mnt/wsl/docker-desktop``) versus an engine inside the distro;
* the ``nvidia`` runtime registered (``Runtimes`` in docker info), a CDI spec
  (``/etc/cdi``, ``/var/run/cdi``), ``nvidia-ctk`` / ``nvidia-container-runtime`` on PATH;
* only when asked: whether a GPU container starts (``docker run --rm --gpus all --pull never``).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import glob
import json
import os

from ansible_collections.homelab.ai.plugins.module_utils.nvidia_smi import first_line

CDI_DIRS = ("/etc/cdi", "/var/run/cdi")
DOCKER_DESKTOP_WSL_DIR = "/mnt/wsl/docker-desktop"


def which(name, path_env=None):
    for directory in (path_env if path_env is not None else os.environ.get("PATH", "")).split(os.pathsep):
        candidate = os.path.join(directory, name)
        if directory and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def parse_info(info):
    """Reduce a ``docker info`` JSON object (CLI ``{{json .}}`` or SDK ``info()``) to facts."""
    info = info or {}
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    os_name = info.get("OperatingSystem") or ""
    name = info.get("Name") or ""
    desktop = os_name == "Docker Desktop" or name == "docker-desktop"
    return {
        "engine_version": info.get("ServerVersion"),
        "operating_system": os_name or None,
        "engine_name": name or None,
        "kernel_version": info.get("KernelVersion"),
        "docker_desktop": desktop,
        "runtimes": runtimes,
        "default_runtime": info.get("DefaultRuntime"),
        "nvidia_runtime": "nvidia" in runtimes,
        "cdi_spec_dirs": info.get("CDISpecDirs") or [],
        "cgroup_version": info.get("CgroupVersion"),
        "storage_driver": info.get("Driver"),
    }


def cdi_specs(dirs=CDI_DIRS, root="/"):
    """CDI spec files that mention NVIDIA (``nvidia.com/gpu``), e.g. /etc/cdi/nvidia.yaml."""
    found = []
    for directory in dirs:
        base = os.path.join(root, directory.lstrip("/"))
        for path in sorted(glob.glob(os.path.join(base, "*.yaml")) + glob.glob(os.path.join(base, "*.json"))):
            try:
                with open(path, "r", errors="replace") as handle:
                    head = handle.read(65536)
            except (IOError, OSError):
                continue
            if "nvidia.com/gpu" in head or os.path.basename(path).startswith("nvidia"):
                found.append(os.path.join(directory, os.path.basename(path)))
    return found


def _client_version(runner, docker, info):
    """The CLI's version: from `docker info`'s ClientInfo (CLI 19.03+, printed even with the engine down),
    else one `docker version` run (an older CLI)."""
    version = ((info or {}).get("ClientInfo") or {}).get("Version")
    if version:
        return version
    rc, out, _err = runner([docker, "version", "--format", "{{json .Client.Version}}"])
    if rc == 0 or out.strip().startswith('"'):
        try:
            return json.loads(out.strip().splitlines()[0])
        except (ValueError, IndexError):
            return None
    return None


def query_cli(runner, docker):
    """Return (info dict or None, client_version or None, error or None); one `docker info` run on a
    current CLI (a process start is most of what detection costs)."""
    rc, out, err = runner([docker, "info", "--format", "{{json .}}"])
    try:
        info = json.loads(out)
    except ValueError:
        info = None
    client_version = _client_version(runner, docker, info if isinstance(info, dict) else None)
    if not isinstance(info, dict):
        return None, client_version, "docker info failed (rc=%s): %s" % (rc, first_line(out, err))
    # The CLI prints the client part even when the daemon is down, with ServerErrors.
    errors = info.get("ServerErrors") or []
    if rc != 0 or errors or not info.get("ServerVersion"):
        return None, client_version, "docker engine not reachable: %s" % (
            "; ".join(errors) or first_line(out, err) or "no ServerVersion")
    return info, client_version, None


def query_sdk(docker_host=None):
    """Ask the engine through the Docker SDK. Return (info or None, error or None, sdk_present)."""
    try:
        import docker as docker_sdk  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None, "neither the docker CLI nor the Docker SDK for Python (docker) is installed", False
    try:
        client = docker_sdk.DockerClient(base_url=docker_host) if docker_host else docker_sdk.from_env()
        try:
            return client.info(), None, True
        finally:
            client.close()
    except Exception as exc:  # pylint: disable=broad-except
        return None, "docker engine not reachable through the SDK: %s" % exc, True


def probe_gpu_container(runner, docker, image, timeout_cmd=None, timeout=60):
    """Start ``image`` with ``--gpus all`` and run ``nvidia-smi -L`` in it. Returns a dict."""
    args = [docker, "run", "--rm", "--pull", "never", "--gpus", "all", image, "nvidia-smi", "-L"]
    if timeout_cmd:
        args = [timeout_cmd, "-k", "5", str(timeout)] + args
    rc, out, err = runner(args)
    ok = rc == 0 and "GPU " in out
    return {
        "ran": True,
        "ok": ok,
        "image": image,
        "rc": rc,
        "output": (out or "").strip()[-2000:],
        "error": None if ok else first_line(out, err),
    }


def gather(runner, docker=None, docker_host=None, probe=False, probe_image=None,
           timeout_cmd=None, probe_timeout=60, path_env=None, root="/", sdk=query_sdk):
    """Return the ``ansible_facts.container_runtime`` dict. Never raises for absent things."""
    facts = {
        "engine_reachable": False,
        "engine_version": None,
        "client_version": None,
        "source": None,
        "error": None,
        "docker_cli": None,
        "docker_desktop": False,
        "docker_desktop_wsl_dir": os.path.isdir(os.path.join(root, DOCKER_DESKTOP_WSL_DIR.lstrip("/"))),
        "operating_system": None,
        "runtimes": [],
        "default_runtime": None,
        "nvidia_runtime": False,
        "cdi_specs": cdi_specs(root=root),
        "nvidia_ctk": which("nvidia-ctk", path_env),
        "nvidia_container_runtime": which("nvidia-container-runtime", path_env),
        "cgroup_version": None,
        "storage_driver": None,
        "gpu_runtime": False,
        "gpu_runtime_method": None,
        "probe": {"ran": False, "ok": None, "image": probe_image, "rc": None, "output": None, "error": None},
    }
    docker = docker or which("docker", path_env)
    facts["docker_cli"] = docker
    info = None
    if docker:
        info, facts["client_version"], facts["error"] = query_cli(runner, docker)
        facts["source"] = "cli"
    else:
        info, facts["error"], _present = sdk(docker_host)
        facts["source"] = "sdk"
    if info:
        parsed = parse_info(info)
        facts["engine_reachable"] = True
        facts["error"] = None
        keys = ("engine_version", "operating_system", "runtimes", "default_runtime", "nvidia_runtime")
        facts.update((k, parsed[k]) for k in keys)
        facts["docker_desktop"] = parsed["docker_desktop"]
        facts["cgroup_version"] = parsed["cgroup_version"]
        facts["storage_driver"] = parsed["storage_driver"]
    if facts["nvidia_runtime"]:
        facts["gpu_runtime"], facts["gpu_runtime_method"] = True, "nvidia-runtime"
    elif facts["engine_reachable"] and facts["cdi_specs"]:
        facts["gpu_runtime"], facts["gpu_runtime_method"] = True, "cdi"
    elif facts["docker_desktop"]:
        # Docker Desktop's WSL2 backend passes GPUs through itself (--gpus works without a
        # registered nvidia runtime); only the probe can confirm it.
        facts["gpu_runtime"], facts["gpu_runtime_method"] = True, "docker-desktop"
    if probe:
        if not (docker and facts["engine_reachable"]):
            facts["probe"].update(ran=False, ok=False,
                                  error="probe skipped: no reachable engine through the docker CLI")
        else:
            facts["probe"] = probe_gpu_container(runner, docker, probe_image, timeout_cmd, probe_timeout)
    return facts
