#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: wsl_facts
short_description: Detect Windows Subsystem for Linux (1 or 2) and what it implies
version_added: "0.1.0"
description:
  - Reads C(/proc/sys/kernel/osrelease), C(/proc/version), C(/proc/sys/fs/binfmt_misc/WSLInterop),
    C(WSLInterop-late), C(/run/WSL), C(/dev/dxg), C(/usr/lib/wsl/lib), C(/proc/1/comm),
    C(/etc/os-release) and the C(WSL_*) environment variables, and returns C(ansible_facts.wsl).
  - Never fails because WSL is absent; a non-WSL host gets C(is_wsl=false).
  - Makes no changes.
options: {}
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.attributes.facts
  - homelab.ai.attributes.facts_module
  - homelab.ai.attributes.idempotent_not_modify_state
  - homelab.ai.attributes.posix
attributes:
  check_mode:
    details: Only reads files; runs the same in check mode.
  platform:
    details: Linux targets, WSL or not.
author:
  - homelab.ai contributors (@homelab-ai)
"""

EXAMPLES = r"""
- name: Detect WSL
  homelab.ai.wsl_facts:

- name: Say why pinned memory is off
  ansible.builtin.debug:
    msg: "WSL{{ ansible_facts.wsl.version }}: pin_memory={{ ansible_facts.wsl.pin_memory }} ({{ ansible_facts.wsl.evidence | join('; ') }})"
  when: ansible_facts.wsl.is_wsl
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    wsl:
      description: What was detected.
      returned: always
      type: dict
      contains:
        is_wsl:
          description: True when any WSL signal matched.
          type: bool
          sample: true
        version:
          description: 1, 2, or null when not WSL or not determinable.
          type: int
          sample: 2
        kernel_release:
          description: Content of /proc/sys/kernel/osrelease.
          type: str
          sample: 5.15.153.1-microsoft-standard-WSL2
        kernel_version:
          description: Content of /proc/version.
          type: str
        windows_build:
          description: Windows build number from a WSL1 kernel release, else null.
          type: int
          sample: 19041
        distro:
          description: C(WSL_DISTRO_NAME) if set, else PRETTY_NAME from os-release.
          type: str
          sample: Ubuntu-22.04
        distro_id:
          description: ID from os-release.
          type: str
        distro_version_id:
          description: VERSION_ID from os-release.
          type: str
        interop:
          description: Windows executable interop registered and enabled in binfmt_misc.
          type: bool
        interop_entries:
          description: binfmt_misc WSLInterop entries found and their state.
          type: dict
          sample: {"WSLInterop": "enabled", "WSLInterop-late": "enabled"}
        systemd:
          description: PID 1 is systemd.
          type: bool
        pid1:
          description: Command name of PID 1.
          type: str
          sample: systemd
        gpu_paravirtualization:
          description: /dev/dxg exists (WSL2 GPU access).
          type: bool
        wsl_lib_dir:
          description: /usr/lib/wsl/lib when present (Windows driver's libcuda and nvidia-smi).
          type: str
        pin_memory:
          description: False under WSL, where vLLM disables pinned memory (UVA, CPU offload unavailable).
          type: bool
        evidence:
          description: The signals that matched, in words.
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils.host_detect import detect_wsl


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts=detect_wsl(module))


if __name__ == "__main__":
    main()
