# -*- coding: utf-8 -*-
"""The model entries of the repository's inventories, as the vllm role reads them.

Tests that plan for the real models load them from here instead of keeping copies (copies drifted:
the tiny model's head_dim and dtype had changed in the inventory, not in the test).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import yaml

# tests/unit/plugins/module_utils -> the repository root (collections/ansible_collections/homelab/ai/...)
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 8))
GAMING = "inventories/homelab/group_vars/gaming/vllm.yml"
LOCAL = "inventories/local/group_vars/all/vllm.yml"


def inventory_model(inventory_file, name):
    """A copy of ``vllm_models[name]`` from one of the repository's group_vars files."""
    path = os.path.join(REPO, inventory_file)
    if not os.path.isfile(path):
        raise AssertionError("%s not found: these tests read the model entries from the repository's inventories"
                             % path)
    with open(path) as handle:
        models = yaml.safe_load(handle)["vllm_models"]
    if name not in models:
        raise AssertionError("%s has no vllm_models entry %r (it has: %s)" % (path, name, ", ".join(models)))
    return dict(models[name])
