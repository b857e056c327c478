"""The prometheus role refuses to publish Prometheus beyond loopback (it has no login) unless the inventory
says the network in front of it is trusted, before anything touches Docker."""
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_role(tmp_path, **role_vars):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "the prometheus role's bind check", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Run the role", "ansible.builtin.include_role": {"name": "prometheus"}, "vars": role_vars}]}]))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(ROOT / "collections"),
               DOCKER_HOST="unix:///nonexistent/docker.sock")  # a check that came too late fails otherwise
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                           "-e", "ansible_python_interpreter=%s" % sys.executable],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, " ".join((proc.stdout + proc.stderr).split())


def test_a_bind_beyond_loopback_is_refused_with_the_port_and_the_way_out(tmp_path):
    rc, out = run_role(tmp_path, prometheus_bind_address="0.0.0.0")
    assert rc != 0, out[-3000:]
    assert ("prometheus: prometheus_bind_address publishes 0.0.0.0:9090:9090 (0.0.0.0 is not loopback), and Prometheus "
            "has no login of its own") in out, out[-3000:]
    assert "set prometheus_allow_unauthenticated_bind: true" in out


def test_the_inventory_can_say_the_network_is_trusted(tmp_path):
    """Past the check, the build is what fails here (no daemon): the bind was accepted."""
    rc, out = run_role(tmp_path, prometheus_bind_address="0.0.0.0", prometheus_allow_unauthenticated_bind=True)
    assert rc != 0 and "has no login of its own" not in out
    assert "Cannot reach the Docker daemon at unix:///nonexistent/docker.sock" in out, out[-3000:]
