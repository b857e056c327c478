# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to build, documented once: the options of homelab.ai.image_build (fragment homelab.ai.image_build) and
the same options one level down, as O(build) of homelab.ai.container_rollout (homelab.ai.image_build.build).
Their argument spec is module_utils image_build's build_options_spec(), also one for both."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from textwrap import indent

_BUILD_OPTIONS = r"""
name:
  description:
    - Image reference C(repo:tag) to build. Without a tag C(latest) is used.
  type: str
  required: true
path:
  description:
    - Build context directory on the managed host. Exactly one of I(path) and I(files) is required.
  type: path
files:
  description:
    - The build context as a list of files instead of a folder. Nothing is copied anywhere to decide;
      each file is hashed where it lies (a controller file is read by the action plugin, a file on the
      managed host in place), and only a build sends them, as the tar the Docker API takes. The inputs
      hash is the one a folder holding exactly these files would get.
    - No C(.dockerignore) applies (the list is the context). The Dockerfile is the entry whose I(dest)
      is I(dockerfile).
    - A controller file's content travels with the module's arguments, so keep those small (Dockerfiles,
      scripts, configs); a large file such as a wheel belongs on the managed host with I(remote_src).
  type: list
  elements: dict
  suboptions:
    dest:
      description:
        - Path of the file inside the build context, relative, without C(..) (C(Dockerfile), C(certs/ca.crt)).
      type: str
      required: true
    src:
      description:
        - The file to send. On the controller it is looked up like M(ansible.builtin.copy)'s C(src) (a role's
          C(files/) first) and must be UTF-8 text; with I(remote_src) it is a path on the managed host.
      type: path
    remote_src:
      description:
        - I(src) is a file on the managed host (hashed there, never copied to decide).
      type: bool
      default: false
    content:
      description:
        - The file's text, for example C("{{ lookup('ansible.builtin.template', 'requirements.txt.j2') }}").
          Exactly one of I(src) and I(content) per entry.
      type: str
    mode:
      description:
        - Octal mode such as C('0755'). Only the executable bit counts (in the hash and in the image);
          without it, a I(src) file's own executable bit is kept and I(content) is not executable.
      type: str
directories:
  description:
    - Folders of the build context given with I(files) that must exist even when no listed file lies in
      them, because the Dockerfile C(COPY)s them (C(certs) when no CA bundle is wanted). Relative paths.
  type: list
  elements: str
dockerfile:
  description:
    - Dockerfile path relative to I(path) (an absolute path must lie inside I(path)).
  type: str
  default: Dockerfile
build_args:
  description:
    - Build-time variables (C(--build-arg)). They are part of the inputs hash.
  type: dict
  default: {}
labels:
  description:
    - Labels to set on the image. They are part of the inputs hash.
  type: dict
  default: {}
force:
  description:
    - Build even if the inputs hash is unchanged, without the layer cache.
  type: bool
  default: false
check_command:
  description:
    - Command run in a throwaway container of the freshly built image before the tag moves, for
      example C(["python3", "-c", "import diffusers, transformers"]). A list is run without a shell,
      a string by the image's default shell handling. Non-zero exit fails the task and keeps the
      previous image under I(name).
  type: raw
check_timeout:
  description:
    - Seconds I(check_command) may run before it is killed and counted as failed.
  type: int
  default: 300
log_path:
  description:
    - File the build log is streamed to (overwritten per build). Follow it with C(tail -f) during
      long builds. Defaults to C(<tmpdir>/homelab-image-build/<name>.log).
  type: path
pull:
  description:
    - Pull newer base images during the build. Off by default because there is no registry in the
      homelab; base images must already exist locally (the task fails early naming the missing one).
  type: bool
  default: false
pull_missing_bases:
  description:
    - Pull each base image named in the Dockerfile's C(FROM) lines that is not present on the Docker
      host, before the inputs hash is computed. A present base is never re-pulled, so a re-run with the
      same bases changes nothing. This is how a fresh host gets C(debian:bookworm) or
      C(pytorch/pytorch:...) without pulling newer bases on every build (that is I(pull)).
    - In check mode the missing bases are listed in RV(pulled_bases) and nothing is pulled.
  type: bool
  default: false
  version_added: "0.2.0"
target:
  description:
    - Multi-stage build target stage. Part of the inputs hash.
  type: str
network_mode:
  description:
    - Network mode for C(RUN) steps during the build (for example C(host)).
  type: str
timeout:
  description:
    - Seconds the Docker API may stay silent before a request fails. During a build this is the
      longest time one step may print nothing.
  type: int
  default: 3600
keep_previous:
  description:
    - After a build that moved the tag, tag the image I(name) pointed to before as C(<repo>:<tag>-previous)
      and remove the other images this module built for I(name) (see the description); what a
      container still uses is kept and reported in RV(kept_images).
    - In check mode the images that would be removed are listed in RV(removed_images) and nothing is
      tagged or removed.
    - "C(false) tags and removes nothing: every rebuild leaves the image it replaced behind, untagged."
  type: bool
  default: true
  version_added: "0.2.0"
registry:
  description:
    - The homelab's registry (a Harbor project, or any Docker registry v2). Build once, run everywhere.
    - With I(registry.mode=push) this host builds as usual and then pushes the image as
      C(<address>/<project>/<name>:<tag>) unless the registry already holds this very image under that tag
      (after the check passed; a failed build or check pushes nothing).
    - With I(registry.mode=pull) nothing is built here. The registry's image for the tag is pulled by digest
      unless the host has it; the task fails naming the builder when the registry has no such tag.
    - Either way RV(image_ref) names the image by digest. The roles run their containers from it, so a tag that
      went stale on one host cannot decide what runs.
  type: dict
  version_added: "0.3.0"
  suboptions:
    address:
      description: The registry's C(host[:port]), without scheme or path.
      type: str
      required: true
    project:
      description: The Harbor project (a repository path prefix); empty for the registry's root.
      type: str
      default: ""
    username:
      description: Registry user (Harbor robot account); with I(password), or neither for an anonymous registry.
      type: str
    password:
      description: Its password or token. Vault it.
      type: str
    mode:
      description: C(push) on the host that builds, C(pull) on a host that runs what was pushed.
      type: str
      choices: [push, pull]
      default: push
"""


