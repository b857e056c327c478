# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files a vLLM plan is served from, as homelab.ai.vllm_plan writes them (option ``write_files``) in
the run that plans: llm-manager's ``models.json`` and ``launch.json`` in the state folder, the status
page's ``plan.json``. Written with homelab.ai.state_files' code (only when the content differs, atomically,
check mode and diff alike)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

from ansible_collections.homelab.ai.plugins.module_utils import model_registry

FOLDER_MODE = "0755"
FILE_MODE = "0644"


def nice_json(data):
    """JSON as Ansible's ``to_nice_json`` spells it (4 spaces, sorted keys), with a final newline: the
    bytes the vllm role wrote before the module did, so an upgrade rewrites nothing."""
    return json.dumps(data, indent=4, sort_keys=True, separators=(",", ": ")) + "\n"


def launch(plan, name, image, extra_args=None, extra_env=None):
    """launch.json: what llm-manager starts, the plan's arguments and environment with the extras after them."""
    env = dict(plan["env"])
    env.update(extra_env or {})
    return {"image": image, "model": name, "args": list(plan["args"]) + list(extra_args or []), "env": env,
            "device": plan["device"], "vllm_version": plan["vllm_version"]}


def plan_document(plan):
    """plan.json: the plan without its re-plan note, so a re-run that plans the same writes nothing."""
    return dict((key, value) for key, value in plan.items() if key != "replan")


def entries(registry, name, plan, write):
    """state_files' directories and files for ``write`` (state_dir, status_dir, image, extra_args, extra_env).

    ``registry`` is the whole model registry (validated again here: models.json lists every entry, with the
    planned kernel and context for ``name``)."""
    models = model_registry.dumps(model_registry.manager_json(model_registry.validate(registry), {name: plan}))
    state_dir, status_dir = write["state_dir"], write["status_dir"]
    # One entry when both are the same folder: state_files refuses a path listed twice.
    folders = [state_dir] if os.path.normpath(status_dir) == os.path.normpath(state_dir) else [state_dir, status_dir]
    directories = [{"path": folder, "mode": FOLDER_MODE} for folder in folders]
    files = [
        {"path": os.path.join(state_dir, "models.json"), "content": models, "mode": FILE_MODE},
        {"path": os.path.join(state_dir, "launch.json"), "mode": FILE_MODE,
         "content": nice_json(launch(plan, name, write["image"], write.get("extra_args"), write.get("extra_env")))},
        {"path": os.path.join(status_dir, "plan.json"), "content": nice_json(plan_document(plan)), "mode": FILE_MODE},
    ]
    return directories, files
