"""The filter plugins run with full ansible-core (plugin context), unlike module_utils tests."""
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
        FilterModule, exposed_ports, keyless_problem, secret_env_problem, secret_problem)
    assert set(FilterModule().filters()) == {"secret_problem", "keyless_problem", "exposed_ports", "secret_env_problem",
                                             "secret_problems"}
    assert exposed_ports(["127.0.0.1:9090:9090", "[::1]:9091:9090"]) == []
    assert exposed_ports(["0.0.0.0:9090:9090", "9091:9090"]) == ["0.0.0.0:9090:9090 (0.0.0.0 is not loopback)",
                                                                 "9091:9090 (binds every address)"]
    with pytest.raises(AnsibleFilterError, match="exposed_ports: ports must be a list"):
        exposed_ports("0.0.0.0:9090:9090")
    with pytest.raises(AnsibleFilterError, match="exposed_ports: "):
        exposed_ports(["not-a-port"])
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
    from ansible_collections.homelab.ai.plugins.filter.smoke_report import (FilterModule, smoke_history_entry, smoke_report,
                                                                            smoke_summary)
    assert set(FilterModule().filters()) == {"smoke_report", "smoke_summary", "smoke_history_entry"}
    report = smoke_report({"results": []}, "m", check_dashboard=False, check_image_server=False)
    assert report["passed"] is False and report["model"] == "m"
    entry = smoke_history_entry(report)
    assert entry["passed"] is False and entry["model"] == "m" and entry["decode_tokens_per_second"] is None
    with pytest.raises(AnsibleFilterError, match="smoke_history_entry: the input must be a homelab.ai.smoke_report result"):
        smoke_history_entry({"passed": True})
    assert smoke_summary(report, "http://v", "/s.json")[0] == "smoke test FAILED: m at http://v"
    with pytest.raises(AnsibleFilterError, match="the llm_benchmark loop's registered result"):
        smoke_report([], "m")
    with pytest.raises(AnsibleFilterError, match="image_file must be a dict"):
        smoke_report({}, "m", image_file="iVBOR")
    with pytest.raises(AnsibleFilterError, match="a homelab.ai.smoke_report result"):
        smoke_summary({"passed": True}, "u", "p")


def test_models_json_filter_renders_what_the_module_returns_and_wraps_errors():
    import json
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.models_json import models_json
    from ansible_collections.homelab.ai.plugins.module_utils import model_registry
    from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.test_model_registry import GOOD
    models = {"qwen3-32b-awq": dict(GOOD)}
    plans = {"qwen3-32b-awq": {"quantization": "awq_marlin", "max_model_len": 10240}}
    text = models_json(models, plans)
    assert text == model_registry.dumps(model_registry.manager_json(model_registry.validate(models), plans))
    entry = json.loads(text)["qwen3-32b-awq"]
    assert entry["quantization"] == "awq_marlin" and entry["default_context"] == 10240
    with pytest.raises(AnsibleFilterError, match="qwen3-32b-awq"):
        models_json({"qwen3-32b-awq": dict(GOOD, quantization="bogus")})


def test_image_server_pins_settles_the_torch_version_with_the_base_label():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.image_server_pins import image_server_pins
    assert image_server_pins("", label="2.13.0+cpu")["torch_key"] == "2.13"            # the label decides
    assert image_server_pins("2.13.1", label="2.13.0+cpu")["torch_key"] == "2.13"      # same major.minor
    assert image_server_pins("2.4.1", label="")["torch_key"] == "2.4"                  # no label: the setting
    with pytest.raises(AnsibleFilterError, match=r"contradicts image_server_torch_version \(label org.homelab.torch-version=2.13.0"):
        image_server_pins("2.4.1", label="2.13.0", image="homelab/torch-cpu:2.13.0")
    with pytest.raises(AnsibleFilterError, match="torch version of pytorch/pytorch:x is unknown"):
        image_server_pins("", label="", image="pytorch/pytorch:x")


def test_secret_problems_is_one_decision_in_fix_order():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.secret_policy import secret_problems
    env = {"plain_env": {}, "secret_env": {}, "plain_variable": "vllm_extra_env", "secret_variable": "vllm_secret_env",
           "reserved": {"VLLM_API_KEY": "vllm_api_key"}}
    assert secret_problems("", "vllm_api_key", "no key given") == ["no key given"]
    assert secret_problems("3f9c" + "a1b2c3d4e5f60718" * 3, "vllm_api_key", "no key given", **env) == []
    short = secret_problems("short", "vllm_api_key", "no key given", **env)
    assert len(short) == 1 and "vllm_api_key" in short[0]
    keyless = dict(env, required=False, required_variable="vllm_api_key_required", service="vLLM")
    assert secret_problems("", "vllm_api_key", "unused", ports=["127.0.0.1:8000:8000"], **keyless) == []
    exposed = secret_problems("", "vllm_api_key", "unused", ports=["0.0.0.0:8000:8000"], **keyless)
    assert len(exposed) == 1 and exposed[0].startswith("vLLM would run without an API key (vllm_api_key_required: false)")
    reserved_in_secret_env = dict(env)
    reserved_in_secret_env["secret_env"] = {"VLLM_API_KEY": "x" * 40}
    both = secret_problems("", "vllm_api_key", "no key given", **reserved_in_secret_env)
    assert both[0] == "no key given" and "vllm_secret_env sets VLLM_API_KEY: set vllm_api_key instead" in both[1]
    with pytest.raises(AnsibleFilterError, match="ports must be a list"):
        secret_problems("", "k", "m", required=False, ports="0.0.0.0:80:80")


