# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of homelab.ai.container_rollout: replace a container only behind a health gate.

Lesson from the decision record: after a dependency update two containers bootlooped and stayed
down. Here a new container replaces the old one only if it becomes healthy and stays up for
stable_seconds; a crash, a restart loop or a failed health check restores the previous container
(same name, same volumes) and fails the task with the cause and the failed container's last logs.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import time

from urllib import request as urllib_request

from ansible_collections.homelab.ai.plugins.module_utils import docker_common
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import (
    HomelabDockerError,
    ProgressLog,
    get_client,
    inspect_container_or_none,
    inspect_image_or_none,
    parse_duration,
    stable_hash,
    to_nanoseconds,
)

CONFIG_HASH_LABEL = "homelab.ai.config-hash"
CONFIG_LABEL = "homelab.ai.config"
SECRET_HASH_LABEL = "homelab.ai.secret-hash"
SECRET_SALT_LABEL = "homelab.ai.secret-salt"
MANAGED_LABEL = "homelab.ai.managed-by"
IMAGE_REF_LABEL = "homelab.ai.image-ref"
MANAGER = "homelab.ai.container_rollout"
PREVIOUS_SUFFIX = "-previous"
LOG_TAIL = 40
POLL_S = 0.5

DEFAULT_LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}

READY = "ready"
WAITING = "waiting"
FAILED = "failed"

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


# --------------------------------------------------------------------------------------------
# Parsing (pure)
# --------------------------------------------------------------------------------------------

def parse_port(spec):
    """'127.0.0.1:8000:8000', '8080:80', '80', '53:53/udp', '[::1]:80:80' -> normalised dict."""
    text = str(spec).strip()
    proto = "tcp"
    if "/" in text:
        text, proto = text.rsplit("/", 1)
        if proto not in ("tcp", "udp", "sctp"):
            raise ValueError("port %r: protocol must be tcp, udp or sctp" % (spec,))
    host_ip = ""
    if text.startswith("["):
        end = text.find("]")
        if end == -1 or text[end + 1:end + 2] != ":":
            raise ValueError("port %r: bad IPv6 address, use [addr]:host:container" % (spec,))
        host_ip = text[1:end]
        text = text[end + 2:]
        parts = text.split(":")
    else:
        parts = text.split(":")
        if len(parts) == 3:
            host_ip = parts.pop(0)
        elif len(parts) > 3:
            raise ValueError("port %r: expected [ip:]host_port:container_port[/proto]" % (spec,))
    if len(parts) == 1:
        host_port, container_port = "", parts[0]
    elif len(parts) == 2:
        host_port, container_port = parts
        if not host_port and not host_ip:
            raise ValueError("port %r: empty host port; write the container port alone for a random one" % (spec,))
    else:
        raise ValueError("port %r: expected [ip:]host_port:container_port[/proto]" % (spec,))
    for value, what in ((container_port, "container port"), (host_port, "host port")):
        if value == "" and what == "host port":
            continue
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ValueError("port %r: %s %r is not a number in 1-65535" % (spec, what, value))
    return {"host_ip": host_ip, "host_port": int(host_port) if host_port else None,
            "container_port": int(container_port), "proto": proto}


def port_key(p):
    return "%s:%s:%s/%s" % (p["host_ip"], p["host_port"] or "", p["container_port"], p["proto"])


def parse_volume(spec):
    """'volname:/path[:ro]' or '/host/path:/path[:ro]' -> {'type', 'source', 'target', 'read_only'}."""
    parts = str(spec).split(":")
    if len(parts) == 2:
        source, target, mode = parts[0], parts[1], "rw"
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise ValueError("volume %r: expected source:/container/path[:ro|rw]" % (spec,))
    if mode not in ("ro", "rw"):
        raise ValueError("volume %r: mode must be ro or rw, got %r" % (spec, mode))
    if not target.startswith("/"):
        raise ValueError("volume %r: container path %r must be absolute" % (spec, target))
    if source.startswith("/"):
        kind = "bind"
    elif _NAME_RE.match(source):
        kind = "volume"
    else:
        raise ValueError("volume %r: source must be an absolute host path or a volume name "
                         "(letters, digits, '_', '.', '-'); relative paths are ambiguous" % (spec,))
    return {"type": kind, "source": source, "target": target, "read_only": mode == "ro"}


