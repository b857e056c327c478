# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import docker_engine as de
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.fixtures.loader import load

DOCKER_DESKTOP = load("docker_info", "docker_desktop_wsl2_20.10.21.txt")
DESKTOP_CLIENT = load("docker_info", "docker_desktop_wsl2_client_28.1.1_partial.txt")
CE_NVIDIA = load("docker_info", "docker_ce_ubuntu2204_24.0.7_nvidia.txt")
CE_WSL2 = load("docker_info", "docker_ce_wsl2_23.0.3_partial.txt")
ROOTLESS_WSL2 = load("docker_info", "docker_rootless_in_container_wsl2_20.10.8.txt")
FLAT = load("docker_info", "docker_ce_ubuntu1604_18.06_flat.txt")
THIS_MACHINE = load("docker_info", "debian_docker.io_20.10.24_this_machine.txt")
ENGINE_DOWN = load("docker_info", "engine_down_cli_28.2.2.txt")


# ---- parsing human docker info -------------------------------------------------------------

def test_docker_desktop_on_wsl2_is_recognised_from_its_server_part():
    facts = de.engine_from_info_text(DOCKER_DESKTOP)
    assert facts["engine_reachable"] is True
    assert facts["docker_desktop"] is True
    assert facts["operating_system"] == "Docker Desktop" and facts["engine_name"] == "docker-desktop"
    assert facts["engine_version"] == "20.10.21"
    assert facts["kernel_version"] == "5.15.153.1-microsoft-standard-WSL2"
    assert facts["runtimes"] == ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"]
    assert facts["nvidia_runtime"] is False and facts["default_runtime"] == "runc"
    assert facts["cgroup_version"] == "1" and facts["storage_driver"] == "overlay2"


def test_docker_ce_on_ubuntu_with_nvidia_runtime():
    facts = de.engine_from_info_text(CE_NVIDIA)
    assert facts["docker_desktop"] is False
    assert facts["operating_system"] == "Ubuntu 22.04.5 LTS"
    assert facts["engine_version"] == "24.0.7" and facts["client_version"] == "24.0.7"
    assert facts["nvidia_runtime"] is True
    assert facts["runtimes"] == ["io.containerd.runc.v2", "nvidia", "runc"]
    assert facts["client_desktop_evidence"] == []


def test_docker_ce_inside_wsl2_is_not_docker_desktop():
    facts = de.engine_from_info_text(CE_WSL2)
    assert facts["engine_version"] == "23.0.3"
    assert facts["docker_desktop"] is False
    assert facts["default_runtime"] == "sysbox-runc"
    assert facts["nvidia_runtime"] is False


def test_wsl2_kernel_alone_does_not_mean_docker_desktop():
    facts = de.engine_from_info_text(ROOTLESS_WSL2)
    assert "microsoft-standard-WSL2" in facts["kernel_version"]
    assert facts["operating_system"] == "Alpine Linux v3.13 (containerized)"
    assert facts["docker_desktop"] is False


def test_old_flat_layout_parses():
    facts = de.engine_from_info_text(FLAT)
    assert facts["engine_version"] == "18.06.1-ce"
    assert facts["operating_system"] == "Ubuntu 16.04.5 LTS"
    assert facts["runtimes"] == ["kata-runtime", "runc"] and facts["default_runtime"] == "kata-runtime"


def test_this_machine_and_engine_down():
    facts = de.engine_from_info_text(THIS_MACHINE)
    assert facts["engine_reachable"] is True and facts["engine_version"] == "20.10.24+dfsg1"
    assert facts["operating_system"] == "Debian GNU/Linux 12 (bookworm)"
    down = de.engine_from_info_text(ENGINE_DOWN)
    assert down["engine_reachable"] is False and down["engine_version"] is None
    assert down["client_version"] == "28.2.2"
    assert down["server_errors"] and "Cannot connect to the Docker daemon" in down["server_errors"][0]


