"""The roles' local facts are read back (DebOps-style) before they are written.

gpu_host writes gpu_host.fact and the vllm role homelab_vllm.fact only when the play's gathering did not
already read the same record from them: a no-op run skips both module runs instead of running them to
report "ok". A record that differs from what the run decided (an older release wrote it, or it was edited)
is written again. Each play runs on this machine against a facts directory of its own, gathered through
setup's fact_path, so nothing under /etc/ansible/facts.d is touched.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_play(tmp_path, facts_dir, roles_task, name):
    """Run one play (setup's minimal gathering, local facts from facts_dir); return {task name: status}."""
    playbook = tmp_path / ("%s.yml" % name)
    playbook.write_text(yaml.safe_dump([{
        "name": "read-back of the local facts", "hosts": "localhost", "gather_facts": True,
        "module_defaults": {"ansible.builtin.setup": {"gather_subset": ["min"], "fact_path": str(facts_dir)}},
        "tasks": [roles_task]}]))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                           "-e", "ansible_python_interpreter=%s" % sys.executable],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    (tmp_path / ("%s.log" % name)).write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    statuses = {}
    for task in json.loads(proc.stdout)["plays"][0]["tasks"]:
        result = task["hosts"]["localhost"]
        status = "skipped" if result.get("skipped") else "changed" if result.get("changed") else "ok"
        statuses[task["task"]["name"].split(" : ", 1)[-1]] = status  # without the "role : " prefix
    return statuses


def three_runs(tmp_path, fact_file, roles_task, task_name):
    """First run, no-op run, run after the record was edited: the record task's status in each."""
    first = run_play(tmp_path, fact_file.parent, roles_task, "first")[task_name]
    written = fact_file.read_text()
    second = run_play(tmp_path, fact_file.parent, roles_task, "second")[task_name]
    assert fact_file.read_text() == written
    edited = dict(json.loads(written), written_by="an older release")
    fact_file.write_text(json.dumps(edited))
    third = run_play(tmp_path, fact_file.parent, roles_task, "third")[task_name]
    assert fact_file.read_text() == written  # the record is the run's again
    return first, second, third


def test_gpu_host_writes_its_record_only_when_the_gathering_read_another(tmp_path):
    facts = tmp_path / "facts"
    task = {"name": "gpu_host", "ansible.builtin.import_role": {"name": "gpu_host"},
            "vars": {"gpu_host_require_gpu": False, "gpu_host_facts_dir": str(facts)}}
    statuses = three_runs(tmp_path, facts / "gpu_host.fact", task, "Record the detected host in local facts")
    assert statuses == ("changed", "skipped", "changed")


def test_vllm_writes_what_it_serves_only_when_the_gathering_read_another(tmp_path):
    facts = tmp_path / "facts"
    facts.mkdir()
    plan = {"args": ["--model", "/models/tiny", "--max-model-len", "2048"],
            "remember": {"stack": {"0": {"vllm": 21.5}}}}
    task = {"name": "vllm record", "ansible.builtin.import_role": {"name": "vllm", "tasks_from": "record"},
            "vars": {"vllm_facts_dir": str(facts), "vllm_model": "tiny", "vllm_container_name": "homelab-vllm",
                     "vllm_plan": plan}}
    statuses = three_runs(tmp_path, facts / "homelab_vllm.fact", task, "Record the plan vLLM serves as a local fact")
    assert statuses == ("changed", "skipped", "changed")
