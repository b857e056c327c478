# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one GPU table of homelab.ai: name patterns -> compute capability, memory, bandwidth.

Stable API (the planner imports it):

* ``lookup(name) -> dict | None``: ``{"name", "architecture", "compute_capability" (str "8.6"),
  "memory_gib", "memory_bandwidth_gbps"}`` for a name as nvidia-smi prints it
  (``NVIDIA GeForce RTX 3090``, ``Tesla V100-SXM2-16GB``, ``NVIDIA H100 80GB HBM3``...).
  ``None`` when unknown or when the name was truncated by the nvidia-smi table (``...``).
  Laptop / Max-Q parts keep the family's compute capability but report memory and bandwidth
  only where a laptop row exists (they differ from the desktop part).
* ``compute_capability_tuple("8.6") -> (8, 6)`` and ``cc_at_least(have, need) -> bool``.
* ``CATALOG``: the rows, for documentation and the planner's own checks.

Sources: NVIDIA product pages / data sheets and the CUDA GPUs compute capability list
(developer.nvidia.com/cuda-gpus). Bandwidth is the vendor's peak figure in GB/s.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

# (regex on the normalised name, display name, architecture, cc, memory GiB, bandwidth GB/s)
# Order matters: the first match wins, so specific rows come before general ones.
_ROWS = [
    # Blackwell
    (r"\bB200\b", "B200", "Blackwell", "10.0", 180, 8000),
    (r"\bRTX 5090 LAPTOP\b", "GeForce RTX 5090 Laptop GPU", "Blackwell", "12.0", 24, 896),
    (r"\bRTX 5090\b", "GeForce RTX 5090", "Blackwell", "12.0", 32, 1792),
    (r"\bRTX 5080\b", "GeForce RTX 5080", "Blackwell", "12.0", 16, 960),
    (r"\bRTX PRO 6000\b", "RTX PRO 6000 Blackwell", "Blackwell", "12.0", 96, 1792),
    # Hopper
    (r"\bGH200\b", "GH200", "Hopper", "9.0", 96, 4000),
    (r"\bH200\b", "H200", "Hopper", "9.0", 141, 4800),
    (r"\bH100 NVL\b", "H100 NVL", "Hopper", "9.0", 94, 3900),
    (r"\bH100\b.*\bPCIE\b", "H100 PCIe", "Hopper", "9.0", 80, 2000),
    (r"\bH100\b", "H100 SXM", "Hopper", "9.0", 80, 3350),
    (r"\bH800\b.*\bPCIE\b", "H800 PCIe", "Hopper", "9.0", 80, 2000),
    (r"\bH800\b", "H800 SXM", "Hopper", "9.0", 80, 3350),
    # Ada Lovelace
    (r"\bL40S\b", "L40S", "Ada Lovelace", "8.9", 48, 864),
    (r"\bL40\b", "L40", "Ada Lovelace", "8.9", 48, 864),
    (r"\bL4\b", "L4", "Ada Lovelace", "8.9", 24, 300),
    (r"\bRTX 6000 ADA\b", "RTX 6000 Ada Generation", "Ada Lovelace", "8.9", 48, 960),
    (r"\bRTX 4090 LAPTOP\b", "GeForce RTX 4090 Laptop GPU", "Ada Lovelace", "8.9", 16, 576),
    (r"\bRTX 4090\b", "GeForce RTX 4090", "Ada Lovelace", "8.9", 24, 1008),
    (r"\bRTX 4080 SUPER\b", "GeForce RTX 4080 SUPER", "Ada Lovelace", "8.9", 16, 736),
    (r"\bRTX 4080\b", "GeForce RTX 4080", "Ada Lovelace", "8.9", 16, 717),
    (r"\bRTX 4070 TI SUPER\b", "GeForce RTX 4070 Ti SUPER", "Ada Lovelace", "8.9", 16, 672),
    (r"\bRTX 4070 TI\b", "GeForce RTX 4070 Ti", "Ada Lovelace", "8.9", 12, 504),
    (r"\bRTX 4070 SUPER\b", "GeForce RTX 4070 SUPER", "Ada Lovelace", "8.9", 12, 504),
    (r"\bRTX 4070\b", "GeForce RTX 4070", "Ada Lovelace", "8.9", 12, 504),
    (r"\bRTX 4060 TI\b", "GeForce RTX 4060 Ti", "Ada Lovelace", "8.9", 8, 288),
    (r"\bRTX 4060\b", "GeForce RTX 4060", "Ada Lovelace", "8.9", 8, 272),
    # Ampere data centre
    (r"\bA100\b.*\b80\s?GB\b.*\bPCIE\b|\bA100\b.*\bPCIE\b.*\b80\s?GB\b", "A100 80GB PCIe", "Ampere", "8.0", 80, 1935),
    (r"\bA100\b.*\b80\s?GB\b", "A100 80GB SXM", "Ampere", "8.0", 80, 2039),
    (r"\bA100\b", "A100 40GB", "Ampere", "8.0", 40, 1555),
    (r"\bA800\b.*\b80\s?GB\b", "A800 80GB", "Ampere", "8.0", 80, 2039),
    (r"\bA30\b", "A30", "Ampere", "8.0", 24, 933),
    (r"\bA40\b", "A40", "Ampere", "8.6", 48, 696),
    (r"\bA10G\b", "A10G", "Ampere", "8.6", 24, 600),
    (r"\bA10\b", "A10", "Ampere", "8.6", 24, 600),
    (r"\bA16\b", "A16", "Ampere", "8.6", 16, 200),
    (r"\bA2\b", "A2", "Ampere", "8.6", 16, 200),
    # Ampere workstation
    (r"\bRTX A6000\b", "RTX A6000", "Ampere", "8.6", 48, 768),
    (r"\bRTX A5000\b", "RTX A5000", "Ampere", "8.6", 24, 768),
    (r"\bRTX A4000\b", "RTX A4000", "Ampere", "8.6", 16, 448),
    # Ampere consumer
    (r"\bRTX 3090 TI\b", "GeForce RTX 3090 Ti", "Ampere", "8.6", 24, 1008),
    (r"\bRTX 3090\b", "GeForce RTX 3090", "Ampere", "8.6", 24, 936),
    (r"\bRTX 3080 TI\b", "GeForce RTX 3080 Ti", "Ampere", "8.6", 12, 912),
    (r"\bRTX 3080\b.*\b12\s?GB\b", "GeForce RTX 3080 12GB", "Ampere", "8.6", 12, 912),
    (r"\bRTX 3080\b", "GeForce RTX 3080", "Ampere", "8.6", 10, 760),
    (r"\bRTX 3070 TI\b", "GeForce RTX 3070 Ti", "Ampere", "8.6", 8, 608),
    (r"\bRTX 3070\b", "GeForce RTX 3070", "Ampere", "8.6", 8, 448),
    (r"\bRTX 3060 TI\b", "GeForce RTX 3060 Ti", "Ampere", "8.6", 8, 448),
    (r"\bRTX 3060 LAPTOP\b", "GeForce RTX 3060 Laptop GPU", "Ampere", "8.6", 6, 336),
    (r"\bRTX 3060\b", "GeForce RTX 3060 12GB", "Ampere", "8.6", 12, 360),
    # Turing
    (r"\bTITAN RTX\b", "TITAN RTX", "Turing", "7.5", 24, 672),
    (r"\bQUADRO RTX 8000\b", "Quadro RTX 8000", "Turing", "7.5", 48, 672),
    (r"\bQUADRO RTX 6000\b", "Quadro RTX 6000", "Turing", "7.5", 24, 672),
    (r"\bQUADRO RTX 4000\b", "Quadro RTX 4000", "Turing", "7.5", 8, 416),
    (r"\bRTX 2080 TI\b", "GeForce RTX 2080 Ti", "Turing", "7.5", 11, 616),
    (r"\bRTX 2080 SUPER\b", "GeForce RTX 2080 SUPER", "Turing", "7.5", 8, 496),
    (r"\bRTX 2080\b", "GeForce RTX 2080", "Turing", "7.5", 8, 448),
    (r"\bRTX 2070\b", "GeForce RTX 2070", "Turing", "7.5", 8, 448),
    (r"\bRTX 2060\b", "GeForce RTX 2060", "Turing", "7.5", 6, 336),
    (r"\bGTX 1660 TI\b", "GeForce GTX 1660 Ti", "Turing", "7.5", 6, 288),
    (r"\bGTX 1650\b", "GeForce GTX 1650", "Turing", "7.5", 4, 128),
    (r"\bT4\b", "T4", "Turing", "7.5", 16, 320),
    # Volta
    (r"\bV100S\b", "V100S", "Volta", "7.0", 32, 1134),
    (r"\bV100\b.*\b32\s?GB\b", "V100 32GB", "Volta", "7.0", 32, 900),
    (r"\bV100\b", "V100 16GB", "Volta", "7.0", 16, 900),
    (r"\bTITAN V\b", "TITAN V", "Volta", "7.0", 12, 653),
    # Pascal
    (r"\bP100\b.*\b12\s?GB\b", "P100 12GB", "Pascal", "6.0", 12, 549),
    (r"\bP100\b", "P100 16GB", "Pascal", "6.0", 16, 732),
    (r"\bP40\b", "P40", "Pascal", "6.1", 24, 347),
    (r"\bP4\b", "P4", "Pascal", "6.1", 8, 192),
    (r"\bGTX 1080 TI\b", "GeForce GTX 1080 Ti", "Pascal", "6.1", 11, 484),
    (r"\bGTX 1080\b", "GeForce GTX 1080", "Pascal", "6.1", 8, 320),
    (r"\bGTX 1070\b", "GeForce GTX 1070", "Pascal", "6.1", 8, 256),
    # Maxwell / Kepler (too old for vLLM; listed so that the reason can say so)
    (r"\bM60\b", "M60", "Maxwell", "5.2", 8, 160),
    (r"\bK80\b", "K80", "Kepler", "3.7", 12, 240),
]

