# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters: the smoke_test role's report and summary (module_utils/smoke_report.py)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils import smoke_report as sr


def smoke_report(benchmarks, model=None, plan=None, min_tokens_per_second=None, tolerance=None,
                 check_dashboard=True, dashboard_gate=True, status_page=None,
                 check_image_server=True, image=None, image_file=None, check_mode=False):
    """The smoke test's report (status/smoke.json) from the checks' registered results."""
    if not isinstance(benchmarks, dict):
        raise AnsibleFilterError("smoke_report: the input must be the llm_benchmark loop's registered result (a dict), got %s"
                                 % type(benchmarks).__name__)
    for name, value in (("plan", plan), ("status_page", status_page), ("image", image), ("image_file", image_file)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError("smoke_report: %s must be a dict, got %s" % (name, type(value).__name__))
    return sr.smoke_report(benchmarks, model, plan=plan, min_tokens_per_second=min_tokens_per_second,
                           tolerance=tolerance, check_dashboard=check_dashboard, dashboard_gate=dashboard_gate,
                           status_page=status_page, check_image_server=check_image_server, image=image,
                           image_file=image_file, check_mode=check_mode)


def smoke_summary(report, vllm_url, report_path, check_mode=False):
    """The summary lines printed from a smoke_report."""
    if not isinstance(report, dict) or "via_dashboard" not in report:
        raise AnsibleFilterError("smoke_summary: the input must be a homelab.ai.smoke_report result")
    return sr.smoke_summary(report, vllm_url, report_path, check_mode=check_mode)


def smoke_history_entry(report):
    """The record of one smoke run that the bounded smoke history keeps."""
    if not isinstance(report, dict) or "via_dashboard" not in report:
        raise AnsibleFilterError("smoke_history_entry: the input must be a homelab.ai.smoke_report result")
    return sr.history_entry(report)


class FilterModule(object):
    def filters(self):
        return {"smoke_report": smoke_report, "smoke_summary": smoke_summary, "smoke_history_entry": smoke_history_entry}
