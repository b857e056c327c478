# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters: the secret policy (module_utils/secret_policy.py) for the roles' assert tasks."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils import secret_policy


def secret_problem(value, name, where=None):
    """Why ``value`` (the variable ``name``) is refused as a key, or an empty string."""
    return secret_policy.secret_problem(value, name, where=where)


def keyless_problem(ports, name, key_variable, required_variable):
    """Why service ``name`` may not run without a key while publishing ``ports``, or an empty string."""
    if not isinstance(ports, (list, tuple)):
        raise AnsibleFilterError("keyless_problem: ports must be a list of port strings, got %s" % type(ports).__name__)
    return secret_policy.keyless_problem(ports, name, key_variable, required_variable)


def exposed_ports(ports):
    """The published ports that reach beyond loopback, each with why."""
    if not isinstance(ports, (list, tuple)):
        raise AnsibleFilterError("exposed_ports: ports must be a list of port strings, got %s" % type(ports).__name__)
    try:
        return secret_policy.exposed_ports(ports)
    except ValueError as exc:
        raise AnsibleFilterError("exposed_ports: %s" % exc)


def secret_env_problem(plain_env, secret_env, plain_variable, secret_variable, reserved=None):
    """Why ``plain_env``/``secret_env`` would leak or garble a secret, or an empty string."""
    if not isinstance(plain_env, dict):
        raise AnsibleFilterError("secret_env_problem: %s must be a dict, got %s" % (plain_variable, type(plain_env).__name__))
    if reserved is not None and not isinstance(reserved, dict):
        raise AnsibleFilterError("secret_env_problem: reserved must be a dict of environment name to role variable, got %s"
                                 % type(reserved).__name__)
    return secret_policy.secret_env_problem(plain_env, secret_env, plain_variable, secret_variable, reserved)


def secret_problems(key, key_variable, missing_message, required=True, required_variable=None, service=None,
                    ports=None, plain_env=None, secret_env=None, plain_variable=None, secret_variable=None,
                    reserved=None):
    """Every reason a service's key and secrets are refused (one assert task per role), or []."""
    if ports is not None and not isinstance(ports, (list, tuple)):
        raise AnsibleFilterError("secret_problems: ports must be a list of port strings, got %s" % type(ports).__name__)
    for label, value in (("reserved", reserved), ("plain_env", plain_env)):
        if value is not None and not isinstance(value, dict):
            raise AnsibleFilterError("secret_problems: %s must be a dict, got %s" % (label, type(value).__name__))
    return secret_policy.service_secret_problems(
        key, key_variable, missing_message, required=bool(required), required_variable=required_variable,
        service=service, ports=ports, plain_env=plain_env, secret_env=secret_env, plain_variable=plain_variable,
        secret_variable=secret_variable, reserved=reserved)


class FilterModule(object):
    def filters(self):
        return {"secret_problem": secret_problem, "keyless_problem": keyless_problem, "exposed_ports": exposed_ports,
                "secret_env_problem": secret_env_problem, "secret_problems": secret_problems}