# The build option's header; its suboptions are _BUILD_OPTIONS one level down. The return values the options
# name are image_build's (container_rollout returns them under build).
_BUILD_OPTION = r"""
options:
  build:
    description:
      - Build the image first, as M(homelab.ai.image_build) does with these options (its inputs hash, check
        command, retention and registry), in the same module run, then roll out what the build left under
        O(build.name) (by digest with O(build.registry)). One module run for a service instead of two. Instead of
        O(image) and O(pull).
      - The build uses this module's O(docker_host), O(state_dir) and O(lock_timeout); it holds the build lock of
        its name while it builds, then the rollout takes the container's lock.
      - A build or check that fails rolls nothing out (the running container is left as it was) and fails the
        task with the build's message. RV(build) holds the build's result.
      - In check mode the build is previewed, and the rollout against the image the tag names now; before the first
        build of the name the task says that a real run builds and then creates the container.
    type: dict
    suboptions:
"""


class ModuleDocFragment(object):
    """homelab.ai.image_build (DOCUMENTATION) and homelab.ai.image_build.build (BUILD, container_rollout's option).

    Both are composed from _BUILD_OPTIONS after the class: ansible-test's yamllint sanity test reads a fragment's
    class attributes as string literals only, and a literal copy of the options would be the second place this
    collection documents them. tests/repo/test_doc_fragments.py yamllints the composed strings instead; ansible-doc
    and validate-modules read them as every fragment is read (attributes of the loaded class)."""


ModuleDocFragment.DOCUMENTATION = "options:\n" + indent(_BUILD_OPTIONS.lstrip("\n"), " " * 2)
ModuleDocFragment.BUILD = _BUILD_OPTION + indent(_BUILD_OPTIONS.lstrip("\n"), " " * 6).replace(
    "RV(", "RV(homelab.ai.image_build#module:")
