# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find and run nvidia-smi, parse its outputs, and turn them into GPU facts.

Plain Python, no Ansible import: the module injects a runner with the signature of
``AnsibleModule.run_command`` reduced to ``runner(args) -> (rc, stdout, stderr)``; tests inject
a replay of real outputs. Two outputs are parsed:

* the plain ``nvidia-smi`` table (header: driver and CUDA version; one block per GPU with
  name, possibly truncated, and memory) - what people post, and the only source of the CUDA
  version;
* ``--query-gpu=...--format=csv,noheader,nounits`` - full names, UUIDs, free memory,
  compute capability where the driver knows the field.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import csv
import io
import os
import re

from ansible_collections.homelab.ai.plugins.module_utils import gpu_catalog

WSL_NVIDIA_SMI = "/usr/lib/wsl/lib/nvidia-smi"

QUERY_FIELDS = ("index", "name", "uuid", "memory.total", "memory.free", "compute_cap",
                "driver_version", "mig.mode.current", "pci.bus_id")

NA_VALUES = ("[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]",
             "[Insufficient Permissions]", "")

NO_DRIVER_MARKERS = ("couldn't communicate with the NVIDIA driver",
                     "couldn\u2018t communicate with the NVIDIA driver",
                     "Driver Not Loaded", "No devices were found")
INVALID_FIELD_RE = re.compile(r'Field "([^"]+)" is not a valid field to query')

_HEADER_RE = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>\S+)\s+Driver Version:\s+(?P<driver>\S+)\s+CUDA Version:\s+(?P<cuda>[^\s|]+)")
# first line of a GPU block: "|   0  NVIDIA GeForce RTX 3090        On  | 00000000:01:00.0 Off |   N/A |"
_GPU_LINE1_RE = re.compile(r"^\|\s+(?P<index>\d+)\s+(?P<rest>.*?)\|\s*(?P<bus>[0-9A-Fa-f]{4,8}:[^\s|]*)\s+(?P<disp>\S+)\s*\|(?P<ecc>[^|]*)\|\s*$")
# second line: "|  0%   25C    P8   11W / 420W |     53MiB / 24576MiB |      0%      Default |"
_GPU_LINE2_RE = re.compile(r"^\|(?P<misc>[^|]*)\|\s*(?:(?P<used>\d+)MiB\s*/\s*(?P<total>\d+)MiB|(?P<na>N/A))\s*\|(?P<util>[^|]*)\|\s*$")
_GPU_LINE3_RE = re.compile(r"^\|[^|]*\|[^|]*\|\s*(?P<mig>\S+)\s*\|\s*$")
_PERSISTENCE_RE = re.compile(r"\s+(On|Off|WDDM|TCC)\s*$")


def na_to_none(value):
    if value is None:
        return None
    value = value.strip()
    return None if value in NA_VALUES else value


def _to_int(value):
    value = na_to_none(value)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def find_nvidia_smi(override=None, path_env=None, exists=os.path.isfile, executable=None):
    """Return (path or None, where-it-was-looked-for list).

    ``override`` wins when given (even when missing: the caller reports it). Then PATH, then
    the WSL2 location, which is often not on PATH in non-interactive SSH sessions.
    """
    if executable is None:
        def executable(path):
            return exists(path) and os.access(path, os.X_OK)
    if override:
        return (override if executable(override) else None), [override]
    searched = []
    for directory in (path_env if path_env is not None else os.environ.get("PATH", "")).split(os.pathsep):
        if not directory:
            continue
        candidate = os.path.join(directory, "nvidia-smi")
        searched.append(candidate)
        if executable(candidate):
            return candidate, searched
    searched.append(WSL_NVIDIA_SMI)
    if executable(WSL_NVIDIA_SMI):
        return WSL_NVIDIA_SMI, searched
    return None, searched


def classify_failure(rc, stdout, stderr):
    """Name why an nvidia-smi run failed: no_driver, invalid_field, timeout, crashed, failed."""
    text = "%s\n%s" % (stdout or "", stderr or "")
    if any(marker in text for marker in NO_DRIVER_MARKERS):
        return "no_driver"
    if INVALID_FIELD_RE.search(text):
        return "invalid_field"
    if rc in (124, 137) or rc == -9:
        return "timeout"
    if rc in (139, -11, 134, -6):
        return "crashed"
    return "failed"


