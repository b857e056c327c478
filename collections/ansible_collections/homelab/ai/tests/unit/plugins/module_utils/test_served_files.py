# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""served_files: container_rollout's state_files are checked before the rollout, written only after it returned,
remembered per deployment, and written back by a rollback (the rollout stage is recorded here; against a real
daemon in tests/docker_modules/test_container_rollout.py)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import served_files as sv
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import HomelabDockerError


class FileWriter(object):
    """What state_files' apply_all asks of a module for files without mode or owner: check mode, diff and a move."""

    def __init__(self, check_mode=False, diff=True):
        self.check_mode, self._diff = check_mode, diff

    @staticmethod
    def atomic_move(src, dest):
        os.rename(src, dest)


def params(tmp_path, content="v1\n", **extra):
    (tmp_path / "rollouts").mkdir(exist_ok=True)
    return dict({"name": "homelab-vllm", "image": "homelab/vllm-cpu:0.32.0", "state": "started",
                 "state_dir": str(tmp_path / "rollouts"),
                 "state_files": {"directories": [{"path": str(tmp_path / "status")}],
                                 "files": [{"path": str(tmp_path / "status" / "plan.json"), "content": content}]}},
                **extra)


def serving(container_id, changed=False):
    def rollout(params, check_mode=False):
        return {"changed": changed, "actions": [], "container": {"id": container_id},
                "diff": {"before": {"config": 1}, "after": {"config": 1}}}
    return rollout


def record(tmp_path):
    with open(str(tmp_path / "rollouts" / ("homelab-vllm" + sv.RECORD_SUFFIX))) as handle:
        return json.load(handle)


def test_state_files_are_written_after_the_rollout_returned_and_join_its_result(tmp_path):
    seen = []

    def rollout(params, check_mode=False):
        seen.append(os.path.exists(str(tmp_path / "status")))
        return serving("c1")(params)

    result = sv.run_serving_rollout(FileWriter(), params(tmp_path), rollout=rollout)
    status = tmp_path / "status"
    assert seen == [False] and (status / "plan.json").read_text() == "v1\n"   # after the rollout
    assert result["changed"] and result["state_files_changed"] == [str(status), str(status / "plan.json")]
    assert result["diff"][0] == {"before": {"config": 1}, "after": {"config": 1}} and len(result["diff"]) == 2
    again = sv.run_serving_rollout(FileWriter(), params(tmp_path), rollout=serving("c1"))
    assert not again["changed"] and again["state_files_changed"] == []


def test_a_failed_rollout_writes_no_state_files(tmp_path):
    def rollout(params, check_mode=False):
        raise HomelabDockerError("the health gate failed; the previous container was restored", rolled_back=True)

    with pytest.raises(HomelabDockerError, match="health gate failed"):
        sv.run_serving_rollout(FileWriter(), params(tmp_path), rollout=rollout)
    assert os.listdir(str(tmp_path)) == ["rollouts"] and os.listdir(str(tmp_path / "rollouts")) == []


@pytest.mark.parametrize("extra,message", [
    ({"state": "absent"}, "state_files applies to state=started only (state is absent)"),
    ({"state_files": {"file": []}}, "state_files: unknown key(s) file; it takes directories and files"),
    ({"state_files": {"files": [{"path": "plan.json", "content": "x"}]}},
     "state_files: files[0]: path 'plan.json' must be absolute. Nothing was rolled out."),
])
def test_state_files_that_cannot_be_written_are_refused_before_the_rollout(tmp_path, extra, message):
    def rollout(params, check_mode=False):
        raise AssertionError("the rollout ran")

    with pytest.raises(HomelabDockerError) as refused:
        sv.run_serving_rollout(FileWriter(), params(tmp_path, **extra), rollout=rollout)
    assert message in refused.value.msg


def test_state_files_that_fail_to_write_say_the_container_serves(tmp_path):
    files = {"files": [{"path": str(tmp_path / "missing" / "plan.json"), "content": "x"}]}
    with pytest.raises(HomelabDockerError) as failed:
        sv.run_serving_rollout(FileWriter(), params(tmp_path, state_files=files), rollout=serving("c1", changed=True))
    assert failed.value.msg.startswith("container homelab-vllm serves, but its state_files were not all written: "
                                       "the folder of %s does not exist" % (tmp_path / "missing" / "plan.json"))
    assert failed.value.details["changed"] and failed.value.details["container"] == {"id": "c1"}


