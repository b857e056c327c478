# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
name: preload_jinja_plugins
type: aggregate
short_description: Load the Jinja filters and tests once in the controller, before the task workers fork
version_added: 0.1.0
description:
  - ansible-core runs each task in a worker process forked from the controller. A worker that templates a
    filter or a test loads the Jinja plugins again, because the controller never did (the wrappers of every
    builtin filter and test, and, for the first C(homelab.ai) filter, every filter file of this collection
    with what it imports). On ansible-core 2.19 that is about 20 ms of CPU per worker, for most tasks of a
    no-op run (tests/bench/bench_noop_against.py measures it; see docs/noop-run.md).
  - This callback loads them in the controller when the first play starts, so that every worker forked after
    it finds them loaded. It prints nothing and changes no result; without it the playbooks do the same,
    slower.
  - A role whose C(filter_plugins) folder ansible-core adds later in the run makes the plugin loader drop its
    cache, as without this callback; the workers after it load the plugins themselves again.
  - A failure to preload is shown at verbosity 3 and changes nothing else; the task that templates the
    filter reports the real error.
requirements:
  - Enabled in C(ansible.cfg) (C(callbacks_enabled = homelab.ai.preload_jinja_plugins)); the repository's
    C(ansible.cfg) does.
"""

import importlib
import pkgutil

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader, test_loader

# This collection, from this module's name: ansible_collections.<namespace>.<name>.plugins.callback.<plugin>.
COLLECTION = ".".join(__name__.split(".")[1:3])
# The collection's Jinja plugin folders: the loader they go through, the class each file holds, its method.
JINJA_PLUGIN_KINDS = (("filter", filter_loader, "FilterModule", "filters"),
                      ("test", test_loader, "TestModule", "tests"))


def collection_jinja_plugin_names(collection, kind, class_name, method_name):
    """The fully qualified names of one kind of Jinja plugin (filter, test) a collection ships."""
    try:
        package = importlib.import_module("ansible_collections.%s.plugins.%s" % (collection, kind))
    except ImportError:
        return []
    names = []
    for dummy, module_name, is_package in pkgutil.iter_modules(package.__path__, prefix=package.__name__ + "."):
        if is_package:  # ansible-core reads the plugin files of the folder itself, not of its subpackages
            continue
        plugin_class = getattr(importlib.import_module(module_name), class_name, None)
        if plugin_class is not None:
            names.extend("%s.%s" % (collection, name) for name in getattr(plugin_class(), method_name)())
    return sorted(names)


def preload(collection=COLLECTION):
    """Load the builtin Jinja plugins' wrappers and the collection's filters and tests into this process's
    plugin loaders. Returns the collection's plugin names it resolved."""
    resolved = []
    for kind, loader, class_name, method_name in JINJA_PLUGIN_KINDS:
        list(loader.all())
        for name in collection_jinja_plugin_names(collection, kind, class_name, method_name):
            if loader.get(name) is not None:
                resolved.append(name)
    return resolved


class CallbackModule(CallbackBase):
    """Preloads the Jinja plugins once per run, in the controller."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "homelab.ai.preload_jinja_plugins"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._preloaded = False

    def v2_playbook_on_play_start(self, play):
        if self._preloaded:
            return
        self._preloaded = True
        try:
            names = preload()
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # An optimisation only: the worker that templates the plugin reports what is wrong with it.
            self._display.vvv("homelab.ai.preload_jinja_plugins: not preloaded (%s: %s)" % (type(exc).__name__, exc))
            return
        self._display.vvvv("homelab.ai.preload_jinja_plugins: %d %s filters and tests preloaded" % (len(names), COLLECTION))
