"""Rollouts that are interrupted, run twice at once, and rolled back, on the real Docker daemon
(molecule verify of rollout_faults; the image server is the service under test).

The candidate in the interruption tests never becomes healthy (its command is `sleep`), so the
rollout is in its health wait when the signal arrives: the previous container is parked as
`homelab-image-server-previous` and stopped, the candidate runs under the service's name.
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY") or Path(__file__).resolve().parents[3])
SCENARIO = ROOT / "molecule/rollout_faults"
SERVICE = "homelab-image-server"
IMAGE_SERVER = "http://127.0.0.1:7860"
STATE_DIR = Path("/var/lib/homelab/rollouts")
# The candidate that never passes: it runs, but nothing answers /health.
NEVER_HEALTHY = {"image_server_command": ["sh", "-c", "sleep 600"], "image_server_health_timeout": 20,
                 "image_server_stable_seconds": 2}


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def containers():
    """{name: (id, image, status)} of the service's containers, whatever their suffix."""
    out = sh("docker", "ps", "-a", "--filter", "name=^/%s" % SERVICE, "--format",
             "{{.Names}} {{.ID}} {{.Image}} {{.State}}").stdout.split("\n")
    rows = [line.split() for line in out if line.strip()]
    return dict((r[0], tuple(r[1:])) for r in rows)


def inspect(name):
    return json.loads(sh("docker", "inspect", name).stdout)[0]


def playbook_cmd(playbook, extra_vars):
    exe = Path(sys.executable).with_name("ansible-playbook")
    return [str(exe) if exe.exists() else "ansible-playbook", "-i", str(ROOT / "inventories/local/hosts.yml"),
            str(playbook), "-e", json.dumps(extra_vars)]


def env():
    return dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
                ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def start_run(**extra_vars):
    """ansible-playbook fault.yml (the image server role with these variables) in its own session."""
    return subprocess.Popen(playbook_cmd(SCENARIO / "fault.yml", extra_vars), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env(), cwd=str(ROOT), start_new_session=True)


def run(playbook, *options, **extra_vars):
    start = time.monotonic()
    proc = subprocess.run(playbook_cmd(playbook, extra_vars) + list(options), capture_output=True, text=True,
                          env=env(), cwd=str(ROOT), timeout=900)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def converge():
    """The scenario's normal deployment (what the inventory says)."""
    rc, out, _ = run(SCENARIO / "converge.yml")
    assert rc == 0, out[-3000:]


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail("%s did not happen within %s s; containers: %s" % (what, timeout, containers()))


def in_health_wait():
    c = containers()
    return SERVICE + "-previous" in c and c.get(SERVICE, ("", "", ""))[2] == "running"


def generates_png():
    req = urllib.request.Request(IMAGE_SERVER + "/generate", method="POST",
                                 data=json.dumps({"prompt": "a fox", "steps": 1, "size": "64x64", "seed": 3}).encode(),
                                 headers={"Content-Type": "application/json", **auth_header()})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.status == 200 and resp.read()[:8] == b"\x89PNG\r\n\x1a\n"


def auth_header():
    """The image server's own key, where the local profile generated it."""
    key_file = Path("/var/lib/homelab/secrets/image_server_api_key")
    return {"Authorization": "Bearer " + key_file.read_text().strip()}


def restored(serving):
    c = containers()
    short_id, dummy, status = c.get(SERVICE, ("", "", ""))
    if SERVICE + "-previous" in c or short_id != serving[:12] or status != "running":
        return False
    if list(STATE_DIR.glob(SERVICE + "-*.rollout.json")):
        return False
    try:
        with urllib.request.urlopen(IMAGE_SERVER + "/health", timeout=10) as resp:
            return resp.status == 200
    except (OSError, ValueError):
        return False


def assert_serves_as_before(before_id):
    c = containers()
    assert c[SERVICE][0] == before_id[:12] and c[SERVICE][2] == "running", c
    assert SERVICE + "-previous" not in c, c
    assert generates_png()


