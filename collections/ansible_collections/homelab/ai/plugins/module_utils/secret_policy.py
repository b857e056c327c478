# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection accepts as a secret, and when a service may run without one (pure logic).

* ``secret_problem``: why a key is refused (empty, a placeholder of ``vault.yml.example``, shorter
  than ``MIN_LENGTH``, too few distinct characters to be random), or ``""`` when it is accepted.
  The message names the variable and how to make a good key; it never repeats the value.
* ``keyless_problem``: a service may run without a key only when every port it publishes binds a
  loopback address (127.0.0.0/8 or ::1); otherwise the message names the ports that do not.
* ``secret_env_problem``: other secrets (a Hugging Face token, say) go to a container through its
  role's ``*_secret_env`` (container_rollout's secret_env: never in labels, files or output), not
  through the plain ``*_extra_env``/``*_env`` whose values are labelled, written and shown.

The roles call them through the ``homelab.ai.secret_problem``, ``homelab.ai.keyless_problem`` and
``homelab.ai.secret_env_problem`` filters and fail with the message (roles/vllm/tasks/deploy.yml,
roles/image_server/tasks/main.yml).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import ipaddress
import re

from ansible_collections.homelab.ai.plugins.module_utils.container_spec import parse_port

# The one list of placeholders: every value in inventories/homelab/group_vars/gaming/vault.yml.example
# must be here (tests/unit/.../test_secret_policy.py reads that file and checks it). Compared without
# case and surrounding space.
PLACEHOLDERS = (
    "change-me-to-a-long-random-string",
)
# Substrings that mark a value as an unedited template, whatever its length.
PLACEHOLDER_MARKERS = ("change-me", "changeme", "replace-me", "replaceme")
MIN_LENGTH = 32
# `openssl rand -hex 32` (64 hex digits) has 16 distinct characters in practice; a key with fewer
# than this many is a pattern ('aaaa...', '0101...'), not randomness.
MIN_DISTINCT_CHARACTERS = 8
# Environment names that hold a secret by convention (HF_TOKEN, OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY...).
SECRET_ENV_NAME_RE = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY)",
                                re.IGNORECASE)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HOW_TO_GENERATE = "Generate one with `openssl rand -hex 32`"
DEFAULT_WHERE = ("a vaulted variable (ansible-vault edit inventories/<inventory>/group_vars/<group>/vault.yml, "
                 "copied from vault.yml.example)")


def _placeholder(text):
    folded = text.strip().lower()
    if folded in PLACEHOLDERS:
        return True
    return any(marker in folded for marker in PLACEHOLDER_MARKERS)


def secret_problem(value, name, where=None, min_length=MIN_LENGTH):
    """Return why ``value`` (the variable ``name``) is not an acceptable key, or ``""``.

    ``where`` says where the operator sets it (default: a vaulted variable)."""
    fix = "%s and put it in %s." % (HOW_TO_GENERATE, where or DEFAULT_WHERE)
    text = "" if value is None else str(value)
    if not text.strip():
        return "%s is empty. %s" % (name, fix)
    if _placeholder(text):
        return ("%s is still the placeholder of vault.yml.example: anyone who read the repository knows it. %s"
                % (name, fix))
    if len(text) < int(min_length):
        return "%s is %d characters long; at least %d are required. %s" % (name, len(text), int(min_length), fix)
    if len(set(text)) < MIN_DISTINCT_CHARACTERS:
        return ("%s has only %d distinct characters: a pattern, not a random key. %s"
                % (name, len(set(text)), fix))
    return ""


def _is_loopback(host_ip):
    try:
        return ipaddress.ip_address(host_ip).is_loopback
    except ValueError:
        return False


def exposed_ports(ports):
    """The published ``ports`` that reach beyond loopback, each with why: ``8000:8000 (binds every address)``.

    ``ports`` are container_rollout's C([ip:]host_port:container_port[/proto]) strings; a port without an
    address binds every interface. A string that is no port spec raises ValueError."""
    exposed = []
    for spec in ports or []:
        host_ip = parse_port(spec)["host_ip"]
        if not _is_loopback(host_ip):
            exposed.append("%s (%s)" % (spec, "binds every address" if not host_ip else "%s is not loopback" % host_ip))
    return exposed


