# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of container_rollout: port/volume parsing (container_spec), healthcheck normalising, the desired-config hash and
diff, secret masking, restart-loop/health assessment on real `docker inspect` snapshots (fixtures),
port-conflict detection. Rollouts against a real daemon: tests/docker_modules/."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import copy
import json
import os
import threading

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import container_rollout as cr
from ansible_collections.homelab.ai.plugins.module_utils import container_spec as cs
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import stable_hash

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as fh:
        return json.load(fh)


STATES = fixture("docker_inspect_states.json")


# ---- ports / volumes / healthcheck ---------------------------------------------------------

@pytest.mark.parametrize("spec,expected", [
    ("127.0.0.1:8000:8000", ("127.0.0.1", 8000, 8000, "tcp")),
    ("8080:80", ("", 8080, 80, "tcp")),
    ("53:53/udp", ("", 53, 53, "udp")),
    ("80", ("", None, 80, "tcp")),
    ("[::1]:9000:90", ("::1", 9000, 90, "tcp")),
])
def test_parse_port(spec, expected):
    p = cs.parse_port(spec)
    assert (p["host_ip"], p["host_port"], p["container_port"], p["proto"]) == expected


@pytest.mark.parametrize("bad", ["abc:80", "1:2:3:4", "8080:70000", "80/icmp", "[::1]80:80", ":80"])
def test_parse_port_rejects(bad):
    with pytest.raises(ValueError):
        cs.parse_port(bad)


@pytest.mark.parametrize("spec,expected", [
    ("models:/models", ("volume", "models", "/models", False)),
    ("hf-cache:/root/.cache:ro", ("volume", "hf-cache", "/root/.cache", True)),
    ("/srv/data:/data:rw", ("bind", "/srv/data", "/data", False)),
])
def test_parse_volume(spec, expected):
    v = cs.parse_volume(spec)
    assert (v["type"], v["source"], v["target"], v["read_only"]) == expected


@pytest.mark.parametrize("bad", ["./rel:/data", "vol:data", "vol:/data:rx", "onlyone", "a:/b:ro:x"])
def test_parse_volume_rejects(bad):
    with pytest.raises(ValueError):
        cs.parse_volume(bad)


def test_normalize_healthcheck():
    hc = cr.normalize_healthcheck({"test": ["curl", "-f", "http://localhost/"], "interval": "30s",
                                   "timeout": 5, "retries": 3, "start_period": "1m"})
    assert hc == {"test": ["CMD", "curl", "-f", "http://localhost/"], "interval": 30 * 10 ** 9,
                  "timeout": 5 * 10 ** 9, "retries": 3, "start_period": 60 * 10 ** 9}
    assert cr.normalize_healthcheck({"test": "curl -f x || exit 1"})["test"] == ["CMD-SHELL", "curl -f x || exit 1"]
    assert cr.normalize_healthcheck({"test": "NONE"})["test"] == ["NONE"]
    assert cr.normalize_healthcheck(None) is None
    with pytest.raises(ValueError):
        cr.normalize_healthcheck({"test": ["x"], "interval": "soon"})


