#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Time host detection in a play against a reference play, in the same run.

Goal (issue 14): detection adds at most 0.6x what ansible.builtin.setup with gather_subset=min adds
(what every play pays). Three ways to detect the same facts are timed:
- the three modules as tasks (wsl_facts + gpu_facts + container_runtime_facts, what the roles ran first);
- one host_facts task after setup's gathering (what the roles ran next);
- host_facts as the play's only facts module (what preflight.yml and stack.yml gather with now,
  playbooks/vars/host_facts_gathering.yml): setup's minimal subset and the detection in one module run.
The two gatherings (setup min, host_facts) are plays of their own, each against an empty play; the
task variants are compared with setup min run as a task. Prints per-play wall time (median of N runs,
each a fresh ansible-playbook, all plays in turn), per-task times from the profile_tasks callback, and
the ratios. No asserts: a figure.

Usage: .venv/bin/python tests/bench/bench_facts.py [runs]   (default 5)
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
GATHER_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: true
  gather_subset: %s
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    ansible_facts_modules: [%s]
  tasks:
    - name: nothing
      ansible.builtin.meta: noop
"""
FACTS_TASKS = """
    - name: wsl
      homelab.ai.wsl_facts:
    - name: gpu
      homelab.ai.gpu_facts:
    - name: runtime
      homelab.ai.container_runtime_facts:
"""
HOST_FACTS_TASKS = """
    - name: host_facts
      homelab.ai.host_facts:
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
        texts = dict((name, PLAY % tasks.strip("\n")) for name, tasks in (
            ("empty", EMPTY_TASKS), ("setup_min", SETUP_TASKS), ("facts3", FACTS_TASKS), ("host_facts", HOST_FACTS_TASKS)))
        # gather_subset would not reach host_facts (ansible-core drops it for other facts modules): its default is min.
        texts["gather_setup_min"] = GATHER_PLAY % ("[min]", "ansible.builtin.setup")
        texts["gather_host_facts"] = GATHER_PLAY % ("null", "homelab.ai.host_facts")
        for name, text in texts.items():
            plays[name] = os.path.join(tmp, name + ".yml")
            with open(plays[name], "w") as handle:
                handle.write(text)
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
    added = {name: med[name] - med["empty"] for name in plays if name != "empty"}
    print("added to a play: setup(min) task %.2f s, 3 fact modules %.2f s, host_facts task %.2f s;"
          " gathering setup(min) %.2f s, gathering host_facts %.2f s"
          % (added["setup_min"], added["facts3"], added["host_facts"], added["gather_setup_min"],
             added["gather_host_facts"]))
    for task in sorted(task_times):
        if task != "nothing":
            print("  task %-30s median %.3f s" % (task, statistics.median(task_times[task])))
    if added["setup_min"] > 0:
        for name in ("facts3", "host_facts"):
            print("ratio %s task/setup_min (added play time): %.2f  (goal <= 0.6)" % (name, added[name] / added["setup_min"]))
    if added["gather_setup_min"] > 0:
        print("ratio detection in the gathering (host_facts gathering - setup min gathering)/setup min gathering: %.2f"
              "  (goal <= 0.6)" % ((added["gather_host_facts"] - added["gather_setup_min"]) / added["gather_setup_min"]))

if __name__ == "__main__":
    main()
