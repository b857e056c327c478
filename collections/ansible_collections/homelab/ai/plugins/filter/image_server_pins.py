# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: the image server's pins for a torch version (thin wrapper over module_utils.pin_matrix)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils.pin_matrix import (
    PinMatrixError, PIN_NOTES, pins_for, requirements_lines, settle_torch_version, torch_key,
)


def image_server_pins(torch_version, overrides=None, label=None, image=None):
    try:
        if label is not None:
            torch_version = settle_torch_version(torch_version, label, image or "the base image")
        pins = pins_for(torch_version, overrides)
        key = torch_key(torch_version)
    except PinMatrixError as exc:
        raise AnsibleFilterError(str(exc))
    return {
        "torch_key": key,
        "pins": pins,
        "requirements": requirements_lines(pins),
        "note": PIN_NOTES.get(key, ""),
    }


class FilterModule(object):
    def filters(self):
        return {"image_server_pins": image_server_pins}
