# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret policy: placeholder and short keys refused, keyless services only on loopback.
(tests/vllm_role/test_secrets.py checks that every value of vault.yml.example is refused.)"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import secret_policy as sp

# `openssl rand -hex 32` as run on this machine; never used anywhere.
GOOD = "9f1c2b7e4a6d08e35b1f7c9a2e4d6b80c3a5f7e91d2b4c6a8e0f1a3c5e7b9d2f4"


def test_a_random_hex_key_is_accepted():
    assert sp.secret_problem(GOOD, "vllm_api_key") == ""
    # The local profile's generated key: 40 letters and digits (inventories/local/group_vars/all/main.yml).
    assert sp.secret_problem("Qm7ZpX2cLr9TfK4wNb8sVd1HyJ6gE3uAoC5iRt0e", "vllm_api_key") == ""


@pytest.mark.parametrize("placeholder", [
    "change-me-to-a-long-random-string",
    "  Change-Me-To-A-Long-Random-String\n",
    "change-me-to-a-long-random-string-for-the-image-server",
    "CHANGEME0123456789abcdef0123456789abcdef",
])
def test_the_placeholder_is_refused_whatever_its_length_or_case(placeholder):
    problem = sp.secret_problem(placeholder, "vllm_api_key")
    assert problem.startswith("vllm_api_key is still the placeholder of vault.yml.example")
    assert "openssl rand -hex 32" in problem
    assert placeholder.strip() not in problem


def test_a_short_key_is_refused_with_its_length_and_the_fix():
    problem = sp.secret_problem("s3cr3t-but-only-31-characters!!", "image_server_api_key")
    assert problem.startswith("image_server_api_key is 31 characters long; at least 32 are required.")
    assert "Generate one with `openssl rand -hex 32` and put it in a vaulted variable" in problem
    assert "s3cr3t" not in problem
    assert sp.secret_problem("x" * 31 + "abcdefgh", "k") == ""       # 39 characters, 9 distinct
    assert "is 31 characters" in sp.secret_problem(GOOD[:31], "k")
    assert sp.secret_problem(GOOD[:32], "k") == ""


def test_empty_and_patterned_keys_are_refused():
    assert sp.secret_problem("", "vllm_api_key").startswith("vllm_api_key is empty.")
    assert sp.secret_problem(None, "vllm_api_key").startswith("vllm_api_key is empty.")
    assert sp.secret_problem("   ", "vllm_api_key").startswith("vllm_api_key is empty.")
    assert "only 1 distinct characters" in sp.secret_problem("a" * 64, "vllm_api_key")
    assert "only 2 distinct characters" in sp.secret_problem("01" * 32, "vllm_api_key")


def test_where_names_the_place_to_set_it():
    problem = sp.secret_problem("short", "vllm_api_key", where="vault_vllm_api_key in group_vars/gaming/vault.yml")
    assert problem.endswith("put it in vault_vllm_api_key in group_vars/gaming/vault.yml.")


def keyless(ports):
    return sp.keyless_problem(ports, "vLLM", "vllm_api_key", "vllm_api_key_required")


@pytest.mark.parametrize("ports", [
    ["127.0.0.1:8000:8000"], ["127.0.0.2:8000:8000/tcp"], ["[::1]:8000:8000"], [],
    ["127.0.0.1:8000:8000", "[::1]:8000:8000"],
])
def test_keyless_is_allowed_on_loopback_only_bindings(ports):
    assert keyless(ports) == ""


def test_keyless_is_refused_when_any_port_leaves_the_host():
    problem = keyless(["127.0.0.1:8000:8000", "0.0.0.0:8001:8000", "8002:8000", "192.168.1.20:8003:8000", "[::]:8004:8000"])
    assert problem.startswith("vLLM would run without an API key (vllm_api_key_required: false) while publishing ")
    assert "0.0.0.0:8001:8000 (0.0.0.0 is not loopback)" in problem
    assert "8002:8000 (binds every address)" in problem
    assert "192.168.1.20:8003:8000 (192.168.1.20 is not loopback)" in problem
    assert "[::]:8004:8000 (:: is not loopback)" in problem
    assert "127.0.0.1:8000:8000" not in problem
    assert problem.endswith("Set vllm_api_key (generate one with `openssl rand -hex 32`), or bind only to 127.0.0.1 or ::1.")


