# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container_rollout's O(state_files): the files that describe what a container serves (the vLLM plan's
plan.json, launch.json and models.json), made right only once it serves, and remembered per deployment so that
state=rolled_back puts back the files of the deployment it returns to.

``<state_dir>/<name>.served-files.json`` holds, by container ID, the files of the deployment that serves
(``serving``) and of the one it replaced, kept as ``<name>-rollback`` (``rollback``). Only whole files are
remembered; a history kept with ``append`` is left to grow."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

from ansible_collections.homelab.ai.plugins.module_utils.built_rollout import run_built_rollout
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import HomelabDockerError
from ansible_collections.homelab.ai.plugins.module_utils.state_files import (
    StateFilesError, apply_all, plan_all, plan_file, write_atomically)

RECORD_SUFFIX = ".served-files.json"


def run_serving_rollout(module, params, check_mode=False, rollout=run_built_rollout):
    """container_rollout's whole work: the (built) rollout, then the files that describe what now serves.

    O(state_files) are checked before anything is touched and written only after the rollout returned: after the
    health gate passed, or when the container already served unchanged. A rollout that fails raises first, so the
    files still describe the container that serves (the one it restored). A rollback that succeeded writes back
    the files remembered for the deployment it returned to; in check mode, a rollback shows those it would write.
    ``module`` writes (check mode, diff, atomic moves)."""
    planned = planned_state_files(params)
    result = rollout(params, check_mode=check_mode)
    if planned is not None:
        result = with_state_files(module, params["name"], result, planned, "its state_files were not all written")
        if not check_mode:
            remember(module, params, result)
    elif params.get("state") == "rolled_back" and result.get("rolled_back_to") and \
            (result.get("rolled_back") or check_mode):
        result = restore_rolled_back(module, params, result, check_mode)
    return result


def planned_state_files(params):
    """O(state_files) as state_files plans them; None when not given. Raises HomelabDockerError naming the fault."""
    given = params.get("state_files")
    if given is None:
        return None
    if params.get("state", "started") != "started":
        raise HomelabDockerError("state_files applies to state=started only (state is %s): they describe what a "
                                 "started container serves. Leave them out for this state." % params["state"])
    unknown = sorted(set(given) - {"directories", "files"})
    if unknown:
        raise HomelabDockerError("state_files: unknown key(s) %s; it takes directories and files, as "
                                 "homelab.ai.state_files does." % ", ".join(unknown))
    try:
        return plan_all(given.get("directories") or [], given.get("files") or [])
    except StateFilesError as exc:
        raise HomelabDockerError("state_files: %s Nothing was rolled out." % exc)


def with_state_files(module, name, result, planned, failure):
    """The rollout's result with ``planned`` made right: C(state_files_changed), C(changed), their diffs."""
    try:
        written = apply_all(module, *planned)
    except StateFilesError as exc:
        raise HomelabDockerError("container %s serves, but %s: %s The container was left serving; run again once "
                                 "that is fixed." % (name, failure, exc), changed=True,
                                 state_files_changed=exc.changed_paths, container=result.get("container"))
    result = dict(result, state_files_changed=written["changed_paths"])
    result["changed"] = bool(result.get("changed") or written["changed"])
    if written.get("diff"):
        before = result.get("diff")
        result["diff"] = (before if isinstance(before, list) else [before] if before else []) + written["diff"]
    return result


def record_path(params):
    return os.path.join(params["state_dir"], params["name"] + RECORD_SUFFIX)


def read_record(params):
    """The record of ``params["name"]``; {} when there is none or it cannot be read (it is rewritten then)."""
    try:
        with open(record_path(params)) as handle:
            record = json.load(handle)
    except (IOError, OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def write_record(module, params, record):
    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    plan = plan_file({"path": record_path(params), "content": text}, 0)
    if plan["write"]:
        write_atomically(plan, module.atomic_move)


def remember(module, params, result):
    """Record the whole files of O(state_files) for the container that now serves; on a replacement, the record
    of the replaced deployment becomes the rollback's."""
    serving_id = (result.get("container") or {}).get("id")
    if not serving_id:
        return
    files = dict((os.path.normpath(entry["path"]), entry["content"])
                 for entry in params["state_files"].get("files") or [] if entry.get("content") is not None)
    serving = {"container_id": serving_id, "files": files}
    record = read_record(params)
    if (record.get("serving") or {}).get("container_id") == serving_id:
        updated = dict(record, serving=serving)
    else:
        updated = {"serving": serving, "rollback": record.get("serving")}
    if updated != record:
        write_record(module, params, updated)


def restore_rolled_back(module, params, result, check_mode=False):
    """After a rollback that succeeded (in check mode, before the one it would do): the files remembered for the
    deployment it returns to, written back (would be), and the record's two deployments swapped. Without a record
    for that deployment, a warning says the files were (would be) left as they were."""
    record = read_record(params)
    if not record:
        return result
    back = record.get("rollback") or {}
    returning_to = result["rolled_back_to"]["id"]
    if back.get("container_id") != returning_to:
        verb, left = ("would be", "would be") if check_mode else ("was", "were")
        warning = ("%s %s rolled back, but %s holds no files for the deployment it returns to (container %s): its "
                   "state files %s left as they were and may describe the deployment it replaced. The next rollout "
                   "with state_files writes them again."
                   % (params["name"], verb, record_path(params), returning_to, left))
        return dict(result, warnings=result.get("warnings", []) + [warning])
    entries = [{"path": path, "content": content} for path, content in sorted(back["files"].items())]
    try:
        planned = plan_all([], entries)
    except StateFilesError as exc:
        raise HomelabDockerError("container %s %s, but its remembered state files cannot be written back: %s"
                                 % (params["name"], "would be rolled back" if check_mode else
                                    "was rolled back and serves", exc), **dict(result, changed=True))
    result = with_state_files(module, params["name"], result, planned, "its remembered state files were not all "
                              "written back")
    if not check_mode:
        write_record(module, params, {"serving": back, "rollback": record.get("serving")})
    return result
