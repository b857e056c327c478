#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: gpu_facts
short_description: Detect NVIDIA GPUs with nvidia-smi (bare metal and WSL2)
version_added: "0.1.0"
description:
  - Finds C(nvidia-smi) on PATH or at C(/usr/lib/wsl/lib/nvidia-smi) (often not on PATH over SSH
    on WSL2), runs the plain table (driver and CUDA version) and a C(--query-gpu) CSV query, each
    under a timeout (nvidia-smi hangs or crashes on some WSL2 builds).
  - Drivers that do not know the C(compute_cap) field are queried again without it; the compute
    capability then comes from the GPU catalog (C(homelab.ai) module_utils C(gpu_catalog)) by name.
  - Returns C(ansible_facts.gpus) and C(ansible_facts.gpu_summary). When no GPU is usable the list
    is empty and C(gpu_summary.reason) says why. Never fails because a GPU or driver is absent.
  - Makes no changes.
options:
  nvidia_smi_path:
    description:
      - Path of nvidia-smi to use instead of searching PATH and C(/usr/lib/wsl/lib/nvidia-smi).
    type: path
  timeout:
    description:
      - Seconds each nvidia-smi run may take before it is killed (needs C(timeout) from coreutils).
    type: int
    default: 15
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.attributes.facts
  - homelab.ai.attributes.facts_module
  - homelab.ai.attributes.idempotent_not_modify_state
  - homelab.ai.attributes.posix
attributes:
  check_mode:
    details: Only runs read-only nvidia-smi queries; runs the same in check mode.
  platform:
    details: Linux targets, bare metal or WSL2.
author:
  - homelab.ai contributors (@homelab-ai)
"""

EXAMPLES = r"""
- name: Detect GPUs
  homelab.ai.gpu_facts:

- name: Use the WSL2 nvidia-smi explicitly, with a short timeout
  homelab.ai.gpu_facts:
    nvidia_smi_path: /usr/lib/wsl/lib/nvidia-smi
    timeout: 5

- name: Stop when there is no usable GPU
  ansible.builtin.assert:
    that: ansible_facts.gpu_summary.usable
    fail_msg: "{{ ansible_facts.gpu_summary.reason }}"
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    gpus:
      description: One entry per GPU; empty when no GPU is usable.
      returned: always
      type: list
      elements: dict
      contains:
        index:
          description: nvidia-smi index.
          type: int
        name:
          description: Name as nvidia-smi prints it.
          type: str
          sample: NVIDIA GeForce RTX 3090
        uuid:
          description: GPU UUID, null when not reported.
          type: str
        pci_bus_id:
          description: PCI bus id.
          type: str
        memory_total_mib:
          description: Total memory in MiB.
          type: int
          sample: 24576
        memory_free_mib:
          description: Free memory in MiB at the time of the query.
          type: int
        compute_capability:
          description: Compute capability as a string, null when unknown.
          type: str
          sample: "8.6"
        compute_capability_source:
          description: Where the compute capability came from.
          type: str
          choices: [nvidia-smi, catalog]
        driver_version:
          description: Driver version (on WSL2 the Windows driver's, e.g. 537.13).
          type: str
        cuda_version:
          description: Highest CUDA version the driver supports (nvidia-smi header).
          type: str
          sample: "12.2"
        memory_bandwidth_gbps:
          description: Peak memory bandwidth from the GPU catalog, null if unknown.
          type: int
          sample: 936
        architecture:
          description: Architecture from the GPU catalog, null if unknown.
          type: str
        mig_mode:
          description: Current MIG mode (Enabled, Disabled) or null when not supported.
          type: str
    gpu_summary:
      description: Summary over all GPUs.
      returned: always
      type: dict
      contains:
        count:
          description: Number of usable GPUs.
          type: int
        memory_total_mib:
          description: Sum of total memory of usable GPUs.
          type: int
        largest_memory_mib:
          description: Total memory of the largest GPU.
          type: int
        max_compute_capability:
          description: Highest compute capability among the GPUs, null when unknown.
          type: str
        driver_version:
          description: Driver version.
          type: str
        cuda_version:
          description: CUDA version from the nvidia-smi header.
          type: str
        usable:
          description: True when at least one GPU with known memory was found.
          type: bool
        reason:
          description: Why no GPU is usable, with the fix; null when usable.
          type: str
        nvidia_smi:
          description: Path of the nvidia-smi used, null when none was found.
          type: str
        warnings:
          description: Things that worked only partly (catalog fallbacks, MIG, CUDA ERR!).
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils.host_detect import detect_gpus


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi_path=dict(type="path"),
            timeout=dict(type="int", default=15),
        ),
        supports_check_mode=True,
    )
    facts = detect_gpus(module, module.params["nvidia_smi_path"], module.params["timeout"])
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
