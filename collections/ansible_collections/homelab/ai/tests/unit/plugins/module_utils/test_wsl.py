# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import wsl
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.fixtures.loader import fixture_path


def detect(case, environ=None):
    return wsl.detect(root=fixture_path("wsl", case), environ=environ or {})


@pytest.mark.parametrize("case,version,release", [
    ("wsl1_18985", 1, "4.4.0-18985-Microsoft"),
    ("wsl2_4.19.67", 2, "4.19.67-microsoft-standard"),
    ("wsl2_5.4.72", 2, "5.4.72-microsoft-standard-WSL2"),
    ("wsl2_5.15.62.1_systemd", 2, "5.15.62.1-microsoft-standard-WSL2"),
    ("wsl2_6.6.87.2", 2, "6.6.87.2-microsoft-standard-WSL2"),
])
def test_wsl_kernels(case, version, release):
    facts = detect(case)
    assert facts["is_wsl"] is True
    assert facts["version"] == version
    assert facts["kernel_release"] == release
    assert facts["pin_memory"] is False
    assert facts["evidence"], "a positive detection must say which signal matched"


@pytest.mark.parametrize("case", ["baremetal_6.17.0", "this_machine"])
def test_not_wsl(case):
    facts = detect(case)
    assert facts["is_wsl"] is False
    assert facts["version"] is None
    assert facts["pin_memory"] is True
    assert facts["evidence"] == []


def test_wsl1_build_number():
    assert detect("wsl1_18985")["windows_build"] == 18985
    assert detect("wsl2_5.4.72")["windows_build"] is None


def test_systemd_interop_and_gpu_device():
    facts = detect("wsl2_5.15.62.1_systemd", {"WSL_DISTRO_NAME": "Ubuntu-22.04"})
    assert facts["systemd"] is True and facts["pid1"] == "systemd"
    assert facts["interop"] is True
    assert facts["interop_entries"] == {"WSLInterop": "enabled", "WSLInterop-late": "enabled"}
    assert facts["gpu_paravirtualization"] is True
    assert facts["wsl_lib_dir"] == "/usr/lib/wsl/lib"
    assert facts["distro"] == "Ubuntu-22.04"
    assert any("WSL_DISTRO_NAME" in e for e in facts["evidence"])
    assert any("/dev/dxg" in e for e in facts["evidence"])


def test_wsl1_has_no_systemd():
    facts = detect("wsl1_18985")
    assert facts["systemd"] is False and facts["pid1"] == "init"
    assert facts["interop"] is False


def test_this_machine_distro_from_os_release():
    facts = detect("this_machine")
    assert facts["distro_id"] == "debian"
    assert facts["distro"].startswith("Debian GNU/Linux")


def test_custom_kernel_with_wsl_signals_is_wsl2(tmp_path):
    # A user-built kernel without "microsoft" in its release, but /dev/dxg present.
    (tmp_path / "proc" / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "proc" / "sys" / "kernel" / "osrelease").write_text("6.6.36-custom\n")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "dxg").write_text("")
    facts = wsl.detect(root=str(tmp_path), environ={})
    assert facts["is_wsl"] is True and facts["version"] == 2


def test_env_alone_is_wsl_of_unknown_version(tmp_path):
    facts = wsl.detect(root=str(tmp_path), environ={"WSL_INTEROP": "/run/WSL/410_interop"})
    assert facts["is_wsl"] is True and facts["version"] is None
    assert facts["kernel_release"] is None


def test_release_from_proc_version_when_osrelease_missing(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "version").write_text(
        "Linux version 4.19.67-microsoft-standard (oe-user@oe-host) (gcc version 8.2.0 (GCC)) "
        "#1 SMP Sun Aug 18 13:37:54 UTC 2019\n")
    facts = wsl.detect(root=str(tmp_path), environ={})
    assert facts["kernel_release"] == "4.19.67-microsoft-standard" and facts["version"] == 2


def test_live_root_does_not_raise():
    facts = wsl.detect()
    assert isinstance(facts["is_wsl"], bool)