@pytest.fixture
def serving():
    """The deployment serving now. converge.yml runs only when the last test left none settled
    (a rollout's leftovers, a journal, a container not running or not healthy): a converge that
    changes nothing costs 20-30 s on 2 cores, six times per scenario."""
    running = containers().get(SERVICE, ("", "", ""))
    if running[2] != "running" or not restored(running[0]):
        converge()
    c = containers()
    assert c[SERVICE][2] == "running", c
    return inspect(SERVICE)["Id"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_the_health_wait_restores_the_previous_container_at_once(serving, signum):
    proc = start_run(**NEVER_HEALTHY)
    try:
        wait_for(in_health_wait, 240, "the candidate's health wait")
        os.killpg(proc.pid, signum)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # The module ignores further signals while it puts the previous container back, and finishes
    # that (rename, start, health gate, journal cleared) even when ansible-playbook has already
    # exited: wait for the whole restore, not just the rename (seen: the test read the container
    # between its rename and its start, and the pipeline still loading after the start).
    wait_for(lambda: restored(serving), 300, "the restore (renamed back, running, healthy, journal cleared)")
    print("signal %s: rc %s" % (signal.Signals(signum).name, proc.returncode))
    assert proc.returncode != 0
    assert_serves_as_before(serving)


def test_a_killed_run_is_finished_by_the_next_run(serving):
    """kill -9 of the whole run (a lost connection, a reboot): nothing restores at once; the
    next run finds the journal, gates the candidate, which fails, and brings the previous back."""
    proc = start_run(**NEVER_HEALTHY)
    try:
        wait_for(in_health_wait, 240, "the candidate's health wait")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    journals = list(STATE_DIR.glob(SERVICE + "-*.rollout.json"))
    assert journals, "no rollout journal in %s" % STATE_DIR
    entry = json.loads(journals[0].read_text())
    assert entry["previous_id"] == serving and entry["previous_was_running"] is True
    assert containers()[SERVICE + "-previous"][2] == "exited"
    start = time.monotonic()
    converge()
    print("recovery run: %.0f s" % (time.monotonic() - start))
    assert_serves_as_before(serving)
    assert not list(STATE_DIR.glob(SERVICE + "-*.rollout.json"))


def test_two_runs_at_once_both_end_with_one_deployment_serving(serving):
    change = {"image_server_env": {"HOMELAB_TEST_RUN": uuid.uuid4().hex}}
    first = start_run(**change)
    wait_for(lambda: SERVICE + "-previous" in containers() or first.poll() is not None, 240, "the first rollout")
    second_start = time.monotonic()
    second = start_run(**change)
    out1, _ = first.communicate(timeout=600)
    out2, _ = second.communicate(timeout=600)
    waited = time.monotonic() - second_start
    assert first.returncode == 0, out1[-3000:]
    assert second.returncode == 0, out2[-3000:]
    c = containers()
    assert sorted(c) == [SERVICE, SERVICE + "-rollback"], c
    assert c[SERVICE][2] == "running" and c[SERVICE + "-rollback"][0] == serving[:12]
    env_now = inspect(SERVICE)["Config"]["Env"]
    assert "HOMELAB_TEST_RUN=%s" % change["image_server_env"]["HOMELAB_TEST_RUN"] in env_now
    print("second run (waited on the lock, then found nothing to do): %.0f s" % waited)
    assert generates_png()


def test_rollback_returns_to_the_previous_deployment_and_back(serving):
    rc, out, _ = run(SCENARIO / "fault.yml", image_server_env={"HOMELAB_TEST_RUN": uuid.uuid4().hex})
    assert rc == 0, out[-3000:]
    newer = inspect(SERVICE)
    assert inspect(SERVICE + "-rollback")["Id"] == serving
    rc, out, _ = run(ROOT / "playbooks/rollback.yml", "--check", rollback_container=SERVICE)
    assert rc == 0 and "%s would return to image %s" % (SERVICE, inspect(serving)["Image"]) in out, out[-3000:]
    assert inspect(SERVICE)["Id"] == newer["Id"] and inspect(SERVICE + "-rollback")["Id"] == serving
    rc, out, seconds = run(ROOT / "playbooks/rollback.yml", rollback_container=SERVICE)
    assert rc == 0, out[-3000:]
    print("rollback: %.0f s" % seconds)
    now = inspect(SERVICE)
    assert now["Id"] == serving and now["State"]["Status"] == "running"
    assert now["HostConfig"]["RestartPolicy"]["Name"] == newer["HostConfig"]["RestartPolicy"]["Name"]
    kept = inspect(SERVICE + "-rollback")
    assert kept["Id"] == newer["Id"] and kept["State"]["Status"] == "exited"
    assert kept["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    assert generates_png()
    rc, out, _ = run(ROOT / "playbooks/rollback.yml", rollback_container=SERVICE)
    assert rc == 0, out[-3000:]
    assert inspect(SERVICE)["Id"] == newer["Id"]
    assert generates_png()
    converge()


def test_rollback_without_a_kept_deployment_says_so(serving):
    rc, out, _ = run(ROOT / "playbooks/rollback.yml", rollback_container="homelab-no-such-service")
    assert rc != 0
    assert "no earlier deployment of homelab-no-such-service" in out
