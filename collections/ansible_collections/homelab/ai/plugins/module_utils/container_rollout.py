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

import contextlib
import ipaddress
import json
import os
import re
import signal
import time

from urllib import parse as urllib_parse
from urllib import request as urllib_request

from ansible_collections.homelab.ai.plugins.module_utils import docker_common
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import (
    HomelabDockerError,
    ProgressLog,
    get_client,
    inspect_container_or_none,
    inspect_image_or_none,
    is_not_found,
    parse_duration,
    resolve_docker_host,
    run_to_completion,
    stable_hash,
    to_nanoseconds,
)
from ansible_collections.homelab.ai.plugins.module_utils.container_spec import (
    NAME_RE,
    parse_port,
    parse_volume,
    port_key,
)
from ansible_collections.homelab.ai.plugins.module_utils.host_lock import DEFAULT_STATE_DIR, HostLock

CONFIG_HASH_LABEL = "homelab.ai.config-hash"
CONFIG_LABEL = "homelab.ai.config"
SECRET_HASH_LABEL = "homelab.ai.secret-hash"
SECRET_SALT_LABEL = "homelab.ai.secret-salt"
MANAGED_LABEL = "homelab.ai.managed-by"
IMAGE_REF_LABEL = "homelab.ai.image-ref"
MANAGER = "homelab.ai.container_rollout"
GATE_LABEL = "homelab.ai.health-gate"
PREVIOUS_SUFFIX = "-previous"
ROLLBACK_SUFFIX = "-rollback"
LOG_TAIL = 40
POLL_S = 0.5

DEFAULT_LOG_OPTIONS = {"max-size": "10m", "max-file": "3"}

READY = "ready"
WAITING = "waiting"
FAILED = "failed"


# --------------------------------------------------------------------------------------------
# Normalising (pure; parsing is in container_spec)
# --------------------------------------------------------------------------------------------

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


# The restart policy a container is updated to when it is parked or kept for rollback. dockerd's
# container update ignores a policy with an empty name (moby daemon/update.go: "if
# hostConfig.RestartPolicy.Name != ''"), so "no" is said explicitly; at create an empty name is "no".
NO_RESTART = {"Name": "no", "MaximumRetryCount": 0}


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


def _volume_text(v):
    return "%s:%s:%s" % (v["source"], v["target"], "ro" if v["read_only"] else "rw")


def normalize_init_containers(items):
    """The init containers as they are hashed: name, command, entrypoint, user, cap_add, timeout.

    Raises ValueError naming the entry for a missing or bad name, a name given twice or no command.
    """
    out = []
    for index, item in enumerate(items or []):
        name = str(item.get("name") or "")
        where = "init_containers[%d]" % index
        if not NAME_RE.match(name):
            raise ValueError("%s: name %r is not a short name (letters, digits, '_', '.', '-')" % (where, name))
        if name in [o["name"] for o in out]:
            raise ValueError("%s: name %r is given twice" % (where, name))
        if not item.get("command"):
            raise ValueError("%s (%s) has no command" % (where, name))
        out.append({
            "name": name,
            "command": [str(x) for x in item["command"]],
            "entrypoint": [str(x) for x in item["entrypoint"]] if item.get("entrypoint") is not None else None,
            "user": item.get("user"),
            "cap_add": sorted(item.get("cap_add") or []),
            "timeout": int(item.get("timeout") or 600),
            # Its own mounts (a service that mounts a volume read-only may need it writable here), else the service's.
            "volumes": ([_volume_text(parse_volume(v)) for v in item["volumes"]]
                        if item.get("volumes") is not None else None),
        })
    return out


def desired_config(params):
    """The canonical, secret-free description of the container: hashed, labelled, diffed."""
    config = _container_config(params)
    # Only when there are some: a deployment made before init containers existed keeps its hash.
    init_containers = normalize_init_containers(params.get("init_containers"))
    if init_containers:
        config["init_containers"] = init_containers
    return config


