#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""A no-op run of our stack play against the equivalent community.docker play, in the same run.

Ours: ``playbooks/stack.yml`` on the local profile, already deployed, for the three services the issue
names (vLLM from the plan, the image server and the dashboard; ``homelab_monitoring_enabled=false``, as
monitoring counts on its own): gpu_host, the local images, content-hashed builds, health-gated
rollouts. Theirs: ``community.docker.docker_image`` (``source: build``) and
``community.docker.docker_container`` for the same three services, from the same images (tagged
``homelab-bench/...``) with the same command, entrypoint, environment, user, volumes and networks as
our running containers, published on other ports. community.docker's no-op checks that the image
tag exists (it never looks at the build context) and compares each container's configuration.

Two community.docker plays: the issue's (three service images) and one that also builds the CPU torch
base our play builds for them on this profile, so that both build the same four images (on this profile
vLLM's service image is the vLLM-CPU image roles/vllm_cpu_image builds; until 2026-12-06 this play also
built it a second time under another tag, five images). All three plays run in turn, N times each after a warm-up run
each; every measured run must report changed=0. Prints the median wall time of each, the ratios
(goal: ours at most 1.5x theirs) and the task counts, and beside them the median CPU seconds of each run
and their ratio: on a shared 2-core machine a run's wall time moves by 20% from one run to the next, the
CPU it costs less; and the median of the rounds' ratios (one round runs each play once, in turn). Then
one more run of each under tests/bench/cpu_breakdown.py says where its CPU went: the main process, the
tasks' workers, the modules. No asserts on the figures (project rule); exit
1 when a run fails or changes something. The bench's containers and tags are removed at the end.

Usage: .venv/bin/python tests/bench/bench_noop.py [runs]   (default 5; the stack must be deployed:
bash scripts/deploy.sh)
"""

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICES = (("vllm", "homelab-vllm"), ("image-server", "homelab-image-server"), ("dashboard", "homelab-dashboard"))
# The base image our play builds for those services on the local profile (roles/torch_base); the other,
# roles/vllm_cpu_image's, is vLLM's service image itself.
BASE_IMAGES = (("torch-base", "homelab/torch-cpu:2.13.0"),)
PORT_OFFSET = 10000
# The tests' docker CLI helper (tests/support/docker_cli.py; it imports the collection's state folder).
sys.path[:0] = [ROOT, os.path.join(ROOT, "collections")]
from tests.support.docker_cli import DockerCommandFailed, docker  # noqa: E402  pylint: disable=wrong-import-position

RECAP = re.compile(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)", re.M)


def ansible_env(root=ROOT):
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(root, "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(root, "collections"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_ROLES_PATH=os.path.join(root, "roles"))


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_play(args, label, root=ROOT):
    """One ansible-playbook run in ``root`` (a checkout): (wall seconds, CPU seconds, ok, changed, skipped). Exits
    on failure.

    The CPU seconds are ansible-playbook's and every process it waited for (its workers, the modules):
    what the run cost this machine, which a neighbour on a shared host moves far less than the wall time.
    The Docker daemon's own work for a request is not in them."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")] + args
    start, cpu_start = time.monotonic(), children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(root), cwd=root, check=False)
    wall, cpu = time.monotonic() - start, children_cpu() - cpu_start
    recap = RECAP.findall(proc.stdout)
    if proc.returncode or not recap:
        sys.exit("%s failed (rc %d):\n%s\n%s" % (label, proc.returncode, proc.stdout[-4000:], proc.stderr[-2000:]))
    ok, changed, _unreachable, _failed, skipped = (sum(int(r[i]) for r in recap) for i in range(5))
    return wall, cpu, ok, changed, skipped