def test_docker_desktop_cli_is_recognised_from_its_client_part():
    # Docker Desktop's plugin builds ("-desktop") and its "desktop" plugin show even with the engine down.
    parsed = de.parse_info_text(DESKTOP_CLIENT)
    assert parsed["server"] == {} and parsed["client"]["version"] == "28.1.1"
    buildx = [p for p in parsed["client"]["plugins"] if p["name"] == "buildx"][0]
    assert buildx["version"] == "v0.23.0-desktop.1"
    assert buildx["path"] == "/usr/local/lib/docker/cli-plugins/docker-buildx"
    evidence = de.client_desktop_evidence(parsed["client"])
    assert any("'desktop' plugin" in line for line in evidence)
    assert any("buildx" in line and "-desktop" in line for line in evidence)
    # The docker-ce CLI's plugins are not Desktop builds.
    assert de.client_desktop_evidence(de.parse_info_text(CE_NVIDIA)["client"]) == []


def test_old_plugin_layout_versions():
    plugins = de.parse_info_text(DOCKER_DESKTOP)["client"]["plugins"]
    assert [(p["name"], p["version"]) for p in plugins][:2] == [("buildx", "v0.9.1"), ("compose", "v2.13.0")]


# ---- wsl.conf ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("[boot]\nsystemd=true\n", True),
    ("[boot]\nsystemd = true # WSL 0.67.6+\n", True),
    ("[automount]\nenabled=true\n\n[boot]\nsystemd=false\n", False),
    ("[network]\nhostname=gaming\n", None),
    ("", None),
    (None, None),
    ("this is not an ini file", None),
])
def test_wsl_conf_systemd(text, expected):
    assert de.wsl_conf_systemd(text) is expected


# ---- engine classification and plan ---------------------------------------------------------

def cr_from(text, error=None):
    facts = de.engine_from_info_text(text)
    facts["error"] = error
    return facts


def test_reachable_docker_desktop_is_used_not_installed():
    plan = de.plan_engine({"container_runtime": cr_from(DOCKER_DESKTOP), "pid1": "init", "is_wsl": True})
    assert plan["engine"] == "docker-desktop" and plan["action"] == "use-docker-desktop"
    assert plan["install"] is False and plan["failure"] is None and plan["start_method"] == "none"
    assert "daemon.json is not used" in plan["reason"] and "GPU support" in plan["reason"]


def test_desktop_markers_alone_skip_installation_and_name_the_fix():
    observed = {"container_runtime": {"engine_reachable": False, "error": "neither the docker CLI nor the SDK"},
                "desktop_markers": ["/mnt/wsl/docker-desktop", "/mnt/wsl/docker-desktop-bind-mounts"],
                "pid1": "init", "is_wsl": True}
    plan = de.plan_engine(observed)
    assert plan["engine"] == "docker-desktop" and plan["install"] is False
    assert "/mnt/wsl/docker-desktop exists" in plan["reason"]
    assert "WSL integration for this distro" in plan["failure"]


def test_desktop_cli_symlink_counts_as_docker_desktop():
    observed = {"container_runtime": {"engine_reachable": False},
                "docker_cli": "/usr/bin/docker",
                "docker_cli_realpath": "/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker"}
    found = de.classify_engine(observed)
    assert found["engine"] == "docker-desktop"
    assert "resolves to /mnt/wsl/docker-desktop/cli-tools/usr/bin/docker" in found["evidence"][0]


def test_fresh_ubuntu_without_systemd_installs_and_starts_with_service():
    plan = de.plan_engine({"container_runtime": {"engine_reachable": False, "error": "no CLI"},
                           "pid1": "init", "is_wsl": True, "wsl_conf": "[network]\nhostname=x\n"})
    assert plan["engine"] == "none" and plan["action"] == "install" and plan["install"] is True
    assert plan["package_specs"] == list(de.ENGINE_PACKAGES)
    assert plan["start_method"] == "service" and plan["systemd"] is False
    assert plan["wsl_conf_systemd"] is None
    assert any("[boot] systemd=true" in w for w in plan["warnings"])


def test_wsl_conf_asks_for_systemd_but_distro_not_restarted():
    plan = de.plan_engine({"pid1": "init", "is_wsl": True, "wsl_conf": "[boot]\nsystemd=true\n"})
    assert plan["wsl_conf_systemd"] is True and plan["start_method"] == "service"
    assert any("wsl.exe --shutdown" in w for w in plan["warnings"])


def test_systemd_pid1_starts_with_systemd_and_no_warning():
    plan = de.plan_engine({"pid1": "systemd", "is_wsl": True, "wsl_conf": "[boot]\nsystemd=true\n"})
    assert plan["start_method"] == "systemd" and plan["warnings"] == []


