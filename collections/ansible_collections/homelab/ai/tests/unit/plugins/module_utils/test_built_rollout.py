# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""built_rollout: how container_rollout's O(build) orders the build and the rollout and joins their results,
with both stages recorded (each stage's own behaviour is tested in test_image_build.py and
test_container_rollout.py; both together against a real daemon in tests/docker_modules/test_built_rollout.py).
Also the build options' spec and checks that image_build and container_rollout share."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.homelab.ai.plugins.module_utils import built_rollout as br
from ansible_collections.homelab.ai.plugins.module_utils import image_build as ib
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import HomelabDockerError

BUILD = {"name": "homelab/dashboard:latest", "files": [{"dest": "Dockerfile", "content": "FROM scratch\n"}]}


class Stages(object):
    """The two stages, recorded: what each was called with, what each returns or raises."""

    def __init__(self, built=None, rolled=None, build_error=None):
        self.calls = []
        self.built = built if built is not None else {
            "changed": False, "built": False, "image_ref": "homelab/dashboard:latest", "previous_image_id": "sha256:a",
            "diff": {"before": {"inputs_hash": "h"}, "after": {"inputs_hash": "h"}}}
        self.rolled = rolled if rolled is not None else {
            "changed": False, "actions": [], "image_id": "sha256:a", "diff": {"before": {}, "after": {}}}
        self.build_error = build_error

    def build(self, params, check_mode=False, client_factory=None):
        self.calls.append(("build", dict(params), check_mode))
        if self.build_error:
            raise self.build_error
        return dict(self.built)

    def rollout(self, params, check_mode=False, client_factory=None):
        self.calls.append(("rollout", dict(params), check_mode))
        return dict(self.rolled)

    def run(self, params, check_mode=False):
        return br.run_built_rollout(params, check_mode=check_mode, client_factory=None,
                                    build=self.build, rollout=self.rollout)


def params(**extra):
    p = {"name": "homelab-dashboard", "image": None, "state": "started", "build": dict(BUILD),
         "docker_host": "unix:///run/docker.sock", "state_dir": "/var/lib/homelab/rollouts", "lock_timeout": 30}
    p.update(extra)
    return p


def test_without_build_the_rollout_runs_alone_on_its_own_params():
    stages = Stages()
    p = params(build=None, image="homelab/dashboard:latest")
    assert stages.run(p) == stages.rolled
    assert stages.calls == [("rollout", p, False)]


def test_the_build_runs_first_with_the_rollouts_daemon_and_locks_then_its_image_is_rolled_out():
    stages = Stages(built=dict(Stages().built, image_ref="registry.lan/homelab/dashboard@sha256:d"))
    result = stages.run(params())
    (build_kind, build_params, dummy), (roll_kind, roll_params, dummy) = stages.calls
    assert (build_kind, roll_kind) == ("build", "rollout")
    assert build_params == dict(BUILD, docker_host="unix:///run/docker.sock", state_dir="/var/lib/homelab/rollouts",
                                lock_timeout=30)
    assert roll_params["image"] == "registry.lan/homelab/dashboard@sha256:d"
    assert result["build"]["image_ref"] == "registry.lan/homelab/dashboard@sha256:d"
    assert "diff" not in result["build"] and result["changed"] is False
    assert result["diff"] == [stages.built["diff"], stages.rolled["diff"]]


@pytest.mark.parametrize("build_changed,rollout_changed", [(True, False), (False, True), (True, True)])
def test_the_task_changed_when_either_stage_did(build_changed, rollout_changed):
    stages = Stages(built=dict(Stages().built, changed=build_changed), rolled=dict(Stages().rolled, changed=rollout_changed))
    assert stages.run(params())["changed"] is True


def test_warnings_of_both_stages_are_kept():
    stages = Stages(built=dict(Stages().built, warnings=["kept sha256:old"]),
                    rolled=dict(Stages().rolled, warnings=["slow health"]))
    result = stages.run(params())
    assert result["warnings"] == ["kept sha256:old", "slow health"] and "warnings" not in result["build"]


def test_a_failed_build_rolls_nothing_out_and_says_so():
    stages = Stages(build_error=HomelabDockerError("check_command failed (rc=1).", image_id="sha256:new"))
    with pytest.raises(HomelabDockerError) as err:
        stages.run(params())
    assert err.value.msg == ("check_command failed (rc=1). Nothing was rolled out: container homelab-dashboard was "
                             "left as it was.")
    assert err.value.details == {"image_id": "sha256:new", "stage": "build"}
    assert [call[0] for call in stages.calls] == ["build"]


def test_check_mode_before_the_first_build_previews_instead_of_failing_on_the_missing_image():
    stages = Stages(built={"changed": True, "built": False, "image_ref": "homelab/dashboard:latest",
                           "previous_image_id": None, "diff": {"before": {"image_id": None}, "after": {"image_id": "(new image)"}}})
    result = stages.run(params(), check_mode=True)
    assert [(call[0], call[2]) for call in stages.calls] == [("build", True)]
    assert result["changed"] and result["container"] is None
    assert result["actions"] == ["would build homelab/dashboard:latest, then create or replace homelab-dashboard from it"]
    assert result["diff"] == [stages.built["diff"]]


def test_check_mode_with_an_image_to_compare_previews_the_rollout_too():
    stages = Stages(built=dict(Stages().built, changed=True))
    stages.run(params(), check_mode=True)
    assert [(call[0], call[2]) for call in stages.calls] == [("build", True), ("rollout", True)]


@pytest.mark.parametrize("state", ["absent", "rolled_back"])
def test_build_with_another_state_is_refused_before_anything_runs(state):
    stages = Stages()
    with pytest.raises(HomelabDockerError, match="build applies to state=started only \\(state is %s\\)" % state):
        stages.run(params(state=state))
    assert stages.calls == []


def validated(build):
    return ArgumentSpecValidator(ib.build_options_spec(), **ib.BUILD_OPTIONS_RULES).validate(build)


def test_the_shared_spec_takes_a_build_and_hides_the_registry_password():
    result = validated(dict(BUILD, registry={"address": "registry.lan:5000", "password": "s3cret-token"}))
    assert not result.error_messages
    assert result.validated_parameters["keep_previous"] is True
    assert "s3cret-token" in result._no_log_values  # pylint: disable=protected-access


@pytest.mark.parametrize("build,message", [
    ({"name": "x"}, "one of the following is required: path, files"),
    (dict(BUILD, path="/srv/ctx"), "parameters are mutually exclusive: path|files"),
    (dict(BUILD, tag="x"), "tag. Supported parameters include: build_args"),
])
def test_the_shared_spec_refuses_what_image_build_refuses(build, message):
    assert any(message in text for text in validated(build).error_messages), validated(build).error_messages


def test_the_problems_a_spec_cannot_see():
    unread = {"files": [{"dest": "Dockerfile", "src": "Dockerfile", "remote_src": False}], "check_command": None}
    assert ib.build_options_problem(unread, "homelab.ai.container_rollout").startswith(
        "files Dockerfile name a controller src, which the homelab.ai.container_rollout action plugin reads")
    numbers = {"files": [], "check_command": ["sleep", 1]}
    assert ib.build_options_problem(numbers, "homelab.ai.image_build") is None
    assert numbers["check_command"] == ["sleep", "1"]
    assert "got dict" in ib.build_options_problem({"files": [], "check_command": {"a": 1}}, "homelab.ai.image_build")
