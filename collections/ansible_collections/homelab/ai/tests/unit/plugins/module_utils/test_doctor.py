# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The doctor report's redaction, log picking and rendering (module_utils/doctor.py).

Redaction is tested on real vLLM log lines as people posted them (fixtures/logs, each with its
source) and on planted values. The report against a real daemon is tests/docker_modules'
test_doctor_report.py; the playbook on the live stack is molecule/local_stack's."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import doctor
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as vp
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.fixtures.loader import load
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.inventory_models import GAMING, inventory_model

SECRET = doctor.SECRET_MARK
ADDRESS = doctor.ADDRESS_MARK
RTX3090 = {"index": 0, "name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576, "memory_free_mib": 24523,
           "compute_capability": "8.6", "memory_bandwidth_gbps": 936}
WSL2 = {"is_wsl": True, "version": 2, "kernel_release": "6.6.87.2-microsoft-standard-WSL2"}


def redact(text, secrets=(), addresses=()):
    redactor = doctor.Redactor(secrets, addresses)
    return redactor.text(text), redactor.counts


def test_a_ray_workers_address_is_redacted_and_the_nccl_version_is_not():
    text, counts = redact(load("logs", "vllm_ray_worker_ip_4114.txt"))
    assert "10.12.3.163" not in text and "ip=%s)" % ADDRESS in text
    assert "nccl==2.18.1" in text
    assert counts == {"secrets": 0, "addresses": 1}


def test_an_api_key_on_the_vllm_command_line_is_redacted_and_the_bind_address_kept():
    text, counts = redact(load("logs", "vllm_serve_api_key_flag_inspect_ai_1799.txt"))
    assert "inspectai" not in text and "--api-key %s --tensor-parallel-size 1" % SECRET in text
    assert "--host 0.0.0.0" in text
    assert counts["secrets"] == 1


@pytest.mark.parametrize("fixture", ["vllm_args_namespace_13150.txt", "vllm_journal_non_default_args_proxmoxved_2047.txt",
                                     "vllm_loopback_init_10102.txt"])
def test_lines_without_a_secret_or_a_host_address_come_through_unchanged(fixture):
    """api_key=None, 'host': '0.0.0.0', tcp://127.0.0.1, "set a HF_TOKEN to", journal times."""
    original = load("logs", fixture)
    text, counts = redact(original)
    assert text == original
    assert counts == {"secrets": 0, "addresses": 0}


@pytest.mark.parametrize("line, gone", [
    # vLLM's startup log since it prints only non-default args keeps the key in a list.
    ("non-default args: {'host': '0.0.0.0', 'api_key': ['sk-planted-but-short'], 'port': 8000}", "sk-planted-but-short"),
    ("curl -H 'Authorization: Bearer Zx9plantedBearerValue' http://127.0.0.1:8000/v1/models", "Zx9plantedBearerValue"),
    ("VLLM_API_KEY=plantedEnvValue1 vllm serve /models/x", "plantedEnvValue1"),
    ('{"hf_token": "plantedJsonValue"}', "plantedJsonValue"),
    ("pip install --index-url https://user:plantedPassword@pypi.example/simple torch", "plantedPassword"),
    ("token hf_abcdefghijklmnopqrstuvwxyz0123456789 in the log", "hf_abcdefghijklmnopqrstuvwxyz0123456789"),
])
def test_credential_shaped_values_are_redacted_without_knowing_them(line, gone):
    text, counts = redact(line)
    assert gone not in text and SECRET in text and counts["secrets"] >= 1


@pytest.mark.parametrize("line", [
    '{"max_tokens": 256, "prompt_tokens": 12, "tokens_per_second": 19.1, "kv_bytes_per_token": 98304}',
    '"arrivals_per_output_token": 1.0, "token": null, "api_key": None',
    "secrets: 2, api_key_set: true, secret_env: {}",
    "Linux 6.6.87.2-microsoft-standard-WSL2 x86_64; kernel 5.15.153.1-microsoft-standard-WSL2",
    "2026-12-05T20:58:00+00:00 listening on [::]:8000 and ::1, image sha256:0123abcd",
    "prometheus 2.42.0+ds-5+deb12u1, driver 560.94, CUDA 12.6, Windows 10.0.22631.4460",
])
def test_figures_versions_and_times_are_not_mistaken_for_secrets_or_addresses(line):
    assert redact(line) == (line, {"secrets": 0, "addresses": 0})


def test_known_secrets_and_addresses_are_replaced_wherever_they_appear():
    key = "Qm3planted0Key0From0The0Secrets0Dir0xyz"
    text, counts = redact("error: 401 for key %s from gaming-pc.lan (fe80::a00:27ff:fe4e:66a1%%eth0, 08:00:27:4e:66:a1, "
                          "2001:db8::7)" % key, secrets=[key, "short"], addresses=["gaming-pc.lan", "127.0.0.1"])
    assert key not in text and "gaming-pc.lan" not in text and "fe80" not in text and "2001:db8" not in text
    assert "08:00:27" not in text
    assert counts == {"secrets": 1, "addresses": 4}


def test_a_short_secret_is_not_redacted_by_value():
    """A 5-letter value would blank every word that contains it; credential patterns still apply."""
    assert redact("the short answer", secrets=["short"])[0] == "the short answer"


