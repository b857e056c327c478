"""Helpers for running homelab.ai's Docker modules for real: `ansible localhost -m <module>` with the
repository's ansible.cfg and collections, the venv Python as interpreter, JSON results parsed."""
import json
import os
import subprocess
import sys
import uuid

import pytest

from ansible_collections.homelab.ai.plugins.module_utils.host_lock import DEFAULT_STATE_DIR

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BASE_IMAGE = os.environ.get("HOMELAB_BASE_IMAGE", "homelab/debian:bookworm")


def ansible_env():
    env = dict(os.environ)
    venv_bin = os.path.dirname(sys.executable)
    env.update({
        "PATH": venv_bin + os.pathsep + env.get("PATH", ""),
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "collections"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_NOCOLOR": "1",
    })
    env.pop("DOCKER_HOST", None)
    return env


def run_module(module, args, check=False, diff=False):
    """Run one module on localhost; return its result dict (with 'failed' set on failure)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-m", "homelab.ai." + module,
           "-a", json.dumps(args), "-e", "ansible_python_interpreter=" + sys.executable]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=300)
    try:
        doc = json.loads(proc.stdout)
        res = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("no JSON result from %s (rc=%s):\n%s\n%s" % (cmd, proc.returncode, proc.stdout, proc.stderr))
    res["_raw"] = proc.stdout
    return res


def docker(*args, check=True):
    proc = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError("docker %s failed: %s" % (" ".join(args), proc.stderr))
    return proc.stdout.strip()


def image_id(ref):
    return docker("image", "inspect", "-f", "{{.Id}}", ref, check=False) or None


@pytest.fixture(scope="session", autouse=True)
def docker_ready():
    proc = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail("Docker daemon or base image %s not available: run `bash scripts/setup.sh` first (%s)"
                    % (BASE_IMAGE, proc.stderr.strip()))


@pytest.fixture(scope="module")
def prefix():
    """A unique homelab-test-<hex> prefix; every container, image, volume and network with it is
    removed afterwards."""
    p = "homelab-test-" + uuid.uuid4().hex[:8]
    yield p
    for kind, fmt in (("container", "{{.Names}}"), ("network", "{{.Name}}"), ("volume", "{{.Name}}")):
        listing = docker(kind, "ls", "-a", "--format", fmt, check=False) if kind == "container" else \
            docker(kind, "ls", "--format", fmt, check=False)
        names = [n for n in listing.splitlines() if n.startswith(p)]
        if names:
            docker(kind, "rm", "-f", *names, check=False) if kind == "container" else docker(kind, "rm", *names, check=False)
    images = [i for i in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).splitlines()
              if i.startswith(p)]
    if images:
        docker("image", "rm", "-f", *images, check=False)
    # The modules' locks and records in the default state folder, where a test gave no state_dir.
    if os.path.isdir(DEFAULT_STATE_DIR):
        for name in os.listdir(DEFAULT_STATE_DIR):
            if p in name:
                os.remove(os.path.join(DEFAULT_STATE_DIR, name))
