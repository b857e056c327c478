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


def secret_env_problem(plain_env, secret_env, plain_variable, secret_variable, reserved=None):
    """Why ``plain_env``/``secret_env`` would leak or garble a secret, or an empty string."""
    if not isinstance(plain_env, dict):
        raise AnsibleFilterError("secret_env_problem: %s must be a dict, got %s" % (plain_variable, type(plain_env).__name__))
    if reserved is not None and not isinstance(reserved, dict):
        raise AnsibleFilterError("secret_env_problem: reserved must be a dict of environment name to role variable, got %s"
                                 % type(reserved).__name__)
    return secret_policy.secret_env_problem(plain_env, secret_env, plain_variable, secret_variable, reserved)


class FilterModule(object):
    def filters(self):
        return {"secret_problem": secret_problem, "keyless_problem": keyless_problem,
                "secret_env_problem": secret_env_problem}