def test_device_requests_and_restart_policy():
    assert cr.normalize_device_requests([{"driver": "nvidia", "count": -1, "capabilities": ["gpu"]}]) == [
        {"driver": "nvidia", "count": -1, "device_ids": [], "capabilities": [["gpu"]], "options": {}}]
    assert cr.parse_restart_policy("unless-stopped") == {"Name": "unless-stopped"}
    assert cr.parse_restart_policy("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert cr.parse_restart_policy("no") == {"Name": ""}
    for bad in ("sometimes", "always:3", "on-failure:x"):
        with pytest.raises(ValueError):
            cr.parse_restart_policy(bad)


# ---- desired config, hash, diff, secrets -----------------------------------------------------

BASE = {"name": "svc", "image": "x:1", "command": ["python3", "-m", "http.server"], "env": {"B": "2", "A": 1},
        "secret_env": {"TOKEN": "s3cret"}, "ports": ["8080:80", "127.0.0.1:8000:8000"],
        "volumes": ["data:/data"], "restart_policy": "unless-stopped",
        "healthcheck": {"test": "true", "interval": "5s"}}


def test_desired_config_is_canonical_and_secret_free():
    a = cr.desired_config(BASE)
    reordered = dict(BASE, env={"A": "1", "B": "2"}, ports=list(reversed(BASE["ports"])),
                     healthcheck={"test": "true", "interval": 5})
    assert stable_hash(a) == stable_hash(cr.desired_config(reordered))
    assert "s3cret" not in json.dumps(a)
    assert a["secret_env_keys"] == ["TOKEN"]
    assert a["env"] == {"A": "1", "B": "2"}


@pytest.mark.parametrize("key,value", [
    ("command", ["python3", "app.py"]), ("env", {"A": "1"}), ("ports", ["8081:80"]),
    ("volumes", ["data:/data:ro"]), ("networks", ["homelab"]), ("restart_policy", "always"),
    ("healthcheck", {"test": "false"}), ("cap_add", ["SYS_NICE"]), ("shm_size", "1g"),
    ("device_requests", [{"driver": "nvidia", "count": 1}]), ("labels", {"x": "y"}), ("user", "1000"),
])
def test_every_config_key_changes_the_hash(key, value):
    before = cr.desired_config(BASE)
    after = cr.desired_config(dict(BASE, **{key: value}))
    assert stable_hash(before) != stable_hash(after)
    assert key in cr.config_changes(before, after)


def test_config_changes_and_masking():
    before = cr.desired_config(BASE)
    assert cr.config_changes(before, before) == []
    assert cr.config_changes(None, before) == sorted(before)
    shown = cr.masked_config(before, before["secret_env_keys"])
    assert shown["secret_env"] == {"TOKEN": "********"} and "secret_env_keys" not in shown


def test_secret_hash_is_salted_and_detects_changes():
    h = cr.secret_hash({"TOKEN": "s3cret"}, "salt1")
    assert h == cr.secret_hash({"TOKEN": "s3cret"}, "salt1")
    assert h != cr.secret_hash({"TOKEN": "other"}, "salt1")
    assert h != cr.secret_hash({"TOKEN": "s3cret"}, "salt2")
    assert "s3cret" not in h


# ---- restart-loop / health assessment on real inspect snapshots ------------------------------

def test_restart_loop_detected_from_real_snapshot():
    verdict, reason = cr.assess_state(STATES["loop"])
    assert verdict == cr.FAILED and "restart loop" in reason and "exit code 3" in reason


def test_restart_count_rising_is_a_loop_even_when_running():
    snap = copy.deepcopy(STATES["healthy"])
    snap["RestartCount"] = 2
    assert cr.assess_state(snap, baseline_restarts=2)[0] == cr.READY
    assert cr.assess_state(snap, baseline_restarts=1)[0] == cr.FAILED


def test_exit_unhealthy_healthy_starting():
    verdict, reason = cr.assess_state(STATES["exit"])
    assert verdict == cr.FAILED and "exit code 7" in reason
    verdict, reason = cr.assess_state(STATES["unhealthy"])
    assert verdict == cr.FAILED and "probe failed" in reason
    assert cr.assess_state(STATES["healthy"])[0] == cr.READY
    assert cr.assess_state(STATES["starting"])[0] == cr.WAITING


def test_running_without_healthcheck_is_ready_created_is_waiting():
    snap = copy.deepcopy(STATES["healthy"])
    del snap["State"]["Health"]
    assert cr.assess_state(snap) == (cr.READY, "running")
    snap["State"]["Status"] = "created"
    assert cr.assess_state(snap)[0] == cr.WAITING


# ---- port conflicts ---------------------------------------------------------------------------

def test_port_conflicts_from_real_container_list():
    containers = fixture("docker_containers_list.json")["containers"]
    owner = containers[0]["Id"]
    same = [cs.parse_port("127.0.0.1:18080:9000")]
    assert cr.port_conflicts(same, containers, set()) == [("127.0.0.1:18080:9000/tcp", "homelab-test-cr")]
    assert cr.port_conflicts(same, containers, {owner}) == []          # the container being replaced
    assert cr.port_conflicts([cs.parse_port("18080:80")], containers, set())  # all interfaces overlap
    assert cr.port_conflicts([cs.parse_port("127.0.0.2:18080:80")], containers, set()) == []
    assert cr.port_conflicts([cs.parse_port("18080:80/udp")], containers, set()) == []


# ---- HTTP probe against a real local server ---------------------------------------------------

def test_probe_url_real_server():
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path == "/ok" and self.headers.get("X-Key") == "k"
            self.send_response(200 if ok else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        base = "http://127.0.0.1:%d" % server.server_port
        assert cr.probe_url(base + "/ok", {"X-Key": "k"}) == (True, "HTTP 200")
        assert cr.probe_url(base + "/ok") == (False, "HTTP 503")
    finally:
        server.shutdown()
        server.server_close()
    ok, detail = cr.probe_url(base + "/ok", timeout=1)
    assert not ok and "refused" in detail.lower()
