"""Both roles refuse a *_secret_env (or plain env) that sets the role's own key variable, through one
shared check (secret_policy.secret_env_problem with `reserved`), before anything touches Docker.

A key set through the secret env would bypass the role's own check of its key variable (the secret
policy: 32+ characters, not the example's placeholder). No Docker is needed: the checks come first."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "9f1c2b7e4a6d08e35b1f7c9a2e4d6b80c3a5f7e9"
LEAK = "leaky-value-7"

CASES = {
    "vllm-secret-env": ("vllm", {"vllm_deploy": True, "vllm_api_key": GOOD_KEY,
                                 "vllm_secret_env": {"VLLM_API_KEY": LEAK}},
                        "vllm_secret_env sets VLLM_API_KEY: set vllm_api_key instead"),
    "vllm-plain-env": ("vllm", {"vllm_deploy": True, "vllm_api_key": GOOD_KEY,
                                "vllm_extra_env": {"VLLM_API_KEY": LEAK}},
                       "vllm_extra_env sets VLLM_API_KEY: set vllm_api_key instead"),
    "image-server-secret-env": ("image_server", {"image_server_api_key": GOOD_KEY,
                                                 "image_server_secret_env": {"IMAGE_SERVER_API_KEY": LEAK}},
                                "image_server_secret_env sets IMAGE_SERVER_API_KEY: set image_server_api_key instead"),
}


def run_refused_role(tmp_path, role, role_vars, inventory_args):
    """Run ``role`` (its main entry point) with ``role_vars`` in a play of its own and no Docker to reach (a check
    that came too late fails otherwise); assert it failed and return its output, whitespace folded."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "the %s role's secret checks" % role, "hosts": "localhost", "gather_facts": False,
        "roles": [{"role": role, "vars": role_vars}]}]))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1",
               DOCKER_HOST="unix:///nonexistent/docker.sock")
    proc = subprocess.run(["ansible-playbook"] + inventory_args + [str(playbook)],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, out[-3000:]
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_roles_own_key_cannot_come_through_an_env_dict(tmp_path, case):
    role, role_vars, expected = CASES[case]
    out = run_refused_role(tmp_path, role, role_vars,
                           ["-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable])
    assert expected in out, out[-3000:]
    assert LEAK not in out  # the value is never shown
    assert "failed=1" in out


def test_a_refused_vllm_key_leaves_the_plan_files_as_they_were(tmp_path):
    """The vllm role's real entry point: the key is checked before the plan writes models.json, launch.json and
    the status page's plan.json (which the dashboard serves while the old container runs). The plan would
    succeed here (the local profile's model, GPUs and WSL given, no Docker asked), so only the order keeps the
    files as they were."""
    state = tmp_path / "state"
    (state / "status").mkdir(parents=True)
    (state / "status" / "plan.json").write_text('{"served": "the previous plan"}\n')
    out = run_refused_role(tmp_path, "vllm", {
        "vllm_deploy": True, "vllm_api_key": "too-short-%s" % LEAK, "homelab_state_dir": str(state),
        "vllm_facts_dir": str(tmp_path / "facts"), "vllm_use_fact_overrides": True,
        "vllm_gpus_override": [], "vllm_wsl_override": {"is_wsl": False}, "vllm_stack_containers": {}},
        ["-i", "inventories/local"])
    assert "vllm_api_key" in out and "32" in out, out[-3000:]
    assert LEAK not in out
    assert (state / "status" / "plan.json").read_text() == '{"served": "the previous plan"}\n'
    assert not (state / "vllm").exists()
