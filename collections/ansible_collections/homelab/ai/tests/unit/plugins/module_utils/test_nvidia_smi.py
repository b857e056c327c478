# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import subprocess

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import nvidia_smi
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.fixtures.loader import load

SMI = "/usr/lib/wsl/lib/nvidia-smi"


def table(name):
    return load("nvidia_smi", name)


class Replay(object):
    """Runner that answers nvidia-smi invocations with recorded outputs (the GPU boundary)."""

    def __init__(self, plain, query=None, query_without_cc=None, invalid_field=None):
        self.plain, self.query, self.query_without_cc = plain, query, query_without_cc
        self.invalid_field = invalid_field
        self.calls = []

    def __call__(self, args):
        self.calls.append(list(args))
        if len(args) == 1:
            return self.plain
        fields = [a for a in args if a.startswith("--query-gpu=")][0]
        if self.invalid_field and self.invalid_field in fields:
            return 2, load("nvidia_smi", "compute_cap_invalid_470.182.03.txt"), ""
        if "compute_cap" not in fields and self.query_without_cc is not None:
            return self.query_without_cc
        return self.query if self.query is not None else (2, "", "query not recorded")


def every_path_exists(path):
    return True


# ---- parse_table: posted tables -------------------------------------------------------------

def test_table_wsl2_rtx3090():
    parsed = nvidia_smi.parse_table(table("wsl2_rtx3090_537.13.table.txt"))
    assert (parsed["smi_version"], parsed["driver_version"], parsed["cuda_version"]) == ("535.103", "537.13", "12.2")
    assert [(g["index"], g["name"], g["memory_used_mib"], g["memory_total_mib"], g["bus_id"]) for g in parsed["gpus"]] == [
        (0, "NVIDIA GeForce RTX 3090", 53, 24576, "00000000:01:00.0"),
        (1, "NVIDIA GeForce RTX 3090", 0, 24576, "00000000:2E:00.0"),
    ]
    assert all(g["mig_mode"] is None and g["name_truncated"] is False for g in parsed["gpus"])


def test_table_truncated_name_and_wsl_driver():
    parsed = nvidia_smi.parse_table(table("wsl2_rtx4070_555.99.table.txt"))
    assert parsed["driver_version"] == "555.99" and parsed["cuda_version"] == "12.5"
    gpu, = parsed["gpus"]
    assert gpu["name"] == "NVIDIA GeForce RTX 4070 ..." and gpu["name_truncated"] is True
    assert gpu["memory_total_mib"] == 12282


def test_table_cuda_err():
    parsed = nvidia_smi.parse_table(table("wsl2_rtx3060_cuda_err_546.80.table.txt"))
    assert parsed["driver_version"] == "546.80" and parsed["cuda_version"] is None
    assert parsed["gpus"][0]["memory_total_mib"] == 6144


def test_table_old_layout_in_container():
    parsed = nvidia_smi.parse_table(table("wsl2_docker_quadro_rtx4000_527.27.table.txt"))
    assert (parsed["smi_version"], parsed["driver_version"], parsed["cuda_version"]) == ("525.60.07", "527.27", "12.0")
    gpu, = parsed["gpus"]
    assert (gpu["name"], gpu["memory_total_mib"], gpu["mig_mode"]) == ("Quadro RTX 4000", 8192, None)


def test_table_bare_metal_multi_gpu():
    parsed = nvidia_smi.parse_table(table("baremetal_a100_sxm_x3_515.48.07.table.txt"))
    assert [g["index"] for g in parsed["gpus"]] == [0, 1, 2]
    assert all(g["memory_total_mib"] == 81920 and g["name_truncated"] for g in parsed["gpus"])
    assert [g["mig_mode"] for g in parsed["gpus"]] == ["Disabled", "Disabled", None]


def test_table_cut_block_is_ignored():
    parsed = nvidia_smi.parse_table(table("baremetal_a100_sxm_80gb_450.191.01.table.txt"))
    assert [(g["index"], g["name"], g["memory_total_mib"]) for g in parsed["gpus"]] == [
        (0, "A100-SXM-80GB", 81252), (1, "A100-SXM-80GB", 81252)]


def test_table_mig_enabled():
    parsed = nvidia_smi.parse_table(table("mig_a100_535.104.05.table.txt"))
    gpu, = parsed["gpus"]
    assert (gpu["index"], gpu["name"], gpu["mig_mode"], gpu["memory_total_mib"]) == (3, "NVIDIA A100-SXM4-80GB", "Enabled", None)


def test_table_of_error_output_is_empty():
    parsed = nvidia_smi.parse_table(table("no_driver_wsl2.txt"))
    assert parsed == {"smi_version": None, "driver_version": None, "cuda_version": None, "gpus": []}