def test_keyless_names_a_host_name_and_a_bad_port():
    assert "localhost is not loopback" in keyless(["localhost:8000:8000"])     # Docker wants an address
    assert keyless(["127.0.0.1:8000:80000"]).startswith("vLLM: port '127.0.0.1:8000:80000': container port")


def env_problem(plain, secret):
    return sp.secret_env_problem(plain, secret, "vllm_extra_env", "vllm_secret_env")


def test_a_token_in_the_secret_env_and_plain_settings_in_the_plain_one_pass():
    assert env_problem({"VLLM_LOGGING_LEVEL": "DEBUG", "VLLM_CPU_KVCACHE_SPACE": "1"}, {"HF_TOKEN": "hf_" + "x1" * 17}) == ""
    assert env_problem({}, {}) == ""


def test_a_secret_looking_name_in_the_plain_env_is_sent_to_the_secret_env():
    problem = env_problem({"HF_TOKEN": "hf_abc", "OPENAI_API_KEY": "sk-1", "AWS_SECRET_ACCESS_KEY": "a",
                           "HF_HOME": "/models/hf"}, {})
    assert problem == ("AWS_SECRET_ACCESS_KEY, HF_TOKEN, OPENAI_API_KEY in vllm_extra_env look like secrets, whose "
                       "values would be stored in a container label and shown in diffs: move them to vllm_secret_env "
                       "(vaulted)")
    assert "hf_abc" not in problem


def test_a_reserved_name_in_either_environment_is_sent_to_its_own_variable():
    reserved = {"VLLM_API_KEY": "vllm_api_key"}
    key = "9f1c2b7e4a6d08e35b1f7c9a2e4d6b80c3a5f7e9"
    problem = sp.secret_env_problem({}, {"VLLM_API_KEY": key}, "vllm_extra_env", "vllm_secret_env", reserved)
    assert problem == "vllm_secret_env sets VLLM_API_KEY: set vllm_api_key instead (the secret policy checks it there)"
    problem = sp.secret_env_problem({"VLLM_API_KEY": "short"}, {}, "vllm_extra_env", "vllm_secret_env", reserved)
    assert problem == "vllm_extra_env sets VLLM_API_KEY: set vllm_api_key instead (the secret policy checks it there)"
    assert key not in problem and "short" not in problem
    # without the reserved map a long key in the secret env is just a secret; other names still pass
    assert sp.secret_env_problem({}, {"VLLM_API_KEY": key}, "vllm_extra_env", "vllm_secret_env") == ""
    assert sp.secret_env_problem({}, {"HF_TOKEN": "hf_" + "x1" * 17}, "vllm_extra_env", "vllm_secret_env", reserved) == ""


def test_overlap_empty_values_and_bad_names_are_named():
    problem = env_problem({"HF_TOKEN": "hf_visible"}, {"HF_TOKEN": "hf_secret", "EMPTY": "", "bad-name": "v"})
    assert "HF_TOKEN are in both vllm_extra_env and vllm_secret_env: keep each secret in vllm_secret_env only" in problem
    assert "vllm_secret_env.EMPTY is empty (a missing vault variable?)" in problem
    assert "vllm_secret_env: 'bad-name' is not an environment variable name" in problem
    assert "look like secrets" not in problem           # HF_TOKEN is reported once, as the overlap
    assert "hf_secret" not in problem and "hf_visible" not in problem
    assert env_problem({}, ["HF_TOKEN"]).startswith("vllm_secret_env must be a dict")