def normalize_healthcheck(hc):
    """Module healthcheck dict -> API dict (durations in ns). None -> None; test NONE disables."""
    if not hc:
        return None
    test = hc.get("test")
    if test is None:
        raise ValueError("healthcheck needs a test (a command list or a shell string)")
    if isinstance(test, str):
        test = ["NONE"] if test.upper() == "NONE" else ["CMD-SHELL", test]
    else:
        test = [str(x) for x in test]
        if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            test = ["CMD"] + test
    out = {"test": test}
    for key in ("interval", "timeout", "start_period"):
        if hc.get(key) is not None:
            out[key] = to_nanoseconds(hc[key])
    if hc.get("retries") is not None:
        out["retries"] = int(hc["retries"])
    return out


def normalize_device_requests(reqs):
    out = []
    for r in reqs or []:
        caps = r.get("capabilities") or []
        if caps and all(isinstance(c, str) for c in caps):
            caps = [list(caps)]
        count = r.get("count")
        if count in ("all", "-1"):
            count = -1
        out.append({"driver": r.get("driver") or "", "count": int(count) if count is not None else 0,
                    "device_ids": [str(d) for d in (r.get("device_ids") or [])],
                    "capabilities": [[str(c) for c in group] for group in caps],
                    "options": dict((str(k), str(v)) for k, v in (r.get("options") or {}).items())})
    return out


def parse_restart_policy(text):
    text = (text or "no").strip()
    name, dummy, count = text.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise ValueError("restart_policy %r: use no, always, unless-stopped or on-failure[:N]" % (text,))
    policy = {"Name": "" if name == "no" else name}
    if count:
        if name != "on-failure" or not count.isdigit():
            raise ValueError("restart_policy %r: only on-failure takes a retry count" % (text,))
        policy["MaximumRetryCount"] = int(count)
    return policy


def normalize_tmpfs(tmpfs):
    if not tmpfs:
        return {}
    if isinstance(tmpfs, dict):
        return dict((str(k), str(v or "")) for k, v in tmpfs.items())
    out = {}
    for item in tmpfs:
        path, dummy, opts = str(item).partition(":")
        out[path] = opts
    return out


def normalize_log_config(driver, options):
    """The container's log driver and options; json-file needs max-size and max-file so logs are bounded."""
    if driver is None and options is None:
        options = DEFAULT_LOG_OPTIONS
    driver = str(driver or "json-file")
    options = dict((str(k), str(v)) for k, v in (options or {}).items())
    if driver in ("json-file", "local"):
        missing = [k for k in ("max-size", "max-file") if not options.get(k)]
        if missing:
            raise ValueError("log_options for the %s log driver need %s, or the log grows without bound"
                             % (driver, " and ".join(missing)))
        if not re.match(r"^\d+[kmg]?$", options["max-size"]) or not options["max-file"].isdigit():
            raise ValueError("log_options max-size %r / max-file %r: use a size like 10m and a count like 3"
                             % (options["max-size"], options["max-file"]))
    return {"type": driver, "config": options}