# ---- parse_csv ------------------------------------------------------------------------------

def test_csv_real_with_header():
    assert nvidia_smi.parse_csv(load("nvidia_smi", "compute_cap_570.133.07.csv"), ("compute_cap",)) == [{"compute_cap": "8.9"}]


def test_csv_na_values_become_none():
    rows = nvidia_smi.parse_csv(load("nvidia_smi", "wsl2_rtx3090_537.13.query.csv"))
    assert rows[0]["uuid"] is None and rows[0]["compute_cap"] is None and rows[0]["mig.mode.current"] is None
    assert rows[0]["memory.total"] == "24576" and rows[1]["pci.bus_id"] == "00000000:2E:00.0"


def test_csv_wrong_width_raises():
    with pytest.raises(ValueError):
        nvidia_smi.parse_csv("0, NVIDIA GeForce RTX 3090\n")


# ---- classify ------------------------------------------------------------------------------

@pytest.mark.parametrize("rc,out,kind", [
    (9, "NO_DRIVER", "no_driver"),
    (2, "INVALID", "invalid_field"),
    (124, "", "timeout"),
    (139, "", "crashed"),
    (-11, "", "crashed"),
    (6, "Unable to determine the device handle for GPU0000:01:00.0: Unknown Error", "failed"),
])
def test_classify(rc, out, kind):
    out = {"NO_DRIVER": load("nvidia_smi", "no_driver_wsl2.txt"),
           "INVALID": load("nvidia_smi", "compute_cap_invalid_470.182.03.txt")}.get(out, out)
    assert nvidia_smi.classify_failure(rc, out, "") == kind


# ---- find ----------------------------------------------------------------------------------

def test_find_falls_back_to_wsl_location():
    seen = []

    def executable(path):
        seen.append(path)
        return path == SMI
    path, searched = nvidia_smi.find_nvidia_smi(path_env="/usr/local/bin:/usr/bin", executable=executable)
    assert path == SMI and searched[-1] == SMI and "/usr/bin/nvidia-smi" in searched