def test_http_healthcheck_is_the_test_the_roles_ran_before_it_existed():
    """The exact command the dashboard and prometheus roles spelled out (a different one would roll every
    deployed container once, for nothing)."""
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.http_healthcheck import FilterModule, http_healthcheck
    assert set(FilterModule().filters()) == {"http_healthcheck"}
    assert http_healthcheck(8080, "/healthz") == [
        "CMD", "bash", "-c",
        "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
    for port, path, problem in ((0, "/x", "port 0 is not 1-65535"), (9090, "-/ready", "must start with '/'"),
                                (9090, "/a b", "no space")):
        with pytest.raises(AnsibleFilterError, match=problem):
            http_healthcheck(port, path)


def test_fleet_filters_read_hostvars_and_wrap_errors():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.fleet import FilterModule, router_fleet, router_upstream_keys
    assert set(FilterModule().filters()) == {"router_fleet", "router_upstream_keys", "fleet_gpus"}
    plan = {"args": ["--model", "/models/tiny-qwen2", "--served-model-name", "tiny-qwen2"], "max_model_len": 2048}
    key = "Vq3nT8pLx2Rk7Wm4Zs9Yb6Hc1Jd5Fg0Ne3Qa8Ur2"
    hostvars = {"box-1": {"vllm_plan_result": {"plan": plan}, "ansible_host": "192.0.2.10", "vllm_api_key": key},
                "box-2": {"vllm_plan_result": {"failed": True, "msg": "model 'x' is not in the model registry"},
                          "router_upstream_url": "http://192.0.2.11:8001"},
                "box-3": {"vllm_port": 8002}}
    found = router_fleet(hostvars, ["box-1", "box-2", "box-3"])
    assert [b["api_base"] for b in found["backends"]] == ["http://192.0.2.10:8000/v1"]
    assert [left["host"] for left in found["left_out"]] == ["box-2", "box-3"]
    assert found["config"]["model_list"][0]["litellm_params"]["api_key"] == "os.environ/HOMELAB_UPSTREAM_KEY_BOX_1"
    assert key not in repr(found)
    assert router_upstream_keys(hostvars, ["box-1", "box-2"]) == {"HOMELAB_UPSTREAM_KEY_BOX_1": key}
    assert router_fleet(hostvars, ["box-3"])["config"] == {}
    with pytest.raises(AnsibleFilterError, match="box-9 is not a host of this inventory"):
        router_fleet(hostvars, ["box-9"])
    with pytest.raises(AnsibleFilterError, match="must be a list of inventory names"):
        router_fleet(hostvars, "box-1")


def test_fleet_gpus_are_the_other_hosts_gathered_gpus():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.fleet import fleet_gpus
    gpu = {"index": 0, "name": "NVIDIA GeForce RTX 3060", "memory_total_mib": 12288}
    hostvars = {"gaming-pc": {"ansible_facts": {"gpus": [dict(gpu, name="NVIDIA GeForce RTX 3090")]}},
                "box-3060": {"ansible_facts": {"gpus": [gpu]}, "ansible_host": "192.0.2.12"},
                "cpu-box": {"ansible_facts": {"gpus": []}}, "not-gathered": {}}
    assert fleet_gpus(hostvars, ["gaming-pc", "box-3060", "cpu-box", "not-gathered"], "gaming-pc") == {
        "box-3060": {"gpus": [gpu], "address": "192.0.2.12"}}
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        fleet_gpus(hostvars, "box-3060", "gaming-pc")


def test_gpu_host_filters():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.homelab.ai.plugins.filter.gpu_host_verdict import FilterModule, host_aspects_to_detect
    assert set(FilterModule().filters()) == {"gpu_host_verdict", "host_aspects_to_detect"}
    assert host_aspects_to_detect({}) == ["wsl", "gpu", "container_runtime"]
    gathered = {"wsl": {}, "gpus": [], "gpu_summary": {}, "container_runtime": {"probe": {"ran": False}}}
    assert host_aspects_to_detect(gathered, "", False) == []
    assert host_aspects_to_detect(gathered, None, True) == ["container_runtime"]
    with pytest.raises(AnsibleFilterError, match="must be ansible_facts"):
        host_aspects_to_detect(["wsl"])