def desired_config(params):
    """The canonical, secret-free description of the container: hashed, labelled, diffed."""
    ports = sorted((parse_port(p) for p in params.get("ports") or []), key=port_key)
    volumes = [parse_volume(v) for v in params.get("volumes") or []]
    return {
        "command": [str(x) for x in params["command"]] if params.get("command") is not None else None,
        "entrypoint": [str(x) for x in params["entrypoint"]] if params.get("entrypoint") is not None else None,
        "env": dict((str(k), str(v)) for k, v in sorted((params.get("env") or {}).items())),
        "secret_env_keys": sorted(str(k) for k in (params.get("secret_env") or {})),
        "ports": [port_key(p) for p in ports],
        "volumes": ["%s:%s:%s" % (v["source"], v["target"], "ro" if v["read_only"] else "rw") for v in volumes],
        "networks": list(params.get("networks") or []),
        "network_aliases": sorted(params.get("network_aliases") or []),
        "device_requests": normalize_device_requests(params.get("device_requests")),
        "restart_policy": parse_restart_policy(params.get("restart_policy")),
        "healthcheck": normalize_healthcheck(params.get("healthcheck")),
        "labels": dict((str(k), str(v)) for k, v in (params.get("labels") or {}).items()),
        "user": params.get("user"),
        "cap_add": sorted(params.get("cap_add") or []),
        "cap_drop": sorted(params.get("cap_drop") or []),
        "security_opt": sorted(params.get("security_opt") or []),
        "read_only": bool(params.get("read_only")),
        "tmpfs": normalize_tmpfs(params.get("tmpfs")),
        "shm_size": str(params["shm_size"]) if params.get("shm_size") is not None else None,
        "ipc_mode": params.get("ipc_mode"),
        "working_dir": params.get("working_dir"),
        "log_config": normalize_log_config(params.get("log_driver"), params.get("log_options")),
        "init": bool(params.get("init")),
        "memory": str(params["memory"]) if params.get("memory") else None,
        "pids_limit": int(params["pids_limit"]) if params.get("pids_limit") else None,
    }


def secret_hash(secret_env, salt):
    """Salted hash of the secret env: detects changes without storing or returning the values."""
    return stable_hash({"salt": salt, "env": dict((str(k), str(v)) for k, v in (secret_env or {}).items())})


def config_changes(before, after):
    """Sorted keys whose value differs between two desired_config dicts (None = unknown before)."""
    if before is None:
        return sorted(after)
    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k))


def masked_config(config, secret_keys):
    shown = dict(config)
    shown["secret_env"] = dict((k, "********") for k in secret_keys)
    shown.pop("secret_env_keys", None)
    return shown


# --------------------------------------------------------------------------------------------
# Health and restart-loop assessment (pure: works on `docker inspect` snapshots)
# --------------------------------------------------------------------------------------------

def _health_log_text(health, entries=3):
    logs = (health or {}).get("Log") or []
    out = []
    for entry in logs[-entries:]:
        out.append("exit %s: %s" % (entry.get("ExitCode"), (entry.get("Output") or "").strip()[-500:]))
    return "; ".join(out)


def assess_state(inspect, baseline_restarts=0):
    """(READY|WAITING|FAILED, reason) from one container inspect snapshot.

    FAILED as soon as the container shows it will not come up: restarting, a RestartCount above the
    baseline, exited/dead, or an unhealthy Docker healthcheck, so a crash loop is caught within
    a poll instead of after the whole health_timeout.
    """
    state = inspect.get("State") or {}
    status = state.get("Status")
    restarts = inspect.get("RestartCount") or 0
    health = state.get("Health")
    exit_code = state.get("ExitCode")
    extra = ""
    if state.get("OOMKilled"):
        extra += " (OOM killed)"
    if state.get("Error"):
        extra += " (error: %s)" % state["Error"]
    if status == "restarting" or restarts > baseline_restarts:
        return FAILED, ("restart loop: status %s, restarted %d time(s)%s%s"
                        % (status, restarts - baseline_restarts,
                           ", last exit code %s" % exit_code if status != "running" else "", extra))
    if status in ("exited", "dead"):
        return FAILED, "container %s with exit code %s%s" % (status, exit_code, extra)
    if status != "running":
        return WAITING, "container is %s" % status
    hstatus = (health or {}).get("Status")
    if hstatus == "unhealthy":
        return FAILED, "Docker healthcheck reports unhealthy: %s" % _health_log_text(health)
    if hstatus == "starting":
        return WAITING, "Docker healthcheck is starting"
    return READY, "running" + (" and healthy" if hstatus == "healthy" else "")


