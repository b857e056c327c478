# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: llm-manager's models.json text from a validated registry and the plans (thin wrapper over
module_utils.model_registry, the same rendering homelab.ai.model_registry returns as content)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils import model_registry


def models_json(registry, plans=None):
    try:
        validated = model_registry.validate(registry)
    except model_registry.RegistryError as exc:
        raise AnsibleFilterError(str(exc))
    return model_registry.dumps(model_registry.manager_json(validated, plans or {}))


class FilterModule(object):
    def filters(self):
        return {"models_json": models_json}
