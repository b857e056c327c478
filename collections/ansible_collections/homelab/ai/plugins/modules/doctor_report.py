#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: doctor_report
short_description: Gather one redacted report of a homelab host to paste into an issue
version_added: "0.2.0"
description:
  - Reads what the roles recorded under O(state_dir) (the vLLM plan with its GPU ledger, the launch, the last smoke
    report and the last O(history_entries) of the smoke history, unfinished rollout journals).
  - Asks the Docker daemon about every container whose name starts with O(container_prefix), running or not
    (state, health, restart count, exit code, OOM kill, image and its version labels, published ports) and keeps
    the error lines of the last O(log_lines) lines of each one's log (a stopped container's last lines too).
  - Picks from O(facts) what a person debugging the stack needs (distribution, kernel, memory, CPUs, WSL, GPUs, the
    container runtime, the homelab's local facts), lists the versions of what runs the stack (from the facts, the
    Docker engine, the plan, each image's version labels, and O(versions)) and renders everything as Markdown.
  - Redacts every string of the report and of the Markdown. Secrets are the content of every file under
    C(<state_dir>/secrets), the values of O(secrets), and anything shaped like a credential (a bearer token, an
    C(api_key=) or C(--api-key) value, a URL password, Hugging Face, OpenAI and GitHub style tokens).
    Addresses are those of the host in O(facts) (every IPv4 and IPv6 address, MAC addresses, the gateway, a
    dotted FQDN), the values of O(addresses), every other IPv4 or IPv6 address that is not loopback or
    unspecified, and MAC addresses. The credential variables of the containers' environments are redacted
    wherever their values appear; the environments themselves are never reported.
  - Never fails because a part is missing or the daemon is down; the report says what could not be read.
options:
  state_dir:
    description: The homelab state directory (C(homelab_state_dir)).
    type: path
    required: true
  container_prefix:
    description: Containers whose name starts with this are reported.
    type: str
    default: homelab-
  log_lines:
    description: How many of the last lines of each container's log are read.
    type: int
    default: 400
  errors_per_service:
    description: At most this many error lines are kept per container (the latest).
    type: int
    default: 20
  history_entries:
    description: How many of the latest smoke history records are kept.
    type: int
    default: 5
  facts:
    description:
      - The host's C(ansible_facts) (setup's with the C(network) subset, and M(homelab.ai.host_facts)'). The module
        keeps a subset and reads the host's addresses from them for redaction.
    type: dict
    default: {}
  versions:
    description: More versions to list (Ansible's, the collection's), by what they are the version of.
    type: dict
    default: {}
  secrets:
    description:
      - Secret values to redact besides the files under C(<state_dir>/secrets), for example keys from a vault.
      - Values shorter than 8 characters are not redacted by value.
    type: list
    elements: str
    default: []
  addresses:
    description: The host's addresses and names to redact wherever they appear (loopback and unspecified are kept).
    type: list
    elements: str
    default: []
  generated_at:
    description: The time written in the report (the play passes the controller's).
    type: str
    default: ""
extends_documentation_fragment:
  - homelab.ai.docker
  - homelab.ai.attributes
  - homelab.ai.attributes.info_module
  - homelab.ai.attributes.idempotent_not_modify_state
author:
  - homelab.ai contributors (@homelab-ai)
"""

EXAMPLES = r"""
- name: Gather the doctor report
  homelab.ai.doctor_report:
    state_dir: /var/lib/homelab
    facts: "{{ ansible_facts }}"
    versions:
      ansible: "{{ ansible_version.full }}"
    secrets: ["{{ hf_token }}"]
    addresses: ["{{ ansible_host }}"]
  register: doctor

- name: Write it on the controller
  ansible.builtin.copy:
    content: "{{ doctor.markdown }}"
    dest: "out/doctor/{{ inventory_hostname }}.md"
    mode: "0600"
  delegate_to: localhost
"""

RETURN = r"""
markdown:
  description: The redacted report as Markdown, summary first, details folded.
  returned: always
  type: str
summary:
  description: The summary lines (containers, last smoke test, unfinished rollouts, problems), redacted.
  returned: always
  type: list
  elements: str
report:
  description: The redacted report as data.
  returned: always
  type: dict
  contains:
    generated_at:
      description: O(generated_at).
      type: str
    facts:
      description: O(facts), redacted.
      type: dict
    versions:
      description: O(versions), redacted.
      type: dict
    engine:
      description: The Docker engine's version, API version, OS and kernel; null when the daemon was not reached.
      type: dict
    containers:
      description:
        - One entry per container, with name, image, image_id, status, health, restart_count, started_at, finished_at,
          exit_code, oom_killed, error, ports, labels, image_labels, log_errors and (stopped ones) log_tail.
      type: list
      elements: dict
    state:
      description: What the roles recorded (plan, launch, smoke, smoke_history, unfinished_rollouts, state_dir).
      type: dict
    problems:
      description: What could not be read (the daemon, a secret file), each in words.
      type: list
      elements: str
    summary:
      description: The summary lines, as RV(summary).
      type: list
      elements: str
    redactions:
      description: How many secrets and addresses were replaced.
      type: dict
      sample: {"secrets": 2, "addresses": 5}
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.homelab.ai.plugins.module_utils.docker_common import (
    DOCKER_IMPORT_ERROR,
    HAS_DOCKER,
    get_client,
)
from ansible_collections.homelab.ai.plugins.module_utils.doctor import build_report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type="path", required=True),
            container_prefix=dict(type="str", default="homelab-"),
            log_lines=dict(type="int", default=400),
            errors_per_service=dict(type="int", default=20),
            history_entries=dict(type="int", default=5),
            facts=dict(type="dict", default={}),
            versions=dict(type="dict", default={}),
            secrets=dict(type="list", elements="str", default=[], no_log=True),
            addresses=dict(type="list", elements="str", default=[]),
            generated_at=dict(type="str", default=""),
            docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"])),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)
    report, markdown = build_report(
        p["state_dir"], lambda: get_client(p["docker_host"], timeout=30), p["facts"], p["versions"],
        p["secrets"], p["addresses"], p["generated_at"], prefix=p["container_prefix"], log_lines=p["log_lines"],
        errors_per_service=p["errors_per_service"], history_entries=p["history_entries"])
    module.exit_json(changed=False, report=report, markdown=markdown, summary=report["summary"])


if __name__ == "__main__":
    main()
