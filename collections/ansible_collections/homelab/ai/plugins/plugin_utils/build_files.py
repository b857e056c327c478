# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of a build's O(files) (homelab.ai.image_build, and homelab.ai.container_rollout's O(build)): the
files listed with a controller src are read here (a role's files/ first, as ansible.builtin.copy looks them up)
and travel to the module as content, so the module hashes every file where it lies and nothing is copied into a
build folder to decide that nothing changed. Entries with content or remote_src go to the module as they are."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash


class BuildFilesAction(ActionBase):
    """The action of a module with a build's O(files): reads their controller files, then runs ``MODULE``.

    ``BUILD_OPTION`` names the dict option that holds the build (container_rollout's C(build)), or is None when the
    build's options are the module's own (image_build). Without files the arguments go to the module as they are."""

    TRANSFERS_FILES = False
    MODULE = None
    BUILD_OPTION = None

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        self._supports_async = False
        result = super(BuildFilesAction, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        build = args.get(self.BUILD_OPTION) if self.BUILD_OPTION else args
        if isinstance(build, dict) and build.get("files") is not None:
            try:
                build = dict(build, files=read_controller_files(self, build["files"]))
            except AnsibleError as exc:
                prefix = "%s: " % self.BUILD_OPTION if self.BUILD_OPTION else ""
                result.update(failed=True, msg=prefix + to_text(exc))
                return result
            if self.BUILD_OPTION:
                args[self.BUILD_OPTION] = build
            else:
                args = build
        return merge_hash(result, self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))


def read_controller_files(action, files):
    """``files`` with each controller src read as content; ``action`` (the running ActionBase) finds them.
    Raises AnsibleError naming the entry and the fix."""
    if not isinstance(files, list):
        return files  # the module's argument spec says what is wrong
    return [_read_controller_file(action, index, item) for index, item in enumerate(files)]


def _read_controller_file(action, index, item):
    if not isinstance(item, dict) or item.get("src") is None or item.get("content") is not None:
        return item
    if _remote_src(item.get("remote_src")):
        return item
    where = "files[%d] (dest %s)" % (index, item.get("dest"))
    try:
        path = action._find_needle("files", item["src"])  # pylint: disable=protected-access
    except AnsibleError as exc:
        raise AnsibleError("%s: src %s is not on the controller (%s). Put it in the role's files/ or give "
                           "its path; for a file on the managed host set remote_src: true."
                           % (where, item["src"], exc))
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AnsibleError("%s: src %s is not UTF-8 text; a binary file belongs on the managed host "
                           "(remote_src: true)." % (where, path))
    resolved = dict((k, v) for k, v in item.items() if k not in ("src", "remote_src"))
    resolved["content"] = text
    if not resolved.get("mode"):
        resolved["mode"] = "0755" if os.stat(path).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH) else "0644"
    return resolved


def _remote_src(value):
    try:
        return boolean(value if value is not None else False, strict=True)
    except TypeError:
        raise AnsibleError("remote_src must be a boolean, got %r" % (value,))
