"""`ansible-playbook site.yml -l gaming --check` on simulated fresh gaming hosts.

Runs from the controller against molecule's inventory (with inventories/homelab's group_vars
linked in), so the assertions see exactly what an operator sees.
"""
import functools
import http.server
import os
import re
import shutil
import subprocess
import threading

import pytest

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.dirname(os.path.dirname(SCENARIO))


# Docker's and NVIDIA's key servers cannot be reached from here: a real key with a known
# fingerprint (Debian's archive key on this machine) stands in, served on loopback.
REAL_KEY = "/usr/share/keyrings/debian-archive-bookworm-stable.gpg"
REAL_KEY_FPR = "4D64FEC119C2029067D6E791F8D2585B8783D481"


@pytest.fixture(scope="module")
def key_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    shutil.copy(REAL_KEY, root / "repo.gpg")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/repo.gpg" % httpd.server_address[1]
    httpd.shutdown()


def site_check(limit, key_url):
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    assert ephemeral, "run through `molecule verify -s gaming_check`"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, "collections"),
               ANSIBLE_ROLES_PATH=os.path.join(PROJECT, "roles"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    cmd = ["ansible-playbook", "-i", os.path.join(ephemeral, "inventory"), "-l", limit,
           "--check", "--diff", os.path.join(PROJECT, "site.yml")]
    for role in ("docker_engine", "nvidia_container_toolkit"):
        cmd += ["-e", "%s_apt_key_url=%s" % (role, key_url), "-e", "%s_apt_key_fingerprint=%s" % (role, REAL_KEY_FPR)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wsl2_run(key_server):
    return site_check("wsl2-rtx3090", key_server)


@pytest.fixture(scope="module")
def nogpu_run(key_server):
    return site_check("linux-nogpu", key_server)


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


def test_check_mode_changed_nothing(wsl2_run):
    # Asked of the container directly: what a check run must not have created.
    for path in ("/var/lib/homelab", "/etc/ansible/facts.d/homelab.fact",
                 "/etc/apt/sources.list.d/docker.sources", "/etc/apt/keyrings/docker.asc"):
        proc = subprocess.run(["docker", "exec", "wsl2-rtx3090", "test", "-e", path], check=False)
        assert proc.returncode == 1, "check mode created %s" % path


def test_nogpu_host_refused_before_anything_is_installed(nogpu_run):
    rc, out = nogpu_run
    assert rc != 0
    assert "has no usable NVIDIA GPU (ansible_facts.gpu_summary.usable=false)" in out
    assert "Install Docker Engine" not in out
    assert recap(out, "linux-nogpu")["failed"] == 1
