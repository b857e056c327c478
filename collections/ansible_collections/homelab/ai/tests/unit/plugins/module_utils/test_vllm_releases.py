# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release matrix: every boundary as read in vLLM's source (see vllm_releases.py docstring)."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import vllm_releases as vr

BOUNDARIES = [
    # feature, last release without/with, first release with the other value
    ("v0_engine", "0.10.2", "0.11.0", True),
    ("use_v1_env_honoured", "0.10.2", "0.11.0", True),
    ("enable_reasoning_flag", "0.9.2", "0.10.0", True),
    ("enable_reasoning_required", "0.8.5", "0.9.0", True),
    ("reasoning_parser_qwen3", "0.8.5", "0.9.0", False),
    ("max_model_len_auto", "0.13.0", "0.14.0", False),
    ("auto_awq_alias", "0.23.0", "0.24.0", False),
    ("v1_offload_asserts_uva", "0.16.0", "0.17.0", True),
    ("mrv2_without_offloader", "0.27.0", "0.28.0", True),
    ("mrv2_requires_uva", "0.29.0", "0.30.0", True),
    ("wsl2_pin_memory_env", "0.23.0", "0.24.0", False),
    ("cudagraph_memory_in_kv_budget", "0.19.0", "0.20.0", False),
]


@pytest.mark.parametrize("feature,before,after,held_before", BOUNDARIES)
def test_boundaries(feature, before, after, held_before):
    assert vr.has(feature, before) is held_before
    assert vr.has(feature, after) is (not held_before)


@pytest.mark.parametrize("version,marlin", [("0.8.5", 80), ("0.13.0", 80), ("0.14.0", 75), ("0.32.0", 75)])
def test_marlin_min_capability(version, marlin):
    feats = vr.features(version)
    assert feats["awq_marlin_min_cc"] == marlin
    assert feats["awq_min_cc"] == 75


@pytest.mark.parametrize("text,parsed", [("0.8.5", (0, 8, 5)), ("v0.10.1.1", (0, 10, 1)),
                                         ("0.11.0.post2", (0, 11, 0)), ("0.32.0+cpu", (0, 32, 0)),
                                         ("0.9", (0, 9, 0))])
def test_parse_version(text, parsed):
    assert vr.parse_version(text) == parsed


def test_too_old_and_garbage_refused():
    with pytest.raises(vr.UnsupportedRelease, match="oldest release in the matrix"):
        vr.features("0.7.3")
    with pytest.raises(vr.UnsupportedRelease, match="not a release number"):
        vr.features("latest")


def test_newer_than_read_warns():
    assert vr.features("0.33.0")["warnings"]
    assert not vr.features("0.32.0")["warnings"]


def test_reasoning_args_per_release():
    assert vr.reasoning_args("qwen3", "0.8.5")[0] == ["--enable-reasoning", "--reasoning-parser", "deepseek_r1"]
    assert vr.reasoning_args("qwen3", "0.9.2")[0] == ["--reasoning-parser", "qwen3"]
    assert vr.reasoning_args("qwen3", "0.32.0") == (["--reasoning-parser", "qwen3"], [])
    assert vr.reasoning_args("", "0.32.0") == ([], [])


def test_image_for():
    assert vr.image_for("0.32.0") == "vllm/vllm-openai:v0.32.0"
    assert vr.image_for("0.32.0", cpu=True) == "homelab/vllm-cpu:0.32.0"
