"""The gaming playbook's docker_engine and nvidia_container_toolkit roles against a Debian container."""
import json

from conftest import OTHER_REAL_KEY_FPR, REAL_KEY_FPR, STANDINS, recap


def key_vars(key_server, **extra):
    values = {
        "docker_engine_apt_key_url": key_server + "/docker.gpg",
        "nvidia_container_toolkit_apt_key_url": key_server + "/nvidia.gpg",
    }
    values.update(extra)
    return values


def test_fresh_host_check_mode_plans_repo_key_and_packages(host, key_server):
    """Check mode on a host without any engine lists the key, the deb822 files and the packages."""
    rc, out = host.play(key_vars(key_server), check=True, name="check")
    assert rc == 0, out[-4000:]
    assert "engine: none -> action install" in out
    assert "no engine found: installing Docker Engine from Docker's apt repository" in out
    # The key download and both deb822 repository files (diff shows their content).
    assert "changed: [%s]" % host.name in out
    assert "/etc/apt/keyrings/docker.asc" in out and "/etc/apt/keyrings/nvidia-container-toolkit.asc" in out
    assert "URIs: https://download.docker.com/linux/debian" in out
    assert "Suites: bookworm" in out and "Components: stable" in out and "Architectures: amd64" in out
    assert "Signed-By: /etc/apt/keyrings/docker.asc" in out
    assert "URIs: https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH)" in out and "Suites: /" in out
    # The packages check mode cannot resolve yet, named.
    assert ("docker-ce, docker-ce-cli, containerd.io, docker-buildx-plugin, docker-compose-plugin from "
            "https://download.docker.com/linux/debian") in out
    assert "nvidia-container-toolkit, nvidia-container-toolkit-base, libnvidia-container-tools, libnvidia-container1" in out
    # No systemd in a container: the service path, with the wsl.conf advice only on WSL (not here).
    assert "start method: service" in out
    assert "would run 'nvidia-ctk runtime configure --runtime=docker" in out
    # Check mode changed nothing on the host.
    assert host.sh("ls /etc/apt/keyrings/ /etc/apt/sources.list.d/ 2>&1; ls /etc/docker 2>&1", check=False).stdout.count(".asc") == 0
    assert host.sh("test -e /etc/apt/sources.list.d/docker.sources", check=False).returncode == 1


def test_pinned_versions_appear_in_the_plan(host, key_server):
    pins = {"docker_engine_package_versions": "{{ {'docker-ce': '5:27.3.1-1~debian.12~bookworm'} }}",
            "nvidia_container_toolkit_version": "1.17.8-1"}
    rc, out = host.play(key_vars(key_server, **pins), check=True, name="pins")
    assert rc == 0, out[-4000:]
    assert "docker-ce=5:27.3.1-1~debian.12~bookworm, docker-ce-cli," in out
    assert "nvidia-container-toolkit=1.17.8-1, nvidia-container-toolkit-base=1.17.8-1" in out


def test_docker_desktop_markers_skip_installation_and_say_why(host, key_server):
    """Docker Desktop's WSL integration paths: no apt work at all, the reason, and the fix for the dead engine."""
    host.sh("mkdir -p /mnt/wsl/docker-desktop/cli-tools /mnt/wsl/docker-desktop-bind-mounts")
    rc, out = host.play(key_vars(key_server), check=True, name="desktop")
    assert rc != 0
    assert "engine: docker-desktop -> action use-docker-desktop" in out
    assert "/mnt/wsl/docker-desktop exists (Docker Desktop's WSL integration)" in out
    assert "Docker Engine is not installed in the distro" in out and "brings its own GPU support" in out
    assert "enable Settings > Resources > WSL integration for this distro" in out
    assert "docker.asc" not in out and "docker.sources" not in out
    assert "Install the Docker Engine packages" not in out


def test_wrong_key_fingerprint_fails_naming_both(host, key_server):
    """A real key download and gpg fingerprint check (real run, stops before the unreachable repository)."""
    rc, out = host.play(key_vars(key_server, docker_engine_apt_key_fingerprint="9DC858229FC7DD38854AE2D88D81803C0EBFCD88"),
                        name="badkey")
    assert rc != 0
    assert "apt key check failed" in out
    assert "key fingerprint 9DC858229FC7DD38854AE2D88D81803C0EBFCD88 expected, the file holds %s" % REAL_KEY_FPR in out
    assert host.sh("test -s /etc/apt/keyrings/docker.asc && command -v gpg").returncode == 0


