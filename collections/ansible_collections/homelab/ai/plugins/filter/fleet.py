# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters: the fleet's backends and the router's configuration from each inference host's plan (module_utils/fleet.py)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils import fleet

DEFAULT_VLLM_PORT = 8000


def _require_names(names, what):
    if not isinstance(names, (list, tuple)):
        raise AnsibleFilterError("%sthe fleet's hosts must be a list of inventory names, got %s"
                                 % (what, type(names).__name__))


def _hosts(hostvars, names):
    """What module_utils/fleet reads of each host, from the play's hostvars (registered results, inventory)."""
    _require_names(names, "")
    hosts = []
    for name in names:
        if name not in hostvars:
            raise AnsibleFilterError("%s is not a host of this inventory" % name)
        host = hostvars[name]
        url = host.get("router_upstream_url") or "http://%s:%s" % (host.get("ansible_host") or name,
                                                                   host.get("vllm_port") or DEFAULT_VLLM_PORT)
        hosts.append({"name": name, "plan_result": host.get("vllm_plan_result"), "url": url,
                      "api_key": host.get("vllm_api_key") or ""})
    return hosts


def router_fleet(hostvars, names, settings=None):
    """The fleet's backends, the hosts left out (with why) and LiteLLM's configuration (no key in it)."""
    try:
        found = fleet.fleet_backends(_hosts(hostvars, names))
        found["config"] = fleet.router_config(found["backends"], settings or {}) if found["backends"] else {}
    except ValueError as exc:
        raise AnsibleFilterError("router_fleet: %s" % exc)
    return found


def router_upstream_keys(hostvars, names):
    """``{environment name: vLLM key}`` of the routed hosts: a secret, for container_rollout's secret_env only."""
    try:
        return fleet.upstream_key_env(_hosts(hostvars, names))
    except ValueError as exc:
        raise AnsibleFilterError("router_upstream_keys: %s" % exc)


def fleet_gpus(hostvars, names, this_host):
    """The other inference hosts' GPUs (their gathered gpu facts) and addresses, for vllm_plan's fleet_gpus."""
    _require_names(names, "fleet_gpus: ")
    found = {}
    for name in names:
        if name == this_host or name not in hostvars:
            continue
        host = hostvars[name]
        gpus = (host.get("ansible_facts") or {}).get("gpus") or []
        if gpus:
            found[name] = {"gpus": list(gpus), "address": host.get("ansible_host") or name}
    return found


class FilterModule(object):
    def filters(self):
        return {"router_fleet": router_fleet, "router_upstream_keys": router_upstream_keys, "fleet_gpus": fleet_gpus}
