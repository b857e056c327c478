# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters: the gpu_host role's decision (module_utils/gpu_host_verdict.py) and what it detects again
(module_utils/host_detect.py)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils import gpu_host_verdict as ghv
from ansible_collections.homelab.ai.plugins.module_utils import host_detect


def gpu_host_verdict(facts, thresholds, recorded=None, allow_path_change=False, facts_dir="/etc/ansible/facts.d"):
    """Which GPUs fit, the serving path and every problem, from host_facts' facts and the thresholds."""
    if not isinstance(facts, dict) or "gpu_summary" not in facts:
        raise AnsibleFilterError("gpu_host_verdict: the input must be ansible_facts with gpu_summary "
                                 "(run homelab.ai.host_facts first)")
    if not isinstance(thresholds, dict):
        raise AnsibleFilterError("gpu_host_verdict: thresholds must be a dict, got %s" % type(thresholds).__name__)
    return ghv.verdict(facts, thresholds, recorded=recorded if isinstance(recorded, dict) else None,
                       allow_path_change=bool(allow_path_change), facts_dir=facts_dir)


def host_aspects_to_detect(facts, probe_image=None, detected_earlier=False):
    """The homelab.ai.host_facts aspects a task must detect, given the facts the host has (see host_detect)."""
    if facts is not None and not isinstance(facts, dict):
        raise AnsibleFilterError("host_aspects_to_detect: the input must be ansible_facts (a dict), got %s"
                                 % type(facts).__name__)
    return host_detect.aspects_to_detect(facts, probe_image=probe_image or None, detected_earlier=bool(detected_earlier))


class FilterModule(object):
    def filters(self):
        return {"gpu_host_verdict": gpu_host_verdict, "host_aspects_to_detect": host_aspects_to_detect}
