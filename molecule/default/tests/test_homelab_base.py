"""The role must have laid out the state directory, recorded the local fact and read it back."""
import json
import os
import subprocess

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.dirname(os.path.dirname(SCENARIO))
FACT = "/etc/ansible/facts.d/homelab.fact"


def test_state_dirs(host):
    for path, mode in (("/srv/homelab", 0o755), ("/srv/homelab/status", 0o755), ("/srv/homelab/secrets", 0o700)):
        d = host.file(path)
        assert d.is_directory, path
        assert d.mode == mode, f"{path} has mode {oct(d.mode)}"


def test_default_path_untouched(host):
    # The inventory moved the state dir; the default must not have been created as well.
    assert not host.file("/var/lib/homelab").exists


def test_local_fact(host):
    fact = host.file(FACT)
    assert fact.mode == 0o644
    data = json.loads(fact.content_string)
    assert data == {"profile": "gaming", "state_dir": "/srv/homelab", "managed_by": "homelab.ai"}


def test_fact_visible_to_ansible(host):
    local = host.ansible("setup", "filter=ansible_local")["ansible_facts"]["ansible_local"]
    assert local["homelab"]["profile"] == "gaming"


def switch_profile(*extra):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "MOLECULE_INVENTORY_FILE not set: run through `molecule verify`"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, "collections"),
               ANSIBLE_ROLES_PATH=os.path.join(PROJECT, "roles"), ANSIBLE_NOCOLOR="1")
    args = ["ansible-playbook", "-i", inventory, os.path.join(SCENARIO, "switch_profile.yml"),
            "-e", "homelab_base_profile=local"]
    for item in extra:
        args += ["-e", item]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_another_profile_is_refused_unless_asked_for(host):
    """converge recorded 'gaming': a run with the local profile (the wrong -i, say) must not replace the stack."""
    rc, out = switch_profile()
    assert rc != 0, out
    assert "was deployed with the 'gaming' profile" in out and "asks for 'local'" in out
    assert "homelab_base_allow_profile_change=true" in out
    assert json.loads(host.file(FACT).content_string)["profile"] == "gaming"  # nothing rewritten
    try:
        rc, out = switch_profile("homelab_base_allow_profile_change=true")
        assert rc == 0, out
        assert json.loads(host.file(FACT).content_string)["profile"] == "local"
    finally:  # back to what converge recorded, for the other tests
        rc, out = switch_profile("homelab_base_profile=gaming", "homelab_base_allow_profile_change=true")
        assert rc == 0, out
