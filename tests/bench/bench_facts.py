#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Time the three host-detection modules in a play against a reference play, in the same run.

Goal (issue 3): wsl_facts + gpu_facts + container_runtime_facts together add under 1 s to a play
on this machine. Reference: ansible.builtin.setup with gather_subset=min (what every play pays).
Prints per-play wall time (median of N runs, each a fresh ansible-playbook), the three modules'
per-task time from the profile_tasks callback, and the ratio facts/setup. No asserts: a figure.

Usage: .venv/bin/python tests/bench/bench_facts.py [runs]
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
%s
"""
FACTS_TASKS = """
    - name: wsl
      homelab.ai.wsl_facts:
    - name: gpu
      homelab.ai.gpu_facts:
    - name: runtime
      homelab.ai.container_runtime_facts:
"""
SETUP_TASKS = """
    - name: setup
      ansible.builtin.setup:
        gather_subset: [min]
"""
EMPTY_TASKS = """
    - name: nothing
      ansible.builtin.meta: noop
"""


def run(playbook):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, "collections"),
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", ANSIBLE_NOCOLOR="1")
    start = time.monotonic()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), playbook],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit("play failed:\n" + proc.stdout[-3000:] + proc.stderr[-2000:])
    tasks = {}
    for match in re.finditer(r"^(\S[^\n]*?) -+ (\d+\.\d+)s$", proc.stdout, re.M):
        tasks[match.group(1).strip()] = float(match.group(2))
    return wall, tasks


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp:
        plays = {}
        for name, tasks in (("empty", EMPTY_TASKS), ("setup_min", SETUP_TASKS), ("facts3", FACTS_TASKS)):
            plays[name] = os.path.join(tmp, name + ".yml")
            with open(plays[name], "w") as handle:
                handle.write(PLAY % tasks.strip("\n"))
        walls = {name: [] for name in plays}
        task_times = {}
        for _ in range(runs):
            for name, path in plays.items():  # interleaved, so load changes hit all alike
                wall, tasks = run(path)
                walls[name].append(wall)
                for task, secs in tasks.items():
                    task_times.setdefault(task, []).append(secs)
    med = {name: statistics.median(values) for name, values in walls.items()}
    print("runs per play: %d (median wall time of a whole ansible-playbook run)" % runs)
    for name in plays:
        print("  %-10s %6.2f s  (min %.2f, max %.2f)" % (name, med[name], min(walls[name]), max(walls[name])))
    added_facts = med["facts3"] - med["empty"]
    added_setup = med["setup_min"] - med["empty"]
    print("added to a play: 3 fact modules %.2f s, setup(min) %.2f s" % (added_facts, added_setup))
    for task in sorted(task_times):
        if any(key in task for key in ("wsl", "gpu", "runtime", "setup")):
            print("  task %-30s median %.3f s" % (task, statistics.median(task_times[task])))
    three = sum(statistics.median(v) for k, v in task_times.items() if any(x in k for x in ("wsl", "gpu", "runtime")))
    print("3 fact tasks (profile_tasks): %.3f s  goal < 1 s  -> %s" % (three, "met" if three < 1.0 else "NOT met"))
    if added_setup > 0:
        print("ratio facts3/setup_min (added play time): %.2f" % (added_facts / added_setup))


if __name__ == "__main__":
    main()
