# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""STAND-IN for docker.APIClient, for unit tests of the rollout's and the build's steps.

The real daemon is used by tests/docker_modules and the Molecule scenarios; this stand-in exists so
each step (and the paths a real daemon rarely shows: an interrupted rollout, a stale image) can be
driven directly. It has the daemon's teeth where the modules depend on them:
- names are unique: create or rename onto a taken name is a 409 Conflict, like dockerd;
- removing a running container without force, or an image a container uses, is a 409;
- starting a container whose host port another running container publishes fails with
  "port is already allocated"; a stopped container holds no port;
- labels are fixed at create; restart policy changes only through update_container, and an update
  with an empty policy name changes nothing (dockerd: daemon/update.go);
- state moves with a clock: an image's `fake.behaviour` label says what its containers do once
  started (healthy, crash, loop, unhealthy, slow:N) and inspect reports it as time passes;
- host configs are built by the SDK's own create_host_config, so an argument it refuses is refused;
- a one-shot container (wait) exits 1 when its command has the word 'fail' in it, else 0.
Errors are the SDK's own classes (docker.errors.NotFound / APIError) with a status code.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import hashlib
import itertools

from docker import errors as docker_errors
from docker.api.container import ContainerApiMixin

API_VERSION = "1.45"
BEHAVIOUR_LABEL = "fake.behaviour"


class FakeClock:
    """time.time()/time.sleep() for the code under test: sleeping advances the clock."""

    def __init__(self, start=1_800_000_000.0):
        self.now = float(start)

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += max(float(seconds), 0.01)

    def monotonic(self):
        return self.now

    def strftime(self, fmt, *args):
        import time as _time
        return _time.strftime(fmt, _time.gmtime(self.now))


class _Response:
    def __init__(self, status_code, reason=""):
        self.status_code = status_code
        self.reason = reason
        self.url = "http+docker://localhost/fake"

    def raise_for_status(self):
        pass


def not_found(what):
    return docker_errors.NotFound("404 Client Error: Not Found", response=_Response(404), explanation=what)


def conflict(what):
    return docker_errors.APIError("409 Client Error: Conflict", response=_Response(409), explanation=what)


def server_error(what):
    return docker_errors.APIError("500 Server Error", response=_Response(500), explanation=what)


def _rfc3339(epoch):
    import time as _time
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(epoch)) + ".000000000Z"


