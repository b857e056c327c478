# -*- coding: utf-8 -*-
"""Loading the collection's filter plugins must stay cheap.

Ansible runs each task in a forked worker, and the first homelab.ai filter a worker templates makes the
plugin loader import every filter file of the collection. A filter that imported the Docker SDK (through
container_rollout) cost every such task about 80 ms - more than a second of a no-op stack play. The filters
take what they need from module_utils that use the standard library only (container_spec, not
container_rollout).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import subprocess
import sys

FILTER_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter"))
COLLECTIONS_ROOT = os.path.abspath(os.path.join(FILTER_DIR, "..", "..", "..", "..", ".."))
# What a filter worker must not import: the Docker SDK and the HTTP stack under it.
HEAVY = ("docker", "requests", "urllib3")

PROBE = r"""
import importlib, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    importlib.import_module("ansible_collections.homelab.ai.plugins.filter." + name)
print(json.dumps(sorted(m.split(".")[0] for m in set(sys.modules) - before)))
"""


def filter_plugins():
    return sorted(f[:-3] for f in os.listdir(FILTER_DIR) if f.endswith(".py") and not f.startswith("_"))


def test_every_filter_plugin_loads_without_the_docker_sdk():
    names = filter_plugins()
    assert "http_healthcheck" in names and "secret_policy" in names  # the two that used to pull it in
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (COLLECTIONS_ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-c", PROBE] + names, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    imported = set(json.loads(proc.stdout))
    assert not imported & set(HEAVY), (
        "loading the filter plugins imported %s: a filter imports a module_utils that needs the Docker SDK; "
        "move what the filter needs into a standard-library module_utils" % sorted(imported & set(HEAVY)))
