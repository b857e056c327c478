#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: image_build
short_description: Build a Docker image only when its inputs changed, and prove the tag moved
version_added: "0.1.0"
description:
  - Builds a local Docker image from a Dockerfile with the Docker SDK (no registry needed).
  - An inputs hash over the Dockerfile, every build-context file that C(.dockerignore) lets through
    (content and executable bit, not mtime), I(build_args), I(target), I(labels) and the image IDs of
    the base images named by C(FROM) lines (global C(ARG)s substituted) and C(COPY --from) is kept as
    label C(homelab.ai.inputs-hash) on the image. Unchanged inputs build nothing (C(changed=false));
    changed inputs, a missing image or I(force) build.
  - The build runs under the candidate tag C(<repo>:<tag>-candidate). After the build the module
    verifies that the candidate tag resolves to the image this build produced and that the image was
    created during this run, so a build that silently does nothing (the C(docker compose build)
    without C(build:) lesson) fails the task instead of leaving a stale image.
  - If I(check_command) is set it runs in a throwaway container of the candidate image; only when it
    exits 0 does the real tag move. A failing check leaves the previous image under the real tag and
    removes the candidate tag; the error carries the candidate image ID and the check output.
  - The build output streams line by line to I(log_path) while the build runs, so C(tail -f) on that
    file shows the progress of a long build. On failure the message names the failing step and shows
    the last 30 lines of the log.
  - "Retention (I(keep_previous), on by default): after a build that moved the tag, the image the tag
    pointed to before is tagged C(<repo>:<tag>-previous), the one image kept for a rollback. Then the
    other images this module built for the same name (label C(homelab.ai.image=<repo>:<tag>), or what
    the C(-previous) and C(-candidate) tags pointed to with label C(homelab.ai.inputs-hash)) that are
    neither the new nor the previous image are removed, leftover candidate tags included. Removal is
    never forced: an image a running or stopped container uses (the C(-rollback) container of
    M(homelab.ai.container_rollout), say) or another image is built on stays and is listed in
    RV(kept_images); it goes on a later build once nothing uses it. Images the module did not build,
    images that carry another tag, and a candidate younger than 15 minutes (a build of the same name
    may still be checking it) are never removed. A run that builds nothing removes nothing."
author:
  - homelab.ai contributors (@homelab-ai)
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.docker
  - homelab.ai.host_lock
  - homelab.ai.image_build
attributes:
  check_mode:
    support: full
    details: Computes the inputs hash and reports whether a build would happen; builds and tags nothing.
  diff_mode:
    support: full
    details: Returns the inputs hash and image ID before and after.
  idempotent:
    support: partial
    details:
      - A build happens only when the inputs hash changed or the image is missing, so a second run with the same inputs
        builds, tags and removes nothing. O(pull_missing_bases) pulls only the bases that are missing.
      - With O(force=true) every run rebuilds without the layer cache and moves the tag, which is a change.
options:
  state_dir:
    version_added: "0.2.0"
  lock_timeout:
    version_added: "0.2.0"
notes:
  - An old image that a container still uses is never forced out; it is removed by the first build
    after that container is gone. Images built before version 0.2.0 carry no C(homelab.ai.image) label;
    of those only the ones the C(-previous) and C(-candidate) tags point to are recognised.
  - Context file mtimes are not part of the hash; content, names, symlink targets and the
    executable bit are.
seealso:
  - module: homelab.ai.container_rollout
"""

EXAMPLES = r"""
- name: Build the image server image, verified by importing its ML stack
  homelab.ai.image_build:
    name: "{{ image_server_image }}"
    path: /opt/homelab/image-server
    build_args:
      BASE_IMAGE: "{{ homelab_base_image }}"
    check_command: ["python3", "-c", "import diffusers, transformers"]
    log_path: /var/log/homelab/image-server-build.log
  register: image_server_build