def _container_config(params):
    ports = sorted((parse_port(p) for p in params.get("ports") or []), key=port_key)
    volumes = [parse_volume(v) for v in params.get("volumes") or []]
    return {
        "command": [str(x) for x in params["command"]] if params.get("command") is not None else None,
        "entrypoint": [str(x) for x in params["entrypoint"]] if params.get("entrypoint") is not None else None,
        "env": dict((str(k), str(v)) for k, v in sorted((params.get("env") or {}).items())),
        "secret_env_keys": sorted(str(k) for k in (params.get("secret_env") or {})),
        "ports": [port_key(p) for p in ports],
        "volumes": [_volume_text(v) for v in volumes],
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
        "init": bool(params.get("init", True)),
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
# Validation before anything is touched (pure)
# --------------------------------------------------------------------------------------------

_DEVICE_ID_RE = re.compile(r"^(\d+|GPU-[0-9a-fA-F-]{8,}|MIG-[0-9a-zA-Z/-]+)$")


def _overlapping_ips(a, b):
    return a == b or a in ("", "0.0.0.0", "::") or b in ("", "0.0.0.0", "::")


def port_problems(ports):
    """Sentences about host addresses that are not IP addresses and host ports published twice."""
    problems = []
    for p in ports:
        if p["host_ip"]:
            try:
                ipaddress.ip_address(p["host_ip"])
            except ValueError:
                problems.append("host address %r of port %s is not an IP address" % (p["host_ip"], port_key(p)))
    published = [p for p in ports if p["host_port"]]
    for i, a in enumerate(published):
        for b in published[i + 1:]:
            if (a["host_port"], a["proto"]) == (b["host_port"], b["proto"]) and _overlapping_ips(a["host_ip"], b["host_ip"]):
                problems.append("host port %s/%s is published twice (%s and %s)"
                                % (a["host_port"], a["proto"], port_key(a), port_key(b)))
    return problems


def missing_bind_sources(volumes):
    """The bind sources that do not exist on this host, in the order they are mounted."""
    return [v["source"] for v in volumes if v["type"] == "bind" and not os.path.exists(v["source"])]


def volume_problems(volumes, host_is_local, create_missing=False):
    """Sentences about container paths mounted twice and bind sources that are not clean or absent
    (an absent one is no problem when the rollout creates it: create_missing)."""
    problems = []
    seen = {}
    absent = set(missing_bind_sources(volumes)) if host_is_local and not create_missing else set()
    for v in volumes:
        if v["target"] in seen:
            problems.append("container path %s is mounted twice (%s and %s)" % (v["target"], seen[v["target"]], v["source"]))
        seen[v["target"]] = v["source"]
        if v["type"] != "bind":
            continue
        if os.path.normpath(v["source"]) != v["source"].rstrip("/") or "/../" in v["source"] + "/":
            problems.append("bind source %s is not a normalised path (write %s)" % (v["source"], os.path.normpath(v["source"])))
        elif v["source"] in absent:
            problems.append("bind source %s does not exist on the Docker host (Docker would create an empty "
                            "root-owned directory there): create it first, or set create_bind_sources" % v["source"])
    return problems


def device_request_problems(requests):
    """Sentences about device requests the daemon or the NVIDIA runtime would refuse or misread."""
    problems = []
    for n, r in enumerate(requests, 1):
        where = "device request %d (driver %s)" % (n, r["driver"] or "unset")
        if r["device_ids"] and r["count"]:
            problems.append("%s sets both count and device_ids: Docker takes one of them" % where)
        if not r["device_ids"] and r["count"] == 0:
            problems.append("%s asks for no device: set count (-1 for all) or device_ids" % where)
        if r["count"] < -1:
            problems.append("%s has count %d: use -1 for all or a positive number" % (where, r["count"]))
        bad = [d for d in r["device_ids"] if not _DEVICE_ID_RE.match(d)]
        if bad:
            problems.append("%s has device id(s) %s: use GPU indexes (0, 1) or UUIDs (GPU-...)" % (where, ", ".join(bad)))
        if r["driver"] == "nvidia" and not any(r["capabilities"]):
            problems.append("%s has no capabilities: the NVIDIA runtime needs at least [gpu]" % where)
    return problems


def health_url_problems(url):
    if not url:
        return []
    parsed = urllib_parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return ["health_url %r is not an http(s) URL with a host" % url]
    return []


def validation_problems(config, ports, volumes, params, check_mode=False):
    """Every problem found before the daemon is asked. A bind source is looked for only where the
    daemon shares this host's filesystem, not in check mode (an earlier task would create it) and not
    with create_bind_sources (the rollout creates it; that needs the daemon on this host)."""
    host = resolve_docker_host(params.get("docker_host"))
    local = host.startswith("unix://")
    create = bool(params.get("create_bind_sources"))
    problems = []
    if create and not local and any(v["type"] == "bind" for v in volumes):
        problems.append("create_bind_sources creates directories on this host, but the Docker daemon is at %s: "
                        "create the bind sources on the Docker host first and leave create_bind_sources off" % host)
    return (problems + port_problems(ports) + volume_problems(volumes, local and not check_mode, create)
            + device_request_problems(config["device_requests"]) + health_url_problems(params.get("health_url")))


# --------------------------------------------------------------------------------------------
# The rollout's journal: what an interrupted run left behind
# --------------------------------------------------------------------------------------------

class Journal:
    """<state_dir>/<key>.rollout.json, written before a rollout touches the current container and
    removed when it is done, so the next run knows that a `-previous` container is the last working
    deployment, whether it was running, and which container is the unproven candidate."""

    def __init__(self, state_dir, key):
        self.path = os.path.join(state_dir, key + ".rollout.json")

    def read(self):
        try:
            with open(self.path) as fh:
                return json.load(fh)
        except (IOError, OSError, ValueError):
            return None

    def write(self, **entry):
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        entry.setdefault("pid", os.getpid())
        tmp = self.path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(entry, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, self.path)

    def update(self, **changes):
        entry = self.read() or {}
        entry.update(changes)
        self.write(**entry)

    def clear(self):
        try:
            os.remove(self.path)
        except OSError:
            pass


class RolloutInterrupted(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived while a candidate was being started or gated."""


@contextlib.contextmanager
def signals_raise():
    """Turn SIGINT/SIGTERM/SIGHUP into RolloutInterrupted while the candidate is unproven."""
    def handler(signum, frame):
        raise RolloutInterrupted("signal %d" % signum)
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (unit tests may run rollouts in threads)
            pass
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def signals_ignored():
    """While the previous deployment is put back, a second Ctrl-C must not leave it half restored."""
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            old[sig] = signal.signal(sig, signal.SIG_IGN)
        except ValueError:
            pass
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


# --------------------------------------------------------------------------------------------
# Talking to Docker
# --------------------------------------------------------------------------------------------

class Rollout:
    """One service's rollout. Containers it may leave: <name> (serving), <name>-previous (the last
    working deployment, parked while a candidate is gated; the journal says so) and <name>-rollback
    (the deployment before the current one, stopped, for `state: rolled_back`)."""

    def __init__(self, params, check_mode=False, client_factory=get_client):
        self.p = params
        self.check_mode = check_mode
        self.name = params["name"]
        if not NAME_RE.match(self.name):
            raise HomelabDockerError("container name %r is invalid: use letters, digits, '_', '.', '-'" % self.name)
        self.previous_name = self.name + PREVIOUS_SUFFIX
        self.rollback_name = self.name + ROLLBACK_SUFFIX
        self.actions = []
        self.lock_wait = None
        self.progress = ProgressLog(params.get("progress_path"))
        try:
            self.config = desired_config(params)
            self.ports = [parse_port(x) for x in params.get("ports") or []]
            self.volumes = [parse_volume(x) for x in params.get("volumes") or []]
        except ValueError as exc:
            raise HomelabDockerError("Invalid parameter for container %s: %s" % (self.name, exc))
        problems = validation_problems(self.config, self.ports, self.volumes, params, check_mode)
        if problems:
            raise HomelabDockerError("Invalid parameters for container %s: %s. Nothing was changed."
                                     % (self.name, "; ".join(problems)), problems=problems)
        host = resolve_docker_host(params.get("docker_host"))
        self.key = "%s-%s" % (self.name, stable_hash(host)[:8])
        state_dir = params.get("state_dir") or DEFAULT_STATE_DIR
        self.state_dir = state_dir
        self.journal = Journal(state_dir, self.key)
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
            if "No such container" not in str(exc) and not is_not_found(exc):
                raise

    def _managed(self, ref):
        """inspect of ref when this module made it, else None (a stranger's container is never touched)."""
        info = inspect_container_or_none(self.client, ref)
        if info is None or (info["Config"].get("Labels") or {}).get(MANAGED_LABEL) != MANAGER:
            return None
        return info

    def _ensure_networks(self):
        for net in self.config["networks"]:
            if net in ("bridge", "host", "none") or net.startswith("container:"):
                continue
            found = [n for n in self.client.networks(names=[net]) if n.get("Name") == net]
            if not found:
                if not self.check_mode:
                    self.client.create_network(net, driver="bridge", labels={MANAGED_LABEL: MANAGER})
                self.act("created network %s (bridge)" % net)

    def _ensure_bind_sources(self):
        """create_bind_sources: a missing bind source becomes a directory (mode 0755), as a change."""
        if not self.p.get("create_bind_sources"):
            return
        for source in missing_bind_sources(self.volumes):
            if self.check_mode:
                self.act("would create the bind source directory %s" % source)
                continue
            try:
                os.makedirs(source, 0o755)
                os.chmod(source, 0o755)
            except OSError as exc:
                raise HomelabDockerError("%s: could not create the bind source directory %s: %s. The container was "
                                         "not touched; create the directory yourself or fix its parent's permissions."
                                         % (self.name, source, exc))
            self.act("created the bind source directory %s" % source)

    def _binds(self):
        return [_volume_text(v) for v in self.volumes]

    def _host_config(self):
        c = self.client
        binds = self._binds()
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
            GATE_LABEL: json.dumps({"health_url": self.p.get("health_url"),
                                    "health_timeout": self.p.get("health_timeout") or 120,
                                    "stable_seconds": self.p.get("stable_seconds") or 0}, sort_keys=True),
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

    def _run_init_containers(self, image_id, result):
        """Run the service's init containers in order, before a container of it starts. One that fails
        stops the rollout before anything running is touched."""
        for init in self.config.get("init_containers") or []:
            name = "%s-init-%s" % (self.name, init["name"])
            if self.check_mode:
                self.act("would run init container %s" % name)
                continue
            stale = inspect_container_or_none(self.client, name)
            if stale is not None:  # left by a run that was killed while it ran
                self._remove(stale["Id"], "leftover init container %s" % name)
            host_config = self.client.create_host_config(
                binds=(init["volumes"] if init["volumes"] is not None else self._binds()) or None,
                network_mode="none", cap_drop=["ALL"], cap_add=init["cap_add"] or None,
                security_opt=["no-new-privileges"], log_config=self.config["log_config"], auto_remove=False)
            rc, output = run_to_completion(
                self.client, image_id, init["command"], init["timeout"], what="init container %s" % name, name=name,
                entrypoint=init["entrypoint"], user=init["user"], labels={MANAGED_LABEL: MANAGER}, host_config=host_config)
            lines = output.strip().splitlines()
            result.setdefault("init_containers", []).append(
                {"name": name, "exit_code": rc, "output": "\n".join(lines[-LOG_TAIL:])})
            if rc != 0:
                raise HomelabDockerError(
                    "Init container %s of %s failed (exit code %s); nothing running was touched, the current deployment "
                    "keeps serving. Fix the init container's command or what it reads, then rerun.\nLast %d log lines:\n%s"
                    % (name, self.name, rc, LOG_TAIL, "\n".join(lines[-LOG_TAIL:])), **result)
            self.act("ran init container %s: %s" % (name, lines[-1][:200] if lines else "(no output)"))

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

    def _gate_of(self, info):
        """The health gate a container was rolled out with (its label), this task's where unset."""
        gate = {"health_url": self.p.get("health_url"), "health_timeout": self.p.get("health_timeout"),
                "stable_seconds": self.p.get("stable_seconds")}
        try:
            gate.update(json.loads(((info.get("Config") or {}).get("Labels") or {}).get(GATE_LABEL) or "{}"))
        except ValueError:
            pass
        return gate

    def wait_healthy(self, cid, baseline_restarts=0, timeout=None, health_url=None, stable_seconds=None):
        """(ok, reason, last_inspect): poll until ready and stable, failed, or timed out."""
        timeout = float(self.p.get("health_timeout") or 120) if timeout is None else float(timeout)
        stable = float(parse_duration(self.p.get("stable_seconds") if stable_seconds is None else stable_seconds) or 0)
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

    def _gate(self, info, baseline=None):
        """wait_healthy with the gate the container itself was rolled out with."""
        gate = self._gate_of(info)
        return self.wait_healthy(info["Id"], info.get("RestartCount") or 0 if baseline is None else baseline,
                                 timeout=gate["health_timeout"], health_url=gate["health_url"],
                                 stable_seconds=gate["stable_seconds"])

    def _own_restart_policy(self, info):
        """The restart policy a container was rolled out with (its config label), not the parked 'no'."""
        try:
            policy = json.loads(((info.get("Config") or {}).get("Labels") or {}).get(CONFIG_LABEL) or "{}").get("restart_policy")
        except ValueError:
            policy = None
        policy = policy or (info.get("HostConfig") or {}).get("RestartPolicy") or {}
        # For an update "no" must be said: dockerd ignores an empty name there (daemon/update.go).
        return policy if policy.get("Name") else dict(NO_RESTART)

    # -- parking: the stages of a replacement -----------------------------------------------
    def _park(self, info, as_name, phase, candidate_origin):
        """Move a working container aside: journal first, then rename, no restart policy, stop."""
        running = (info.get("State") or {}).get("Status") in ("running", "restarting")
        self.journal.write(phase=phase, name=self.name, previous_id=info["Id"], previous_was_running=running,
                           previous_image_id=info["Image"], candidate_id=None, candidate_origin=candidate_origin,
                           started_at=time.time())
        self.client.rename(info["Id"], as_name)
        self.act("renamed %s to %s" % (info["Name"].lstrip("/"), as_name))
        # A parked container must not come back by itself (daemon restart, WSL reboot) and take the ports.
        self.client.update_container(info["Id"], restart_policy=dict(NO_RESTART))
        if running:
            self.client.stop(info["Id"], timeout=int(self.p.get("stop_timeout") or 10))
            self.act("stopped %s (frees its host ports)" % as_name)
        return running

    def _unpark(self, info, was_running):
        """Put a parked container back under the service name; (ok, reason) of its gate if it ran."""
        self.client.rename(info["Id"], self.name)
        self.client.update_container(info["Id"], restart_policy=self._own_restart_policy(info))
        self.act("renamed %s back to %s" % (info["Name"].lstrip("/"), self.name))
        if not was_running:
            return True, "it was not running before, so it stays stopped"
        err = self._start(info["Id"], "previous container %s" % self.name)
        if err:
            return False, err
        ok, reason, dummy = self._gate(info)
        return ok, reason

    def _keep_for_rollback(self, previous_id):
        """After a replacement passed its gate: the replaced container becomes <name>-rollback."""
        old = self._managed(self.rollback_name)
        if old is not None and old["Id"] != previous_id:
            self._remove(old["Id"], "older rollback container")
        if self.p.get("keep_rollback", True):
            self.client.rename(previous_id, self.rollback_name)
            self.act("kept the replaced container stopped as %s (state=rolled_back returns to it)" % self.rollback_name)
        else:
            self._remove(previous_id, "previous container")

    def _put_aside_candidate(self, cid, origin):
        """A candidate that failed: a new one is removed, a rollback container goes back to waiting."""
        if origin == "rollback":
            self.client.stop(cid, timeout=int(self.p.get("stop_timeout") or 10))
            self.client.update_container(cid, restart_policy=dict(NO_RESTART))
            self.client.rename(cid, self.rollback_name)
            self.act("put %s back as %s" % (self.name, self.rollback_name))
        else:
            self._remove(cid, "failed new container")

    # -- recovery ---------------------------------------------------------------------------
    def _recover_interrupted(self):
        """Finish what an interrupted run left: gate the unproven container, keep it or restore.

        Evidence: the journal (written before anything is touched) and a managed <name>-previous.
        The current container must pass the health gate before anything older is removed; if it
        does not, the previous one comes back. Without a journal (an older release's leftovers) the
        previous container is assumed to have been running.
        """
        entry = self.journal.read()
        parked = self._managed(self.previous_name)
        if entry is None and parked is None:
            return
        current = inspect_container_or_none(self.client, self.name)
        if parked is None:
            if not self.check_mode:
                self.journal.clear()
            return
        was_running = True if entry is None else bool(entry.get("previous_was_running", True))
        origin = (entry or {}).get("candidate_origin") or "new"
        if self.check_mode:
            self.act("an earlier rollout was interrupted: the next real run gates %s and restores %s if it fails"
                     % (self.name, self.previous_name))
            return
        with signals_ignored():
            if current is None:
                ok, reason = self._unpark(parked, was_running)
                self.act("an earlier rollout was interrupted before its new container existed: restored %s (%s)"
                         % (self.name, reason))
            else:
                self._recover_candidate(current, parked, was_running, origin)
            self.journal.clear()

    def _recover_candidate(self, current, parked, was_running, origin):
        if (current.get("State") or {}).get("Status") in ("running", "restarting"):
            ok, reason, dummy = self._gate(current)
        else:
            ok, reason = False, "it is %s" % (current.get("State") or {}).get("Status")
        if ok:
            self.act("the container an interrupted rollout left under %s passed the health gate (%s): kept"
                     % (self.name, reason))
            self._keep_for_rollback(parked["Id"])
            return
        self.act("the container an interrupted rollout left under %s failed the health gate (%s): "
                 "restoring the previous deployment" % (self.name, reason))
        self._put_aside_candidate(current["Id"], origin)
        ok, reason = self._unpark(parked, was_running)
        self.act("previous deployment restored under %s (%s)" % (self.name, reason))

    # -- the stages of `state: started` ------------------------------------------------------
    def _resolve_image(self):
        """The image's inspect data; None in check mode when it would be pulled first."""
        c = self.client
        image = inspect_image_or_none(c, self.p["image"])
        if image is None and self.p.get("pull") and not self.check_mode:
            self.act("pulling %s" % self.p["image"])
            c.pull(self.p["image"])
            image = inspect_image_or_none(c, self.p["image"])
        if image is None and self.p.get("pull") and self.check_mode:
            return None
        if image is None:
            raise HomelabDockerError(
                "Image %s not found on the Docker host (pull is %s): build it first (homelab.ai.image_build) "
                "or load/pull it, then rerun." % (self.p["image"], "true" if self.p.get("pull") else "false"),
                image=self.p["image"])
        return image

    def _compare(self, current, image_id):
        """The result skeleton: what differs between the running container and the desired one."""
        cur_labels = ((current or {}).get("Config") or {}).get("Labels") or {}
        self.salt = cur_labels.get(SECRET_SALT_LABEL) or os.urandom(16).hex()
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
            want_secret = secret_hash(self.p["secret_env"], self.salt) if self.p.get("secret_env") else None
            secrets_changed = cur_labels.get(SECRET_HASH_LABEL) != want_secret
        image_changed = current is not None and current["Image"] != image_id
        config_changed = current is not None and (cur_labels.get(CONFIG_HASH_LABEL) != want_hash or secrets_changed)
        before_shown = (masked_config(before_config, before_config.get("secret_env_keys", [])) if before_config
                        else (None if current is None else "(not managed by homelab.ai: unknown)"))
        result = {
            "changed": bool(self.actions), "actions": self.actions, "rolled_back": False,
            "previous_image_id": current["Image"] if current else None,
            "image_id": image_id, "config_hash": want_hash,
            "changed_keys": (list(changes) if config_changed else [])
            + (["secret_env"] if secrets_changed else []) + (["image_id"] if image_changed else []),
            "diff": {
                "before": {"image_id": current["Image"] if current else None, "config": before_shown,
                           "state": ((current or {}).get("State") or {}).get("Status", "absent")},
                "after": {"image_id": image_id, "config": masked_config(self.config, self.config["secret_env_keys"]),
                          "state": "running"},
            },
        }
        if secrets_changed:
            result["diff"]["after"]["secret_env_changed"] = True
        unchanged = current is not None and not image_changed and not config_changed
        return result, unchanged

    def _keep_unchanged(self, current, result):
        """Same deployment: a healthy one is left alone; a stopped, crashed or unhealthy one is
        (re)started and gated again, a starting one is waited for."""
        status = (current.get("State") or {}).get("Status")
        verdict, why = assess_state(current, current.get("RestartCount") or 0)
        if status == "running" and verdict == READY:
            result["container"] = self._summary(current)
            return result
        if status == "running" and verdict == WAITING:
            ok, reason, last = self._gate(current)
            result["container"] = self._summary(last)
            if ok:
                return result
            why = reason
        result["changed"] = True
        if self.check_mode:
            self.act("would restart %s (%s)" % (self.name, why if status == "running" else "it is %s" % status))
            result["container"] = self._summary(current)
            return result
        self._run_init_containers(current["Image"], result)
        if status in ("running", "restarting"):
            self.client.stop(current["Id"], timeout=int(self.p.get("stop_timeout") or 10))
            self.act("stopped %s: %s" % (self.name, why))
        current = self.client.inspect_container(current["Id"])
        err = self._start(current["Id"], "existing container %s" % self.name)
        ok, reason, last = (False, err, current) if err else self._gate(current)
        result["container"] = self._summary(last)
        if not ok:
            raise HomelabDockerError(
                "Container %s (unchanged deployment) did not come up: %s\nLast %d log lines:\n%s\n%s"
                % (self.name, reason, LOG_TAIL, self._logs(current["Id"]), self._rollback_hint()), **result)
        return result

    def _rollback_hint(self):
        if self._managed(self.rollback_name) is None:
            return "There is no earlier deployment kept to roll back to."
        return ("The deployment before it is kept as %s: `ansible-playbook playbooks/rollback.yml -e "
                "rollback_container=%s` returns to it behind the same health gate." % (self.rollback_name, self.name))

    def _refuse_port_conflicts(self, current):
        ignore = set([current["Id"]]) if current else set()
        conflicts = port_conflicts(self.ports, self.client.containers(), ignore)
        if conflicts:
            raise HomelabDockerError(
                "Host port(s) already in use by other containers: %s. Stop or reconfigure those containers, "
                "or change ports of %s. Nothing was changed." % (
                    ", ".join("%s by %s" % pc for pc in conflicts), self.name), actions=self.actions)

    def _launch_candidate(self, image_id):
        """(cid, cause, last_inspect): create, start and gate the new container; cause None = healthy."""
        cid, last = None, None
        try:
            cid = self._create(image_id, self.salt)
        except Exception as exc:
            if isinstance(exc, RolloutInterrupted):
                raise
            return None, "creating the container failed: %s" % (getattr(exc, "explanation", None) or exc), None
        self.journal.update(candidate_id=cid)
        err = self._start(cid, "new container %s" % self.name)
        if err:
            return cid, "starting the container failed: %s" % err, None
        self.act("waiting up to %ss for health, then %ss stable" % (
            self.p.get("health_timeout") or 120, self.p.get("stable_seconds")))
        ok, reason, last = self.wait_healthy(cid, 0, health_url=self.p.get("health_url"))
        if ok:
            self.act("new container healthy: %s" % reason)
            return cid, None, last
        return cid, reason, last

    def _evidence(self, cid, last, created_at, cause):
        failed = {"cause": cause}
        if not cid:
            return failed
        # The snapshot that failed the gate holds the exit code; a restarting container that is
        # up again by now would report 0.
        info = last or inspect_container_or_none(self.client, cid) or {}
        now = inspect_container_or_none(self.client, cid) or info
        state = info.get("State") or {}
        codes = self._exit_codes(cid, created_at)
        exit_code = codes[-1] if codes else state.get("ExitCode")
        if codes:
            failed["cause"] = cause + " (exit codes seen: %s)" % ", ".join(str(x) for x in codes)
        failed.update({"id": cid, "exit_code": exit_code, "exit_codes": codes, "restart_count": now.get("RestartCount"),
                       "health_log": _health_log_text(state.get("Health"), 5), "logs": self._logs(cid)})
        return failed

    def _restore_after_failure(self, current, was_running, cid, result):
        """The candidate failed: remove it and bring the parked deployment back (rollback=true)."""
        if not self.p.get("rollback", True):
            self.journal.clear()
            return ("rollback is false: the failed container %s is left in place for debugging%s." % (
                self.name, " and the previous one is kept stopped as %s" % self.previous_name if current else ""))
        with signals_ignored():
            if cid:
                self._remove(cid, "failed new container")
            if current is None:
                self.journal.clear()
                return "There was no previous deployment to restore."
            ok, reason = self._unpark(current, was_running)
            self.journal.clear()
        result["rolled_back"] = True
        result["container"] = self._summary(inspect_container_or_none(self.client, current["Id"]))
        msg = "The previous deployment (image %s) was restored" % current["Image"]
        if not was_running:
            return msg + " (it was not running before, so it stays stopped)."
        if ok:
            return msg + " and is healthy again (%s)." % reason
        return msg + " but did NOT become healthy: %s. Investigate by hand." % reason

    def _replace(self, current, image_id, result):
        self._refuse_port_conflicts(current)
        self._run_init_containers(image_id, result)
        was_running = self._park(current, self.previous_name, "replacing", "new") if current else False
        if current is None:
            self.journal.write(phase="creating", name=self.name, previous_id=None, candidate_id=None,
                               candidate_origin="new", started_at=time.time())
        created_at = time.time() - 5
        cid, cause, last = None, None, None
        try:
            with signals_raise():
                cid, cause, last = self._launch_candidate(image_id)
        except RolloutInterrupted as exc:
            cid = cid or (self.journal.read() or {}).get("candidate_id")
            cause = "the rollout was interrupted (%s) before the new container passed its gate" % exc
        if cause is None:
            if current is not None:
                self._keep_for_rollback(current["Id"])
            self.journal.clear()
            result["container"] = self._summary(self.client.inspect_container(cid))
            return result
        failed = self._evidence(cid, last, created_at, cause)
        result["failed_container"] = failed
        self.act("new container failed: %s" % failed["cause"])
        restore_msg = self._restore_after_failure(current, was_running, cid, result)
        raise HomelabDockerError(
            "Rollout of %s with image %s failed: %s. Exit code: %s. Health log: %s\n%s\nLast %d log lines of the "
            "failed container:\n%s" % (self.name, image_id, failed["cause"], failed.get("exit_code"),
                                       failed.get("health_log") or "-", restore_msg, LOG_TAIL, failed.get("logs") or ""),
            **result)

    # -- entry points -----------------------------------------------------------------------
    def locked(self):
        """The host lock for this service: held for the whole rollout (not in check mode)."""
        if self.check_mode:
            return contextlib.nullcontext()
        return HostLock(self.state_dir, "rollout-" + self.key, "rollout of %s" % self.name,
                        timeout=self.p.get("lock_timeout") if self.p.get("lock_timeout") is not None else 600,
                        on_wait=self._note_lock_wait)

    def _note_lock_wait(self, sentence):
        """Waiting for another run is reported, but it is not a change this run made."""
        self.lock_wait = sentence
        self.progress.write("%s: %s" % (self.name, sentence))

    def started(self):
        image = self._resolve_image()
        if image is None:
            # A fresh host in check mode: nothing to compare against yet, the real run pulls first.
            self.act("would pull %s and create %s from it" % (self.p["image"], self.name))
            diff = {"before": {"state": "absent"}, "after": {"state": "started", "image": self.p["image"]}}
            return {"changed": True, "actions": self.actions, "previous_image_id": None, "rolled_back": False,
                    "container": None, "diff": diff}
        with self.locked():
            self._recover_interrupted()
            current = inspect_container_or_none(self.client, self.name)
            result, unchanged = self._compare(current, image["Id"])
            self._ensure_networks()
            self._ensure_bind_sources()
            result["changed"] = bool(self.actions)
            if unchanged:
                return self._keep_unchanged(current, result)
            result["changed"] = True
            if self.check_mode:
                self._run_init_containers(image["Id"], result)
                self.act("would %s %s with image %s" % ("replace" if current else "create", self.name, image["Id"]))
                result["container"] = self._summary(current) if current else None
                return result
            return self._replace(current, image["Id"], result)

    def rolled_back(self):
        """Swap the serving container with <name>-rollback, behind the rollback container's own gate."""
        with self.locked():
            self._recover_interrupted()
            current = inspect_container_or_none(self.client, self.name)
            back = self._managed(self.rollback_name)
            result = {"changed": False, "actions": self.actions, "rolled_back": False,
                      "previous_image_id": current["Image"] if current else None, "container": self._summary(current)}
            if back is None:
                raise HomelabDockerError(
                    "There is no earlier deployment of %s to roll back to: %s does not exist (one is kept after "
                    "each replacement that passed its health gate). Nothing was changed." % (self.name, self.rollback_name),
                    **result)
            result["changed"] = True
            result["image_id"] = back["Image"]
            result["rolled_back_to"] = self._summary(back)
            result["diff"] = {"before": {"image_id": result["previous_image_id"]}, "after": {"image_id": back["Image"]}}
            if self.check_mode:
                self.act("would stop %s and start %s in its place" % (self.name, self.rollback_name))
                return result
            return self._swap_in_rollback(current, back, result)

    def _swap_in_rollback(self, current, back, result):
        was_running = self._park(current, self.previous_name, "rollback", "rollback") if current else False
        if current is None:
            self.journal.write(phase="rollback", name=self.name, previous_id=None, candidate_id=back["Id"],
                               candidate_origin="rollback", started_at=time.time())
        self.journal.update(candidate_id=back["Id"])
        cause = None
        try:
            with signals_raise():
                self.client.rename(back["Id"], self.name)
                self.client.update_container(back["Id"], restart_policy=self._own_restart_policy(back))
                self.act("renamed %s to %s" % (self.rollback_name, self.name))
                cause = self._start(back["Id"], "rollback container %s" % self.name)
                if cause is None:
                    ok, reason, last = self._gate(back, baseline=back.get("RestartCount") or 0)
                    cause = None if ok else reason
        except RolloutInterrupted as exc:
            cause = "the rollback was interrupted (%s)" % exc
        if cause is None:
            if current is not None:
                self._keep_for_rollback(current["Id"])
            self.journal.clear()
            result["rolled_back"] = True
            result["container"] = self._summary(self.client.inspect_container(back["Id"]))
            return result
        with signals_ignored():
            self._put_aside_candidate(back["Id"], "rollback")
            ok, reason = self._unpark(current, was_running) if current else (False, "nothing was serving before")
            self.journal.clear()
        raise HomelabDockerError(
            "Rolling %s back to %s (image %s) failed: %s\nLast %d log lines:\n%s\nThe deployment that served "
            "before is back: %s." % (self.name, self.rollback_name, back["Image"], cause, LOG_TAIL,
                                     self._logs(back["Id"]), reason), **result)

    def absent(self):
        result = {"changed": False, "actions": self.actions, "rolled_back": False, "container": None,
                  "previous_image_id": None}
        with self.locked():
            for ref, what in ((self.name, "container"), (self.previous_name, "leftover previous container"),
                              (self.rollback_name, "rollback container")):
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
            if not self.check_mode:
                self.journal.clear()
        result["diff"] = {"before": {"state": "present" if result["changed"] else "absent"},
                          "after": {"state": "absent"}}
        return result


def run_container_rollout(params, check_mode=False, client_factory=get_client):
    rollout = Rollout(params, check_mode=check_mode, client_factory=client_factory)
    try:
        state = params.get("state", "started")
        if state == "absent":
            result = rollout.absent()
        elif state == "rolled_back":
            result = rollout.rolled_back()
        else:
            result = rollout.started()
        result["lock_wait"] = rollout.lock_wait
        return result
    finally:
        rollout.progress.close()