class FakeDockerClient:
    """Enough of docker.APIClient for homelab.ai's modules, stateful, with the daemon's refusals."""

    def __init__(self, clock=None):
        self.clock = clock or FakeClock()
        self.images_by_id = {}
        self.tags = {}           # "repo:tag" -> image id
        self.containers_by_id = {}
        self.events_log = []
        self.calls = []          # (method, first argument) in order, for tests that check the order
        self._ids = itertools.count(1)
        self._version = API_VERSION

    # -- helpers for tests ------------------------------------------------------------------
    def add_image(self, ref, behaviour="healthy", labels=None, size=1000, created=None):
        n = next(self._ids)
        image_id = "sha256:" + hashlib.sha256(("image%d" % n).encode()).hexdigest()
        all_labels = dict(labels or {})
        all_labels[BEHAVIOUR_LABEL] = behaviour
        self.images_by_id[image_id] = {
            "Id": image_id, "Created": _rfc3339(created if created is not None else self.clock.now),
            "Size": size, "Config": {"Labels": all_labels}}
        if ref:
            self.tag(image_id, *ref.rsplit(":", 1), force=True)
        return image_id

    def container_names(self):
        return sorted(c["Name"].lstrip("/") for c in self.containers_by_id.values())

    def by_name(self, name):
        for c in self.containers_by_id.values():
            if c["Name"] == "/" + name:
                return c
        return None

    def _find_container(self, ref):
        if ref in self.containers_by_id:
            return self.containers_by_id[ref]
        found = self.by_name(ref)
        if found is None:
            matches = [c for cid, c in self.containers_by_id.items() if cid.startswith(ref)]
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            raise not_found("No such container: %s" % ref)
        return found

    def _find_image(self, ref):
        if ref in self.images_by_id:
            return self.images_by_id[ref]
        full = ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest"
        if full in self.tags:
            return self.images_by_id[self.tags[full]]
        raise not_found("No such image: %s" % ref)

    def _repo_tags(self, image_id):
        return sorted(t for t, i in self.tags.items() if i == image_id)

    # -- system -----------------------------------------------------------------------------
    def ping(self):
        return True

    def info(self):
        return {"SystemTime": _rfc3339(self.clock.now)}

    # -- images -----------------------------------------------------------------------------
    def inspect_image(self, ref):
        image = copy.deepcopy(self._find_image(ref))
        image["RepoTags"] = self._repo_tags(image["Id"])
        return image

    def images(self, name=None, all=False, filters=None, quiet=False):  # noqa: A002 - the SDK's name
        out = []
        for image_id, image in self.images_by_id.items():
            tags = self._repo_tags(image_id)
            labels = (image.get("Config") or {}).get("Labels") or {}
            if name and not any(t.split(":")[0] == name or t == name for t in tags):
                continue
            if filters:
                if filters.get("dangling") and tags:
                    continue
                wanted = filters.get("label") or []
                wanted = [wanted] if isinstance(wanted, str) else wanted
                ok = True
                for w in wanted:
                    key, eq, value = w.partition("=")
                    if key not in labels or (eq and labels[key] != value):
                        ok = False
                if not ok:
                    continue
            out.append({"Id": image_id, "RepoTags": tags or None, "Labels": labels, "Size": image["Size"],
                        "Created": 0})
        return [i["Id"] for i in out] if quiet else out

    def tag(self, image, repository, tag=None, force=False):
        image_id = self._find_image(image)["Id"]
        self.tags["%s:%s" % (repository, tag or "latest")] = image_id
        return True

    def remove_image(self, image, force=False, noprune=False):
        self.calls.append(("remove_image", image))
        if image in self.tags and not image.startswith("sha256:"):
            image_id = self.tags[image]
            if len(self._repo_tags(image_id)) > 1 or force:
                del self.tags[image]
                return [{"Untagged": image}]
        target = self._find_image(image)
        users = [c for c in self.containers_by_id.values() if c["Image"] == target["Id"]]
        if users and not force:
            running = any(c["State"]["Status"] == "running" for c in users)
            raise conflict("conflict: unable to delete %s (must be forced) - image is being used by %s container %s"
                           % (target["Id"][7:19], "running" if running else "stopped", users[0]["Id"][:12]))
        for t in self._repo_tags(target["Id"]):
            del self.tags[t]
        del self.images_by_id[target["Id"]]
        return [{"Deleted": target["Id"]}]

    def pull(self, repository, tag=None, **kwargs):
        raise server_error("pull access denied for %s: no registry in the unit tests" % repository)

    # -- containers -------------------------------------------------------------------------
    # The SDK's own builders: an argument the real client refuses is refused here too.
    create_host_config = ContainerApiMixin.create_host_config
    create_networking_config = ContainerApiMixin.create_networking_config
    create_endpoint_config = ContainerApiMixin.create_endpoint_config

    def networks(self, names=None, **kwargs):
        return [{"Name": n} for n in (names or []) if n in getattr(self, "network_names", set())]

    def create_network(self, name, **kwargs):
        self.network_names = getattr(self, "network_names", set()) | {name}
        return {"Id": name}

    def connect_container_to_network(self, container, net, aliases=None):
        self._find_container(container)

    def create_container(self, image, name=None, labels=None, host_config=None, healthcheck=None, **kwargs):
        self.calls.append(("create_container", name))
        img = self._find_image(image)
        if name and self.by_name(name) is not None:
            raise conflict('Conflict. The container name "/%s" is already in use by container "%s". You have '
                           'to remove (or rename) that container to be able to reuse that name.'
                           % (name, self.by_name(name)["Id"]))
        cid = hashlib.sha256(("container%d" % next(self._ids)).encode()).hexdigest()
        self.containers_by_id[cid] = {
            "Id": cid, "Name": "/" + (name or cid[:12]), "Image": img["Id"], "RestartCount": 0,
            "Created": _rfc3339(self.clock.now),
            "Config": {"Labels": dict(labels or {}), "Image": image, "Healthcheck": healthcheck,
                       "Env": kwargs.get("environment"), "Cmd": kwargs.get("command"),
                       "User": kwargs.get("user") or ""},
            "HostConfig": dict(host_config or {}),
            "State": {"Status": "created", "Running": False, "ExitCode": 0, "Error": "", "OOMKilled": False},
            "_behaviour": ((img.get("Config") or {}).get("Labels") or {}).get(BEHAVIOUR_LABEL, "healthy"),
            "_started_at": None,
        }
        return {"Id": cid, "Warnings": []}

    def _published(self, c):
        out = set()
        for key, bindings in ((c.get("HostConfig") or {}).get("PortBindings") or {}).items():
            proto = key.split("/")[1] if "/" in key else "tcp"
            for b in bindings or []:
                if b.get("HostPort"):
                    out.add((int(b["HostPort"]), proto))
        return out

    def start(self, container):
        self.calls.append(("start", container))
        c = self._find_container(container)
        if c["State"]["Status"] == "running":
            return
        mine = self._published(c)
        for other in self.containers_by_id.values():
            if other is not c and other["State"]["Status"] in ("running", "restarting") and mine & self._published(other):
                raise server_error("driver failed programming external connectivity on endpoint %s: Bind for "
                                   "0.0.0.0:%d failed: port is already allocated"
                                   % (c["Name"].lstrip("/"), sorted(mine & self._published(other))[0][0]))
        c["_started_at"] = self.clock.now
        c["State"].update({"Status": "running", "Running": True, "ExitCode": 0})

    def stop(self, container, timeout=10):
        self.calls.append(("stop", container))
        c = self._find_container(container)
        if c["State"]["Status"] in ("running", "restarting"):
            self._die(c, 143 if c["_behaviour"] != "crash" else 1)
        c["_started_at"] = None
        c["State"].update({"Status": "exited", "Running": False})
        c["State"].pop("Health", None)

    def wait(self, container, timeout=None):
        """A started one-shot container runs its command to the end: exit 1 when the command has the word
        'fail' in it, else 0 (the stand-in's rule); waiting on one that never started is the daemon's 404-free
        immediate answer with its exit code."""
        self.calls.append(("wait", container))
        c = self._find_container(container)
        if c["State"]["Status"] == "running":
            code = 1 if any("fail" in str(x) for x in (c["Config"].get("Cmd") or [])) else 0
            self._die(c, code)
            c["_started_at"] = None
            c["State"].update({"Status": "exited", "Running": False})
        return {"StatusCode": c["State"]["ExitCode"], "Error": None}

    def kill(self, container):
        self.stop(container)

    def _die(self, c, code):
        self.events_log.append({"time": self.clock.now, "id": c["Id"], "exitCode": code})
        c["State"]["ExitCode"] = code

    def rename(self, container, name):
        self.calls.append(("rename", name))
        c = self._find_container(container)
        other = self.by_name(name)
        if other is not None and other is not c:
            raise conflict('Error when allocating new name: Conflict. The container name "/%s" is already in '
                           'use by container "%s".' % (name, other["Id"]))
        c["Name"] = "/" + name

    def remove_container(self, container, force=False, v=False):
        self.calls.append(("remove_container", container))
        c = self._find_container(container)
        if c["State"]["Status"] in ("running", "restarting") and not force:
            raise conflict("You cannot remove a running container %s. Stop the container before attempting "
                           "removal or force remove" % c["Id"])
        del self.containers_by_id[c["Id"]]

    def update_container(self, container, restart_policy=None, **kwargs):
        c = self._find_container(container)
        # Like dockerd (daemon/update.go), an update with an empty policy name changes nothing.
        if restart_policy is not None and restart_policy.get("Name"):
            c["HostConfig"]["RestartPolicy"] = dict(restart_policy)
        return {"Warnings": []}

    def _advance(self, c):
        """Move a started container's state along its image's behaviour, by the clock."""
        if c["_started_at"] is None or c["State"]["Status"] not in ("running", "restarting"):
            return
        up = self.clock.now - c["_started_at"]
        behaviour = c["_behaviour"]
        has_hc = bool((c["Config"].get("Healthcheck") or {}).get("test"))
        if behaviour == "crash" and up >= 1:
            self._die(c, 1)
            c["_started_at"] = None
            c["State"].update({"Status": "exited", "Running": False})
        elif behaviour == "loop" and up >= 1:
            self._die(c, 1)
            c["RestartCount"] += 1
            c["_started_at"] = self.clock.now
            c["State"]["Status"] = "restarting"
        elif behaviour == "loop":
            c["State"]["Status"] = "running"
        elif has_hc:
            ready_after = float(behaviour.split(":")[1]) if behaviour.startswith("slow:") else 1.0
            if behaviour == "unhealthy":
                status = "unhealthy" if up >= 2 else "starting"
            else:
                status = "healthy" if up >= ready_after else "starting"
            c["State"]["Health"] = {"Status": status, "Log": [{"ExitCode": 0 if status == "healthy" else 1,
                                                               "Output": "fake check: %s" % status}]}

    def inspect_container(self, container):
        c = self._find_container(container)
        self._advance(c)
        out = copy.deepcopy(dict((k, v) for k, v in c.items() if not k.startswith("_")))
        return out

    def containers(self, all=False, filters=None, **kwargs):  # noqa: A002 - the SDK's name
        out = []
        for c in self.containers_by_id.values():
            self._advance(c)
            if not all and c["State"]["Status"] not in ("running", "restarting"):
                continue
            ports = [{"PublicPort": p, "Type": proto, "IP": "0.0.0.0"} for p, proto in sorted(self._published(c))]
            out.append({"Id": c["Id"], "Names": [c["Name"]], "Image": c["Config"]["Image"], "ImageID": c["Image"],
                        "State": c["State"]["Status"], "Labels": c["Config"]["Labels"], "Ports": ports})
        return out

    def logs(self, container, **kwargs):
        c = self._find_container(container)
        ran = " ".join(str(x) for x in c["Config"].get("Cmd") or [])
        text = "fake log of %s (%s)\n" % (c["Name"].lstrip("/"), c["_behaviour"])
        return (text + ("ran: %s\n" % ran if ran else "")).encode()

    def events(self, since=None, until=None, filters=None, decode=True):
        cid = (filters or {}).get("container")
        return iter([{"Actor": {"Attributes": {"exitCode": str(e["exitCode"])}}}
                     for e in self.events_log if e["id"] == cid and (since is None or e["time"] >= since - 1)])


def factory(client):
    """A client_factory for run_container_rollout / run_image_build that hands out `client`."""
    def make(docker_host=None, timeout=60):
        return client
    return make
