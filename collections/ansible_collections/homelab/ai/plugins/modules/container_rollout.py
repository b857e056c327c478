#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: container_rollout
short_description: Replace a Docker container behind a health gate, rolling back on failure
version_added: "0.1.0"
description:
  - Runs a long-lived container from a local image and replaces it only when the image ID
    (resolved from I(image)) or the container configuration changed. With O(build) the image is built first,
    in the same module run, as M(homelab.ai.image_build) builds it. The desired configuration is
    hashed into label C(homelab.ai.config-hash) (secrets into a salted C(homelab.ai.secret-hash)), so
    a second run with the same inputs changes nothing.
  - "A replacement goes: rename the old container to C(<name>-previous), stop it (this frees its
    published host ports), create and start the new one under I(name), then wait until it is running,
    its Docker healthcheck (if any) reports healthy and I(health_url) (if set) answers 2xx, within
    I(health_timeout); then it must stay up without restarting for I(stable_seconds)."
  - A restart loop (state C(restarting), a rising RestartCount), an early exit or an C(unhealthy)
    healthcheck fails the gate at once instead of waiting out I(health_timeout).
  - On failure (and I(rollback=true)) the new container is removed, the previous one is renamed
    back and started, its health is awaited again, and the task fails with the cause, the exit code,
    the healthcheck log, the last 40 log lines of the failed container and whether the previous
    deployment was restored. On success the replaced container is kept, stopped and with no restart
    policy, as C(<name>-rollback) (the one kept before it is removed), so I(state=rolled_back) can
    return to it.
  - "One rollout per container at a time on a host: a lock in I(state_dir), held for the whole task;
    a second run waits up to I(lock_timeout) seconds, saying who holds it, then fails. An
    interrupted run (Ctrl-C, SIGTERM, SIGHUP, a lost connection, a reboot) releases the lock by
    itself."
  - "Before it touches the running container, a rollout writes a journal to I(state_dir). SIGINT,
    SIGTERM and SIGHUP during the health wait restore the previous container at once. After a
    harder stop (kill -9, reboot) the next run reads the journal: the container left under I(name)
    must pass its health gate before the parked C(<name>-previous) is removed, and if it fails, the
    previous one comes back."
  - "Host addresses, host ports published twice, bind sources, device requests and I(health_url)
    are checked before anything is touched."
  - Named volumes and bind mounts are never removed, not even with I(state=absent); anonymous
    volumes only with I(remove_anonymous_volumes).
  - Ansible modules cannot stream output; set I(progress_path) and C(tail -f) it to follow a long
    health wait.
  - There is deliberately no C(privileged) option; grant single capabilities with I(cap_add) or GPUs
    with I(device_requests).
author:
  - homelab.ai contributors (@homelab-ai)
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.docker
  - homelab.ai.host_lock
  - homelab.ai.image_build.build
attributes:
  check_mode:
    support: full
    details: Reports what would change (C(actions), C(diff)); creates, stops and removes nothing.
  diff_mode:
    support: full
    details: Shows image ID and configuration before and after; secret values are masked.
  idempotent:
    support: partial
    details:
      - With O(state=started) a second run with the same image ID, configuration and secrets changes nothing; only a
        container that stopped, crashed or turned unhealthy in between is started and gated again, which is a change.
      - With O(build), the build is idempotent as M(homelab.ai.image_build) is (unchanged inputs build nothing).
      - With O(state=absent) a second run finds nothing left to remove.
      - O(state=rolled_back) is not idempotent. Every run swaps the serving container with C(<name>-rollback), so a
        second run swaps back.
