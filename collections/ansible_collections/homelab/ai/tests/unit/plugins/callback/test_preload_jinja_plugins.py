# -*- coding: utf-8 -*-
"""The preload_jinja_plugins callback: a task worker forked after it loads no Jinja plugin again.

ansible-core forks a worker per task; each one that templates a filter used to import the builtin filter and
test plugins and every homelab.ai filter file anew (about 20 ms of CPU per worker on ansible-core 2.19). The
probe below is a controller in miniature: it initialises the plugin loader, runs the callback's play start
(or not, the control), forks, and the child (the worker) resolves every homelab.ai filter and a few builtin
filters and tests, reporting the modules that resolving imported.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import subprocess
import sys

from ansible_collections.homelab.ai.plugins.callback import preload_jinja_plugins

COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *([".."] * 7)))

PROBE = r"""
import json, os, sys
from ansible.plugins.loader import init_plugin_loader, filter_loader, test_loader
init_plugin_loader([sys.argv[1]])
if sys.argv[2] == "preload":
    from ansible_collections.homelab.ai.plugins.callback.preload_jinja_plugins import CallbackModule
    callback = CallbackModule()
    callback.v2_playbook_on_play_start(None)
    callback.v2_playbook_on_play_start(None)  # a second play: nothing more to do
read_end, write_end = os.pipe()
if os.fork() == 0:  # the worker
    before = set(sys.modules)
    from ansible_collections.homelab.ai.plugins.callback.preload_jinja_plugins import collection_jinja_plugin_names
    filters = collection_jinja_plugin_names("homelab.ai", "filter", "FilterModule", "filters")
    resolved = [n for n in filters + ["to_nice_json", "ansible.builtin.combine"] if filter_loader.get(n) is not None]
    resolved += [n for n in ["version", "ansible.builtin.match"] if test_loader.get(n) is not None]
    os.write(write_end, json.dumps({"filters": filters, "resolved": resolved,
                                    "imported": sorted(set(sys.modules) - before)}).encode())
    os._exit(0)
os.close(write_end)
os.wait()
sys.stdout.write(os.read(read_end, 1 << 20).decode())
"""


def worker_after(mode):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (COLLECTIONS_ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-c", PROBE, COLLECTIONS_ROOT, mode], capture_output=True, text=True,
                          env=env, check=False)
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def test_a_worker_forked_without_the_preload_loads_the_plugins_itself():
    """The control: what the callback saves is there to save."""
    worker = worker_after("none")
    imported = worker["imported"]
    assert "homelab.ai.gpu_host_verdict" in worker["filters"] and "homelab.ai.smoke_report" in worker["filters"]
    assert len(worker["resolved"]) == len(worker["filters"]) + 4
    assert "ansible_collections.homelab.ai.plugins.filter.gpu_host_verdict" in imported
    assert any(name.startswith("ansible.plugins.filter.core") for name in imported), imported
    assert any(name.startswith("ansible.plugins.test.core") for name in imported), imported


def test_a_worker_forked_after_the_preload_imports_no_plugin():
    worker = worker_after("preload")
    assert len(worker["resolved"]) == len(worker["filters"]) + 4
    assert worker["imported"] == [], (
        "a worker forked after the preload still imported %s: preload() misses them" % worker["imported"])


def test_the_collection_is_read_from_the_plugin_name():
    assert preload_jinja_plugins.COLLECTION == "homelab.ai"
    assert preload_jinja_plugins.collection_jinja_plugin_names("homelab.ai", "test", "TestModule", "tests") == []
    assert preload_jinja_plugins.collection_jinja_plugin_names("homelab.nothing", "filter", "FilterModule", "filters") == []


class RecordingDisplay(object):
    """The display a callback writes to, keeping what it was given (CallbackBase reads its verbosity)."""
    verbosity = 0

    def __init__(self):
        self.lines = []

    def vvv(self, msg, host=None):
        self.lines.append(("vvv", msg))

    def vvvv(self, msg, host=None):
        self.lines.append(("vvvv", msg))


def test_a_failed_preload_is_shown_at_verbosity_3_and_stops_nothing(monkeypatch):
    def broken(collection=preload_jinja_plugins.COLLECTION):
        raise ImportError("no module named 'ansible_collections.homelab.ai.plugins.filter.broken'")

    monkeypatch.setattr(preload_jinja_plugins, "preload", broken)
    display = RecordingDisplay()
    callback = preload_jinja_plugins.CallbackModule(display=display)
    assert callback.v2_playbook_on_play_start(None) is None
    assert display.lines == [("vvv", "homelab.ai.preload_jinja_plugins: not preloaded (ImportError: no module named "
                                     "'ansible_collections.homelab.ai.plugins.filter.broken')")]
    callback.v2_playbook_on_play_start(None)  # tried once per run, not per play
    assert len(display.lines) == 1