def test_key_file_with_the_expected_key_plus_another_is_refused(host, key_server):
    """The expected fingerprint is in the file, but so is a second key apt would trust as well."""
    extra = key_vars(key_server, docker_engine_apt_key_url=key_server + "/expected-plus-another.gpg",
                     docker_engine_apt_key_fingerprint=REAL_KEY_FPR)
    rc, out = host.play(extra, name="twokeys")
    assert rc != 0
    assert "apt key check failed" in out
    assert "holds 2 primary keys, exactly one (%s) expected: apt would trust the others too (%s)" % (
        REAL_KEY_FPR, OTHER_REAL_KEY_FPR) in out
    assert "Add Docker's apt repository" not in out.split("apt key check failed", 1)[1]


def restarts(host):
    """Calls of the init script stand-in, status queries left out."""
    return [c for c in host.sh("cat /var/log/docker-init-standin.log").stdout.split() if c != "status"]


def nvidia_host(host):
    host.put(STANDINS / "nvidia-ctk", "/usr/local/bin/nvidia-ctk")
    host.put(STANDINS / "docker-init", "/etc/init.d/docker")
    host.sh("mkdir -p /etc/docker && printf '%s' '{\"log-driver\": \"local\", \"runtimes\": "
            "{\"crun\": {\"path\": \"/usr/bin/crun\"}}, \"data-root\": \"/srv/docker\"}' > /etc/docker/daemon.json")


# The engine role is told to leave installation out (the repository is unreachable); the toolkit role runs
# for real with nvidia-ctk and the init script as stand-ins.
MERGE_VARS = {
    "docker_engine_mode": "docker-desktop",
    "nvidia_container_toolkit_install": False,
    "nvidia_container_toolkit_probe": False,
    "nvidia_container_toolkit_cdi_generate": True,
}


def test_nvidia_ctk_merge_backup_restart_and_idempotence(host):
    nvidia_host(host)
    before = json.loads(host.sh("cat /etc/docker/daemon.json").stdout)
    rc, out = host.play(dict(MERGE_VARS), name="merge", tags="nvidia_container_toolkit")
    assert rc == 0, out[-4000:]
    assert "nvidia runtime: configure" in out
    after = json.loads(host.sh("cat /etc/docker/daemon.json").stdout)
    # Merged, not overwritten: every earlier setting is still there, plus the nvidia runtime.
    assert after["log-driver"] == "local" and after["data-root"] == "/srv/docker"
    assert after["runtimes"]["crun"] == before["runtimes"]["crun"]
    assert after["runtimes"]["nvidia"] == {"args": [], "path": "nvidia-container-runtime"}
    backups = host.sh("ls /etc/docker/ | grep '^daemon.json\\..*\\.bak$'").stdout.split()
    assert len(backups) == 1
    assert json.loads(host.sh("cat /etc/docker/%s" % backups[0]).stdout) == before
    # The engine was restarted once, through `service docker restart` (no systemd in the container).
    assert restarts(host) in (["restart"], ["stop", "start"])
    assert host.sh("cat /etc/cdi/nvidia.yaml").stdout.startswith("cdiVersion")
    calls = host.sh("cat /var/log/nvidia-ctk-standin.log").stdout.splitlines()
    assert calls == ["runtime configure --runtime=docker --config=/etc/docker/daemon.json",
                     "cdi generate --output=/etc/cdi/nvidia.yaml"]

    # Second run: the runtime is registered, nothing changes, no new backup, no restart.
    rc, out = host.play(dict(MERGE_VARS), name="merge2", tags="nvidia_container_toolkit")
    assert rc == 0, out[-4000:]
    assert "nvidia runtime: registered" in out
    assert recap(out)["changed"] == 0
    assert len(host.sh("ls /etc/docker/ | grep '\\.bak$'").stdout.split()) == 1
    assert restarts(host) in (["restart"], ["stop", "start"])
    assert len(host.sh("cat /var/log/nvidia-ctk-standin.log").stdout.splitlines()) == 2


def test_a_merge_that_drops_settings_fails_and_names_the_backup(host):
    nvidia_host(host)
    host.sh("echo overwrite > /etc/nvidia-ctk-standin-mode")
    rc, out = host.play(dict(MERGE_VARS), name="badmerge", tags="nvidia_container_toolkit")
    assert rc != 0
    assert "nvidia-ctk runtime configure changed /etc/docker/daemon.json badly" in out
    assert "data-root was removed" in out and "log-driver was removed" in out
    assert "runtimes.crun was changed or removed" in out
    assert ".bak: restore it" in out
