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


def test_secret_policy_filters():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.secret_policy import (
        FilterModule, keyless_problem, secret_env_problem, secret_problem)
    assert set(FilterModule().filters()) == {"secret_problem", "keyless_problem", "secret_env_problem"}
    assert "is 5 characters long" in secret_problem("short", "vllm_api_key")
    assert secret_problem("9f1c2b7e4a6d08e35b1f7c9a2e4d6b80c3a5f7e9", "vllm_api_key") == ""
    assert keyless_problem(["127.0.0.1:8000:8000"], "vLLM", "vllm_api_key", "vllm_api_key_required") == ""
    assert "binds every address" in keyless_problem(["8000:8000"], "vLLM", "vllm_api_key", "vllm_api_key_required")
    with pytest.raises(AnsibleFilterError, match="ports must be a list"):
        keyless_problem("127.0.0.1:8000:8000", "vLLM", "vllm_api_key", "vllm_api_key_required")
    assert "move them to vllm_secret_env" in secret_env_problem({"HF_TOKEN": "x"}, {}, "vllm_extra_env", "vllm_secret_env")
    with pytest.raises(AnsibleFilterError, match="vllm_extra_env must be a dict"):
        secret_env_problem(["HF_TOKEN"], {}, "vllm_extra_env", "vllm_secret_env")
    assert "set image_server_api_key instead" in secret_env_problem(
        {}, {"IMAGE_SERVER_API_KEY": "x" * 40}, "image_server_env", "image_server_secret_env",
        reserved={"IMAGE_SERVER_API_KEY": "image_server_api_key"})
    with pytest.raises(AnsibleFilterError, match="reserved must be a dict"):
        secret_env_problem({}, {}, "vllm_extra_env", "vllm_secret_env", reserved=["VLLM_API_KEY"])


def test_smoke_report_filters():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.smoke_report import FilterModule, smoke_report, smoke_summary
    assert set(FilterModule().filters()) == {"smoke_report", "smoke_summary"}
    report = smoke_report({"results": []}, "m", check_dashboard=False, check_image_server=False)
    assert report["passed"] is False and report["model"] == "m"
    assert smoke_summary(report, "http://v", "/s.json")[0] == "smoke test FAILED: m at http://v"
    with pytest.raises(AnsibleFilterError, match="the llm_benchmark loop's registered result"):
        smoke_report([], "m")
    with pytest.raises(AnsibleFilterError, match="image_file must be a dict"):
        smoke_report({}, "m", image_file="iVBOR")
    with pytest.raises(AnsibleFilterError, match="a homelab.ai.smoke_report result"):
        smoke_summary({"passed": True}, "u", "p")
