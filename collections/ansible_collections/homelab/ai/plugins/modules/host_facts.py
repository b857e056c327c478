#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_facts
short_description: Detect WSL, the NVIDIA GPUs and the container runtime in one module run
version_added: "0.2.0"
description:
  - Does what M(homelab.ai.wsl_facts), M(homelab.ai.gpu_facts) and M(homelab.ai.container_runtime_facts)
    do, in a single module run. A module's start-up (packaging, a Python interpreter, imports) costs more
    than any of the three detections, so a play that wants them all pays it once
    (C(tests/bench/bench_facts.py) measures it against C(ansible.builtin.setup) with C(gather_subset=min)).
  - O(detect) picks the aspects. One left out is not touched, so facts an earlier play of the same run
    detected stay as they were. The C(gpu_host) role detects only what the facts it finds lack (the
    C(homelab.ai.host_aspects_to_detect) filter) - nothing after a play gathered with this module, and outside
    such a play the container runtime again when it saw it earlier in the run (C(playbooks/gaming_host.yml)
    may have installed the engine in between).
  - Sets the same C(ansible_facts) keys as the three modules, with the same contents; their RETURN
    documents every field.
  - As a play's only facts module (C(ansible_facts_modules=[homelab.ai.host_facts]), the way
    C(playbooks/preflight.yml) and C(playbooks/stack.yml) gather), it also collects what
    M(ansible.builtin.setup) collects for O(setup_subset), with ansible-core's own collectors, so that
    the gathering and the detection are one module run instead of two. C(gather_subset) on such a play is not passed to
    it (ansible-core warns and drops it); set O(setup_subset) through C(module_defaults) instead.
  - Never fails because WSL, a GPU, a driver or an engine is absent. Makes no changes.
options:
  detect:
    description: The aspects to detect.
    type: list
    elements: str
    choices: [wsl, gpu, container_runtime]
    default: [wsl, gpu, container_runtime]
  nvidia_smi_path:
    description: Path of nvidia-smi, as O(homelab.ai.gpu_facts#module:nvidia_smi_path).
    type: path
  nvidia_smi_timeout:
    description: Seconds each nvidia-smi run may take, as O(homelab.ai.gpu_facts#module:timeout).
    type: int
    default: 15
  probe_timeout:
    description: Seconds the probe container may run.
    type: int
    default: 60
  setup_subset:
    description:
      - The M(ansible.builtin.setup) subsets to collect as well, as its C(gather_subset) (C(min), C(network),
        C(!all), ...), into the same C(ansible_facts) keys setup sets.
      - The default suits the module as a play's facts module. A task that only detects again passes C([]).
    type: list
    elements: str
    default: [min]
  fact_path:
    description: Where the C(local) subset reads local facts (C(ansible_local)), as M(ansible.builtin.setup)'s C(fact_path).
    type: path
    default: /etc/ansible/facts.d
extends_documentation_fragment:
  - homelab.ai.container_runtime
  - homelab.ai.attributes
  - homelab.ai.attributes.facts
  - homelab.ai.attributes.facts_module
  - homelab.ai.attributes.idempotent_not_modify_state
  - homelab.ai.attributes.posix
attributes:
  check_mode:
    details: Only reads files and runs read-only queries (the optional probe starts a throwaway container); the same in check mode.
  platform:
    details: Linux targets, bare metal or WSL2.
seealso:
  - module: homelab.ai.wsl_facts
  - module: homelab.ai.gpu_facts
  - module: homelab.ai.container_runtime_facts
author:
  - homelab.ai contributors (@homelab-ai)
"""

EXAMPLES = r"""
# As the play's facts module, setup's minimal subset and the detection in one module run, a play sets:
#   vars:
#     ansible_facts_modules: [homelab.ai.host_facts]
#   module_defaults:
#     homelab.ai.host_facts:
#       nvidia_smi_timeout: 30
# and its tasks read ansible_facts.distribution and ansible_facts.gpus alike.

- name: Detect WSL, the GPUs and the container runtime (and setup's minimal facts)
  homelab.ai.host_facts:

- name: Detect only, without setup's facts
  homelab.ai.host_facts:
    setup_subset: []

- name: Detect again only what a later play can have changed
  homelab.ai.host_facts:
    detect: [container_runtime]
    setup_subset: []

- name: Refuse a host without a usable GPU
  ansible.builtin.assert:
    that: ansible_facts.gpu_summary.usable
    fail_msg: "{{ ansible_facts.gpu_summary.reason }}"
"""

RETURN = r"""
detected:
  description: The aspects this run detected, in the order they ran.
  returned: always
  type: list
  elements: str
  sample: [wsl, gpu, container_runtime]
ansible_facts:
  description: Facts added to the host; only the keys of the detected aspects.
  returned: always
  type: dict
  contains:
    wsl:
      description: As M(homelab.ai.wsl_facts) returns it.
      returned: when O(detect) has C(wsl)
      type: dict
    gpus:
      description: As M(homelab.ai.gpu_facts) returns it.
      returned: when O(detect) has C(gpu)
      type: list
      elements: dict
    gpu_summary:
      description: As M(homelab.ai.gpu_facts) returns it.
      returned: when O(detect) has C(gpu)
      type: dict
    container_runtime:
      description: As M(homelab.ai.container_runtime_facts) returns it.
      returned: when O(detect) has C(container_runtime)
      type: dict
    ansible_*:
      description: What M(ansible.builtin.setup) sets for O(setup_subset) (with C(gather_subset) and C(module_setup)).
      returned: when O(setup_subset) is not empty
      type: raw
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.facts.collector import CollectorNotFoundError, CycleFoundInFactDeps, UnresolvedFactDep

from ansible_collections.homelab.ai.plugins.module_utils import setup_facts
from ansible_collections.homelab.ai.plugins.module_utils.host_detect import ASPECTS, detect


def main():
    module = AnsibleModule(
        argument_spec=dict(
            detect=dict(type="list", elements="str", choices=list(ASPECTS), default=list(ASPECTS)),
            nvidia_smi_path=dict(type="path"),
            nvidia_smi_timeout=dict(type="int", default=15),
            docker_cli=dict(type="path"),
            docker_host=dict(type="str"),
            probe_gpu_container=dict(type="bool", default=False),
            probe_image=dict(type="str", default="homelab/debian:bookworm"),
            probe_timeout=dict(type="int", default=60),
            setup_subset=dict(type="list", elements="str", default=["min"]),
            fact_path=dict(type="path", default="/etc/ansible/facts.d"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    facts = {}
    if p["setup_subset"]:
        try:
            facts = setup_facts.collect(module, p["setup_subset"])
        except (TypeError, CollectorNotFoundError, CycleFoundInFactDeps, UnresolvedFactDep) as exc:  # as setup catches them
            module.fail_json(msg="setup_subset=%s: %s" % (p["setup_subset"], exc))
    facts.update(detect(
        module, p["detect"],
        gpu_options=dict(nvidia_smi_path=p["nvidia_smi_path"], timeout=p["nvidia_smi_timeout"]),
        runtime_options=dict(docker_cli=p["docker_cli"], docker_host=p["docker_host"],
                             probe=p["probe_gpu_container"], probe_image=p["probe_image"],
                             probe_timeout=p["probe_timeout"])))
    module.exit_json(changed=False, detected=[a for a in ASPECTS if a in p["detect"]], ansible_facts=facts)


if __name__ == "__main__":
    main()
