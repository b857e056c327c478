# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import shutil
import subprocess

from ansible_collections.homelab.ai.plugins.module_utils import container_runtime as cr
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.fixtures.loader import fixture_path


def real_runner(args):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def recorded_info():
    with open(fixture_path("docker", "info_debian_engine_20.10.json")) as handle:
        return json.load(handle)


def docker_works():
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def test_parse_recorded_engine_in_distro():
    facts = cr.parse_info(recorded_info())
    assert facts["engine_version"] == "20.10.24+dfsg1"
    assert facts["docker_desktop"] is False
    assert facts["runtimes"] == ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"]
    assert facts["nvidia_runtime"] is False and facts["default_runtime"] == "runc"


def test_parse_nvidia_runtime_registered():
    # `nvidia-ctk runtime configure --runtime=docker` adds this entry to daemon.json; docker info
    # then lists it under Runtimes beside runc (NVIDIA container toolkit install guide).
    info = recorded_info()
    info["Runtimes"]["nvidia"] = {"path": "nvidia-container-runtime"}
    facts = cr.parse_info(info)
    assert facts["nvidia_runtime"] is True and "nvidia" in facts["runtimes"]


def test_parse_docker_desktop():
    # Values as printed by `docker info` under Docker Desktop's WSL2 backend
    # (https://github.com/rapidsai/docker/issues/680: "Operating System: Docker Desktop", Name docker-desktop).
    facts = cr.parse_info({"ServerVersion": "26.1.1", "OperatingSystem": "Docker Desktop", "Name": "docker-desktop",
                           "Runtimes": {"io.containerd.runc.v2": {}, "runc": {}}})
    assert facts["docker_desktop"] is True and facts["nvidia_runtime"] is False


def test_cdi_specs(tmp_path):
    (tmp_path / "etc" / "cdi").mkdir(parents=True)
    (tmp_path / "etc" / "cdi" / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    (tmp_path / "etc" / "cdi" / "other.yaml").write_text("kind: vendor.example/thing\n")
    assert cr.cdi_specs(root=str(tmp_path)) == ["/etc/cdi/nvidia.yaml"]


def test_engine_down_is_reported_not_raised(tmp_path):
    # The docker CLI pointed at a socket nobody listens on: real CLI, real error text.
    assert shutil.which("docker"), "the docker CLI is installed by scripts/setup.sh (docker.io)"

    def runner(args):
        return real_runner([args[0], "-H", "unix://%s/none.sock" % tmp_path] + list(args[1:]))
    facts = cr.gather(runner, docker=shutil.which("docker"), root=str(tmp_path), path_env="")
    assert facts["engine_reachable"] is False and facts["engine_version"] is None
    assert facts["client_version"]
    assert "none.sock" in facts["error"] or "Cannot connect" in facts["error"]
    assert facts["gpu_runtime"] is False


def test_no_cli_no_sdk(tmp_path):
    facts = cr.gather(None, root=str(tmp_path), path_env=str(tmp_path),
                      sdk=lambda host: (None, "neither the docker CLI nor the Docker SDK for Python (docker) is installed", False))
    assert facts["engine_reachable"] is False and facts["source"] == "sdk"
    assert "neither the docker CLI" in facts["error"]


def test_real_engine_via_cli(tmp_path):
    facts = cr.gather(real_runner, root=str(tmp_path))
    assert facts["engine_reachable"] is True and facts["source"] == "cli"
    assert facts["engine_version"] and facts["runtimes"]
    assert facts["nvidia_runtime"] is False and facts["gpu_runtime"] is False
    assert facts["probe"]["ran"] is False


def test_real_engine_via_sdk(tmp_path):
    # The suite starts its own daemon and installs the SDK (tests/unit/requirements.txt): never a skip.
    assert docker_works(), "needs the project's Docker daemon: run scripts/setup.sh"
    import docker  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    facts = cr.gather(None, root=str(tmp_path), path_env=str(tmp_path))
    assert facts["source"] == "sdk" and facts["engine_reachable"] is True and facts["engine_version"]


def test_real_gpu_probe_fails_without_gpu(tmp_path):
    assert docker_works(), "needs the project's Docker daemon: run scripts/setup.sh"
    image = "homelab/debian:bookworm"
    assert not subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode, \
        "base image %s missing: run scripts/setup.sh" % image
    facts = cr.gather(real_runner, root=str(tmp_path), probe=True, probe_image=image,
                      timeout_cmd=shutil.which("timeout"), probe_timeout=60)
    probe = facts["probe"]
    assert probe["ran"] is True and probe["ok"] is False and probe["rc"] != 0
    assert probe["error"]  # e.g. 'could not select device driver "" with capabilities: [[gpu]]'


def test_one_docker_info_run_gives_the_client_version_and_an_old_cli_falls_back():
    calls = []

    def runner(args):
        calls.append(args[1])
        if args[1] == "version":
            return 0, '"18.06.1-ce"\n', ""
        info = {"ServerVersion": "24.0.7", "Runtimes": {"runc": {}}}
        if len(calls) == 1:
            info["ClientInfo"] = {"Version": "28.2.2"}
        return 0, json.dumps(info), ""
    info, client, error = cr.query_cli(runner, "docker")
    assert calls == ["info"] and client == "28.2.2" and error is None and info["ServerVersion"] == "24.0.7"
    calls[:] = ["earlier"]
    _info, client, error = cr.query_cli(runner, "docker")
    assert calls == ["earlier", "info", "version"] and client == "18.06.1-ce" and error is None
