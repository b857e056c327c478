#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: container_runtime_facts
short_description: Detect the Docker engine and its NVIDIA GPU runtime
version_added: "0.1.0"
description:
  - Asks the engine through the docker CLI (C(docker info)), or through the Docker SDK for Python
    when there is no CLI, and returns C(ansible_facts.container_runtime).
  - Tells Docker Desktop's engine (WSL2 integration) from an engine inside the distro, whether the
    C(nvidia) runtime is registered, whether an NVIDIA CDI spec exists (C(/etc/cdi), C(/var/run/cdi)),
    and whether C(nvidia-ctk) is installed.
  - Only when O(probe_gpu_container=true), starts O(probe_image) with C(--gpus all --pull never)
    and runs C(nvidia-smi -L) in it, to prove a GPU container starts. The container is removed.
  - Never fails because Docker or a GPU runtime is absent.
options:
  timeout:
    description: Seconds the probe container may run.
    type: int
    default: 60
extends_documentation_fragment:
  - homelab.ai.container_runtime
  - homelab.ai.attributes
  - homelab.ai.attributes.facts
  - homelab.ai.attributes.facts_module
  - homelab.ai.attributes.posix
attributes:
  check_mode:
    details: Runs the same in check mode; the optional probe starts a throw-away container and removes it.
  idempotent:
    support: full
    details:
      - Reports no change and leaves nothing behind. With O(probe_gpu_container=true) every run starts a throw-away
        GPU container (C(docker run --rm)), which is gone when the module returns.
  platform:
    details: Linux targets, WSL2 included.
requirements:
  - the docker CLI, or the Docker SDK for Python (C(docker)) when there is no CLI
author:
  - homelab.ai contributors (@homelab-ai)
"""

EXAMPLES = r"""
- name: Detect the container runtime
  homelab.ai.container_runtime_facts:

- name: Prove that a GPU container starts
  homelab.ai.container_runtime_facts:
    probe_gpu_container: true
    probe_image: "{{ vllm_image }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    container_runtime:
      description: What was detected.
      returned: always
      type: dict
      contains:
        engine_reachable:
          description: The engine answered.
          type: bool
        engine_version:
          description: Server version.
          type: str
          sample: 27.3.1
        client_version:
          description: docker CLI version.
          type: str
        source:
          description: How the engine was asked.
          type: str
          choices: [cli, sdk]
        error:
          description: Why the engine was not reachable, null when it was.
          type: str
        docker_cli:
          description: Path of the docker CLI, null when absent.
          type: str
        docker_desktop:
          description: The engine is Docker Desktop's (OperatingSystem "Docker Desktop").
          type: bool
        docker_desktop_wsl_dir:
          description: /mnt/wsl/docker-desktop exists (Docker Desktop WSL integration).
          type: bool
        operating_system:
          description: OperatingSystem from docker info.
          type: str
        cgroup_version:
          description: CgroupVersion from docker info, null when the engine was not reached.
          type: str
        storage_driver:
          description: Storage driver from docker info, null when the engine was not reached.
          type: str
        runtimes:
          description: Registered runtimes.
          type: list
          elements: str
        default_runtime:
          description: Default runtime.
          type: str
        nvidia_runtime:
          description: The nvidia runtime is registered.
          type: bool
        cdi_specs:
          description: NVIDIA CDI spec files found.
          type: list
          elements: str
        nvidia_ctk:
          description: Path of nvidia-ctk, null when absent.
          type: str
        nvidia_container_runtime:
          description: Path of nvidia-container-runtime, null when absent.
          type: str
        gpu_runtime:
          description: Docker can give containers a GPU by one of the known methods.
          type: bool
        gpu_runtime_method:
          description: How (nvidia-runtime, cdi, docker-desktop), null when none.
          type: str
        probe:
          description: Result of the GPU container probe (ran=false unless asked).
          type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils.host_detect import detect_container_runtime


def main():
    module = AnsibleModule(
        argument_spec=dict(
            docker_cli=dict(type="path"),
            docker_host=dict(type="str"),
            probe_gpu_container=dict(type="bool", default=False),
            probe_image=dict(type="str", default="homelab/debian:bookworm"),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    facts = detect_container_runtime(module, docker_cli=p["docker_cli"], docker_host=p["docker_host"],
                                     probe=p["probe_gpu_container"], probe_image=p["probe_image"],
                                     probe_timeout=p["timeout"])
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
