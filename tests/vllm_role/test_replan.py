"""The vllm role's re-plan with its own stack serving: the second run of `site.yml -l gaming`.

Read as a real run, the second run used to see vLLM's own ~21 GiB as memory held by other processes
and refuse (`PlanRefused ... needs about 41 GiB`). The role now reads which members of the stack run
and the plan recorded in its local fact (deploy.yml writes it once vLLM serves), and the plan counts
that memory as the stack's own. The GPU is the record's: an RTX 3090 on WSL2 as gpu_facts reports it
(facts overridden: no GPU here), with the gaming inventory's model, release and co-tenants.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GAMING = ROOT / "inventories/homelab/group_vars/gaming"
MIB_PER_GIB = 1024.0
TOTAL_MIB = 24576
DESKTOP_MIB = 1536


def gpu(used_mib):
    return {"index": 0, "name": "NVIDIA GeForce RTX 3090", "memory_total_mib": TOTAL_MIB,
            "memory_free_mib": TOTAL_MIB - int(used_mib), "memory_used_mib": int(used_mib),
            "compute_capability": "8.6", "memory_bandwidth_gbps": 936.2, "driver_version": "573.24"}


def run_role(tmp_path, name, used_mib, running):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "vllm role, plan only, with the gaming inventory's vLLM variables", "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(GAMING / "vllm.yml")],
        "roles": [{"role": "vllm"}]}]))
    extra = {"homelab_state_dir": str(tmp_path / "state"), "vllm_facts_dir": str(tmp_path / "facts"),
             "vllm_deploy": False, "vllm_use_fact_overrides": True, "vllm_gpus_override": [gpu(used_mib)],
             "vllm_wsl_override": {"is_wsl": True, "wsl_version": 2, "kernel_release": "5.15.167.4-microsoft-standard-WSL2"},
             "vllm_stack_running": running, "image_server_container_name": "homelab-image-server",
             "ansible_python_interpreter": sys.executable}
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                           "-e", "@%s" % (tmp_path / "extra.json")],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    (tmp_path / ("%s.log" % name)).write_text(out)
    plan_file = tmp_path / "state/status/plan.json"
    plan = json.loads(plan_file.read_text()) if proc.returncode == 0 else None
    return proc.returncode, out, plan


def record(tmp_path, plan):
    """What deploy.yml writes once vLLM serves the plan (the local fact read back next run)."""
    facts = tmp_path / "facts"
    facts.mkdir(exist_ok=True)
    (facts / "homelab_vllm.fact").write_text(json.dumps({"model": plan["model"], "args": plan["args"],
                                                         "remember": plan["remember"]}))


def stack_mib(plan):
    """What the plan says vLLM and the image server hold on GPU 0 once both serve."""
    return sum(plan["remember"]["stack"]["0"].values()) * MIB_PER_GIB


def test_second_run_with_the_stack_serving_plans_the_same_launch(tmp_path):
    rc, out, first = run_role(tmp_path, "first", DESKTOP_MIB, [])
    assert rc == 0, out[-4000:]
    record(tmp_path, first)
    serving = DESKTOP_MIB + stack_mib(first)
    assert serving > 20000          # vLLM's own memory is most of the card: it must not count as a stranger

    rc, out, second = run_role(tmp_path, "second", serving, ["vllm", "image_server"])
    assert rc == 0, out[-4000:]
    for key in ("args", "env", "max_model_len", "gpu_memory_utilization", "gpus", "remember", "co_tenant_placement"):
        assert second[key] == first[key], key


def test_without_the_recorded_plan_a_running_vllm_is_estimated_not_a_stranger(tmp_path):
    """The fact lost (or a first run of this planner while the stack serves): vLLM's own memory is
    estimated from the plan, and said to be, instead of counted as another process's (the old refusal)."""
    rc, out, first = run_role(tmp_path, "first", DESKTOP_MIB, [])
    assert rc == 0, out[-4000:]
    rc, out, lost = run_role(tmp_path, "lost-fact", DESKTOP_MIB + stack_mib(first), ["vllm"])
    assert rc == 0, out[-4000:]
    assert "vllm running without a previous plan's figure: its memory on GPU 0 is estimated" in out.replace("''", "'")
    assert lost["max_model_len"] >= 2048          # planned, not refused; the figure is an estimate


def test_desktop_taking_more_is_said_plainly(tmp_path):
    """The desktop grows into what the card has free beside the serving stack (used <= total)."""
    rc, out, first = run_role(tmp_path, "first", DESKTOP_MIB, [])
    assert rc == 0, out[-4000:]
    record(tmp_path, first)
    grown = min(1024, TOTAL_MIB - DESKTOP_MIB - stack_mib(first))
    assert grown > 512, "the first plan leaves no room for the desktop to grow"
    rc, out, third = run_role(tmp_path, "desktop-grew", DESKTOP_MIB + grown + stack_mib(first),
                              ["vllm", "image_server"])
    flat = " ".join(out.split())                       # the YAML callback folds long lines
    assert "%.1f GiB more than at the last plan (1.5 GiB)" % (grown / MIB_PER_GIB) in flat, out[-4000:]
    if rc == 0:
        assert third["args"] != first["args"]       # it still fits, with a smaller launch
    else:
        # the card is full beside the serving stack: refused before anything is touched
        assert "Nothing was changed and the running stack keeps serving" in flat, out[-4000:]
