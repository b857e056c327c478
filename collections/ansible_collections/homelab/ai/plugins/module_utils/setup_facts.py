# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``ansible.builtin.setup`` collects, collected by another module with ansible-core's own collectors.

``homelab.ai.host_facts`` calls ``collect`` so that it can be a play's only facts module: setup's minimal
subset and the host detection in one module run. Only host_facts imports this (the collectors are many
modules; the other fact modules do not pay for importing them).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.module_utils.facts import ansible_collector, default_collectors
from ansible.module_utils.facts.namespace import PrefixFactNamespace

# ansible.builtin.setup's minimal subset, as its main() spells it (ansible-core 2.19,
# lib/ansible/modules/setup.py): what gather_subset=[min] collects, and what '!all' still collects.
SETUP_MINIMAL_SUBSET = frozenset(["apparmor", "caps", "cmdline", "date_time", "distribution", "dns", "env",
                                  "fips", "local", "lsb", "pkg_mgr", "platform", "python", "selinux",
                                  "service_mgr", "ssh_pub_keys", "user"])


def collect(module, gather_subset, gather_timeout=10):
    """What ``ansible.builtin.setup`` returns for ``gather_subset``, collected the way it does.

    The module must have a ``fact_path`` parameter (the C(local) collector reads it). Raises what
    ansible-core's collector raises for a subset it does not know (TypeError and its own errors).
    """
    collector = ansible_collector.get_ansible_collector(
        all_collector_classes=default_collectors.collectors,
        namespace=PrefixFactNamespace(namespace_name="ansible", prefix="ansible_"),
        filter_spec=[], gather_subset=list(gather_subset), gather_timeout=gather_timeout,
        minimal_gather_subset=SETUP_MINIMAL_SUBSET)
    return collector.collect(module=module)
