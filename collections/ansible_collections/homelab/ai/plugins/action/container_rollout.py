# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of homelab.ai.container_rollout: the files of O(build) listed with a controller src are read
here and travel to the module as content, as homelab.ai.image_build's action does (plugin_utils build_files).
Without O(build) the task's arguments go to the module as they are."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.homelab.ai.plugins.plugin_utils.build_files import BuildFilesAction


class ActionModule(BuildFilesAction):
    MODULE = "homelab.ai.container_rollout"
    BUILD_OPTION = "build"
