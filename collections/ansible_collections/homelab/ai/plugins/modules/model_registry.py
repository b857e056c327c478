#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: model_registry
short_description: Validate the model registry and render llm-manager's models.json
version_added: "0.1.0"
description:
  - Validates every model entry (required fields, types, known quantization, dtype and reasoning
    parser, C(default_context) not above C(max_context)) and lists every error with the model and
    the field.
  - Returns the normalized registry and the C(models.json) content llm-manager reads
    (C(source), C(quantization), C(default_context) per model, plus the planner fields). With
    I(plans), quantization and context are the planned ones.
  - Writes nothing; write C(content) with M(ansible.builtin.copy), which gives check and diff mode.
author:
  - homelab.ai contributors (@homelab-ai)
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.attributes.info_module
  - homelab.ai.attributes.idempotent_not_modify_state
  - homelab.ai.attributes.posix
attributes:
  check_mode:
    details: Pure computation, identical in check mode.
  diff_mode:
    details: Nothing is changed; the file is written by M(ansible.builtin.copy).
  platform:
    details: Runs anywhere.
options:
  models:
    description: Model name to entry (C(source), C(quantization), C(default_context), C(max_context),
      C(params_b), C(layers), C(kv_heads), C(head_dim), C(weight_bytes) or C(weight_gib), optional
      C(dtype), C(cpu_ok), C(reasoning_parser), C(attention_heads), C(hidden_size),
      C(intermediate_size), C(vocab_size), C(group_size)).
    type: dict
    required: true
  plans:
    description: Model name to the C(plan) of M(homelab.ai.vllm_plan), to render planned values.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Validate the registry
  homelab.ai.model_registry:
    models: "{{ vllm_models }}"
  register: vllm_registry

- name: Write models.json
  ansible.builtin.copy:
    content: "{{ vllm_registry.content }}"
    dest: /var/lib/homelab/vllm/models.json
    mode: "0644"
"""

RETURN = r"""
registry:
  description: Normalized registry (defaults filled, weight_bytes and weight_gib both set).
  returned: success
  type: dict
models_json:
  description: models.json as a dict.
  returned: success
  type: dict
content:
  description: models.json as text (sorted keys, 2-space indent, trailing newline).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils import model_registry


def main():
    module = AnsibleModule(
        argument_spec=dict(
            models=dict(type="dict", required=True),
            plans=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    try:
        registry = model_registry.validate(module.params["models"])
    except model_registry.RegistryError as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    data = model_registry.manager_json(registry, module.params["plans"])
    module.exit_json(changed=False, registry=registry, models_json=data, content=model_registry.dumps(data))


if __name__ == "__main__":
    main()