def parse_table(text):
    """Parse the plain ``nvidia-smi`` output.

    Returns ``{"smi_version", "driver_version", "cuda_version", "gpus": [...]}`` where each
    GPU has index, name, name_truncated, bus_id, memory_used_mib, memory_total_mib, mig_mode.
    Values that nvidia-smi shows as N/A or ERR! become None.
    """
    result = {"smi_version": None, "driver_version": None, "cuda_version": None, "gpus": []}
    lines = (text or "").splitlines()
    for line in lines:
        match = _HEADER_RE.search(line)
        if match:
            result["smi_version"] = match.group("smi")
            result["driver_version"] = match.group("driver")
            cuda = match.group("cuda")
            result["cuda_version"] = cuda if re.match(r"^\d+(\.\d+)*$", cuda) else None
            break
    in_gpu_section = False
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|===") and not in_gpu_section and result["gpus"] == [] and i > 0:
            in_gpu_section = True
        elif line.startswith("| Processes") or line.startswith("| MIG devices"):
            in_gpu_section = False
        if in_gpu_section:
            m1 = _GPU_LINE1_RE.match(line)
            if m1 and i + 1 < len(lines):
                m2 = _GPU_LINE2_RE.match(lines[i + 1].strip())
                if m2:
                    name = _PERSISTENCE_RE.sub("", m1.group("rest").rstrip()).strip()
                    gpu = {
                        "index": int(m1.group("index")),
                        "name": name,
                        "name_truncated": gpu_catalog.is_truncated(name),
                        "bus_id": m1.group("bus"),
                        "memory_used_mib": _to_int(m2.group("used")),
                        "memory_total_mib": _to_int(m2.group("total")),
                        "mig_mode": None,
                    }
                    if i + 2 < len(lines):
                        m3 = _GPU_LINE3_RE.match(lines[i + 2].strip())
                        if m3 and not lines[i + 2].strip().startswith("+"):
                            gpu["mig_mode"] = na_to_none(m3.group("mig"))
                    result["gpus"].append(gpu)
                    i += 2
        i += 1
    return result


def parse_csv(text, fields=QUERY_FIELDS):
    """Parse ``--format=csv,noheader,nounits`` output for ``fields`` into a list of dicts.

    A header line (``index, name, ...``, from ``--format=csv``) is skipped if present.
    """
    rows = []
    reader = csv.reader(io.StringIO(text or ""), skipinitialspace=True)
    for raw in reader:
        if not raw or not any(cell.strip() for cell in raw):
            continue
        if raw[0].strip() == fields[0] and len(raw) == len(fields):
            continue  # header
        if len(raw) != len(fields):
            raise ValueError("nvidia-smi CSV row has %d values, expected %d (%s): %r"
                             % (len(raw), len(fields), ",".join(fields), raw))
        rows.append(dict(zip(fields, [na_to_none(cell) for cell in raw])))
    return rows


def _gpu_from_row(row, table_header):
    entry = gpu_catalog.lookup(row.get("name"))
    cc = row.get("compute_cap")
    source = "nvidia-smi" if cc else None
    if not cc and entry:
        cc, source = entry["compute_capability"], "catalog"
    mig = row.get("mig.mode.current")
    return {
        "index": _to_int(row.get("index")),
        "name": row.get("name"),
        "uuid": row.get("uuid"),
        "pci_bus_id": row.get("pci.bus_id"),
        "memory_total_mib": _to_int(row.get("memory.total")),
        "memory_free_mib": _to_int(row.get("memory.free")),
        "compute_capability": cc,
        "compute_capability_source": source,
        "driver_version": row.get("driver_version") or table_header.get("driver_version"),
        "cuda_version": table_header.get("cuda_version"),
        "memory_bandwidth_gbps": entry["memory_bandwidth_gbps"] if entry else None,
        "architecture": entry["architecture"] if entry else None,
        "mig_mode": mig,
    }


def _gpu_from_table(gpu, table):
    entry = gpu_catalog.lookup(gpu["name"])
    used, total = gpu["memory_used_mib"], gpu["memory_total_mib"]
    return {
        "index": gpu["index"],
        "name": gpu["name"],
        "uuid": None,
        "pci_bus_id": gpu["bus_id"],
        "memory_total_mib": total,
        "memory_free_mib": (total - used) if (total is not None and used is not None) else None,
        "compute_capability": entry["compute_capability"] if entry else None,
        "compute_capability_source": "catalog" if entry else None,
        "driver_version": table["driver_version"],
        "cuda_version": table["cuda_version"],
        "memory_bandwidth_gbps": entry["memory_bandwidth_gbps"] if entry else None,
        "architecture": entry["architecture"] if entry else None,
        "mig_mode": gpu["mig_mode"],
    }


def summarise(gpus, path, warnings, reason=None):
    usable_gpus = [g for g in gpus if g.get("memory_total_mib")]
    if reason is None and not usable_gpus:
        reason = ("nvidia-smi at %s listed no GPU with known memory" % path) if path else "no GPU found"
    usable = reason is None
    ccs = [g["compute_capability"] for g in usable_gpus if g.get("compute_capability")]
    best_cc = None
    for cc in ccs:
        if best_cc is None or gpu_catalog.cc_at_least(cc, best_cc):
            best_cc = cc
    return {
        "count": len(usable_gpus) if usable else 0,
        "memory_total_mib": sum(g["memory_total_mib"] for g in usable_gpus) if usable else 0,
        "largest_memory_mib": max([g["memory_total_mib"] for g in usable_gpus] or [0]) if usable else 0,
        "max_compute_capability": best_cc if usable else None,
        "driver_version": (usable_gpus[0]["driver_version"] if usable else None),
        "cuda_version": (usable_gpus[0]["cuda_version"] if usable else None),
        "usable": usable,
        "reason": reason,
        "nvidia_smi": path,
        "warnings": list(warnings),
    }


