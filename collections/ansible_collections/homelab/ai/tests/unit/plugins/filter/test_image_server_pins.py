"""The filter plugin runs with full ansible-core (plugin context), unlike module_utils tests."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest


def test_filter_plugin_wraps_errors():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.image_server_pins import image_server_pins
    out = image_server_pins("2.13.0+cpu", {"diffusers": "==0.29.2"})
    assert out["torch_key"] == "2.13"
    assert "diffusers==0.29.2" in out["requirements"]
    with pytest.raises(AnsibleFilterError, match="known torch versions: 2.2, 2.4, 2.13"):
        image_server_pins("1.13.1")
