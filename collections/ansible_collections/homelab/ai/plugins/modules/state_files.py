#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: state_files
short_description: Make a role's state folders and small files right in one module run
version_added: "0.2.0"
description:
  - The folders and small text files a role keeps on a host (local facts under C(/etc/ansible/facts.d),
    C(plan.json), C(launch.json), the smoke report) in one module run, instead of one
    M(ansible.builtin.file) task per folder and one M(ansible.builtin.copy) task per file. On a run that
    changes nothing this is one module start instead of several, which is most of what such a task costs.
  - Folders are created with their parents when missing. A file is written only when its content
    differs, to a temporary file beside it that is then moved over it, so a reader never sees half a file.
    I(mode), I(owner) and I(group) are applied when given and different.
  - Folders are made before files, so a file may lie in a folder of the same task.
author:
  - homelab.ai contributors (@homelab-ai)
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.attributes.posix
attributes:
  check_mode:
    support: full
    details: Reports which folders and files would change; writes nothing.
  diff_mode:
    support: full
    details: One diff per file whose content changes (its text, or its size above 64 KiB).
  idempotent:
    support: full
    details: A second run with the same content writes nothing and reports no change.
options:
  directories:
    description: Folders that must exist.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the folder.
        type: path
        required: true
      mode:
        description: Octal mode such as C('0755'); left alone when not given (a new folder gets the umask's).
        type: str
      owner:
        description: Owner name or uid; left alone when not given.
        type: str
      group:
        description: Group name or gid; left alone when not given.
        type: str
  files:
    description: Files with their whole content.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the file. Its folder must exist or be listed in I(directories).
        type: path
        required: true
      content:
        description: The file's text. Exactly one of I(content) and I(append) per entry.
        type: str
      append:
        description:
          - One record (any JSON value) for a bounded history kept as a JSON list, one record per line. The
            record is added unless it equals the last one (a retried task adds nothing), and only the last
            I(keep) records stay. A file that is not a JSON list is refused, not replaced.
        type: raw
      keep:
        description: How many records a history file keeps (with I(append)).
        type: int
        default: 100
      mode:
        description: Octal mode such as C('0644'); a new file without it gets C(0644), an existing one keeps its mode.
        type: str
      owner:
        description: Owner name or uid; left alone when not given.
        type: str
      group:
        description: Group name or gid; left alone when not given.
        type: str
"""

EXAMPLES = r"""
- name: Write models.json, launch.json and plan.json
  homelab.ai.state_files:
    directories:
      - { path: /var/lib/homelab/vllm, mode: "0755" }
      - { path: /var/lib/homelab/status, mode: "0755" }
    files:
      - path: /var/lib/homelab/vllm/launch.json
        content: "{{ vllm_launch | to_nice_json }}\n"
        mode: "0644"
      - path: /var/lib/homelab/status/plan.json
        content: "{{ vllm_plan | to_nice_json }}\n"
        mode: "0644"

- name: Keep the last 200 smoke results for the status page's plot
  homelab.ai.state_files:
    files:
      - path: /var/lib/homelab/status/smoke-history.json
        append: "{{ smoke_test_report | homelab.ai.smoke_history_entry }}"
        keep: 200
"""

RETURN = r"""
changed_paths:
  description: The folders and files this run created or changed (in check mode, would).
  returned: always
  type: list
  elements: str
  sample: ["/var/lib/homelab/status/plan.json"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils.state_files import StateFilesError, apply_all, plan_all

OWNERSHIP = dict(mode=dict(type="str"), owner=dict(type="str"), group=dict(type="str"))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type="list", elements="dict", default=[],
                             options=dict(path=dict(type="path", required=True), **OWNERSHIP)),
            files=dict(type="list", elements="dict", default=[],
                       options=dict(path=dict(type="path", required=True), content=dict(type="str"),
                                    append=dict(type="raw"), keep=dict(type="int", default=100), **OWNERSHIP),
                       mutually_exclusive=[("content", "append")], required_one_of=[("content", "append")]),
        ),
        supports_check_mode=True,
    )
    try:
        result = apply_all(module, *plan_all(module.params["directories"], module.params["files"]))
    except StateFilesError as exc:
        module.fail_json(msg="state_files: %s" % exc, changed_paths=exc.changed_paths)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