def probe_url(url, headers=None, timeout=3.0):
    """(ok, detail) for an HTTP GET from this host; 2xx is ok. Proxies are bypassed."""
    opener = urllib_request.build_opener(urllib_request.ProxyHandler({}))
    req = urllib_request.Request(url, headers=dict(headers or {}))
    try:
        resp = opener.open(req, timeout=timeout)
        code = resp.getcode()
        resp.close()
        return 200 <= code < 300, "HTTP %s" % code
    except Exception as exc:
        code = getattr(exc, "code", None)
        return False, ("HTTP %s" % code) if code else str(getattr(exc, "reason", exc))


def port_conflicts(ports, containers, ignore_ids):
    """[(port_key, container_name)] of running containers (from `docker ps` API list) that already
    publish one of the desired host ports, ignoring the containers being replaced."""
    wanted = dict(((p["host_port"], p["proto"]), p) for p in ports if p["host_port"])
    out = []
    for c in containers:
        if c.get("Id") in ignore_ids:
            continue
        for bound in c.get("Ports") or []:
            key = (bound.get("PublicPort"), bound.get("Type", "tcp"))
            if key in wanted:
                p = wanted[key]
                ip = bound.get("IP") or "0.0.0.0"
                if p["host_ip"] in ("", "0.0.0.0", "::") or ip in ("0.0.0.0", "::") or ip == p["host_ip"]:
                    out.append((port_key(p), (c.get("Names") or ["?"])[0].lstrip("/")))
    return out


# --------------------------------------------------------------------------------------------
# Talking to Docker
# --------------------------------------------------------------------------------------------

