"""The role must have laid out the state directory and recorded the local fact."""
import json


def test_state_dirs(host):
    for path, mode in (("/srv/homelab", 0o755), ("/srv/homelab/status", 0o755), ("/srv/homelab/secrets", 0o700)):
        d = host.file(path)
        assert d.is_directory, path
        assert d.mode == mode, f"{path} has mode {oct(d.mode)}"


def test_default_path_untouched(host):
    # The inventory moved the state dir; the default must not have been created as well.
    assert not host.file("/var/lib/homelab").exists


def test_local_fact(host):
    fact = host.file("/etc/ansible/facts.d/homelab.fact")
    assert fact.mode == 0o644
    data = json.loads(fact.content_string)
    assert data == {"profile": "gaming", "state_dir": "/srv/homelab", "managed_by": "homelab.ai"}


def test_fact_visible_to_ansible(host):
    local = host.ansible("setup", "filter=ansible_local")["ansible_facts"]["ansible_local"]
    assert local["homelab"]["profile"] == "gaming"