def test_find_prefers_path_and_honours_override(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert nvidia_smi.find_nvidia_smi(path_env=str(tmp_path))[0] == str(fake)
    assert nvidia_smi.find_nvidia_smi(override=str(fake), path_env="")[0] == str(fake)
    assert nvidia_smi.find_nvidia_smi(override=str(tmp_path / "missing"), path_env=str(tmp_path))[0] is None


# ---- gather --------------------------------------------------------------------------------

def test_gather_wsl2_rtx3090():
    runner = Replay((0, table("wsl2_rtx3090_537.13.table.txt"), ""),
                    (0, load("nvidia_smi", "wsl2_rtx3090_537.13.query.csv"), ""))
    gpus, summary = nvidia_smi.gather(runner, path_env="", executable=lambda p: p == SMI)
    assert runner.calls[0] == [SMI]
    assert runner.calls[1][1].startswith("--query-gpu=index,name,uuid,memory.total,memory.free,compute_cap,")
    assert runner.calls[1][2] == "--format=csv,noheader,nounits"
    gpu = gpus[0]
    assert gpu["name"] == "NVIDIA GeForce RTX 3090"
    assert (gpu["compute_capability"], gpu["compute_capability_source"]) == ("8.6", "catalog")
    assert (gpu["driver_version"], gpu["cuda_version"]) == ("537.13", "12.2")
    assert gpu["memory_bandwidth_gbps"] == 936 and gpu["memory_free_mib"] == 24523
    assert summary["usable"] is True and summary["reason"] is None
    assert (summary["count"], summary["memory_total_mib"], summary["largest_memory_mib"]) == (2, 49152, 24576)
    assert summary["nvidia_smi"] == SMI and summary["max_compute_capability"] == "8.6"
    assert any("taken from the GPU catalog" in w for w in summary["warnings"])


def test_gather_old_driver_retries_without_compute_cap():
    csv_text = load("nvidia_smi", "baremetal_a800_x2_535.86.10.query.csv")
    without_cc = "\n".join(", ".join(c for i, c in enumerate(line.split(", ")) if i != 5)
                           for line in csv_text.strip().splitlines())
    runner = Replay((0, table("baremetal_a800_x2_535.86.10.table.txt"), ""), None, (0, without_cc, ""),
                    invalid_field="compute_cap")
    gpus, summary = nvidia_smi.gather(runner, path_env="", executable=lambda p: p == SMI)
    assert len(runner.calls) == 3 and "compute_cap" not in runner.calls[2][1]
    assert [g["compute_capability"] for g in gpus] == ["8.0", "8.0"]
    assert all(g["compute_capability_source"] == "catalog" for g in gpus)
    assert any("does not know the nvidia-smi field compute_cap" in w for w in summary["warnings"])
    assert summary["usable"] and summary["count"] == 2 and gpus[0]["mig_mode"] == "Disabled"


def test_gather_compute_cap_from_nvidia_smi_wins():
    line = "0, NVIDIA GeForce RTX 3090, [N/A], 24576, 24523, 8.6, 537.13, [N/A], 00000000:01:00.0\n"
    runner = Replay((0, table("wsl2_rtx3090_537.13.table.txt"), ""), (0, line, ""))
    gpus, summary = nvidia_smi.gather(runner, path_env="", executable=lambda p: p == SMI)
    assert gpus[0]["compute_capability_source"] == "nvidia-smi"
    assert not any("catalog" in w for w in summary["warnings"])


def test_gather_no_driver():
    runner = Replay((9, load("nvidia_smi", "no_driver_wsl2.txt"), ""))
    gpus, summary = nvidia_smi.gather(runner, path_env="", executable=lambda p: p == SMI)
    assert gpus == [] and summary["usable"] is False and summary["count"] == 0
    assert "cannot talk to the NVIDIA driver" in summary["reason"] and "wsl --shutdown" in summary["reason"]
    assert len(runner.calls) == 1


def test_gather_missing_binary():
    gpus, summary = nvidia_smi.gather(Replay(None), path_env="/nonexistent", executable=lambda p: False)
    assert gpus == [] and summary["usable"] is False and summary["nvidia_smi"] is None
    assert "nvidia-smi not found" in summary["reason"] and SMI in summary["reason"]


def test_gather_bad_override():
    gpus, summary = nvidia_smi.gather(Replay(None), nvidia_smi_path="/opt/nv/nvidia-smi", executable=lambda p: False)
    assert "nvidia_smi_path=/opt/nv/nvidia-smi" in summary["reason"]


@pytest.mark.parametrize("rc,word", [(124, "did not answer in time"), (139, "crashed")])
def test_gather_hang_or_segfault(rc, word):
    gpus, summary = nvidia_smi.gather(Replay((rc, "", "")), path_env="", executable=lambda p: p == SMI)
    assert gpus == [] and word in summary["reason"]


def test_gather_query_fails_falls_back_to_table():
    runner = Replay((0, table("wsl2_rtx4070_555.99.table.txt"), ""), (6, "", "Unknown Error"))
    gpus, summary = nvidia_smi.gather(runner, path_env="", executable=lambda p: p == SMI)
    gpu, = gpus
    assert gpu["name"] == "NVIDIA GeForce RTX 4070 ..." and gpu["compute_capability"] is None
    assert gpu["memory_free_mib"] == 12282 - 576
    assert summary["usable"] is True and summary["max_compute_capability"] is None
    assert any("using the table instead" in w for w in summary["warnings"])
    assert any("compute capability unknown" in w for w in summary["warnings"])


def test_gather_cuda_err_warns():
    runner = Replay((0, table("wsl2_rtx3060_cuda_err_546.80.table.txt"), ""), (6, "", "Unknown Error"))
    gpus, summary = nvidia_smi.gather(runner, path_env="", executable=lambda p: p == SMI)
    assert summary["cuda_version"] is None
    assert any("no usable CUDA version" in w for w in summary["warnings"])


def test_gather_mig_gpu_without_memory_is_not_usable():
    runner = Replay((0, table("mig_a100_535.104.05.table.txt"), ""), (6, "", "Unknown Error"))
    gpus, summary = nvidia_smi.gather(runner, path_env="", executable=lambda p: p == SMI)
    assert gpus[0]["mig_mode"] == "Enabled"
    assert summary["usable"] is False and "no GPU with known memory" in summary["reason"]
    assert any("MIG enabled" in w for w in summary["warnings"])


def test_gather_with_a_real_process(tmp_path):
    """Same code path with a real subprocess: a script replaying the posted table."""
    script = tmp_path / "nvidia-smi"
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "nvidia_smi",
                           "wsl2_rtx3090_537.13.table.txt")
    script.write_text("#!/bin/sh\nif [ $# -eq 0 ]; then sed '1,/^# ---$/d' '%s'; exit 0; fi\n"
                      "echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2\n" % fixture)
    script.chmod(0o755)

    def runner(args):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
        return proc.returncode, proc.stdout, proc.stderr
    gpus, summary = nvidia_smi.gather(runner, path_env=str(tmp_path))
    assert summary["nvidia_smi"] == str(script)
    # every query variant is rejected, so the table is what remains
    assert [g["name"] for g in gpus] == ["NVIDIA GeForce RTX 3090"] * 2
    assert summary["usable"] and summary["driver_version"] == "537.13"
