# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detect Windows Subsystem for Linux (1 or 2) from files, not from the uname syscall alone.

``detect(root="/", environ=None)`` reads, below ``root``:

* ``proc/sys/kernel/osrelease`` and ``proc/version``: WSL1 kernels look like
  ``4.4.0-19041-Microsoft`` (capital M, Windows build in the middle), WSL2 kernels like
  ``5.15.153.1-microsoft-standard-WSL2`` or the older ``4.19.67-microsoft-standard``;
* ``proc/sys/fs/binfmt_misc/WSLInterop`` and ``WSLInterop-late`` (Windows .exe interop; the
  ``-late`` entry appears when systemd runs as PID 1);
* ``run/WSL`` (interop sockets), ``dev/dxg`` (the GPU paravirtualisation device of WSL2),
  ``usr/lib/wsl/lib`` (the Windows driver's libcuda and nvidia-smi);
* ``proc/1/comm`` (is PID 1 systemd) and ``etc/os-release``;
* the ``WSL_DISTRO_NAME`` / ``WSL_INTEROP`` / ``WSLENV`` environment variables.

Why it matters here: vLLM turns pinned memory off on WSL (its ``in_wsl()`` looks for
"microsoft" in the kernel release), so CPU offload / UVA features crash there.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

_WSL1_RE = re.compile(r"^\d+\.\d+\.\d+-(?P<build>\d+)-Microsoft$")
_WSL2_RE = re.compile(r"microsoft-standard|-WSL2\b", re.IGNORECASE)
_VERSION_RE = re.compile(r"^Linux version (?P<release>\S+)")
ENV_KEYS = ("WSL_DISTRO_NAME", "WSL_INTEROP", "WSLENV")


def _path(root, rel):
    return os.path.join(root, rel.lstrip("/"))


def _read(root, rel, limit=4096):
    try:
        with open(_path(root, rel), "r", errors="replace") as handle:
            return handle.read(limit)
    except (IOError, OSError):
        return None


def _os_release(root):
    text = _read(root, "etc/os-release") or _read(root, "usr/lib/os-release") or ""
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _sep, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def classify_kernel(release, version_text=None):
    """Return (version 1/2/None, evidence list) from a kernel release and /proc/version text."""
    evidence = []
    release = (release or "").strip()
    if release and _WSL1_RE.match(release):
        evidence.append("kernel release %s has the WSL1 form <x.y.z>-<build>-Microsoft" % release)
        return 1, evidence
    if release and _WSL2_RE.search(release):
        evidence.append("kernel release %s is a Microsoft WSL2 kernel" % release)
        return 2, evidence
    text = version_text or ""
    if "Microsoft@Microsoft.com" in text:
        evidence.append("/proc/version names Microsoft@Microsoft.com (WSL1)")
        return 1, evidence
    if _WSL2_RE.search(text):
        evidence.append("/proc/version names a microsoft-standard kernel (WSL2)")
        return 2, evidence
    return None, evidence


def detect(root="/", environ=None):
    """Return the ``ansible_facts.wsl`` dict for the file tree at ``root``."""
    environ = os.environ if environ is None else environ
    evidence = []

    release = (_read(root, "proc/sys/kernel/osrelease") or "").strip() or None
    version_text = (_read(root, "proc/version") or "").strip() or None
    if release is None and version_text:
        match = _VERSION_RE.match(version_text)
        release = match.group("release") if match else None
    version, kernel_evidence = classify_kernel(release, version_text)
    evidence.extend(kernel_evidence)

    interop_entries = {}
    for name in ("WSLInterop", "WSLInterop-late"):
        text = _read(root, "proc/sys/fs/binfmt_misc/" + name)
        if text is not None:
            state = (text.splitlines() or ["unknown"])[0].strip()
            interop_entries[name] = state
            evidence.append("binfmt_misc/%s is registered (%s)" % (name, state))
    interop = any(state == "enabled" for state in interop_entries.values())

    run_wsl = os.path.isdir(_path(root, "run/WSL"))
    if run_wsl:
        evidence.append("/run/WSL exists")
    dxg = os.path.exists(_path(root, "dev/dxg"))
    if dxg:
        evidence.append("/dev/dxg exists (WSL2 GPU paravirtualisation)")
    wsl_lib = os.path.isdir(_path(root, "usr/lib/wsl/lib"))
    if wsl_lib:
        evidence.append("/usr/lib/wsl/lib exists (Windows driver libraries)")
    env_found = [key for key in ENV_KEYS if environ.get(key)]
    for key in env_found:
        evidence.append("environment variable %s is set" % key)

    other_signals = bool(interop_entries or run_wsl or dxg or wsl_lib or env_found)
    is_wsl = version is not None or other_signals
    if is_wsl and version is None:
        # A custom kernel without "microsoft" in its name: /dev/dxg and /usr/lib/wsl exist
        # only under WSL2; otherwise the version cannot be told.
        version = 2 if (dxg or wsl_lib) else None

    build = None
    if version == 1 and release:
        match = _WSL1_RE.match(release)
        build = int(match.group("build")) if match else None

    comm = (_read(root, "proc/1/comm") or "").strip() or None
    osrel = _os_release(root)
    distro = environ.get("WSL_DISTRO_NAME") or osrel.get("PRETTY_NAME") or osrel.get("NAME")

    return {
        "is_wsl": is_wsl,
        "version": version if is_wsl else None,
        "kernel_release": release,
        "kernel_version": version_text,
        "windows_build": build,
        "distro": distro,
        "distro_id": osrel.get("ID"),
        "distro_version_id": osrel.get("VERSION_ID"),
        "interop": interop,
        "interop_entries": interop_entries,
        "systemd": comm == "systemd",
        "pid1": comm,
        "gpu_paravirtualization": dxg,
        "wsl_lib_dir": _path("/", "usr/lib/wsl/lib") if wsl_lib else None,
        # vLLM's is_pin_memory_available() is False whenever in_wsl() is True.
        "pin_memory": not is_wsl,
        "evidence": evidence,
    }
