# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import gpu_catalog

# Names exactly as nvidia-smi prints them in posted outputs (see fixtures/nvidia_smi) or in
# --query-gpu=name; expected values from NVIDIA's data sheets.
CASES = [
    ("NVIDIA GeForce RTX 3090", "8.6", 24, 936),
    ("NVIDIA GeForce RTX 3090 Ti", "8.6", 24, 1008),
    ("NVIDIA GeForce RTX 4090", "8.9", 24, 1008),
    ("NVIDIA A100-SXM4-40GB", "8.0", 40, 1555),
    ("NVIDIA A100-PCIE-40GB", "8.0", 40, 1555),
    ("NVIDIA A100-SXM4-80GB", "8.0", 80, 2039),
    ("A100-SXM-80GB", "8.0", 80, 2039),
    ("NVIDIA A100 80GB PCIe", "8.0", 80, 1935),
    ("NVIDIA A800-SXM4-80GB", "8.0", 80, 2039),
    ("NVIDIA H100 80GB HBM3", "9.0", 80, 3350),
    ("NVIDIA H100 PCIe", "9.0", 80, 2000),
    ("NVIDIA H200", "9.0", 141, 4800),
    ("Tesla T4", "7.5", 16, 320),
    ("Tesla V100-SXM2-16GB", "7.0", 16, 900),
    ("Tesla P100-PCIE-16GB", "6.0", 16, 732),
    ("Tesla P40", "6.1", 24, 347),
    ("GeForce GTX 1080 Ti", "6.1", 11, 484),
    ("NVIDIA GeForce RTX 2080 Ti", "7.5", 11, 616),
    ("NVIDIA A10", "8.6", 24, 600),
    ("NVIDIA A10G", "8.6", 24, 600),
    ("NVIDIA L4", "8.9", 24, 300),
    ("NVIDIA L40S", "8.9", 48, 864),
    ("NVIDIA GeForce RTX 3060", "8.6", 12, 360),
    ("NVIDIA GeForce RTX 3060 Ti", "8.6", 8, 448),
    ("NVIDIA GeForce RTX 3080", "8.6", 10, 760),
    ("NVIDIA RTX A6000", "8.6", 48, 768),
    ("NVIDIA GeForce RTX 4060 Ti", "8.9", 8, 288),
    ("Quadro RTX 4000", "7.5", 8, 416),
]


@pytest.mark.parametrize("name,cc,mem,bw", CASES)
def test_lookup_known(name, cc, mem, bw):
    row = gpu_catalog.lookup(name)
    assert row is not None, name
    assert (row["compute_capability"], row["memory_gib"], row["memory_bandwidth_gbps"]) == (cc, mem, bw)


def test_specific_rows_win_over_general_ones():
    # The Ti must not be read as the plain card, nor the L40 as an L4, nor the A100 as an A10.
    assert gpu_catalog.lookup("NVIDIA GeForce RTX 3090 Ti")["name"] == "GeForce RTX 3090 Ti"
    assert gpu_catalog.lookup("NVIDIA L40")["name"] == "L40"
    assert gpu_catalog.lookup("NVIDIA A100-SXM4-40GB")["name"] == "A100 40GB"


@pytest.mark.parametrize("name", ["NVIDIA GeForce RTX 3060 ...", "NVIDIA A100-SXM...", "NVIDIA GeForce ...", "", None,
                                  "Matrox G200eR2", "AMD Instinct MI300X"])
def test_lookup_unknown_or_truncated(name):
    assert gpu_catalog.lookup(name) is None


def test_mobile_part_keeps_cc_but_not_desktop_bandwidth():
    # "NVIDIA GeForce GTX 1650 Ti with Max-Q Design" as posted in NVIDIA/nvidia-docker#1604
    row = gpu_catalog.lookup("NVIDIA GeForce GTX 1650 Ti with Max-Q Design")
    assert row["compute_capability"] == "7.5"
    assert row["memory_bandwidth_gbps"] is None and row["memory_gib"] is None
    # laptop rows that exist are used as such ("NVIDIA GeForce RTX 5090 Laptop GPU", club-3090#102)
    row = gpu_catalog.lookup("NVIDIA GeForce RTX 5090 Laptop GPU")
    assert (row["compute_capability"], row["memory_gib"]) == ("12.0", 24)


@pytest.mark.parametrize("have,need,ok", [("8.6", "8.0", True), ("8.0", "8.0", True), ("7.5", "8.0", False),
                                          ("10.0", "9.0", True), ("9.0", "10.0", False), (None, "8.0", False),
                                          ("8.6", None, True), ("8.6", "", True)])
def test_cc_at_least(have, need, ok):
    assert gpu_catalog.cc_at_least(have, need) is ok


def test_catalog_rows_are_well_formed():
    for row in gpu_catalog.CATALOG:
        assert gpu_catalog.compute_capability_tuple(row["compute_capability"]), row
        assert row["memory_gib"] > 0 and row["memory_bandwidth_gbps"] > 0, row