def container_spec(service, name):
    """What community.docker needs to run the same container as ours (read from the running one)."""
    info = json.loads(docker("inspect", name))[0]
    config, host = info["Config"], info["HostConfig"]
    image = "homelab-bench/%s:noop" % service
    docker("tag", info["Image"], image)
    ports = []
    for container_port, bindings in (host.get("PortBindings") or {}).items():
        for binding in bindings or []:
            ports.append("%s:%d:%s" % (binding.get("HostIp") or "127.0.0.1",
                                       int(binding["HostPort"]) + PORT_OFFSET, container_port.split("/")[0]))
    mounts = ["%s:%s%s" % (m.get("Name") or m["Source"], m["Destination"], "" if m.get("RW", True) else ":ro")
              for m in info.get("Mounts") or []]
    networks = [{"name": net} for net in (info["NetworkSettings"].get("Networks") or {}) if net != "bridge"]
    return {
        "name": "homelab-bench-%s" % service, "image": image,
        "command": config.get("Cmd") or [], "entrypoint": config.get("Entrypoint") or [],
        "env": dict(e.split("=", 1) for e in config.get("Env") or []),
        "user": config.get("User") or "", "volumes": mounts, "ports": ports, "networks": networks,
        "shm_size": str(host.get("ShmSize") or 67108864), "init": bool(host.get("Init")),
    }


COMMUNITY_PLAY = """
- name: The same three services with community.docker
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    services: %s
    images: %s
  tasks:
    - name: Build each image (source build; a present tag is not rebuilt)
      community.docker.docker_image:
        name: "{{ item.image }}"
        source: build
        build:
          path: %s
      loop: "{{ images }}"
      loop_control:
        label: "{{ item.image }}"
    - name: Run each container
      community.docker.docker_container:
        name: "{{ item.name }}"
        image: "{{ item.image }}"
        command: "{{ item.command }}"
        entrypoint: "{{ item.entrypoint }}"
        env: "{{ item.env }}"
        user: "{{ item.user | default(omit, true) }}"
        volumes: "{{ item.volumes }}"
        published_ports: "{{ item.ports }}"
        networks: "{{ item.networks if item.networks else omit }}"
        shm_size: "{{ item.shm_size }}"
        init: "{{ item.init }}"
        restart_policy: unless-stopped
        state: started
      loop: "{{ services }}"
      loop_control:
        label: "{{ item.name }}"
      no_log: true
"""


