# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the engine decision modules (docker_engine_facts, nvidia_runtime_facts), whose logic
is module_utils docker_engine: the runtime facts they start from and the apt key check."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


class ModuleDocFragment(object):

    # The facts of container_runtime_facts, the input of every engine decision.
    DOCUMENTATION = r"""
options:
  container_runtime:
    description: C(ansible_facts.container_runtime) from M(homelab.ai.container_runtime_facts).
    type: dict
    default: {}
"""

    # docker_engine.exit_with_key_check(); both argument specs declare
    # required_together=[("verify_key_file", "verify_key_fingerprint")].
    KEY_VERIFICATION = r"""
options:
  verify_key_file:
    description:
      - Only verify that this OpenPGP key file (an apt repository key) holds the primary key O(verify_key_fingerprint)
        (C(gpg --show-keys --with-colons)), and fail naming both fingerprints when it does not. Nothing else is
        decided; the result is RV(key_check).
      - Requires O(verify_key_fingerprint).
    type: path
  verify_key_fingerprint:
    description:
      - Expected primary key fingerprint (spaces allowed).
      - Requires O(verify_key_file).
    type: str
"""