def test_existing_distro_engine_is_managed():
    plan = de.plan_engine({"container_runtime": cr_from(CE_NVIDIA), "pid1": "systemd",
                           "installed_packages": {"docker-ce": "5:24.0.7-1~ubuntu.22.04~jammy"}})
    assert plan["engine"] == "distro" and plan["action"] == "install"
    assert "Ubuntu 22.04.5 LTS" in plan["reason"]


def test_distro_engine_wins_over_markers_with_a_warning():
    plan = de.plan_engine({"container_runtime": cr_from(CE_WSL2), "pid1": "systemd",
                           "desktop_markers": ["/mnt/wsl/docker-desktop"]})
    assert plan["engine"] == "distro"
    assert any("advises against" in w for w in plan["warnings"])


def test_installed_engine_down_is_distro():
    plan = de.plan_engine({"container_runtime": cr_from(ENGINE_DOWN), "pid1": "init",
                           "installed_packages": {"docker-ce": "5:27.3.1-1"}, "init_script": True})
    assert plan["engine"] == "distro" and plan["start_method"] == "service"


def test_conflicting_packages_fail_unless_removal_allowed():
    observed = {"pid1": "systemd", "installed_packages": {"docker.io": "24.0.7-0ubuntu2", "runc": "1.1"}}
    plan = de.plan_engine(observed)
    assert plan["action"] == "fail" and "docker.io, runc" in plan["failure"]
    assert "docker_engine_remove_conflicting_packages" in plan["failure"]
    plan = de.plan_engine(observed, remove_conflicting=True)
    assert plan["action"] == "install" and plan["conflicting_installed"] == ["docker.io", "runc"]


def test_mode_docker_desktop_without_desktop_fails():
    plan = de.plan_engine({"pid1": "systemd"}, mode="docker-desktop")
    assert plan["action"] == "fail" and "Settings > Resources > WSL integration" in plan["failure"]


def test_mode_distro_installs_despite_markers():
    plan = de.plan_engine({"desktop_markers": ["/mnt/wsl/docker-desktop"], "pid1": "systemd"}, mode="distro")
    assert plan["action"] == "install" and plan["engine"] == "docker-desktop"
    assert any("disable WSL integration" in w for w in plan["warnings"])


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        de.plan_engine({}, mode="podman")


def test_package_pins():
    assert de.package_specs(["docker-ce", "docker-ce-cli"], {"docker-ce": "5:27.3.1-1~ubuntu.24.04~noble"}) == [
        "docker-ce=5:27.3.1-1~ubuntu.24.04~noble", "docker-ce-cli"]
    plan = de.plan_engine({"pid1": "systemd"}, versions={"docker-engine": "1"})
    assert plan["action"] == "fail" and "docker-engine" in plan["failure"]


# ---- gpg -----------------------------------------------------------------------------------

def test_gpg_fingerprints_primary_keys_only():
    one = load("gpg", "debian_bookworm_stable.colons.txt")
    assert de.gpg_fingerprints(one) == ["4D64FEC119C2029067D6E791F8D2585B8783D481"]
    many = de.gpg_fingerprints(load("gpg", "debian_archive_keyring.colons.txt"))
    assert "1F89983E0081FDE018F3CC9673A4F27B8DD47936" in many
    assert "A7236886F3CCCAAD148A27F80E98404D386FA1D9" not in many  # a subkey
    assert de.check_fingerprint(one, "4D64 FEC1 19C2 0290 67D6  E791 F8D2 585B 8783 D481") is None
    error = de.check_fingerprint(one, "9DC858229FC7DD38854AE2D88D81803C0EBFCD88")
    assert "9DC858229FC7DD38854AE2D88D81803C0EBFCD88 expected" in error
    assert "no OpenPGP public key" in de.check_fingerprint("", "9DC8")


BOOKWORM_FPR = "4D64FEC119C2029067D6E791F8D2585B8783D481"
TRIXIE_FPR = "41587F7DB8C774BCCF131416762F67A0B2C39DE4"