options:
  name:
    description: Container name.
    type: str
    required: true
  image:
    description:
      - Image reference (C(repo:tag) or ID) that must exist locally unless I(pull=true). Its ID is
        resolved on every run, so a rebuilt tag triggers a rollout.
      - Required with I(state=started), unless O(build) names the image to build and run.
    type: str
  pull:
    description: Pull I(image) when it is not present locally. Off by default (no registry in the homelab).
    type: bool
    default: false
  command:
    description: Command (argument list) overriding the image's CMD.
    type: list
    elements: str
  entrypoint:
    description: Entrypoint (argument list) overriding the image's ENTRYPOINT.
    type: list
    elements: str
  env:
    description: Environment variables. Values are shown in the diff and stored in a label.
    type: dict
    default: {}
  secret_env:
    description:
      - Secret environment variables merged into I(env) in the container. Their values are never
        returned, logged or shown in the diff; changes are detected by a salted hash label.
    type: dict
    default: {}
  ports:
    description:
      - Published ports as C([ip:]host_port:container_port[/proto]), for example C(127.0.0.1:8000:8000)
        or C(8080:80).
    type: list
    elements: str
    default: []
  volumes:
    description:
      - Mounts as C(volume_name:/path[:ro]) or C(/host/path:/path[:ro]). Named volumes are created by
        Docker when missing and never removed by this module.
    type: list
    elements: str
    default: []
  create_bind_sources:
    description:
      - Create a bind source of O(volumes) that does not exist as a directory (mode C(0755), with its parents)
        before the container is created, and report it as a change; one that exists is left as it is.
      - Without it a missing bind source fails the task before anything is changed (Docker would create an empty
        root-owned directory and the container would serve nothing from it).
      - Only where the Docker daemon shares this host's filesystem (a unix socket); with another O(docker_host) the
        task fails and names the host.
    type: bool
    default: false
  init_containers:
    description:
      - One-shot containers run to completion, in order, just before this module starts a container of the
        service (a new deployment, or an unchanged one that is stopped or failing); never while a healthy
        unchanged deployment is left serving, so a run that changes nothing starts none of them.
      - Each runs the service's image with the service's O(volumes) (or its own), no network, every capability dropped
        but its own O(init_containers[].cap_add), C(no-new-privileges) and the service's log options, as
        C(<name>-init-<init name>), and is removed afterwards. A non-zero exit fails the task before anything
        running is touched, with the container's last log lines.
      - They are part of the deployment's configuration - changing one replaces the container (and runs them).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A short name, unique in the list (letters, digits, C(_), C(.), C(-)).
        type: str
        required: true
      command:
        description: The command, as a list.
        type: list
        elements: str
        required: true
      entrypoint:
        description: Overrides the image's entrypoint.
        type: list
        elements: str
      user:
        description: C(uid[:gid]) to run as; the image's user when omitted.
        type: str
      volumes:
        description:
          - Its mounts, as O(volumes) takes them; the service's when omitted (a service that mounts its model
            volume read-only gives its init container the same volume writable this way).
        type: list
        elements: str
      cap_add:
        description: Capabilities it keeps (for example C(CHOWN) to give a volume to the service's user).
        type: list
        elements: str
        default: []
      timeout:
        description: Seconds it may run before it is killed and the task fails.
        type: int
        default: 600
  networks:
    description:
      - Networks to attach, the first as the primary one. A missing user-defined network is created
        as a bridge network.
    type: list
    elements: str
    default: []
  network_aliases:
    description: DNS aliases of the container on each of I(networks).
    type: list
    elements: str
    default: []
  device_requests:
    description:
      - "Device requests, for GPUs for example C([{driver: nvidia, count: -1, capabilities: [gpu]}])."
    type: list
    elements: dict
    default: []
    suboptions:
      driver:
        description: Device driver, for example C(nvidia).
        type: str
      count:
        description: Number of devices, C(-1) for all.
        type: int
      device_ids:
        description: Device IDs (exclusive with I(count)).
        type: list
        elements: str
      capabilities:
        description: Capabilities, a list of strings (one set) or of lists (alternatives).
        type: list
        elements: raw
      options:
        description: Driver-specific options.
        type: dict
  restart_policy:
    description: C(no), C(always), C(unless-stopped) or C(on-failure[:N]).
    type: str
    default: unless-stopped
  healthcheck:
    description:
      - Docker healthcheck. I(test) is a command list (run without a shell) or a shell string;
        C(NONE) disables the image's healthcheck.
      - Durations are seconds or strings like C(30s), C(1m30s).
    type: dict
    suboptions:
      test:
        description: Check command.
        type: raw
        required: true
      interval:
        description: Time between checks.
        type: raw
      timeout:
        description: Time one check may take.
        type: raw
      retries:
        description: Consecutive failures before C(unhealthy).
        type: int
      start_period:
        description: Grace period during which failures do not count.
        type: raw
  health_url:
    description: URL probed with HTTP GET from the Docker host during the gate; must answer 2xx.
    type: str
  health_headers:
    description: HTTP headers for I(health_url) (for example an API key). Never logged.
    type: dict
    default: {}
  health_timeout:
    description: Seconds the new container has to become healthy.
    type: int
    default: 120
  stable_seconds:
    description: Seconds the container must then stay running without a restart.
    type: int
    default: 5
  stop_timeout:
    description: Seconds to wait for the old container to stop before it is killed.
    type: int
    default: 10
  labels:
    description: Labels to set on the container.
    type: dict
    default: {}
  user:
    description: User (name or UID[:GID]) the process runs as.
    type: str
  cap_add:
    description: Kernel capabilities to add.
    type: list
    elements: str
    default: []
  cap_drop:
    description: Kernel capabilities to drop (C(ALL) for all).
    type: list
    elements: str
    default: []
  security_opt:
    description: Security options, for example C(no-new-privileges:true).
    type: list
    elements: str
    default: []
  read_only:
    description: Mount the root filesystem read-only.
    type: bool
    default: false
  tmpfs:
    description: tmpfs mounts as C(/path[:options]).
    type: list
    elements: str
    default: []
  shm_size:
    description: Size of /dev/shm, for example C(1g) (vLLM wants a large one).
    type: str
  ipc_mode:
    description: IPC mode, for example C(host).
    type: str
  working_dir:
    description: Working directory inside the container.
    type: str
  log_driver:
    description: Docker log driver of the container.
    type: str
    default: json-file
  log_options:
    description:
      - Options of I(log_driver). For C(json-file) and C(local), C(max-size) and C(max-file) are
        required so a container's log cannot fill the disk.
    type: dict
    default:
      max-size: 10m
      max-file: "3"
  init:
    description:
      - Run Docker's init (tini) as PID 1, so the process gets signals and a stop does not wait out
        I(stop_timeout).
    type: bool
    default: true
  memory:
    description: Memory limit, for example C(8g). Unset means no limit.
    type: str
  pids_limit:
    description: Most processes and threads the container may have. Unset means no limit.
    type: int
  state:
    description:
      - C(started) rolls out; C(absent) removes the container and its kept C(-previous) and
        C(-rollback) containers (volumes are kept).
      - C(rolled_back) swaps the serving container with C(<name>-rollback), behind the health gate the
        rollback container was rolled out with (its C(homelab.ai.health-gate) label), and fails,
        serving what served before, when there is none or it does not pass.
    type: str
    choices: [started, absent, rolled_back]
    default: started
  keep_rollback:
    description: Keep the replaced container stopped as C(<name>-rollback) after a successful replacement.
    type: bool
    default: true
  rollback:
    description:
      - Restore the previous container when the new one fails the gate. With C(false) the failed
        container stays for debugging and the previous one stays stopped as C(<name>-previous).
    type: bool
    default: true
  remove_anonymous_volumes:
    description: Also remove anonymous volumes of containers this module removes. Named volumes never.
    type: bool
    default: false
  progress_path:
    description: File that receives timestamped progress lines (follow it with C(tail -f)).
    type: path
  state_files:
    description:
      - Folders and files that describe what the container serves (a plan, a launcher's registry), as a dict with
        the keys C(directories) and C(files) of M(homelab.ai.state_files), made right as that module makes them
        (each file only when its content differs, atomically), in this module run.
      - They are checked before anything is touched, and written only once the container serves, after its health
        gate or when it already served unchanged. A rollout that fails or is refused writes none of them, so they
        never describe a container that does not serve.
      - M(homelab.ai.vllm_plan) returns its plan's files in this form (O(homelab.ai.vllm_plan#module:write_files.defer)).
      - The whole files (not a history kept with C(append)) are remembered per deployment in
        C(<state_dir>/<name>.served-files.json). O(state=rolled_back) writes back those of the deployment it returns
        to, so they follow the rollback too; check mode with diff shows what it would write back.
      - Only with O(state=started).
    type: dict
seealso:
  - module: homelab.ai.image_build
"""

EXAMPLES = r"""
- name: Roll out the image server behind its health endpoint
  homelab.ai.container_rollout:
    name: image-server
    image: "{{ image_server_image }}"
    ports: ["127.0.0.1:7860:7860"]
    volumes: ["image-server-cache:/root/.cache"]
    networks: [homelab]
    network_aliases: [image-server]
    device_requests:
      - driver: nvidia
        count: -1
        capabilities: [gpu]
    secret_env:
      HF_TOKEN: "{{ vault_hf_token }}"
    health_url: http://127.0.0.1:7860/health
    health_timeout: 300
    progress_path: /var/log/homelab/image-server-rollout.log

- name: Roll out vLLM; before a container starts, give the model volume to its non-root user
  homelab.ai.container_rollout:
    name: homelab-vllm
    image: vllm/vllm-openai:v0.32.0
    user: "1000:1000"
    volumes: ["vllm-models:/models"]
    init_containers:
      - name: volume-owner
        user: "0:0"
        entrypoint: [sh, -c]
        command: ["chown -R 1000:1000 /models && echo done"]
        cap_add: [CHOWN, DAC_OVERRIDE, FOWNER]
    health_url: http://127.0.0.1:8000/health

- name: Build the dashboard image and roll it out, in one module run (the tag moves only when nginx -t passes)
  homelab.ai.container_rollout:
    name: homelab-dashboard
    build:
      name: homelab/dashboard:latest
      files:
        - {dest: Dockerfile, src: Dockerfile}
        - {dest: nginx.conf, content: "{{ lookup('ansible.builtin.template', 'nginx.conf.j2') }}"}
      check_command: [nginx, -t]
    ports: ["127.0.0.1:8080:8080"]
    health_url: http://127.0.0.1:8080/healthz
  register: dashboard
  # dashboard.build.built: whether this run built; dashboard.build.image_ref: the image it rolled out

- name: Return vLLM to the deployment before the current one (kept as homelab-vllm-rollback)
  homelab.ai.container_rollout:
    name: homelab-vllm
    state: rolled_back

- name: Remove the dashboard container (its volumes stay)
  homelab.ai.container_rollout:
    name: gaming-dashboard
    image: homelab/dashboard:latest
    state: absent
"""

RETURN = r"""
container:
  description: The container under I(name) after the task (null if none).
  returned: always
  type: dict
  contains:
    id:
      description: Container ID.
      type: str
    name:
      description: Container name.
      type: str
    image_id:
      description: ID of the image it runs.
      type: str
    status:
      description: Docker state, for example C(running).
      type: str
    health:
      description: Docker health status, null without a healthcheck.
      type: str
    restart_count:
      description: Docker's RestartCount.
      type: int
rolled_back:
  description:
    - Whether a failed rollout restored the previous container (also returned on failure), or
      I(state=rolled_back) put the rollback container in place.
  returned: always
  type: bool
rolled_back_to:
  description:
    - The container O(state=rolled_back) returns to (in check mode, would return to), C(<name>-rollback) as it was
      before the swap (C(id), C(name), C(image_id), C(status), C(health), C(restart_count)). Its ID is the one that
      serves afterwards, under O(name).
  returned: when O(state=rolled_back) found a deployment to return to
  type: dict
previous_image_id:
  description: Image ID of the container that existed before the task, null if none.
  returned: always
  type: str
image_id:
  description: Image ID resolved from I(image).
  returned: when state is started
  type: str
config_hash:
  description: Hash of the desired configuration (label C(homelab.ai.config-hash)).
  returned: when state is started
  type: str
changed_keys:
  description: Configuration keys (and C(image_id), C(secret_env)) that differ from the running container.
  returned: when state is started
  type: list
  elements: str
actions:
  description: What was done (or, in check mode, would be done), in order.
  returned: always
  type: list
  elements: str
lock_wait:
  description: Who held this container's rollout lock when this run had to wait for it; null when it did not wait.
  returned: always
  type: str
init_containers:
  description: The init containers this run ran, in order (C(name), C(exit_code), C(output) as their last log lines).
  returned: when one ran
  type: list
  elements: dict
  sample: [{"name": "homelab-vllm-init-volume-owner", "exit_code": 0, "output": "unchanged"}]
build:
  description:
    - The result of the build O(build) asked for, as M(homelab.ai.image_build) returns it (C(image_ref), the
      image it rolled out; C(changed), C(built), C(inputs_hash), C(check), C(previous_image_id), C(removed_images)...).
      The task is C(changed) when the build or the rollout changed something.
  returned: when O(build) is given
  type: dict
  sample: {"changed": false, "built": false, "image_ref": "homelab/dashboard:latest", "inputs_hash": "sha256:..."}
state_files_changed:
  description:
    - The folders and files of O(state_files) this run created or changed (in check mode, would); after
      O(state=rolled_back), the remembered files it wrote back (in check mode, would write back).
  returned: when O(state_files) is given, or O(state=rolled_back) found files remembered for its deployment
  type: list
  elements: str
  sample: ["/var/lib/homelab/status/plan.json"]
failed_container:
  description:
    - Evidence about the failed new container (cause, exit_code, exit_codes from the daemon's die events,
      restart_count, health_log, logs).
  returned: on failure of the health gate
  type: dict
"""

import functools

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.homelab.ai.plugins.module_utils.docker_common import run_docker_module
from ansible_collections.homelab.ai.plugins.module_utils.container_rollout import DEFAULT_LOG_OPTIONS
from ansible_collections.homelab.ai.plugins.module_utils.host_lock import DEFAULT_STATE_DIR
from ansible_collections.homelab.ai.plugins.module_utils.image_build import (
    BUILD_OPTIONS_RULES,
    build_options_problem,
    build_options_spec,
)
from ansible_collections.homelab.ai.plugins.module_utils.served_files import run_serving_rollout


def argument_spec():
    """The options, as DOCUMENTATION lists them (build's are image_build's, from module_utils)."""
    return dict(
        name=dict(type="str", required=True),
        image=dict(type="str"),
        pull=dict(type="bool", default=False),
        command=dict(type="list", elements="str"),
        entrypoint=dict(type="list", elements="str"),
        env=dict(type="dict", default={}),
        secret_env=dict(type="dict", default={}, no_log=True),
        ports=dict(type="list", elements="str", default=[]),
        volumes=dict(type="list", elements="str", default=[]),
        create_bind_sources=dict(type="bool", default=False),
        init_containers=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            command=dict(type="list", elements="str", required=True),
            entrypoint=dict(type="list", elements="str"),
            user=dict(type="str"),
            volumes=dict(type="list", elements="str"),
            cap_add=dict(type="list", elements="str", default=[]),
            timeout=dict(type="int", default=600),
        )),
        networks=dict(type="list", elements="str", default=[]),
        network_aliases=dict(type="list", elements="str", default=[]),
        device_requests=dict(type="list", elements="dict", default=[], options=dict(
            driver=dict(type="str"),
            count=dict(type="int"),
            device_ids=dict(type="list", elements="str"),
            capabilities=dict(type="list", elements="raw"),
            options=dict(type="dict"),
        )),
        restart_policy=dict(type="str", default="unless-stopped"),
        healthcheck=dict(type="dict", options=dict(
            test=dict(type="raw", required=True),
            interval=dict(type="raw"),
            timeout=dict(type="raw"),
            retries=dict(type="int"),
            start_period=dict(type="raw"),
        )),
        health_url=dict(type="str"),
        health_headers=dict(type="dict", default={}, no_log=True),
        health_timeout=dict(type="int", default=120),
        stable_seconds=dict(type="int", default=5),
        stop_timeout=dict(type="int", default=10),
        labels=dict(type="dict", default={}),
        user=dict(type="str"),
        cap_add=dict(type="list", elements="str", default=[]),
        cap_drop=dict(type="list", elements="str", default=[]),
        security_opt=dict(type="list", elements="str", default=[]),
        read_only=dict(type="bool", default=False),
        tmpfs=dict(type="list", elements="str", default=[]),
        shm_size=dict(type="str"),
        ipc_mode=dict(type="str"),
        working_dir=dict(type="str"),
        log_driver=dict(type="str", default="json-file"),
        log_options=dict(type="dict", default=dict(DEFAULT_LOG_OPTIONS)),
        init=dict(type="bool", default=True),
        memory=dict(type="str"),
        pids_limit=dict(type="int"),
        state=dict(type="str", default="started", choices=["started", "absent", "rolled_back"]),
        keep_rollback=dict(type="bool", default=True),
        lock_timeout=dict(type="int", default=600),
        state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
        rollback=dict(type="bool", default=True),
        remove_anonymous_volumes=dict(type="bool", default=False),
        progress_path=dict(type="path"),
        docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"])),
        build=dict(type="dict", options=build_options_spec(), **BUILD_OPTIONS_RULES),
        state_files=dict(type="dict"),
    )


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[("state", "started", ["image", "build"], True)],
        mutually_exclusive=[["image", "build"], ["pull", "build"]],
        supports_check_mode=True,
    )
    build = module.params["build"]
    problem = build and build_options_problem(build, "homelab.ai.container_rollout")
    if problem:
        module.fail_json(msg="build: " + problem)
    run_docker_module(module, functools.partial(run_serving_rollout, module), "rolling out container %s (image %s)" % (
        module.params["name"], module.params["image"] or (build or {}).get("name")))


if __name__ == "__main__":
    main()