- name: Build from files hashed where they lie (the role's files/, a template, a wheel on the host)
  homelab.ai.image_build:
    name: homelab/torch-base:latest
    files:
      - dest: Dockerfile
        src: Dockerfile
      - dest: requirements.txt
        content: "{{ lookup('ansible.builtin.template', 'requirements.txt.j2') }}"
      - dest: wheels/torch-2.5.1+cpu-cp311-cp311-linux_x86_64.whl
        src: /srv/wheels/torch-2.5.1+cpu-cp311-cp311-linux_x86_64.whl
        remote_src: true
    log_path: /var/log/homelab/torch-base-build.log

- name: Rebuild the dashboard from scratch
  homelab.ai.image_build:
    name: homelab/dashboard:latest
    path: /opt/homelab/dashboard
    force: true
"""

RETURN = r"""
image_ref:
  description:
    - What to run. Without I(registry) the C(repo:tag) I(name); with one, the image by digest
      (C(<address>/<project>/<name>@sha256:...)), null in check mode when a build or push would come first.
  returned: always
  type: str
  sample: harbor.lan/homelab/router@sha256:4f1c...
pushed:
  description: The C(repository:tag) pushed in this run (in check mode, the one that would be); null when none.
  returned: with I(registry.mode=push)
  type: str
pulled:
  description: The digest reference pulled in this run (in check mode, the one that would be); null when none.
  returned: with I(registry.mode=pull)
  type: str
lock_wait:
  description: Who held the build lock of this name when this run started to wait for it; null when it was free.
  returned: when not in check mode
  type: str
  sample: "pid 4242 on gaming-pc (build of homelab/image-server:latest) for 12 s"
name:
  description: The normalised C(repo:tag) that was checked or built.
  returned: always
  type: str
  sample: homelab/image-server:latest
inputs_hash:
  description: sha256 inputs hash of this run, stored as label C(homelab.ai.inputs-hash).
  returned: always
  type: str
  sample: sha256:5f2c...
previous_inputs_hash:
  description: Inputs hash label of the image that I(name) pointed to before, null if none.
  returned: always
  type: str
image_id:
  description: ID of the image I(name) points to after the task (null in check mode when a build would happen).
  returned: always
  type: str
  sample: sha256:9a1e...
previous_image_id:
  description: ID I(name) pointed to before the task, null if it did not exist.
  returned: always
  type: str
built:
  description: Whether an image was built in this run.
  returned: always
  type: bool
log_path:
  description: File holding the build log of this run (or of the last build when nothing was built).
  returned: always
  type: str
check:
  description: Result of I(check_command), null when none ran.
  returned: always
  type: dict
  contains:
    rc:
      description: Exit code of the check container (null if it timed out).
      type: int
    output:
      description: Its combined stdout and stderr (last 200 lines).
      type: str
base_images:
  description: Base image references from the Dockerfile mapped to their local image IDs (C(missing) if absent).
  returned: always
  type: dict
  sample: {"homelab/debian:bookworm": "sha256:d23b..."}
pulled_bases:
  description:
    - Base images pulled in this run because they were missing (with I(pull_missing_bases)); in check
      mode, the ones that would be pulled.
  returned: always
  type: list
  elements: str
  sample: ["debian:bookworm"]
context_files:
  description: Number of files and links in the build context after C(.dockerignore) (with I(files), the files listed).
  returned: always
  type: int
created:
  description: Created timestamp of the new image.
  returned: when built
  type: str
build_seconds:
  description: Wall time of the build and check.
  returned: when built
  type: float
previous_tag:
  description:
    - C(<repo>:<tag>-previous) when that tag exists after the task (in check mode, would exist), null otherwise.
      It names the one previous image kept for a rollback.
  returned: always
  type: str
  sample: homelab/image-server:latest-previous
previous_tag_image_id:
  description: ID RV(previous_tag) points to after the task, null when there is none.
  returned: always
  type: str
removed_images:
  description:
    - IDs of the images built for I(name) that this run removed (in check mode, would remove). Empty when
      nothing was built or I(keep_previous) is false.
  returned: always
  type: list
  elements: str
  sample: ["sha256:77c3..."]
kept_images:
  description: Images built for I(name), neither current nor previous, that were not removed, and why.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The image ID.
      type: str
    tags:
      description: Its tags (empty for a dangling image).
      type: list
      elements: str
    reason:
      description:
        - C(in-use) (a running or stopped container uses it), C(has-children) (another image is built on
          it), C(tagged) (it carries a tag other than the candidate), C(recent-candidate) (a candidate
          younger than 15 minutes), C(error) (the daemon refused otherwise; also a warning).
      type: str
    detail:
      description: The daemon's answer or the reason in words.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.homelab.ai.plugins.module_utils.docker_common import run_docker_module
from ansible_collections.homelab.ai.plugins.module_utils.image_build import (
    BUILD_OPTIONS_RULES,
    build_context_text,
    build_options_problem,
    build_options_spec,
    run_image_build,
)
from ansible_collections.homelab.ai.plugins.module_utils.host_lock import DEFAULT_STATE_DIR


def main():
    argument_spec = build_options_spec()
    argument_spec.update(
        docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"])),
        state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
        lock_timeout=dict(type="int", default=600),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **BUILD_OPTIONS_RULES)
    problem = build_options_problem(module.params, "homelab.ai.image_build")
    if problem:
        module.fail_json(msg=problem)
    run_docker_module(module, run_image_build, "building %s from %s" % (
        module.params["name"], build_context_text(module.params)))


if __name__ == "__main__":
    main()
