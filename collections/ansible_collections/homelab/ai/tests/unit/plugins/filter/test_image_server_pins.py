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


def test_gpu_device_requests_filter_wraps_errors():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.gpu_device_requests import gpu_device_requests
    assert gpu_device_requests({"device": "cuda", "gpus": [0]})[0]["device_ids"] == ["0"]
    with pytest.raises(AnsibleFilterError, match="no co-tenant named 'image_server'"):
        gpu_device_requests({"device": "cuda", "gpus": [0]}, "image_server")