def test_the_expected_key_plus_another_is_refused():
    """apt trusts every key of a signed-by file: the expected key among others is not enough."""
    two = load("gpg", "bookworm_stable_plus_trixie_stable.colons.txt")
    assert de.gpg_fingerprints(two) == [BOOKWORM_FPR, TRIXIE_FPR]
    error = de.check_fingerprint(two, BOOKWORM_FPR)
    assert error is not None
    assert "holds 2 primary keys, exactly one (%s) expected" % BOOKWORM_FPR in error
    assert "apt would trust the others too (%s)" % TRIXIE_FPR in error
    assert "Download the key again" in error
    # The keyring of nine primary keys holds the bookworm key too, and is refused for it.
    many = load("gpg", "debian_archive_keyring.colons.txt")
    assert BOOKWORM_FPR in de.gpg_fingerprints(many)
    assert "holds 9 primary keys" in de.check_fingerprint(many, BOOKWORM_FPR)
    # Neither key of the two is the expected one: the plain mismatch message, naming both.
    other = de.check_fingerprint(two, "9DC858229FC7DD38854AE2D88D81803C0EBFCD88")
    assert "9DC858229FC7DD38854AE2D88D81803C0EBFCD88 expected, the file holds %s, %s" % (BOOKWORM_FPR, TRIXIE_FPR) in other


def test_subkeys_do_not_count_and_a_secret_primary_key_does():
    one = load("gpg", "debian_bookworm_stable.colons.txt")
    with_subkey = one + "sub:-:255:18:0123456789ABCDEF:1674492243::::::e::::::cv25519::\n" \
                        "fpr:::::::::AAAABBBBCCCCDDDDEEEEFFFF0000111122223333:\n"
    assert de.check_fingerprint(with_subkey, BOOKWORM_FPR) is None
    with_secret = one + "sec:u:255:22:0123456789ABCDEF:1674492243:::u:::scSC:::+:::ed25519:::0:\n" \
                        "fpr:::::::::AAAABBBBCCCCDDDDEEEEFFFF0000111122223333:\n"
    assert "holds 2 primary keys" in de.check_fingerprint(with_secret, BOOKWORM_FPR)


def test_verify_key_file_names_the_file_when_it_holds_two_keys():
    two = load("gpg", "bookworm_stable_plus_trixie_stable.colons.txt")
    calls = []

    def runner(cmd):
        calls.append(cmd)
        return 0, two, ""

    result = de.verify_key_file(runner, "/usr/bin/gpg", "/etc/apt/keyrings/docker.asc", BOOKWORM_FPR)
    assert calls == [["/usr/bin/gpg", "--batch", "--show-keys", "--with-colons", "/etc/apt/keyrings/docker.asc"]]
    assert result["ok"] is False and result["fingerprints"] == [BOOKWORM_FPR, TRIXIE_FPR]
    assert result["error"].startswith("/etc/apt/keyrings/docker.asc: the key file holds 2 primary keys")
    single = de.verify_key_file(lambda cmd: (0, load("gpg", "debian_bookworm_stable.colons.txt"), ""),
                                "/usr/bin/gpg", "/k.asc", BOOKWORM_FPR)
    assert single == {"ok": True, "fingerprints": [BOOKWORM_FPR], "error": None}


# ---- daemon.json and the nvidia runtime ----------------------------------------------------

# What `nvidia-ctk runtime configure --runtime=docker` adds (NVIDIA container toolkit install guide).
NVIDIA_ENTRY = {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}


def test_daemon_json_states():
    assert de.daemon_json_state(None, exists=False)["nvidia_registered"] is False
    state = de.daemon_json_state(json.dumps({"log-driver": "local", "runtimes": NVIDIA_ENTRY}))
    assert state["nvidia_registered"] is True and state["keys"] == ["log-driver", "runtimes"]
    bad = de.daemon_json_state('{"log-driver": "local",}')
    assert bad["valid"] is False and "not valid JSON" in bad["error"]
    assert de.daemon_json_state("[]")["valid"] is False


