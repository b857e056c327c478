#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: nvidia_runtime_facts
short_description: Decide whether Docker needs the nvidia runtime configured, check the merge, explain a failed GPU probe
version_added: "0.1.0"
description:
  - Reads O(daemon_json) on the target and, with O(container_runtime) (facts of homelab.ai.container_runtime_facts),
    returns C(ansible_facts.nvidia_runtime) with C(action) C(skip-docker-desktop), C(registered), C(configure)
    or C(fail) and the reason.
  - With O(daemon_json_before), also lists the settings that C(nvidia-ctk runtime configure) dropped or changed
    (C(lost)), so the role can prove the merge kept the existing configuration.
  - With O(probe) (the C(probe) of container_runtime_facts), returns C(probe_advice), the fix for the failure.
  - The decision logic is plain Python in homelab.ai's module_utils C(docker_engine).
options:
  engine:
    description:
      - The docker_engine role's engine (C(docker-desktop), C(distro), C(none)) when known.
      - C(existing) (docker_engine_mode existing) leaves the engine and its daemon.json as they are.
    type: str
  daemon_json:
    description: The engine's configuration file.
    type: path
    default: /etc/docker/daemon.json
  daemon_json_before:
    description: Text of O(daemon_json) before nvidia-ctk ran (empty when there was no file).
    type: str
  probe:
    description: Result of the GPU container probe.
    type: dict
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
    details: Linux targets, WSL2 included.
author:
  - homelab.ai contributors (@homelab-ai)
"""

EXAMPLES = r"""
- name: Decide about the nvidia runtime
  nvidia_runtime_facts:
    container_runtime: "{{ ansible_facts.container_runtime }}"
"""

RETURN = r"""
ansible_facts:
  description: C(nvidia_runtime) with daemon_json (state), action, reason, lost and probe_advice.
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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            container_runtime=dict(type="dict", default={}),
            engine=dict(type="str"),
            daemon_json=dict(type="path", default="/etc/docker/daemon.json"),
            daemon_json_before=dict(type="str"),
            probe=dict(type="dict"),
            verify_key_file=dict(type="path"),
            verify_key_fingerprint=dict(type="str", no_log=False),
        ),
        required_together=[("verify_key_file", "verify_key_fingerprint")],
        supports_check_mode=True,
    )
    p = module.params
    if p["verify_key_file"]:
        de.exit_with_key_check(module, p["verify_key_file"], p["verify_key_fingerprint"])
    path = p["daemon_json"]
    text = None
    if os.path.exists(path):
        with open(path, "r", errors="replace") as handle:
            text = handle.read()
    state = de.daemon_json_state(text, exists=text is not None)
    facts = {"daemon_json": state, "lost": [], "probe_advice": None}
    facts.update(de.plan_nvidia_runtime(state, p["container_runtime"], engine=p["engine"], path=path))
    if p["daemon_json_before"] is not None and state["valid"]:
        try:
            facts["lost"] = de.daemon_json_lost(p["daemon_json_before"], text or "")
        except ValueError as exc:
            facts["lost"] = ["the previous %s was not valid JSON (%s)" % (path, exc)]
    if p["probe"] is not None:
        facts["probe_advice"] = de.gpu_probe_advice(p["probe"])
    module.exit_json(changed=False, ansible_facts={"nvidia_runtime": facts})


if __name__ == "__main__":
    main()
