"""`ansible-playbook site.yml -l gaming --check` on simulated fresh gaming hosts.

Runs from the controller against molecule's inventory (with inventories/homelab's group_vars
linked in), so the assertions see exactly what an operator sees.
"""
import os
import re
import subprocess

import pytest

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.dirname(os.path.dirname(SCENARIO))


def site_check(limit):
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    assert ephemeral, "run through `molecule verify -s gaming_check`"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, "collections"),
               ANSIBLE_ROLES_PATH=os.path.join(PROJECT, "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    cmd = ["ansible-playbook", "-i", os.path.join(ephemeral, "inventory"), "-l", limit,
           "--check", "--diff", os.path.join(PROJECT, "site.yml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wsl2_run():
    return site_check("wsl2-rtx3090")


@pytest.fixture(scope="module")
def nogpu_run():
    return site_check("linux-nogpu")


def recap(out, host):
    m = re.search(r"^%s\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % re.escape(host), out, re.M)
    assert m, out[-3000:]
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups())))


def test_wsl2_check_passes_and_reports_changes(wsl2_run):
    rc, out = wsl2_run
    assert rc == 0, out[-5000:]
    counts = recap(out, "wsl2-rtx3090")
    assert counts["failed"] == 0 and counts["changed"] > 0, counts


def test_wsl2_check_shows_the_plan(wsl2_run):
    _, out = wsl2_run
    # The decision record's outcome, derived from the simulated host's facts.
    assert "awq_marlin" in out
    assert "8192" in out
    assert "NVIDIA GeForce RTX 3090" in out
    assert re.search(r"WSL ?2", out)


def test_wsl2_check_shows_the_engine_it_would_install(wsl2_run):
    _, out = wsl2_run
    assert "Install Docker Engine from Docker's apt repository" in out
    assert "Check mode: the Docker engine is not installed on wsl2-rtx3090 yet" in out


def test_check_mode_changed_nothing(wsl2_run, host):
    if host.backend.get_hostname() != "wsl2-rtx3090":
        pytest.skip("inspects the WSL2 host only")
    assert not host.file("/var/lib/homelab").exists
    assert not host.file("/etc/ansible/facts.d/homelab.fact").exists
    assert not host.exists("dockerd")


def test_nogpu_host_refused_before_anything_is_installed(nogpu_run):
    rc, out = nogpu_run
    assert rc != 0
    assert "has no usable NVIDIA GPU (ansible_facts.gpu_summary.usable=false)" in out
    assert "Install Docker Engine" not in out
    assert recap(out, "linux-nogpu")["failed"] == 1
