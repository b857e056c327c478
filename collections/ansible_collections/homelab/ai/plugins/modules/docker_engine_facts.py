#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: docker_engine_facts
short_description: Decide how the gaming host gets its Docker engine (Docker Desktop or Docker Engine in the distro)
version_added: "0.1.0"
description:
  - Reads, on the target, Docker Desktop's WSL integration marker paths (C(/mnt/wsl/docker-desktop*)), where the
    docker CLI resolves to, PID 1 and WSL (through homelab.ai's wsl detection), C(/etc/wsl.conf), C(/etc/init.d/docker)
    and the installed engine packages (dpkg-query), and combines them with O(container_runtime) (the facts of
    homelab.ai.container_runtime_facts) into C(ansible_facts.docker_engine).
  - With O(verify_key_file) it only checks that the OpenPGP key file holds the primary key O(verify_key_fingerprint)
    (C(gpg --show-keys --with-colons)) and fails, naming both fingerprints, when it does not.
  - The decision logic is plain Python in homelab.ai's module_utils C(docker_engine).
options:
  mode:
    description:
      - C(auto) uses Docker Desktop's engine when present, else installs Docker Engine; C(docker-desktop) and
        C(distro) force one.
      - C(existing) uses the engine that answers as it is (action C(use-existing)) and installs nothing; it
        fails when no engine answers.
    type: str
    choices: [auto, docker-desktop, distro, existing]
    default: auto
  packages:
    description: Engine packages to install from Docker's apt repository.
    type: list
    elements: str
    default: [docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin]
  package_versions:
    description: Package name to apt version (or glob) pins.
    type: dict
    default: {}
  conflicting_packages:
    description: Packages that conflict with docker-ce.
    type: list
    elements: str
    default: [docker.io, docker-doc, docker-compose, docker-compose-v2, podman-docker, containerd, runc]
  remove_conflicting:
    description: Plan their removal instead of failing.
    type: bool
    default: false
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.attributes.facts
  - homelab.ai.attributes.facts_module
  - homelab.ai.attributes.idempotent_not_modify_state
  - homelab.ai.attributes.posix
  - homelab.ai.docker_engine
  - homelab.ai.docker_engine.key_verification
attributes:
  platform:
    details: Debian/Ubuntu targets, WSL2 included.
author:
  - homelab.ai contributors (@homelab-ai)
"""

EXAMPLES = r"""
- name: Plan the engine
  docker_engine_facts:
    container_runtime: "{{ ansible_facts.container_runtime }}"
"""

RETURN = r"""
ansible_facts:
  description: C(docker_engine) (the plan of module_utils docker_engine.plan_engine plus what was observed).
  returned: unless O(verify_key_file) is set
  type: dict
key_check:
  description: Result of the key verification.
  returned: when O(verify_key_file) is set
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils import docker_engine as de
from ansible_collections.homelab.ai.plugins.module_utils.container_runtime import which
from ansible_collections.homelab.ai.plugins.module_utils.wsl import detect


def _read(path):
    try:
        with open(path, "r", errors="replace") as handle:
            return handle.read(65536)
    except (IOError, OSError):
        return None


def installed_packages(module, names):
    dpkg = module.get_bin_path("dpkg-query")
    if not dpkg:
        return {}
    rc, out, _err = module.run_command([dpkg, "-W", "-f=${Package}\\t${db:Status-Abbrev}\\t${Version}\\n"] + names)
    found = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].startswith("ii"):
            found[parts[0]] = parts[2]
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container_runtime=dict(type="dict", default={}),
            mode=dict(type="str", choices=list(de.MODES), default="auto"),
            packages=dict(type="list", elements="str", default=list(de.ENGINE_PACKAGES)),
            package_versions=dict(type="dict", default={}),
            conflicting_packages=dict(type="list", elements="str", default=list(de.CONFLICTING_PACKAGES)),
            remove_conflicting=dict(type="bool", default=False),
            verify_key_file=dict(type="path"),
            verify_key_fingerprint=dict(type="str", no_log=False),
        ),
        required_together=[("verify_key_file", "verify_key_fingerprint")],
        supports_check_mode=True,
    )
    p = module.params
    if p["verify_key_file"]:
        de.exit_with_key_check(module, p["verify_key_file"], p["verify_key_fingerprint"])

    docker = which("docker")
    wsl = detect("/")
    names = sorted(set(p["packages"]) | set(p["conflicting_packages"]) | {"docker.io", "moby-engine"})
    observed = {
        "container_runtime": p["container_runtime"],
        "desktop_markers": [path for path in de.DOCKER_DESKTOP_MARKERS if os.path.exists(path)],
        "docker_cli": docker,
        "docker_cli_realpath": os.path.realpath(docker) if docker else None,
        "installed_packages": installed_packages(module, names),
        "pid1": wsl.get("pid1"),
        "is_wsl": wsl.get("is_wsl"),
        "wsl_conf": _read("/etc/wsl.conf"),
        "init_script": os.path.exists("/etc/init.d/docker"),
    }
    try:
        facts = de.plan_engine(observed, mode=p["mode"], packages=p["packages"], versions=p["package_versions"],
                               conflicting=p["conflicting_packages"], remove_conflicting=p["remove_conflicting"])
    except ValueError as exc:
        module.fail_json(msg="docker_engine_facts: %s" % exc)
    facts.update(desktop_markers=observed["desktop_markers"], docker_cli=docker,
                 docker_cli_realpath=observed["docker_cli_realpath"], installed_packages=observed["installed_packages"],
                 wsl_distro=wsl.get("distro"))
    module.exit_json(changed=False, ansible_facts={"docker_engine": facts})


if __name__ == "__main__":
    main()
