# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files vllm_plan writes (write_files, module_utils/vllm_plan_files.py) hold the bytes the vllm role's Jinja wrote before the module did
(Ansible's to_nice_json, the models_json filter), so a host deployed by an earlier release is not rewritten:
checked on the record's plan (Qwen3-32B-AWQ on a WSL2 RTX 3090) and the local profile's CPU plan."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import os

import pytest
from ansible.plugins.filter.core import to_nice_json

from ansible_collections.homelab.ai.plugins.filter.models_json import models_json
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as planner
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan_files as files
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.inventory_models import GAMING, LOCAL, inventory_model
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.test_vllm_plan import rtx3090_wsl2, wsl2_facts

WRITE = {"state_dir": "/var/lib/homelab/vllm", "status_dir": "/var/lib/homelab/status", "image": "vllm/vllm-openai:v0.32.0",
         "extra_args": ["--seed", "7"], "extra_env": {"VLLM_LOGGING_LEVEL": "DEBUG"}}


def cases():
    gaming = {"qwen3-32b-awq": inventory_model(GAMING, "qwen3-32b-awq")}
    local = {"tiny-qwen2": inventory_model(LOCAL, "tiny-qwen2")}
    no_wsl = {"is_wsl": False, "wsl_version": None, "kernel_release": "6.1.0", "pin_memory": True}
    return [("qwen3-32b-awq", gaming, planner.plan(dict(gaming["qwen3-32b-awq"]), [rtx3090_wsl2()], wsl2_facts(), "0.32.0",
                                                   name="qwen3-32b-awq")),
            ("tiny-qwen2", local, planner.plan(dict(local["tiny-qwen2"]), [], no_wsl, "0.32.0", name="tiny-qwen2"))]


@pytest.mark.parametrize("name, registry, planned", cases(), ids=["gaming", "local"])
def test_the_files_hold_what_the_roles_jinja_wrote(name, registry, planned):
    directories, written = files.entries(registry, name, planned, WRITE)
    by_name = dict((os.path.basename(f["path"]), f["content"]) for f in written)
    # roles/vllm/tasks/plan.yml before 2026-12-07, filter by filter.
    launch = {"image": WRITE["image"], "model": name, "args": planned["args"] + WRITE["extra_args"],
              "env": dict(planned["env"], **WRITE["extra_env"]), "device": planned["device"],
              "vllm_version": planned["vllm_version"]}
    assert by_name["launch.json"] == to_nice_json(launch, sort_keys=True) + "\n"
    assert by_name["plan.json"] == to_nice_json(
        dict((k, v) for k, v in planned.items() if k != "replan"), sort_keys=True) + "\n"
    assert by_name["models.json"] == models_json(registry, {name: planned})
    assert [d["path"] for d in directories] == [WRITE["state_dir"], WRITE["status_dir"]]


def test_one_folder_for_both_is_listed_once():
    name, registry, planned = cases()[1]
    directories, _written = files.entries(registry, name, planned, dict(WRITE, status_dir=WRITE["state_dir"] + "/"))
    assert len(directories) == 1
