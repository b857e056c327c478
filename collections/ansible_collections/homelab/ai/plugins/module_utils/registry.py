# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The homelab's registry (a Harbor project, or any Docker registry v2): build once, run everywhere.

With a registry set, ``homelab.ai.image_build`` (module_utils/image_build.py) works in one of two modes:

* ``push`` (the host that builds): after the build's checks pass - or on a run that builds nothing - the
  image is pushed as ``<address>/<project>/<name>:<tag>`` unless the registry already holds this very
  image under that tag, and the result names it by digest (``<address>/<project>/<name>@sha256:...``).
* ``pull`` (a host that does not build): the tag is resolved to its digest in the registry, the image is
  pulled by that digest unless the host has it, and the result names it by digest.

Either way the roles run the container from ``image_ref``, the digest: a tag that went stale on one host
(the record's stale dashboard image) can no longer decide what runs.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.homelab.ai.plugins.module_utils.docker_common import (
    HomelabDockerError, api_error_text, follow_progress, inspect_image_or_none, split_image_ref)

MODES = ("push", "pull")
_ADDRESS_RE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
_PROJECT_RE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$")


def validate(registry):
    """The registry settings, checked; raises HomelabDockerError naming the setting and the fix."""
    address = str(registry.get("address") or "")
    if not _ADDRESS_RE.match(address):
        raise HomelabDockerError("registry.address %r is not a registry host[:port] (e.g. harbor.lan or 192.0.2.5:5000; "
                                 "no scheme, no path: the project goes in registry.project)" % address)
    project = str(registry.get("project") or "")
    if project and not _PROJECT_RE.match(project):
        raise HomelabDockerError("registry.project %r is not a lowercase repository path (e.g. homelab)" % project)
    if registry.get("mode", "push") not in MODES:
        raise HomelabDockerError("registry.mode must be push (this host builds and pushes) or pull (it takes the "
                                 "pushed image), got %r" % registry.get("mode"))
    if bool(registry.get("username")) != bool(registry.get("password")):
        raise HomelabDockerError("registry.username and registry.password go together: set both (vaulted) or neither")
    return registry


def remote_repository(registry, name):
    """``<address>/<project>/<last part of the repository>`` and the tag of local image ``name``."""
    repo, tag = split_image_ref(name)
    parts = [registry["address"]] + ([registry["project"]] if registry.get("project") else []) + [repo.split("/")[-1]]
    return "/".join(parts), tag


def auth_config(registry):
    if not registry.get("username"):
        return None
    return {"username": registry["username"], "password": registry["password"], "serveraddress": registry["address"]}


def remote_digest(client, registry, repository, tag):
    """The manifest digest the registry holds for ``repository:tag``, or None when it has no such tag."""
    try:
        found = client.inspect_distribution("%s:%s" % (repository, tag), auth_config=auth_config(registry))
    except Exception as exc:  # docker.errors.APIError: the daemon relays the registry's answer
        text = api_error_text(exc)
        if re.search(r"manifest unknown|not found|404", str(text), re.IGNORECASE):
            return None
        raise HomelabDockerError("the registry %s did not answer for %s:%s: %s. Check registry.address, that the "
                                 "Docker host reaches it (an http registry must be in the daemon's insecure-registries) "
                                 "and the credentials." % (registry["address"], repository, tag, text))
    return (found.get("Descriptor") or {}).get("digest")


def local_digest(image, repository):
    """The digest ``image`` was pushed to or pulled from ``repository`` under, from its RepoDigests."""
    for ref in (image or {}).get("RepoDigests") or []:
        if ref.startswith(repository + "@"):
            return ref[len(repository) + 1:]
    return None


def push(client, registry, name, image_id, check_mode=False):
    """Push the image ``name`` points to unless the registry already holds it under that tag.

    Returns ``{"changed", "image_ref", "pushed"}``; ``image_ref`` is the digest reference (None in check
    mode when a push would happen)."""
    repository, tag = remote_repository(registry, name)
    remote = remote_digest(client, registry, repository, tag)
    held = local_digest(inspect_image_or_none(client, image_id), repository)
    if remote and held == remote:
        return {"changed": False, "pushed": None, "image_ref": "%s@%s" % (repository, remote)}
    if check_mode:
        return {"changed": True, "pushed": "%s:%s" % (repository, tag), "image_ref": None}
    client.tag(image_id, repository, tag=tag)
    what = "pushing %s:%s to the registry %s" % (repository, tag, registry["address"])
    try:
        digest = follow_progress(client.push(repository, tag=tag, stream=True, decode=True,
                                             auth_config=auth_config(registry)))
    except Exception as exc:
        raise HomelabDockerError("%s failed: %s" % (what, api_error_text(exc)))
    digest = digest or local_digest(inspect_image_or_none(client, image_id), repository)
    if not digest:
        raise HomelabDockerError("%s reported no digest: the registry did not confirm the push" % what)
    return {"changed": True, "pushed": "%s:%s" % (repository, tag), "image_ref": "%s@%s" % (repository, digest)}


def pull(client, registry, name, check_mode=False):
    """Take the image the registry holds for ``name``'s tag, by digest.

    Returns ``{"changed", "image_ref", "image_id", "pulled"}``; fails when the registry has no such tag
    (the host that builds has not pushed it yet)."""
    repository, tag = remote_repository(registry, name)
    digest = remote_digest(client, registry, repository, tag)
    if not digest:
        raise HomelabDockerError(
            "the registry %s holds no %s:%s, so this host (registry.mode pull) has nothing to run: run the play on "
            "the host that builds it (registry.mode push) first, e.g. ansible-playbook site.yml -l <builder>, "
            "or make this host build it (registry.mode push)." % (registry["address"], repository, tag))
    ref = "%s@%s" % (repository, digest)
    image = inspect_image_or_none(client, ref)
    if image is not None:
        return {"changed": False, "image_ref": ref, "image_id": image["Id"], "pulled": None}
    if check_mode:
        return {"changed": True, "image_ref": ref, "image_id": None, "pulled": ref}
    what = "pulling %s from the registry" % ref
    try:
        follow_progress(client.pull(repository, tag=digest, stream=True, decode=True, auth_config=auth_config(registry)))
    except Exception as exc:
        raise HomelabDockerError("%s failed: %s" % (what, api_error_text(exc)))
    image = inspect_image_or_none(client, ref)
    if image is None:
        raise HomelabDockerError("%s ended without the image on the Docker host" % what)
    return {"changed": True, "image_ref": ref, "image_id": image["Id"], "pulled": ref}