def test_nvidia_plan():
    empty = de.daemon_json_state(None, exists=False)
    assert de.plan_nvidia_runtime(empty, {"engine_reachable": False})["action"] == "configure"
    registered = de.daemon_json_state(json.dumps({"runtimes": NVIDIA_ENTRY}))
    assert de.plan_nvidia_runtime(registered, {})["action"] == "registered"
    assert de.plan_nvidia_runtime(empty, cr_from(CE_NVIDIA))["action"] == "registered"
    desktop = de.plan_nvidia_runtime(empty, cr_from(DOCKER_DESKTOP))
    assert desktop["action"] == "skip-docker-desktop" and "own GPU support" in desktop["reason"]
    # Docker Desktop 4.34+ lists an nvidia runtime itself (docker/for-win#14331:
    # "Runtimes: io.containerd.runc.v2 nvidia runc"); still nothing to configure in the distro.
    assert de.plan_nvidia_runtime(empty, {"docker_desktop": True, "nvidia_runtime": True})["action"] == \
        "skip-docker-desktop"
    assert de.plan_nvidia_runtime(empty, {}, engine="docker-desktop")["action"] == "skip-docker-desktop"
    broken = de.plan_nvidia_runtime(de.daemon_json_state("{"), {})
    assert broken["action"] == "fail" and "not valid JSON" in broken["reason"]


def test_daemon_json_lost():
    before = json.dumps({"log-driver": "local", "runtimes": {"crun": {"path": "/usr/bin/crun"}}})
    merged = json.dumps({"log-driver": "local", "runtimes": dict(NVIDIA_ENTRY, crun={"path": "/usr/bin/crun"})})
    assert de.daemon_json_lost(before, merged) == []
    assert de.daemon_json_lost("", merged) == []
    overwritten = json.dumps({"runtimes": NVIDIA_ENTRY})
    assert de.daemon_json_lost(before, overwritten) == ["log-driver was removed", "runtimes.crun was changed or removed"]


# ---- GPU probe advice ----------------------------------------------------------------------

@pytest.mark.parametrize("error,fix", [
    # NVIDIA/nvidia-docker#1410
    ('docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]].',
     "Container Toolkit is not installed"),
    # docker/for-win#13907
    ("Error response from daemon: unknown or invalid runtime name: nvidia", "not registered"),
    # microsoft/WSL#7627
    ("Failed to initialize NVML: GPU access blocked by the operating system", "wsl.exe --update"),
    # docker/for-win#10218
    ("docker: Error response from daemon: OCI runtime create failed: container_linux.go:370: starting container "
     "process caused: process_linux.go:459: container init caused: Running hook #0:: error running hook: exit "
     "status 1, stdout: , stderr: nvidia-container-cli: initialization error: driver error: failed to process "
     "request: unknown.", "/usr/lib/wsl/lib"),
    ("Unable to find image 'nvidia/cuda:12.4.1-base-ubuntu22.04' locally", "pull it"),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
     "engine is not running"),
])
def test_probe_advice(error, fix):
    assert fix in de.gpu_probe_advice({"ok": False, "rc": 125, "error": error, "output": ""})


def test_probe_advice_ok_and_no_gpu():
    assert de.gpu_probe_advice({"ok": True}) is None
    assert "listed no GPU" in de.gpu_probe_advice({"ok": False, "rc": 0, "error": "", "output": ""})


# ---- docker_engine_mode: existing ------------------------------------------------------------

def test_existing_engine_is_used_as_it_is_even_with_a_distro_engine():
    """A reachable engine that is not Docker Desktop would be 'distro' and managed from Docker's repository
    under auto; existing uses it as it is: nothing installed, nothing started, daemon.json untouched."""
    observed = {"container_runtime": cr_from(CE_NVIDIA), "pid1": "init", "is_wsl": True,
                "installed_packages": {"docker-ce": "5:27.3.1-1"}}
    assert de.plan_engine(observed)["action"] == "install"
    plan = de.plan_engine(observed, mode="existing")
    assert plan["action"] == "use-existing" and plan["install"] is False and plan["failure"] is None
    assert plan["start_method"] == "none" and plan["package_specs"] == []
    assert "used as it is" in plan["reason"] and "GPU probe" in plan["reason"]


def test_existing_without_an_answering_engine_fails_naming_the_error_and_the_fixes():
    observed = {"container_runtime": {"engine_reachable": False, "error": "connect: no such file or directory"}}
    plan = de.plan_engine(observed, mode="existing")
    assert plan["action"] == "fail" and plan["install"] is False
    assert "no such file or directory" in plan["failure"]
    assert "DOCKER_HOST" in plan["failure"] and "docker_engine_mode: auto" in plan["failure"]


def test_existing_engine_gets_no_toolkit_and_no_daemon_json_change():
    decision = de.plan_nvidia_runtime({"valid": True, "runtimes": []}, {"engine_reachable": True}, engine="existing")
    assert decision["action"] == "skip-existing" and "probe" in decision["reason"]
