# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of homelab.ai.container_rollout: the files of O(build) listed with a controller src are read
here and travel to the module as content, as homelab.ai.image_build's action does (plugin_utils build_files).
Without O(build) the task's arguments go to the module as they are."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.homelab.ai.plugins.plugin_utils.build_files import read_controller_files


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        self._supports_async = False
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        build = args.get("build")
        if isinstance(build, dict) and build.get("files") is not None:
            try:
                args["build"] = dict(build, files=read_controller_files(self, build["files"]))
            except AnsibleError as exc:
                result.update(failed=True, msg="build: " + to_text(exc))
                return result
        return merge_hash(result, self._execute_module(module_name="homelab.ai.container_rollout",
                                                       module_args=args, task_vars=task_vars))
