# -*- coding: utf-8 -*-
"""host_detect: what a task detects again after the gathering, and setup's facts collected in host_facts."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import host_detect, setup_facts

GATHERED = {
    "wsl": {"is_wsl": False}, "gpus": [], "gpu_summary": {"usable": False},
    "container_runtime": {"engine_reachable": True,
                          "probe": {"ran": False, "ok": None, "image": "homelab/debian:bookworm", "error": None}},
}


def test_nothing_again_after_a_gathering_that_detected_everything():
    assert host_detect.aspects_to_detect(GATHERED) == []


def test_a_host_gathered_by_setup_alone_detects_all_three():
    assert host_detect.aspects_to_detect({"distribution": "Debian"}) == ["wsl", "gpu", "container_runtime"]
    assert host_detect.aspects_to_detect(None) == ["wsl", "gpu", "container_runtime"]


def test_half_the_gpu_facts_is_no_gpu_facts():
    facts = dict(GATHERED)
    del facts["gpu_summary"]
    assert host_detect.aspects_to_detect(facts) == ["gpu"]


def test_the_runtime_again_when_an_earlier_role_saw_it():
    """gaming_host.yml may have installed or restarted the engine since the preflight's gathering."""
    assert host_detect.aspects_to_detect(GATHERED, detected_earlier=True) == ["container_runtime"]


def test_a_probe_the_gathering_did_not_run_is_run():
    assert host_detect.aspects_to_detect(GATHERED, probe_image="homelab/debian:bookworm") == ["container_runtime"]
    probed = dict(GATHERED, container_runtime={"probe": {"ran": True, "ok": True, "image": "homelab/debian:bookworm"}})
    assert host_detect.aspects_to_detect(probed, probe_image="homelab/debian:bookworm") == []
    assert host_detect.aspects_to_detect(probed, probe_image="other/cuda:12") == ["container_runtime"]
    skipped = dict(GATHERED, container_runtime={"probe": {"ran": False, "ok": False, "image": "homelab/debian:bookworm",
                                                          "error": "probe skipped: no reachable engine"}})
    assert host_detect.aspects_to_detect(skipped, probe_image="homelab/debian:bookworm") == []


class _Module(object):
    """What ansible-core's collectors read from the module: params and run_command/get_bin_path."""

    def __init__(self, fact_path):
        self.params = {"fact_path": fact_path, "gather_subset": ["min"], "gather_timeout": 10, "filter": []}

    def get_bin_path(self, *_args, **_kwargs):
        return None

    def run_command(self, *_args, **_kwargs):
        return 1, "", "not run in this test"


def test_setup_facts_are_setups_minimal_subset_with_local_facts(tmp_path):
    (tmp_path / "gpu_host.fact").write_text('{"serving_path": "gpu"}\n')
    facts = setup_facts.collect(_Module(str(tmp_path)), ["min"])
    assert facts["ansible_local"] == {"gpu_host": {"serving_path": "gpu"}}
    assert facts["gather_subset"] == ["min"] and facts["module_setup"] is True
    assert facts["ansible_system"] == "Linux" and "ansible_distribution" in facts
    assert "ansible_interfaces" not in facts and "ansible_memtotal_mb" not in facts  # network, hardware: not in min


def test_setup_facts_refuse_an_unknown_subset(tmp_path):
    with pytest.raises(TypeError, match="Bad subset 'gpus'"):
        setup_facts.collect(_Module(str(tmp_path)), ["gpus"])
