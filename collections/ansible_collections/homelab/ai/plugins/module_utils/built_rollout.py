# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container_rollout's O(build): build the image (image_build's stages, its check gate and retention), then
roll out what the build left under its name, in one module run.

A service's role used to run image_build and then container_rollout: two module runs (each a Python start-up,
Ansible's and the Docker SDK's imports, a payload to build) for what is one step to the operator. The two
stages keep their own code and locks; this only orders them and joins their results. A build that fails
raises before the rollout is constructed, so the running container is never touched.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.homelab.ai.plugins.module_utils.container_rollout import run_container_rollout
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import HomelabDockerError, get_client
from ansible_collections.homelab.ai.plugins.module_utils.image_build import run_image_build

# What the build takes from the rollout's own options: one daemon, one lock folder, one lock timeout.
SHARED_WITH_BUILD = ("docker_host", "state_dir", "lock_timeout")


def run_built_rollout(params, check_mode=False, client_factory=get_client,
                      build=run_image_build, rollout=run_container_rollout):
    """container_rollout's work: the rollout alone, or with O(build) the build and then the rollout of its image.

    ``build`` and ``rollout`` are the two stages (replaceable in unit tests). Returns the rollout's result with
    ``build`` (the build's result) added; ``changed`` when either changed something; in diff mode both diffs."""
    if not params.get("build"):
        return rollout(params, check_mode=check_mode, client_factory=client_factory)
    if params.get("state", "started") != "started":
        raise HomelabDockerError("build applies to state=started only (state is %s): a container that is removed or "
                                 "rolled back runs no new image. Leave build out for this state." % params["state"])
    build_params = dict(params["build"], **dict((key, params.get(key)) for key in SHARED_WITH_BUILD))
    built = _build(build, build_params, params["name"], check_mode, client_factory)
    if check_mode and built.get("changed") and not built.get("previous_image_id"):
        return _preview_first_build(params["name"], built)
    rolled = rollout(dict(params, image=built.get("image_ref") or build_params["name"]),
                     check_mode=check_mode, client_factory=client_factory)
    return _joined(built, rolled)


def _build(build, build_params, container, check_mode, client_factory):
    """The build stage; a failure says that nothing was rolled out."""
    try:
        return build(build_params, check_mode=check_mode, client_factory=client_factory)
    except HomelabDockerError as exc:
        raise HomelabDockerError("%s Nothing was rolled out: container %s was left as it was." % (exc.msg, container),
                                 **dict(exc.details, stage="build"))


def _preview_first_build(container, built):
    """Check mode, and nothing is tagged under the build's name yet: the rollout has no image to compare with, so
    say what a real run does instead of failing on the missing image."""
    name = built.get("image_ref") or "the image"
    return {"changed": True, "rolled_back": False, "previous_image_id": None, "container": None,
            "actions": ["would build %s, then create or replace %s from it" % (name, container)],
            "build": _without(built, "diff", "warnings"), "warnings": built.get("warnings", []),
            "diff": [built["diff"]] if built.get("diff") else []}


def _joined(built, rolled):
    """The rollout's result with the build's beside it: one changed, both diffs, every warning."""
    result = dict(rolled)
    result["build"] = _without(built, "diff", "warnings")
    result["changed"] = bool(built.get("changed") or rolled.get("changed"))
    diffs = [d for d in (built.get("diff"), rolled.get("diff")) if d]
    if diffs:
        result["diff"] = diffs
    warnings = built.get("warnings", []) + rolled.get("warnings", [])
    if warnings:
        result["warnings"] = warnings
    return result


def _without(result, *keys):
    return dict((key, value) for key, value in result.items() if key not in keys)
