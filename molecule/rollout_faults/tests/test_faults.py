"""Faults of the rollout path on the real Docker daemon (molecule verify of rollout_faults).

Each fault first writes a marker into the model volume and records what is deployed; then it
runs molecule/rollout_faults/fault.yml with broken variables, expects a failure with a message
that names the cause, and proves the marker survived and the previous deployment still answers
over HTTP (directly and through the dashboard), on the same container and image.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY") or Path(__file__).resolve().parents[3])
SCENARIO = ROOT / "molecule/rollout_faults"
IMAGE_SERVER = "http://127.0.0.1:7860"
DASHBOARD = "http://127.0.0.1:8080"
VOLUME = "homelab_image_models"
BASE_IMAGE = "homelab/debian:bookworm"


def sh(*args, check=True, env=None):
    return subprocess.run(args, check=check, capture_output=True, text=True, env=env)


def image_server_key():
    """The image server's own key, where the local profile generated it (converge created it)."""
    return (Path("/var/lib/homelab/secrets/image_server_api_key")).read_text().strip()


def http(url, body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if url.startswith(IMAGE_SERVER) or url.startswith(DASHBOARD + "/image/"):
        headers["Authorization"] = "Bearer " + image_server_key()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def deployed(name):
    out = sh("docker", "inspect", "--format", "{{.Id}} {{.Image}} {{.State.Status}}", name).stdout.split()
    return {"id": out[0], "image": out[1], "status": out[2]}


def image_id(ref):
    return sh("docker", "image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def run_fault(*extra, env=None, **extra_vars):
    playbook = Path(sys.executable).with_name("ansible-playbook")
    cmd = [str(playbook) if playbook.exists() else "ansible-playbook",
           "-i", str(ROOT / "inventories/local/hosts.yml"), str(SCENARIO / "fault.yml"),
           "-e", json.dumps(extra_vars), *extra]
    full_env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
                    ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"), ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
                    ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                    ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", **(env or {}))
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=str(ROOT))
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start


def assert_serving(png=True):
    status, _, body = http(IMAGE_SERVER + "/health")
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"
    status, _, body = http(DASHBOARD + "/image/health")
    assert status == 200, body
    if png:
        status, headers, body = http(IMAGE_SERVER + "/generate", {"prompt": "a cat", "steps": 2, "size": "64x64", "seed": 1})
        assert status == 200, body[:300]
        assert headers["Content-Type"] == "image/png" and body[:8] == b"\x89PNG\r\n\x1a\n"
        assert body[16:24] == (64).to_bytes(4, "big") * 2  # IHDR width, height


@pytest.fixture
def marker():
    """Data in the named volume before the fault; the test asserts it is still there after."""
    token = uuid.uuid4().hex
    name = ".fault-marker-" + token[:8]
    sh("docker", "run", "--rm", "--network", "none", "-v", f"{VOLUME}:/models", BASE_IMAGE,
       "sh", "-c", f"echo {token} > /models/{name}")
    yield
    out = sh("docker", "run", "--rm", "--network", "none", "-v", f"{VOLUME}:/models", BASE_IMAGE,
             "sh", "-c", f"cat /models/{name} && rm /models/{name} && test -f /models/tiny-sd/model_index.json")
    assert out.stdout.strip() == token


@pytest.fixture
def before():
    assert_serving(png=False)
    return {"container": deployed("homelab-image-server"), "tag": image_id("homelab/image-server:latest"),
            "dashboard": deployed("homelab-dashboard")}


def assert_unchanged(before, tag_kept=True):
    """The same container (same image) still runs and serves; for a failed build the tag kept
    its image too. (A rollout fault may legitimately rebuild first when the base image changed.)"""
    after = deployed("homelab-image-server")
    assert after["status"] == "running"
    assert after["id"] == before["container"]["id"]
    assert after["image"] == before["container"]["image"]
    if tag_kept:
        assert image_id("homelab/image-server:latest") == before["tag"]
    assert deployed("homelab-dashboard")["id"] == before["dashboard"]["id"]
    assert_serving()


def test_baseline_generates_a_png_through_both_routes():
    assert_serving()
    status, headers, body = http(DASHBOARD + "/image/generate", {"prompt": "a dog", "steps": 2, "size": "64x64"})
    assert status == 200 and body[:4] == b"\x89PNG"
    seconds = float(headers["X-Generation-Seconds"])
    print(f"64x64, 2 steps: {seconds:.2f} s in the server")


def test_pins_that_break_imports_keep_the_previous_image(marker, before):
    """diffusers 0.27.x installs (its metadata allows huggingface-hub 0.36) but imports
    huggingface_hub.cached_download, removed in 0.26: the check command must stop it."""
    rc, out, _ = run_fault(image_server_pin_overrides={"diffusers": "==0.27.2"})
    assert rc != 0, out[-3000:]
    assert "cached_download" in out, out[-3000:]
    assert "check" in out.lower()
    assert deployed("homelab-image-server")["id"] == before["container"]["id"]
    assert_unchanged(before)


def test_crash_loop_is_rolled_back_within_the_timeout(marker, before):
    timeout = 90
    rc, out, elapsed = run_fault(image_server_env={"IMAGE_SERVER_MODEL": "/models/does-not-exist"},
                                 image_server_health_timeout=timeout, image_server_stable_seconds=5)
    assert rc != 0, out[-3000:]
    assert "no diffusers model at /models/does-not-exist" in out, out[-3000:]  # the last log lines
    # profile_tasks prints each task's time, also after a failure: the build-and-rollout task (its build
    # finds nothing to do here: only the environment changed)
    rollout = re.search(r"image_server : Build the image server image and roll it out.*?-+ ([0-9.]+)s", out)
    assert rollout, out[-2000:]
    seconds = float(rollout.group(1))
    print(f"crash loop detected and rolled back in {seconds:.0f} s (health_timeout {timeout} s; run {elapsed:.0f} s)")
    assert seconds < timeout + 60
    env = sh("docker", "inspect", "--format", "{{json .Config.Env}}", "homelab-image-server").stdout
    assert "IMAGE_SERVER_MODEL=/models/tiny-sd" in env
    assert_unchanged(before, tag_kept=False)


def test_failing_dockerfile_step_is_a_clear_error(marker, before):
    rc, out, _ = run_fault(image_server_pin_overrides={"diffusers": "==99.0.0"})
    assert rc != 0, out[-3000:]
    assert "diffusers==99.0.0" in out, out[-3000:]
    assert "RUN" in out or "step" in out.lower()
    assert_unchanged(before)


def test_dockerfile_syntax_error_is_a_clear_error(marker, before):
    rc, out, _ = run_fault(fault_broken_dockerfile=True)
    assert rc != 0, out[-3000:]
    assert "RUNN" in out or "runn" in out, out[-3000:]
    assert_unchanged(before)


@pytest.mark.parametrize("role,expected", [
    ("image_server", "cannot read the base image"),
    ("dashboard", "Cannot reach the Docker daemon at tcp://127.0.0.1:9"),
])
def test_unreachable_daemon_is_a_clear_error(marker, before, role, expected):
    rc, out, _ = run_fault(env={"DOCKER_HOST": "tcp://127.0.0.1:9"}, fault_role=role)
    assert rc != 0, out[-3000:]
    assert expected in out, out[-3000:]
    assert "tcp://127.0.0.1:9" in out
    assert_unchanged(before)


def test_dashboard_serves_without_its_vllm_upstream():
    """The record's dashboard bootloop: a missing upstream must cost one route, not nginx."""
    if deployed("homelab-vllm-standin")["status"] != "running":
        pytest.skip("no stand-in: a real vLLM is the upstream")
    assert http(DASHBOARD + "/v1/models")[0] == 200
    sh("docker", "stop", "homelab-vllm-standin")
    try:
        # 502 when the name no longer resolves; 504 when nginx still holds the stopped container's
        # address (resolver valid=10s) and gives up connecting after proxy_connect_timeout (5 s).
        # Either way only this route fails, promptly: a hang would hit the 30 s client timeout.
        assert http(DASHBOARD + "/v1/models", timeout=30)[0] in (502, 504)
        assert http(DASHBOARD + "/")[0] == 200
        assert http(DASHBOARD + "/image/health")[0] == 200
        assert deployed("homelab-dashboard")["status"] == "running"
    finally:
        sh("docker", "start", "homelab-vllm-standin")
    for _ in range(60):  # per-request resolution (valid=10s): it comes back without touching nginx
        if http(DASHBOARD + "/v1/models", timeout=10)[0] == 200:
            break
        time.sleep(1)
    else:
        pytest.fail("/v1/ did not recover after the upstream came back")


def test_streamed_responses_pass_through_unbuffered():
    """SSE through /v1/ arrives chunk by chunk with X-Accel-Buffering: no. Known limit: this
    also passed with `proxy_buffering on` (nginx forwards what it has read for small chunked
    bodies), so the directives themselves are pinned by tests/dashboard/test_nginx_template.py."""
    if deployed("homelab-vllm-standin")["status"] != "running":
        pytest.skip("no stand-in: the smoke_test role measures streaming against the real vLLM")
    req = urllib.request.Request(DASHBOARD + "/v1/chat/completions", method="POST",
                                 data=b'{"stream": true}', headers={"Content-Type": "application/json"})
    start = time.monotonic()
    arrivals = []
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.headers.get("X-Accel-Buffering") == "no"
        for line in resp:
            if line.startswith(b"data: {"):
                arrivals.append(time.monotonic() - start)
    assert len(arrivals) == 5
    # the stand-in pauses 0.6 s between chunks: a buffering proxy delivers them all at the end
    assert arrivals[-1] - arrivals[0] > 1.5, arrivals


def test_status_page_and_status_files():
    status, _, body = http(DASHBOARD + "/")
    assert status == 200 and b"/status/plan.json" in body
    status, headers, body = http(DASHBOARD + "/status/plan.json")
    assert status == 200 and "model" in json.loads(body)
    assert headers.get("Cache-Control") == "no-store"
    status, _, body = http(DASHBOARD + "/status/smoke.json")
    assert status == 200 and "passed" in json.loads(body)
