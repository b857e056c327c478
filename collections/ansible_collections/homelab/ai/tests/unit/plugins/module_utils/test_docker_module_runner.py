# -*- coding: utf-8 -*-
"""docker_common.run_docker_module: the one place the Docker modules' errors become fail_json."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import docker_common as dc


class Exited(Exception):
    def __init__(self, kind, result):
        super(Exited, self).__init__(kind)
        self.kind, self.result = kind, result


class RecordingModule(object):
    """What run_docker_module uses of AnsibleModule; exit_json/fail_json end the run as they do."""

    def __init__(self, diff=False, check_mode=False):
        self.params = {"name": "homelab/vllm:1"}
        self.check_mode = check_mode
        self._diff = diff
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def exit_json(self, **result):
        raise Exited("exit", result)

    def fail_json(self, **result):
        raise Exited("fail", result)


def outcome(run, **kw):
    module = RecordingModule(**kw)
    with pytest.raises(Exited) as ended:
        dc.run_docker_module(module, run, "building homelab/vllm:1 from /srv/ctx")
    return ended.value.kind, ended.value.result, module


def test_a_result_exits_with_warnings_passed_on_and_diff_only_in_diff_mode():
    def run(params, check_mode):
        assert params["name"] == "homelab/vllm:1" and check_mode is True
        return {"changed": True, "diff": {"before": 1}, "warnings": ["slow base"]}
    kind, result, module = outcome(run, check_mode=True)
    assert kind == "exit" and result == {"changed": True} and module.warnings == ["slow base"]
    result = outcome(run, diff=True, check_mode=True)[1]
    assert result["diff"] == {"before": 1}


def test_a_homelab_error_fails_with_its_message_and_details():
    def run(params, check_mode):
        raise dc.HomelabDockerError("base image homelab/torch:1 not found", image="homelab/torch:1", diff={"x": 1})
    kind, result = outcome(run)[:2]
    assert kind == "fail" and result == {"msg": "base image homelab/torch:1 not found", "image": "homelab/torch:1"}


def test_an_unexpected_error_says_what_the_module_was_doing():
    class APIError(Exception):
        explanation = "conflict: unable to delete (must be forced)"

    def run(params, check_mode):
        raise APIError("409")
    kind, result = outcome(run)[:2]
    assert kind == "fail"
    assert result["msg"] == ("Docker API error while building homelab/vllm:1 from /srv/ctx: "
                             "conflict: unable to delete (must be forced)")
    assert "APIError" in result["exception"]
