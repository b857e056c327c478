"""The dashboard role on a fresh host: its base (debian:bookworm on the real host) is not there and
must be pulled once, through a real registry on loopback; a re-run pulls and builds nothing.

This is the first-run failure of `site.yml -l gaming` read as a real run: the dashboard built
`FROM debian:bookworm` with pull off and nothing pulled it. The gaming inventory's own
dashboard variables are used, only the base image name points at the loopback registry.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.docker_cli import BASE_IMAGE, docker, new_prefix, remove_prefixed
from tests.support.registry import LocalRegistry

ROOT = Path(__file__).resolve().parents[2]
GAMING_DASHBOARD_VARS = ROOT / "inventories/homelab/group_vars/gaming/dashboard.yml"

pytestmark = pytest.mark.docker


def play(tmp_path, extra, name):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "dashboard role with the gaming inventory's variables", "hosts": "localhost",
        "gather_facts": False, "vars_files": [str(GAMING_DASHBOARD_VARS)],
        "roles": [{"role": "dashboard"}]}]))
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                           "-e", "@%s" % (tmp_path / "extra.json"),
                           "-e", "ansible_python_interpreter=" + str(Path(os.sys.executable))],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    (tmp_path / ("%s.log" % name)).write_text(out)
    return proc.returncode, out


def test_gaming_dashboard_pulls_its_missing_base_once(tmp_path):
    assert yaml.safe_load(GAMING_DASHBOARD_VARS.read_text())["dashboard_pull_base"] is True
    tag = new_prefix()
    with LocalRegistry(tmp_path / "registry") as reg:
        base = reg.push(BASE_IMAGE, "%s/debian:bookworm" % tag)
        extra = {"homelab_base_image": base, "homelab_state_dir": str(tmp_path / "state"),
                 "dashboard_image": "%s-dashboard:latest" % tag, "dashboard_container_name": "%s-dashboard" % tag,
                 "dashboard_network": "%s-net" % tag, "dashboard_port": 18089, "dashboard_health_timeout": 90}
        try:
            rc, out = play(tmp_path, extra, "first")
            assert rc == 0, out[-4000:]
            assert docker("image", "inspect", "-f", "{{.Id}}", base), "the base was not pulled"
            rc, out = play(tmp_path, extra, "second")
            assert rc == 0, out[-4000:]
            recap = [line for line in out.splitlines() if line.startswith("localhost") and "changed=" in line]
            assert recap and " changed=0 " in recap[-1] + " ", out[-3000:]
        finally:
            remove_prefixed(tag)          # the dashboard, its network and images, the base pulled from the registry
