# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry validation: each error names the model and the field."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import json

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import model_registry as mr

GOOD = {"source": "Qwen/Qwen3-32B-AWQ", "quantization": "awq", "default_context": 8192, "max_context": 40960,
        "params_b": 32.8, "layers": 64, "kv_heads": 8, "head_dim": 128, "weight_gib": 18.0}


def test_valid_entry_normalized():
    reg = mr.validate({"qwen3-32b-awq": dict(GOOD)})
    entry = reg["qwen3-32b-awq"]
    assert entry["weight_bytes"] == int(18.0 * 1024 ** 3)
    assert entry["cpu_ok"] is False and entry["dtype"] == "auto" and entry["group_size"] == 128
    assert mr.kv_bytes_per_token(entry) == 256 * 1024


@pytest.mark.parametrize("change,field", [
    ({"quantization": "gptq"}, "quantization"),
    ({"default_context": 65536}, "default_context"),
    ({"layers": "64"}, "layers"),
    ({"cpu_ok": "yes"}, "cpu_ok"),
    ({"reasoning_parser": "qwq"}, "reasoning_parser"),
    ({"colour": "blue"}, "colour"),
    ({"dtype": "int4"}, "dtype"),
    ({"kv_heads": 0, "attention_heads": 64}, "kv_heads"),     # named, not a ZeroDivisionError
])
def test_errors_name_model_and_field(change, field):
    entry = dict(GOOD)
    entry.update(change)
    with pytest.raises(mr.RegistryError) as err:
        mr.validate({"qwen3-32b-awq": entry})
    assert any("model 'qwen3-32b-awq'" in e and "'%s'" % field in e for e in err.value.errors), err.value.errors


@pytest.mark.parametrize("missing", ["source", "quantization", "default_context", "max_context", "layers"])
def test_missing_field(missing):
    entry = dict(GOOD)
    del entry[missing]
    with pytest.raises(mr.RegistryError, match="model 'm': missing field '%s'" % missing):
        mr.validate({"m": entry})


def test_missing_weights_and_all_errors_listed():
    entry = dict(GOOD)
    del entry["weight_gib"]
    bad = dict(GOOD, quantization="exl2")
    with pytest.raises(mr.RegistryError) as err:
        mr.validate({"a": entry, "b": bad})
    assert len(err.value.errors) == 2
    assert "weight_bytes" in err.value.errors[0] and "model 'b'" in err.value.errors[1]


def test_manager_json_takes_planned_values():
    reg = mr.validate({"qwen3-32b-awq": dict(GOOD)})
    out = mr.manager_json(reg, {"qwen3-32b-awq": {"quantization": "awq_marlin", "max_model_len": 8192}})
    assert out["qwen3-32b-awq"]["quantization"] == "awq_marlin"
    assert out["qwen3-32b-awq"]["source"] == "Qwen/Qwen3-32B-AWQ"
    text = mr.dumps(out)
    assert json.loads(text) == out and text.endswith("\n")