class Rollout:
    def __init__(self, params, check_mode=False, client_factory=get_client):
        self.p = params
        self.check_mode = check_mode
        self.name = params["name"]
        if not _NAME_RE.match(self.name):
            raise HomelabDockerError("container name %r is invalid: use letters, digits, '_', '.', '-'" % self.name)
        self.previous_name = self.name + PREVIOUS_SUFFIX
        self.actions = []
        self.progress = ProgressLog(params.get("progress_path"))
        try:
            self.config = desired_config(params)
            self.ports = [parse_port(x) for x in params.get("ports") or []]
            self.volumes = [parse_volume(x) for x in params.get("volumes") or []]
        except ValueError as exc:
            raise HomelabDockerError("Invalid parameter for container %s: %s" % (self.name, exc))
        self.client = client_factory(params.get("docker_host"), 60)

    def act(self, text):
        self.actions.append(text)
        self.progress.write("%s: %s" % (self.name, text))

    # -- helpers ----------------------------------------------------------------------------
    def _logs(self, cid):
        try:
            return self.client.logs(cid, stdout=True, stderr=True, tail=LOG_TAIL).decode("utf-8", "replace")
        except Exception as exc:
            return "(logs unavailable: %s)" % exc

    def _exit_codes(self, cid, since):
        """Exit codes from the daemon's `die` events: a restarting container that is up again
        reports ExitCode 0 in inspect, the events keep what it really exited with."""
        try:
            events = self.client.events(since=int(since), until=int(time.time()) + 1,
                                        filters={"container": cid, "event": "die"}, decode=True)
            codes = []
            for ev in events:
                code = ((ev.get("Actor") or {}).get("Attributes") or {}).get("exitCode")
                if code is not None and str(code).lstrip("-").isdigit():
                    codes.append(int(code))
            return codes
        except Exception:
            return []

    def _summary(self, inspect):
        if not inspect:
            return None
        state = inspect.get("State") or {}
        return {"id": inspect["Id"], "name": inspect["Name"].lstrip("/"), "image_id": inspect["Image"],
                "status": state.get("Status"), "health": (state.get("Health") or {}).get("Status"),
                "restart_count": inspect.get("RestartCount") or 0}

    def _remove(self, ref, what):
        try:
            self.client.remove_container(ref, force=True, v=bool(self.p.get("remove_anonymous_volumes")))
            self.act("removed %s %s" % (what, ref))
        except Exception as exc:
            if "No such container" not in str(exc):
                raise

    def _ensure_networks(self):
        for net in self.config["networks"]:
            if net in ("bridge", "host", "none") or net.startswith("container:"):
                continue
            found = [n for n in self.client.networks(names=[net]) if n.get("Name") == net]
            if not found:
                if not self.check_mode:
                    self.client.create_network(net, driver="bridge", labels={MANAGED_LABEL: MANAGER})
                self.act("created network %s (bridge)" % net)

    def _host_config(self):
        c = self.client
        binds = ["%s:%s:%s" % (v["source"], v["target"], "ro" if v["read_only"] else "rw") for v in self.volumes]
        port_bindings = {}
        for p in self.ports:
            key = "%d/%s" % (p["container_port"], p["proto"])
            binding = (p["host_ip"] or "0.0.0.0", p["host_port"]) if p["host_port"] else (p["host_ip"] or "0.0.0.0",)
            port_bindings.setdefault(key, []).append(binding)
        device_requests = None
        if self.config["device_requests"]:
            device_requests = [docker_common.docker.types.DeviceRequest(**d) for d in self.config["device_requests"]]
        nets = self.config["networks"]
        kwargs = dict(binds=binds or None, port_bindings=port_bindings or None,
                      restart_policy=self.config["restart_policy"], cap_add=self.config["cap_add"] or None,
                      cap_drop=self.config["cap_drop"] or None, security_opt=self.config["security_opt"] or None,
                      read_only=self.config["read_only"] or None, tmpfs=self.config["tmpfs"] or None,
                      shm_size=self.config["shm_size"], ipc_mode=self.config["ipc_mode"],
                      device_requests=device_requests, network_mode=nets[0] if nets else None,
                      log_config=self.config["log_config"], init=self.config["init"] or None,
                      mem_limit=self.config["memory"], pids_limit=self.config["pids_limit"])
        return c.create_host_config(**dict((k, v) for k, v in kwargs.items() if v is not None))

    def _labels(self, salt):
        labels = dict(self.config["labels"])
        labels.update({
            MANAGED_LABEL: MANAGER,
            CONFIG_HASH_LABEL: stable_hash(self.config),
            CONFIG_LABEL: json.dumps(self.config, sort_keys=True, separators=(",", ":")),
            IMAGE_REF_LABEL: self.p["image"],
        })
        if self.p.get("secret_env"):
            labels[SECRET_SALT_LABEL] = salt
            labels[SECRET_HASH_LABEL] = secret_hash(self.p["secret_env"], salt)
        return labels

    def _create(self, image_id, salt):
        c = self.client
        env = dict(self.config["env"])
        env.update(dict((str(k), str(v)) for k, v in (self.p.get("secret_env") or {}).items()))
        nets = self.config["networks"]
        aliases = self.config["network_aliases"] or None
        networking = None
        if nets and nets[0] not in ("bridge", "host", "none"):
            networking = c.create_networking_config({nets[0]: c.create_endpoint_config(aliases=aliases)})
        created = c.create_container(
            image_id, name=self.name, command=self.config["command"], entrypoint=self.config["entrypoint"],
            environment=["%s=%s" % kv for kv in sorted(env.items())] or None,
            ports=[(p["container_port"], p["proto"]) for p in self.ports] or None,
            volumes=[v["target"] for v in self.volumes] or None,
            host_config=self._host_config(), labels=self._labels(salt), healthcheck=self.config["healthcheck"],
            user=self.config["user"], working_dir=self.config["working_dir"], networking_config=networking,
            detach=True)
        cid = created["Id"]
        for net in nets[1:]:
            c.connect_container_to_network(cid, net, aliases=aliases)
        self.act("created container %s (%s) from image %s" % (self.name, cid[:12], image_id))
        return cid

    def _start(self, cid, what):
        try:
            self.client.start(cid)
        except Exception as exc:
            text = getattr(exc, "explanation", None) or str(exc)
            if "port is already allocated" in text or "address already in use" in text:
                text += (" -- a host port in %s is taken by another process or container; free it or "
                         "change ports" % (self.config["ports"],))
            return text
        self.act("started %s" % what)
        return None

    def wait_healthy(self, cid, baseline_restarts=0, timeout=None, health_url=None):
        """(ok, reason, last_inspect): poll until ready and stable, failed, or timed out."""
        timeout = float(self.p.get("health_timeout") or 120) if timeout is None else timeout
        stable = float(parse_duration(self.p.get("stable_seconds")) or 0)
        headers = self.p.get("health_headers") or {}
        deadline = time.time() + timeout
        ready_since = None
        last = None
        reason = "not checked"
        last_logged = None
        while True:
            last = self.client.inspect_container(cid)
            verdict, reason = assess_state(last, baseline_restarts)
            if verdict == READY and health_url:
                ok, detail = probe_url(health_url, headers)
                if not ok:
                    verdict, reason = WAITING, "%s; health_url %s answered %s" % (reason, health_url, detail)
                else:
                    reason += "; health_url %s answered %s" % (health_url, detail)
            if verdict == FAILED:
                return False, reason, last
            if reason != last_logged:
                self.progress.write("%s: %s" % (self.name, reason))
                last_logged = reason
            now = time.time()
            if verdict == READY:
                if ready_since is None:
                    ready_since = now
                    if stable > 0:
                        self.progress.write("%s: ready, watching %.0fs for restarts" % (self.name, stable))
                if now - ready_since >= stable:
                    return True, reason, last
            else:
                ready_since = None
            if now > deadline:
                return False, "not healthy within %ss: %s" % (timeout, reason), last
            time.sleep(POLL_S)

    # -- entry points -----------------------------------------------------------------------
    def absent(self):
        result = {"changed": False, "actions": self.actions, "rolled_back": False, "container": None,
                  "previous_image_id": None}
        for ref, what in ((self.name, "container"), (self.previous_name, "leftover previous container")):
            info = inspect_container_or_none(self.client, ref)
            if info is None:
                continue
            if what != "container" and (info["Config"].get("Labels") or {}).get(MANAGED_LABEL) != MANAGER:
                continue
            result["changed"] = True
            result["previous_image_id"] = result["previous_image_id"] or info["Image"]
            if self.check_mode:
                self.act("would remove %s %s (named volumes kept)" % (what, ref))
            else:
                self._remove(ref, what)
        result["diff"] = {"before": {"state": "present" if result["changed"] else "absent"},
                          "after": {"state": "absent"}}
        return result

    def started(self):
        c = self.client
        image = inspect_image_or_none(c, self.p["image"])
        if image is None and self.p.get("pull") and not self.check_mode:
            self.act("pulling %s" % self.p["image"])
            c.pull(self.p["image"])
            image = inspect_image_or_none(c, self.p["image"])
        if image is None and self.p.get("pull") and self.check_mode:
            # A fresh host in check mode: nothing to compare against yet, the real run pulls first.
            self.act("would pull %s and create %s from it" % (self.p["image"], self.name))
            diff = {"before": {"state": "absent"}, "after": {"state": "started", "image": self.p["image"]}}
            return {"changed": True, "actions": self.actions, "previous_image_id": None, "rolled_back": False,
                    "container": None, "diff": diff}
        if image is None:
            raise HomelabDockerError(
                "Image %s not found on the Docker host (pull is %s): build it first (homelab.ai.image_build) "
                "or load/pull it, then rerun." % (self.p["image"], "true" if self.p.get("pull") else "false"),
                image=self.p["image"])
        image_id = image["Id"]

        current = inspect_container_or_none(c, self.name)
        leftover = inspect_container_or_none(c, self.previous_name)
        if leftover is not None and (leftover["Config"].get("Labels") or {}).get(MANAGED_LABEL) != MANAGER:
            leftover = None
        if current is None and leftover is not None:
            # An earlier run died between rename and cleanup: the leftover is the last deployment.
            if not self.check_mode:
                c.rename(leftover["Id"], self.name)
            self.act("renamed leftover %s back to %s (an earlier rollout was interrupted)" % (self.previous_name, self.name))
            current, leftover = leftover, None
            if self.check_mode:
                current = dict(current, Name="/" + self.name)
        if leftover is not None:
            if not self.check_mode:
                self._remove(leftover["Id"], "leftover previous container")
            else:
                self.act("would remove leftover %s" % self.previous_name)

        cur_labels = ((current or {}).get("Config") or {}).get("Labels") or {}
        salt = cur_labels.get(SECRET_SALT_LABEL) or os.urandom(16).hex()
        want_hash = stable_hash(self.config)
        before_config = None
        if cur_labels.get(CONFIG_LABEL):
            try:
                before_config = json.loads(cur_labels[CONFIG_LABEL])
            except ValueError:
                before_config = None
        changes = config_changes(before_config, self.config) if current else sorted(self.config)
        secrets_changed = False
        if current:
            want_secret = secret_hash(self.p["secret_env"], salt) if self.p.get("secret_env") else None
            secrets_changed = cur_labels.get(SECRET_HASH_LABEL) != want_secret
        image_changed = current is not None and current["Image"] != image_id
        config_changed = current is not None and (cur_labels.get(CONFIG_HASH_LABEL) != want_hash or secrets_changed)
        running = current is not None and (current.get("State") or {}).get("Status") == "running"

        secret_keys = self.config["secret_env_keys"]
        result = {
            "changed": False, "actions": self.actions, "rolled_back": False,
            "previous_image_id": current["Image"] if current else None,
            "image_id": image_id, "config_hash": want_hash,
            "changed_keys": (list(changes) if config_changed else [])
            + (["secret_env"] if secrets_changed else []) + (["image_id"] if image_changed else []),
            "diff": {
                "before": {"image_id": current["Image"] if current else None,
                           "config": masked_config(before_config, (before_config or {}).get("secret_env_keys", []))
                           if before_config else (None if current is None else "(not managed by homelab.ai: unknown)"),
                           "state": ((current or {}).get("State") or {}).get("Status", "absent")},
                "after": {"image_id": image_id, "config": masked_config(self.config, secret_keys), "state": "running"},
            },
        }
        if secrets_changed:
            result["diff"]["after"]["secret_env_changed"] = True

        self._ensure_networks()
        if result["actions"]:
            result["changed"] = True

        if current is not None and not image_changed and not config_changed:
            if running:
                result["container"] = self._summary(current)
                return result
            # Same deployment but stopped or crashed since: start it and gate on health again.
            result["changed"] = True
            if self.check_mode:
                self.act("would start stopped container %s" % self.name)
                result["container"] = self._summary(current)
                return result
            baseline = current.get("RestartCount") or 0
            err = self._start(current["Id"], "existing container %s" % self.name)
            ok, reason, last = (False, err, current) if err else self.wait_healthy(
                current["Id"], baseline, health_url=self.p.get("health_url"))
            result["container"] = self._summary(last)
            if not ok:
                raise HomelabDockerError(
                    "Container %s (unchanged deployment) did not come up: %s\nLast %d log lines:\n%s"
                    % (self.name, reason, LOG_TAIL, self._logs(current["Id"])), **result)
            return result

        result["changed"] = True
        if self.check_mode:
            self.act("would %s %s with image %s" % ("replace" if current else "create", self.name, image_id))
            result["container"] = self._summary(current) if current else None
            return result

        # Another container holding one of our host ports would make the new one fail to start.
        ignore = set([current["Id"]]) if current else set()
        conflicts = port_conflicts(self.ports, c.containers(), ignore)
        if conflicts:
            raise HomelabDockerError(
                "Host port(s) already in use by other containers: %s. Stop or reconfigure those containers, "
                "or change ports of %s. Nothing was changed." % (
                    ", ".join("%s by %s" % pc for pc in conflicts), self.name), actions=self.actions)

        if current is not None:
            c.rename(current["Id"], self.previous_name)
            self.act("renamed %s to %s" % (self.name, self.previous_name))
            if running:
                c.stop(current["Id"], timeout=int(self.p.get("stop_timeout") or 10))
                self.act("stopped %s (frees its host ports)" % self.previous_name)

        new_id = None
        cause = None
        last = None
        created_at = time.time() - 5
        try:
            new_id = self._create(image_id, salt)
        except Exception as exc:
            cause = "creating the container failed: %s" % (getattr(exc, "explanation", None) or exc)
        if new_id:
            cause = self._start(new_id, "new container %s" % self.name)
            if cause is None:
                self.act("waiting up to %ss for health, then %ss stable" % (
                    self.p.get("health_timeout") or 120, self.p.get("stable_seconds")))
                ok, reason, last = self.wait_healthy(new_id, 0, health_url=self.p.get("health_url"))
                if ok:
                    self.act("new container healthy: %s" % reason)
                    if current is not None:
                        self._remove(current["Id"], "previous container")
                    result["container"] = self._summary(c.inspect_container(new_id))
                    return result
                cause = reason
            else:
                cause = "starting the container failed: %s" % cause

        # ---- failure: collect evidence, then restore the previous deployment ----
        failed = {"cause": cause}
        if new_id:
            # The snapshot that failed the gate holds the exit code; a restarting container that is
            # up again by now would report 0.
            info = last or inspect_container_or_none(c, new_id) or {}
            now = inspect_container_or_none(c, new_id) or info
            state = info.get("State") or {}
            codes = self._exit_codes(new_id, created_at)
            exit_code = codes[-1] if codes else state.get("ExitCode")
            if codes:
                cause += " (exit codes seen: %s)" % ", ".join(str(x) for x in codes)
                failed["cause"] = cause
            failed.update({"id": new_id, "exit_code": exit_code, "exit_codes": codes,
                           "restart_count": now.get("RestartCount"),
                           "health_log": _health_log_text(state.get("Health"), 5), "logs": self._logs(new_id)})
        result["failed_container"] = failed
        self.act("new container failed: %s" % cause)
        restore_msg = "There was no previous deployment to restore."
        if self.p.get("rollback", True):
            if new_id:
                self._remove(new_id, "failed new container")
            if current is not None:
                c.rename(current["Id"], self.name)
                self.act("renamed %s back to %s" % (self.previous_name, self.name))
                restore_msg = "The previous deployment (image %s) was restored" % current["Image"]
                if running:
                    err = self._start(current["Id"], "previous container %s" % self.name)
                    ok, reason, back = (False, err, None) if err else self.wait_healthy(
                        current["Id"], current.get("RestartCount") or 0, health_url=self.p.get("health_url"))
                    result["container"] = self._summary(back or c.inspect_container(current["Id"]))
                    if ok:
                        restore_msg += " and is healthy again (%s)." % reason
                    else:
                        restore_msg += " but did NOT become healthy: %s. Investigate by hand." % reason
                else:
                    restore_msg += " (it was not running before, so it stays stopped)."
                result["rolled_back"] = True
        else:
            restore_msg = ("rollback is false: the failed container %s is left in place for debugging%s." % (
                self.name, " and the previous one is kept stopped as %s" % self.previous_name if current else ""))
        logs = failed.get("logs") or ""
        raise HomelabDockerError(
            "Rollout of %s with image %s failed: %s. Exit code: %s. Health log: %s\n%s\nLast %d log lines of the "
            "failed container:\n%s" % (self.name, image_id, cause, failed.get("exit_code"),
                                       failed.get("health_log") or "-", restore_msg, LOG_TAIL, logs),
            **result)


def run_container_rollout(params, check_mode=False, client_factory=get_client):
    rollout = Rollout(params, check_mode=check_mode, client_factory=client_factory)
    try:
        if params.get("state", "started") == "absent":
            return rollout.absent()
        return rollout.started()
    finally:
        rollout.progress.close()
