"""Helpers for running homelab.ai's Docker modules for real: `ansible localhost -m <module>` with the
repository's ansible.cfg and collections, the venv Python as interpreter, JSON results parsed."""
import json
import os
import subprocess
import sys

import pytest

from tests.support.docker_cli import BASE_IMAGE, docker, new_prefix, remove_prefixed

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


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
    p = new_prefix()
    yield p
    remove_prefixed(p)
