"""The vllm role writes models.json, launch.json and the status page's plan.json only once vLLM serves the plan.

The plan defers its files to the rollout (vllm_plan's write_files.defer, container_rollout's state_files). A
rollout that fails must leave them describing what still serves: the dashboard shows plan.json, and llm-manager
starts what launch.json says. Here the role's real entry point runs against the real Docker daemon with the
local profile's model, and the container it starts (the base image, whose entrypoint exits at once, in place of
vLLM) fails its health gate. Before the files followed the rollout, plan.json held the failed plan after this run.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.docker_cli import BASE_IMAGE, new_prefix, remove_prefixed

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS_PLAN = '{"served": "the previous plan"}\n'


def test_a_failed_vllm_rollout_leaves_the_plan_files_as_they_were(tmp_path):
    prefix = new_prefix()
    state = tmp_path / "state"
    (state / "status").mkdir(parents=True)
    (state / "status" / "plan.json").write_text(PREVIOUS_PLAN)
    extra = {
        "vllm_deploy": True, "vllm_api_key_required": False, "homelab_state_dir": str(state),
        "vllm_facts_dir": str(tmp_path / "facts"), "vllm_use_fact_overrides": True, "vllm_gpus_override": [],
        "vllm_wsl_override": {"is_wsl": False}, "vllm_stack_containers": {},
        "vllm_container_name": prefix + "-vllm", "vllm_network": prefix + "-net",
        "vllm_model_volume": prefix + "-models", "vllm_port": 18961, "vllm_health_timeout": 60,
        "vllm_image_ref": BASE_IMAGE, "vllm_entrypoint": ["sh", "-c", "echo 'no vLLM in this image' >&2; exit 3", "sh"],
        "ansible_python_interpreter": sys.executable}
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "the vllm role, its rollout failing", "hosts": "all",
                                         "gather_facts": False, "roles": [{"role": "vllm"}]}]))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1")
    env.pop("DOCKER_HOST", None)
    try:
        proc = subprocess.run(["ansible-playbook", "-i", "inventories/local", str(playbook),
                               "-e", "@%s" % (tmp_path / "extra.json")],
                              cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600)
        out = " ".join((proc.stdout + proc.stderr).split())
        assert proc.returncode != 0, out[-3000:]
        assert "Run the vLLM container %s-vllm" % prefix in out and "no vLLM in this image" in out, out[-3000:]
        # The plan was made (its options shown), the rollout failed, and no file says otherwise.
        assert "Show the options the planner weighed" in out
        assert (state / "status" / "plan.json").read_text() == PREVIOUS_PLAN
        assert not (state / "vllm" / "launch.json").exists() and not (state / "vllm" / "models.json").exists()
    finally:
        remove_prefixed(prefix)
