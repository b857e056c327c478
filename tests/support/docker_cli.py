"""The docker CLI as the tests drive it: the locally built base image, one command, and a unique name prefix
whose containers, networks, volumes, images and rollout state files are removed after the test."""
import os
import subprocess
import uuid

from ansible_collections.homelab.ai.plugins.module_utils.host_lock import DEFAULT_STATE_DIR

BASE_IMAGE = os.environ.get("HOMELAB_BASE_IMAGE", "homelab/debian:bookworm")


class DockerCommandFailed(RuntimeError):
    """A docker command that exited non-zero; the message holds the command and what it printed."""


def run_docker(*args, timeout=120, check=True):
    """``docker args...``: the finished process (stdout and stderr as text). Raises DockerCommandFailed when it
    failed and ``check`` is set."""
    proc = subprocess.run(["docker"] + list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise DockerCommandFailed("docker %s failed (rc=%d):\n%s%s"
                                  % (" ".join(args), proc.returncode, proc.stdout, proc.stderr))
    return proc


def docker(*args, timeout=120, check=True):
    """``docker args...``: its stdout, stripped."""
    return run_docker(*args, timeout=timeout, check=check).stdout.strip()


def new_prefix():
    return "homelab-test-" + uuid.uuid4().hex[:8]


def remove_prefixed(prefix):
    """Every container, network, volume and image whose name starts with ``prefix`` (an image also when pushed to
    a registry, ``<registry>/<prefix>...``), and the modules' locks and records in the default state folder (where
    a test gave no state_dir) that name it."""
    for kind, list_args, remove_args in (("container", ("ls", "-a", "--format", "{{.Names}}"), ("rm", "-f")),
                                         ("network", ("ls", "--format", "{{.Name}}"), ("rm",)),
                                         ("volume", ("ls", "--format", "{{.Name}}"), ("rm",))):
        names = [n for n in docker(kind, *list_args, check=False).splitlines() if n.startswith(prefix)]
        if names:
            docker(kind, *remove_args, *names, check=False)
    images = [i for i in docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", check=False).splitlines()
              if i.startswith(prefix) or "/" + prefix in i]
    if images:
        docker("image", "rm", "-f", *images, check=False)
    if os.path.isdir(DEFAULT_STATE_DIR):
        for name in os.listdir(DEFAULT_STATE_DIR):
            if prefix in name:
                os.remove(os.path.join(DEFAULT_STATE_DIR, name))