def test_the_walk_redacts_keys_and_values_at_any_depth():
    key = "plantedValueInsideAPlan0123"
    redactor = doctor.Redactor([key], ["192.0.2.10"])
    out = redactor.walk({"env": {"X": [key, 3, None]}, key: "http://192.0.2.10:8000"})
    assert json.dumps(out).count(SECRET) == 2 and "192.0.2.10" not in json.dumps(out)


def test_error_lines_keep_the_latest_that_read_as_errors():
    log = load("logs", "vllm_ray_worker_ip_4114.txt")
    picked = doctor.error_lines(log, 2)
    assert picked == [
        "(RayWorkerVllm pid=14289) AttributeError: 'NCCLCommunicator' object has no attribute 'comm'",
        "(RayWorkerVllm pid=14289) ERROR 04-17 09:00:33 ray_utils.py:44] Error executing method init_device. "
        "This might cause deadlock in distributed execution."]
    assert doctor.error_lines(log, 0) == []
    assert doctor.error_lines("ERROR " + "x" * 1000, 5)[0] == ("ERROR " + "x" * 1000)[:doctor.MAX_LINE_CHARS]


def _state_dir(tmp_path, plan=None, history=None, secret="plantedSecretFileValue123"):
    (tmp_path / "status").mkdir()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "rollouts").mkdir()
    (tmp_path / "secrets" / "vllm_api_key").write_text(secret + "\n")
    if plan is not None:
        (tmp_path / "status" / "plan.json").write_text(json.dumps(plan))
    if history is not None:
        (tmp_path / "status" / "smoke-history.json").write_text(json.dumps(history))
        (tmp_path / "status" / "smoke.json").write_text(json.dumps(dict(history[-1], warnings=[])))
    return str(tmp_path)


def _no_daemon():
    raise OSError("Cannot reach the Docker daemon at unix:///var/run/docker.sock")


def test_the_report_without_a_daemon_still_has_the_plan_ledger_and_smoke_history(tmp_path):
    plan = vp.plan(inventory_model(GAMING, "qwen3-32b-awq"), [RTX3090], WSL2, "0.32.0", name="qwen3-32b-awq",
                   min_tokens_per_second=19, max_num_seqs=16)
    history = [{"timestamp": "2026-12-0%dT10:00:00+00:00" % d, "model": "qwen3-32b-awq", "passed": True,
                "decode_tokens_per_second": 19.0 + d / 10} for d in range(1, 9)]
    state = _state_dir(tmp_path, plan, history)
    report, markdown = doctor.build_report(state, _no_daemon, {"kernel": WSL2["kernel_release"]}, {"ansible": "2.18.1"},
                                           [], [], "2026-12-05T21:00:00Z", history_entries=5)
    assert report["problems"] == ["Docker: Cannot reach the Docker daemon at unix:///var/run/docker.sock"]
    assert [h["timestamp"][:10] for h in report["state"]["smoke_history"]] == ["2026-12-0%d" % d for d in range(4, 9)]
    ledger = plan["ledger"]["0"]
    for entry in ledger["entries"]:
        assert "| %s | %s |" % (entry["name"], entry["gib"]) in markdown
    assert "| headroom | %s |" % ledger["headroom_gib"] in markdown
    assert "| ansible | 2.18.1 |" in markdown and "6.6.87.2-microsoft-standard-WSL2" in markdown
    assert "last smoke test: passed at 2026-12-08T10:00:00+00:00, decode 19.8 tok/s" in markdown
    assert "No homelab container found." in markdown


def test_an_unreadable_or_broken_state_file_is_reported_not_fatal(tmp_path):
    state = _state_dir(tmp_path)
    (tmp_path / "status" / "plan.json").write_text("{not json")
    (tmp_path / "rollouts" / "homelab-vllm-1a2b.rollout.json").write_text(json.dumps({"name": "homelab-vllm", "phase": "creating"}))
    report, markdown = doctor.build_report(state, _no_daemon, {}, {}, [], [], "now")
    assert "is not JSON" in report["state"]["plan"]["unreadable"]
    assert report["state"]["unfinished_rollouts"] == [{"name": "homelab-vllm", "phase": "creating",
                                                       "journal": "homelab-vllm-1a2b.rollout.json"}]
    assert "unfinished rollouts: 1" in markdown and "## Unfinished rollouts" in markdown


def test_the_secret_files_values_never_reach_the_report(tmp_path):
    secret = "plantedSecretFileValue123"
    state = _state_dir(tmp_path, plan={"model": "m", "env": {"NOTE": "key is %s" % secret}})
    report, markdown = doctor.build_report(state, _no_daemon, {"ansible_local": {"note": secret}}, {}, [], [], "now")
    assert secret not in markdown and secret not in json.dumps(report)
    assert report["redactions"]["secrets"] >= 2


def test_container_env_credentials_are_collected_for_redaction_only():
    inspected = {"Config": {"Env": ["VLLM_API_KEY=envKeyValue12345", "HF_TOKEN=hf_x", "PATH=/usr/bin", "EMPTY_TOKEN="]}}
    assert doctor.container_env_secrets(inspected) == ["envKeyValue12345", "hf_x"]