def wait_until_serving(spec, timeout=600):
    """The bench's vLLM loads its model after the first run: wait for /health so it does not load during the runs."""
    import urllib.request  # pylint: disable=import-outside-toplevel
    ports = [p for p in spec["ports"] if p.endswith(":8000")]
    if not ports:
        return
    url = "http://127.0.0.1:%s/health" % ports[0].split(":")[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    sys.exit("%s did not answer %s within %d s" % (spec["name"], url, timeout))


def base_image_spec(key, name):
    """A base image our play builds, tagged for the community play's docker_image."""
    image = "homelab-bench/%s:noop" % key
    docker("tag", name, image)
    return {"image": image}


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    inventory = os.environ.get("HOMELAB_INVENTORY", "inventories/local")
    specs = [container_spec(service, name) for service, name in SERVICES]
    bases = [base_image_spec(key, name) for key, name in BASE_IMAGES]
    plays = {"ours": (["-i", inventory, "playbooks/stack.yml", "-e", "homelab_monitoring_enabled=false"],
                      "playbooks/stack.yml (monitoring off)")}
    with tempfile.TemporaryDirectory() as tmp:
        for key, images, title in (("theirs", specs, "community.docker, 3 images"),
                                   ("theirs_bases", bases + specs, "community.docker, 4 images")):
            path = os.path.join(tmp, key + ".yml")
            with open(path, "w") as handle:
                handle.write(COMMUNITY_PLAY % (json.dumps(specs), json.dumps(images), json.dumps(tmp)))
            plays[key] = ([path], title)
        try:
            for key, (args, title) in plays.items():
                run_play(args, "%s warm-up" % title)
            wait_until_serving(specs[0])
            walls, cpus = {key: [] for key in plays}, {key: [] for key in plays}
            counts = {}
            for i in range(runs):
                for key, (args, title) in plays.items():
                    wall, cpu, ok, changed, skipped = run_play(args, "%s run %d" % (title, i + 1))
                    if changed:
                        sys.exit("%s run %d reported changed=%d: not a no-op" % (title, i + 1, changed))
                    walls[key].append(wall)
                    cpus[key].append(cpu)
                    counts[key] = (ok, skipped)
            breakdowns = dict((key, cpu_breakdown(args, title, tmp)) for key, (args, title) in plays.items())
        finally:
            for spec in specs:
                docker("rm", "-f", spec["name"], check=False)
            for spec in specs + bases:
                docker("rmi", spec["image"], check=False)
    med = dict((k, statistics.median(v)) for k, v in walls.items())
    cpu = dict((k, statistics.median(v)) for k, v in cpus.items())
    print("no-op runs, %d each, in turn (median wall time of a whole ansible-playbook run; CPU: its own and its"
          " children's user+sys seconds):" % runs)
    for key, (_args, title) in plays.items():
        print("  %-36s %6.2f s  (min %.2f, max %.2f); CPU %5.2f s; tasks: %d ok, %d skipped"
              % (title, med[key], min(walls[key]), max(walls[key]), cpu[key], counts[key][0], counts[key][1]))
    print_ratios(walls, med, cpu)
    print_breakdowns(plays, breakdowns)


def print_ratios(walls, med, cpu):
    """The ratio of the medians (``med``, ``cpu``: each play's median wall and CPU seconds), and beside it the
    median of each round's ratio: a round runs the plays one after the other, so its ratio compares runs under
    the same load and a neighbour's burst moves one round, not the medians of one play only."""
    for key, title in (("theirs", "3 service images, the issue's play"), ("theirs_bases", "the same 4 images ours builds")):
        rounds = [ours / theirs for ours, theirs in zip(walls["ours"], walls[key])]
        print("ratio ours/community.docker (%-34s): %.2f  (goal <= 1.5); CPU %.2f; per round: median %.2f (%.2f to %.2f)"
              % (title, med["ours"] / med[key], cpu["ours"] / cpu[key], statistics.median(rounds), min(rounds), max(rounds)))


def cpu_breakdown(args, title, tmp):
    """One more no-op run under tests/bench/cpu_breakdown.py: where that run's CPU went."""
    out = os.path.join(tmp, "breakdown.json")
    cmd = [sys.executable, os.path.join(ROOT, "tests", "bench", "cpu_breakdown.py"), out] + args
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(), cwd=ROOT, check=False)
    if proc.returncode:
        sys.exit("%s (CPU breakdown run) failed (rc %d):\n%s" % (title, proc.returncode, proc.stdout[-3000:]))
    with open(out) as handle:
        return json.load(handle)


def print_breakdowns(plays, breakdowns):
    print("where the CPU goes (one more no-op run each, user+sys seconds): the main process (start-up, parsing, the"
          " strategy), the tasks' workers (templating, building each module's payload), the modules (and their shells):")
    for key, (_args, title) in plays.items():
        found = breakdowns[key]
        workers = found["workers"]
        print("  %-36s main %5.2f  workers %5.2f  modules %5.2f  (%d tasks)"
              % (title, found["main"], sum(w["self"] for w in workers), sum(w["children"] for w in workers), len(workers)))
    costly = sorted(breakdowns["ours"]["workers"], key=lambda w: -w["self"])[:5]
    print("  ours, the workers that cost most: " + "; ".join("%s %.2f" % (w["task"][:60], w["self"]) for w in costly))


if __name__ == "__main__":
    try:
        main()
    except DockerCommandFailed as exc:  # a script: say what failed and exit, no traceback
        sys.exit(str(exc))