def gather(runner, nvidia_smi_path=None, path_env=None, executable=None):
    """Run nvidia-smi through ``runner(args) -> (rc, out, err)`` and return (gpus, summary).

    Never raises for a missing or broken GPU stack: the summary's ``reason`` says why no GPU
    is usable and ``gpus`` is then empty.
    """
    warnings = []
    path, dummy = find_nvidia_smi(nvidia_smi_path, path_env=path_env, executable=executable)
    if path is None:
        if nvidia_smi_path:
            reason = ("nvidia_smi_path=%s is not an executable file; point it at nvidia-smi "
                      "(on WSL2: %s) or leave it empty to search PATH" % (nvidia_smi_path, WSL_NVIDIA_SMI))
        else:
            # No count of PATH's entries: gpu_host.fact keeps this reason, and a run through
            # scripts/deploy.sh (its venv first on PATH) must not rewrite what a direct run wrote.
            reason = ("nvidia-smi not found on PATH nor at %s; install the NVIDIA driver "
                      "(on WSL2: the Windows driver, which provides it there) or set nvidia_smi_path"
                      % (WSL_NVIDIA_SMI,))
        return [], summarise([], None, warnings, reason)

    rc, out, err = runner([path])
    table = parse_table(out) if rc == 0 else {"driver_version": None, "cuda_version": None, "gpus": []}
    if rc != 0:
        kind = classify_failure(rc, out, err)
        if kind == "no_driver":
            reason = ("%s cannot talk to the NVIDIA driver (%s); load the driver (bare metal) or "
                      "update the Windows NVIDIA driver and run `wsl --shutdown` (WSL2)"
                      % (path, first_line(out, err)))
        elif kind == "timeout":
            reason = ("%s did not answer in time (rc=%s); it hangs on some WSL2 builds: update the "
                      "Windows NVIDIA driver and WSL (`wsl --update`)" % (path, rc))
        elif kind == "crashed":
            reason = ("%s crashed (rc=%s, e.g. segmentation fault seen on some WSL2 driver builds); "
                      "update or roll back the Windows NVIDIA driver" % (path, rc))
        else:
            reason = "%s failed (rc=%s): %s" % (path, rc, first_line(out, err))
        return [], summarise([], path, warnings, reason)
    if table["driver_version"] and table["cuda_version"] is None:
        warnings.append("nvidia-smi reports no usable CUDA version (header shows e.g. 'ERR!'); "
                        "CUDA in containers may fail: update the NVIDIA driver")

    fields = list(QUERY_FIELDS)
    rows = None
    for _attempt in range(len(QUERY_FIELDS)):
        rc, out, err = runner([path, "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"])
        if rc == 0:
            try:
                rows = parse_csv(out, tuple(fields))
            except ValueError as exc:
                warnings.append("could not parse nvidia-smi --query-gpu output: %s" % exc)
            break
        match = INVALID_FIELD_RE.search("%s\n%s" % (out, err))
        if match and match.group(1) in fields and match.group(1) not in ("index", "name", "memory.total"):
            bad = match.group(1)
            fields.remove(bad)
            if bad == "compute_cap":
                warnings.append("this driver does not know the nvidia-smi field compute_cap (older than "
                                "about 510); compute capability comes from the GPU catalog by name")
            else:
                warnings.append("nvidia-smi does not know the field %s; queried without it" % bad)
            continue
        warnings.append("nvidia-smi --query-gpu failed (rc=%s): %s; using the table instead"
                        % (rc, first_line(out, err)))
        break

    if rows is not None:
        gpus = [_gpu_from_row(row, table) for row in rows]
    else:
        gpus = [_gpu_from_table(g, table) for g in table["gpus"]]
    for gpu in gpus:
        if gpu["compute_capability"] is None:
            warnings.append("GPU %s (%s): compute capability unknown (not reported by nvidia-smi and "
                            "not in the GPU catalog)" % (gpu["index"], gpu["name"]))
        elif gpu["compute_capability_source"] == "catalog" and "compute_cap" in fields:
            warnings.append("GPU %s (%s): nvidia-smi gave no compute capability; %s taken from the GPU "
                            "catalog" % (gpu["index"], gpu["name"], gpu["compute_capability"]))
        if gpu["mig_mode"] == "Enabled":
            warnings.append("GPU %s (%s) has MIG enabled: its memory is split into MIG instances and "
                            "memory_total_mib overstates what one process gets" % (gpu["index"], gpu["name"]))
        if gpu["memory_total_mib"] is None:
            warnings.append("GPU %s (%s): total memory not reported (N/A)" % (gpu["index"], gpu["name"]))
    return gpus, summarise(gpus, path, warnings)


def first_line(out, err):
    """The first non-blank line of stderr, else stdout: what a failed command said, in one line."""
    for text in (err, out):
        for line in (text or "").splitlines():
            if line.strip():
                return line.strip()
    return "no output"