def keyless_problem(ports, name, key_variable, required_variable):
    """Return why service ``name`` may not run without a key with these published ``ports``, or ``""``.

    ``ports`` are container_rollout's C([ip:]host_port:container_port[/proto]) strings; a port without
    an address binds every interface. ``key_variable`` and ``required_variable`` name the role's
    variables in the message."""
    try:
        exposed = exposed_ports(ports)
    except ValueError as exc:
        return "%s: %s" % (name, exc)
    if not exposed:
        return ""
    return ("%s would run without an API key (%s: false) while publishing %s: anyone who reaches that address "
            "could use it. Set %s (%s), or bind only to 127.0.0.1 or ::1."
            % (name, required_variable, ", ".join(exposed), key_variable, HOW_TO_GENERATE.lower()))


def secret_env_problem(plain_env, secret_env, plain_variable, secret_variable, reserved=None):
    """Return why these environments would leak or garble a secret, or ``""``.

    ``plain_env`` is the role's plain environment (labelled, written to files, shown in diffs),
    ``secret_env`` the one container_rollout keeps secret; the variable names go in the message.
    ``reserved`` maps environment names the role sets itself (its API key) to the role variable that
    sets them: neither environment may set those, or the role's own check of that variable is bypassed."""
    problems = []
    if not isinstance(secret_env, dict):
        return "%s must be a dict of environment name to secret value, got %s" % (
            secret_variable, type(secret_env).__name__)
    for name, variable in sorted((reserved or {}).items()):
        for env_variable, env in ((secret_variable, secret_env), (plain_variable, plain_env or {})):
            if name in env:
                problems.append("%s sets %s: set %s instead (the secret policy checks it there)"
                                % (env_variable, name, variable))
    if problems:
        return "; ".join(problems)
    for key in sorted(str(k) for k in secret_env):
        if not _ENV_NAME_RE.match(key):
            problems.append("%s: %r is not an environment variable name" % (secret_variable, key))
        elif secret_env[key] is None or not str(secret_env[key]).strip():
            problems.append("%s.%s is empty (a missing vault variable?)" % (secret_variable, key))
    plain = dict(plain_env or {})
    both = sorted(set(str(k) for k in plain) & set(str(k) for k in secret_env))
    if both:
        problems.append("%s are in both %s and %s: keep each secret in %s only"
                        % (", ".join(both), plain_variable, secret_variable, secret_variable))
    named = sorted(str(k) for k in plain if SECRET_ENV_NAME_RE.search(str(k)) and str(k) not in both)
    if named:
        problems.append("%s in %s look like secrets, whose values would be stored in a container label and shown "
                        "in diffs: move them to %s (vaulted)" % (", ".join(named), plain_variable, secret_variable))
    return "; ".join(problems)


def service_secret_problems(key, key_variable, missing_message, required=True, required_variable=None,
                            service=None, ports=None, plain_env=None, secret_env=None, plain_variable=None,
                            secret_variable=None, reserved=None):
    """Every reason a service's key and secrets are refused, in the order a person fixes them; [] when none.

    A required key that is empty gets ``missing_message``; a key that is given must pass secret_problem();
    no key where none is required is allowed only on loopback ports (keyless_problem()); the environments
    must pass secret_env_problem() either way."""
    given = key is not None and str(key) != ""
    problems = []
    if required and not given:
        problems.append(missing_message)
    elif given:
        problems.append(secret_problem(key, key_variable))
    else:
        problems.append(keyless_problem(ports or [], service or key_variable, key_variable, required_variable))
    problems.append(secret_env_problem(plain_env or {}, secret_env if secret_env is not None else {},
                                       plain_variable, secret_variable, reserved))
    return [p for p in problems if p]