def test_each_deployment_is_remembered_and_a_replacement_keeps_the_replaced_one_for_rollback(tmp_path):
    plan = str(tmp_path / "status" / "plan.json")
    sv.run_serving_rollout(FileWriter(), params(tmp_path, "v1\n"), rollout=serving("c1"))
    assert record(tmp_path) == {"serving": {"container_id": "c1", "files": {plan: "v1\n"}}, "rollback": None}
    sv.run_serving_rollout(FileWriter(), params(tmp_path, "v1b\n"), rollout=serving("c1"))   # the files alone
    assert record(tmp_path) == {"serving": {"container_id": "c1", "files": {plan: "v1b\n"}}, "rollback": None}
    sv.run_serving_rollout(FileWriter(), params(tmp_path, "v2\n"), rollout=serving("c2", changed=True))
    assert record(tmp_path) == {"serving": {"container_id": "c2", "files": {plan: "v2\n"}},
                                "rollback": {"container_id": "c1", "files": {plan: "v1b\n"}}}
    sv.run_serving_rollout(FileWriter(check_mode=True), params(tmp_path, "v3\n"), rollout=serving("c3"), check_mode=True)
    assert record(tmp_path)["serving"]["container_id"] == "c2"   # check mode remembers nothing


def rolled_back_to(container_id, check_mode=False):
    """container_rollout's result for state=rolled_back: the container it returned to (in check mode, would)."""
    def rollout(params, check_mode=check_mode):
        return {"changed": True, "rolled_back": not check_mode, "actions": [], "rolled_back_to": {"id": container_id},
                "container": {"id": "c-serving" if check_mode else container_id}}
    return rollout


def test_a_rollback_writes_back_the_files_of_the_deployment_it_returns_to_and_back_again(tmp_path):
    plan = tmp_path / "status" / "plan.json"
    sv.run_serving_rollout(FileWriter(), params(tmp_path, "v1\n"), rollout=serving("c1"))
    sv.run_serving_rollout(FileWriter(), params(tmp_path, "v2\n"), rollout=serving("c2", changed=True))

    back = dict(params(tmp_path), state="rolled_back", state_files=None)
    result = sv.run_serving_rollout(FileWriter(), back, rollout=rolled_back_to("c1"))
    assert plan.read_text() == "v1\n" and result["state_files_changed"] == [str(plan)]
    assert record(tmp_path)["serving"]["container_id"] == "c1" and record(tmp_path)["rollback"]["container_id"] == "c2"
    sv.run_serving_rollout(FileWriter(), back, rollout=rolled_back_to("c2"))
    assert plan.read_text() == "v2\n" and record(tmp_path)["serving"]["container_id"] == "c2"

    stranger = sv.run_serving_rollout(FileWriter(), back, rollout=rolled_back_to("c9"))
    assert plan.read_text() == "v2\n" and "state_files_changed" not in stranger
    assert stranger["warnings"][0].startswith("homelab-vllm was rolled back, but %s holds no files for the "
                                              "deployment it returns to (container c9): its state files were left"
                                              % (tmp_path / "rollouts" / "homelab-vllm.served-files.json"))


def test_a_rollback_in_check_mode_shows_the_files_it_would_write_back_and_writes_nothing(tmp_path):
    plan = tmp_path / "status" / "plan.json"
    sv.run_serving_rollout(FileWriter(), params(tmp_path, "v1\n"), rollout=serving("c1"))
    sv.run_serving_rollout(FileWriter(), params(tmp_path, "v2\n"), rollout=serving("c2", changed=True))
    before = record(tmp_path)
    back = dict(params(tmp_path), state="rolled_back", state_files=None)

    preview = sv.run_serving_rollout(FileWriter(check_mode=True), back, check_mode=True,
                                     rollout=rolled_back_to("c1", check_mode=True))
    assert preview["changed"] and preview["state_files_changed"] == [str(plan)]
    assert preview["diff"] == [{"before": "v2\n", "after": "v1\n", "before_header": str(plan),
                                "after_header": str(plan)}], preview["diff"]
    assert plan.read_text() == "v2\n" and record(tmp_path) == before        # nothing written, nothing swapped

    stranger = sv.run_serving_rollout(FileWriter(check_mode=True), back, check_mode=True,
                                      rollout=rolled_back_to("c9", check_mode=True))
    assert "state_files_changed" not in stranger and stranger["warnings"][0].startswith(
        "homelab-vllm would be rolled back, but ") and "its state files would be left as they were" in \
        stranger["warnings"][0]


def test_a_service_without_state_files_is_rolled_back_without_a_word_about_them(tmp_path):
    for check_mode in (True, False):
        result = sv.run_serving_rollout(FileWriter(check_mode), dict(params(tmp_path), state="rolled_back",
                                                                     state_files=None),
                                        rollout=rolled_back_to("c1", check_mode), check_mode=check_mode)
        assert "warnings" not in result and "state_files_changed" not in result