CATALOG = tuple(
    {"pattern": p, "name": n, "architecture": a, "compute_capability": cc,
     "memory_gib": mem, "memory_bandwidth_gbps": bw}
    for (p, n, a, cc, mem, bw) in _ROWS
)
_COMPILED = [(re.compile(row["pattern"]), row) for row in CATALOG]
_MOBILE = re.compile(r"\b(LAPTOP|MAX Q|MOBILE)\b")  # normalise() turned "-" into " "


def normalise(name):
    """Upper-case, ``NVIDIA``/``GeForce``/``Tesla`` prefixes dropped, '-' and '_' as spaces."""
    text = (name or "").upper().replace("_", " ")
    # keep the '-' inside words such as A100-SXM4-80GB searchable by \b on both parts
    text = text.replace("-", " ")
    text = re.sub(r"\b(NVIDIA|GEFORCE|TESLA)\b", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def is_truncated(name):
    """nvidia-smi's table cuts long names to ``NVIDIA GeForce RTX 3060 ...``."""
    return (name or "").rstrip().endswith("...")


def lookup(name):
    """Return the catalog row for a GPU name as nvidia-smi prints it, or None."""
    if not name or is_truncated(name):
        return None
    norm = normalise(name)
    mobile = bool(_MOBILE.search(norm))
    for regex, row in _COMPILED:
        if not regex.search(norm):
            continue
        result = dict((k, v) for k, v in row.items() if k != "pattern")
        if mobile and "LAPTOP" not in row["pattern"]:
            # A laptop / Max-Q part of a desktop family: same architecture, other memory
            # size and bandwidth. Keep what is true, leave the rest unknown.
            result["name"] = row["name"] + " (mobile)"
            result["memory_gib"] = None
            result["memory_bandwidth_gbps"] = None
        return result
    return None


def compute_capability_tuple(value):
    """'8.6' -> (8, 6); None or garbage -> None."""
    if value is None:
        return None
    match = re.match(r"^\s*(\d+)\.(\d+)\s*$", str(value))
    if not match:
        return None
    return (int(match.group(1)), int(match.group(2)))


def cc_at_least(have, need):
    """True when compute capability ``have`` >= ``need`` (both strings like '8.0')."""
    have_t = compute_capability_tuple(have)
    need_t = compute_capability_tuple(need)
    if need_t is None:
        return True
    if have_t is None:
        return False
    return have_t >= need_t
