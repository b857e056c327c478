# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions for the gaming host's Docker engine and NVIDIA runtime (pure logic, stdlib only).

What is observed on the host is passed in; nothing here runs commands or reads files, so unit
tests feed real outputs straight in:

* ``parse_info_text``: the human ``docker info`` text as people paste it (Client/Server layout
  of CLI 20.10+, and the older flat layout) reduced to the JSON keys of ``docker info --format
  '{{json .}}'``, so ``container_runtime.parse_info`` (the one interpretation of docker info)
  reads both forms;
* ``classify_engine`` / ``plan_engine``: Docker Desktop's engine (WSL integration) versus an
  engine inside the distro versus none, and what the role does about it (use it, install
  docker-ce from Docker's apt repository, start it with systemd or with ``service``);
* ``wsl_conf_systemd``: ``/etc/wsl.conf`` ``[boot] systemd=true``;
* ``gpg_fingerprints`` / ``check_fingerprint``: primary key fingerprints from ``gpg --show-keys
  --with-colons``; a key file must hold exactly the expected key, not one among several;
* ``daemon_json_state`` / ``plan_nvidia_runtime`` / ``daemon_json_lost``: whether the nvidia
  runtime is registered, whether ``nvidia-ctk runtime configure`` must run, and whether its
  merge kept every setting that was there before;
* ``gpu_probe_advice``: a fix named for each known failure of ``docker run --gpus all``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import re

try:
    import configparser
except ImportError:  # pragma: no cover - Python 2 is not supported by this collection
    configparser = None

from ansible_collections.homelab.ai.plugins.module_utils.container_runtime import parse_info

# Docker Desktop's WSL integration mounts these into every WSL2 distro (/mnt/wsl is shared by
# all distros of the VM); the integrated CLI is a symlink into the first one.
DOCKER_DESKTOP_MARKERS = (
    "/mnt/wsl/docker-desktop",
    "/mnt/wsl/docker-desktop-bind-mounts",
    "/mnt/wsl/docker-desktop-data",
)
DOCKER_DESKTOP_CLI_PREFIX = "/mnt/wsl/docker-desktop/"

# Docker's install guide: packages that conflict with docker-ce and must be removed first.
CONFLICTING_PACKAGES = ("docker.io", "docker-doc", "docker-compose", "docker-compose-v2",
                        "podman-docker", "containerd", "runc")
ENGINE_PACKAGES = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin",
                   "docker-compose-plugin")
MODES = ("auto", "docker-desktop", "distro", "existing")

# Human docker info labels -> keys of `docker info --format '{{json .}}'`.
_SERVER_KEYS = {
    "Server Version": "ServerVersion",
    "Operating System": "OperatingSystem",
    "Name": "Name",
    "Kernel Version": "KernelVersion",
    "Default Runtime": "DefaultRuntime",
    "Storage Driver": "Driver",
    "Cgroup Driver": "CgroupDriver",
    "Cgroup Version": "CgroupVersion",
    "Docker Root Dir": "DockerRootDir",
    "OSType": "OSType",
    "Architecture": "Architecture",
    "Init Binary": "InitBinary",
}
_LINE_RE = re.compile(r"^(?P<indent> *)(?P<key>[^:]+?):(?: (?P<value>.*))?$")
_PLUGIN_OLD_RE = re.compile(r"^(?P<desc>.*)\((?P<vendor>[^,()]+), (?P<version>[^()]+)\)$")


def parse_info_text(text):
    """Parse human ``docker info`` output.

    Returns ``{"client": {...}, "server": {JSON keys}, "server_errors": [...]}``. ``server`` is
    empty when the daemon did not answer; ``server_errors`` then holds the error lines
    (``ERROR: ...`` or ``Cannot connect to the Docker daemon ...``).
    """
    client = {"version": None, "context": None, "plugins": []}
    server = {}
    errors = []
    lines = (text or "").splitlines()
    has_sections = any(line.rstrip() in ("Client:", "Server:") or line.startswith("Client: ")
                       for line in lines)
    section = "client" if has_sections else "server"
    base = 1 if has_sections else 0
    parent = None
    plugin = None
    for raw in lines:
        line = raw.rstrip()
        if not line.strip():
            continue
        stripped = line.strip()
        if stripped.startswith("ERROR:") or stripped.startswith("Cannot connect to the Docker daemon") \
                or stripped.startswith("error during connect"):
            errors.append(stripped[len("ERROR:"):].strip() if stripped.startswith("ERROR:") else stripped)
            continue
        if stripped.startswith("WARNING:"):
            continue
        if line == "Client:" or line.startswith("Client: "):
            section, parent = "client", None
            continue
        if line == "Server:":
            section, parent = "server", None
            continue
        match = _LINE_RE.match(line)
        if not match:
            # list items without a colon (Insecure Registries, CDI spec directories entries)
            if parent == "CDI spec directories" and section == "server":
                server.setdefault("CDISpecDirs", []).append(stripped)
            continue
        indent = len(match.group("indent"))
        key = match.group("key").strip()
        value = (match.group("value") or "").strip()
        if indent <= base:
            parent = key
            plugin = None
        if section == "client":
            if indent == base and key == "Version":
                client["version"] = value or None
            elif indent == base and key == "Context":
                client["context"] = value or None
            elif parent == "Plugins" and indent == base + 1:
                old = _PLUGIN_OLD_RE.match(value)
                plugin = {"name": key, "description": (old.group("desc").strip() if old else value),
                          "version": old.group("version").strip() if old else None, "path": None}
                client["plugins"].append(plugin)
            elif parent == "Plugins" and plugin is not None and indent >= base + 2:
                if key == "Version":
                    plugin["version"] = value
                elif key == "Path":
                    plugin["path"] = value
            continue
        if indent != base:
            continue
        if key in _SERVER_KEYS:
            server[_SERVER_KEYS[key]] = value or None
        elif key == "Runtimes":
            server["Runtimes"] = dict((name, {}) for name in value.split())
        elif key == "CDI spec directories" and value:
            server["CDISpecDirs"] = [value]
    return {"client": client, "server": server, "server_errors": errors}


def client_desktop_evidence(client):
    """Signs in the client part of docker info that the CLI is Docker Desktop's.

    Docker Desktop ships its own plugin builds (``v0.23.0-desktop.1``) and a ``desktop`` plugin;
    both show even when the engine is down (Docker Desktop stopped on Windows).
    """
    evidence = []
    for plugin in (client or {}).get("plugins") or []:
        version = plugin.get("version") or ""
        if plugin.get("name") == "desktop" or "Docker Desktop" in (plugin.get("description") or ""):
            evidence.append("docker CLI has Docker Desktop's '%s' plugin" % plugin.get("name"))
        elif "-desktop" in version:
            evidence.append("docker CLI plugin %s is a Docker Desktop build (%s)" % (plugin.get("name"), version))
    return evidence


def engine_from_info_text(text):
    """``container_runtime.parse_info`` facts for human docker info text, plus client evidence."""
    parsed = parse_info_text(text)
    facts = parse_info(parsed["server"]) if parsed["server"].get("ServerVersion") else parse_info({})
    facts["engine_reachable"] = bool(parsed["server"].get("ServerVersion")) and not parsed["server_errors"]
    facts["server_errors"] = parsed["server_errors"]
    facts["client_version"] = parsed["client"]["version"]
    facts["client_desktop_evidence"] = client_desktop_evidence(parsed["client"])
    return facts


def wsl_conf_systemd(text):
    """``True``/``False`` for ``[boot] systemd=`` in /etc/wsl.conf, ``None`` when unset or unreadable."""
    if not text or configparser is None:
        return None
    parser = configparser.ConfigParser(strict=False, interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    for section in parser.sections():
        if section.strip().lower() != "boot":
            continue
        for key, value in parser.items(section):
            if key.strip().lower() == "systemd":
                value = value.strip().strip('"').strip("'").lower()
                if value in ("true", "1", "yes", "on"):
                    return True
                if value in ("false", "0", "no", "off"):
                    return False
    return None


def classify_engine(observed):
    """Which engine the host has: ``docker-desktop``, ``distro`` or ``none``.

    ``observed`` keys (all optional): ``container_runtime`` (the ``container_runtime`` facts of
    homelab.ai.container_runtime_facts), ``desktop_markers`` (existing marker paths),
    ``docker_cli`` / ``docker_cli_realpath``, ``installed_packages`` ({name: version}),
    ``client_desktop_evidence`` (from ``engine_from_info_text``).
    Returns ``{"engine", "evidence", "reachable", "warnings"}``.
    """
    cr = observed.get("container_runtime") or {}
    markers = list(observed.get("desktop_markers") or [])
    realpath = observed.get("docker_cli_realpath") or ""
    installed = observed.get("installed_packages") or {}
    reachable = bool(cr.get("engine_reachable"))
    evidence, warnings = [], []
    desktop_cli = realpath.startswith(DOCKER_DESKTOP_CLI_PREFIX)

    if reachable and cr.get("docker_desktop"):
        evidence.append("docker info reports Operating System '%s' (Docker Desktop's engine)"
                        % (cr.get("operating_system") or "Docker Desktop"))
        return {"engine": "docker-desktop", "evidence": evidence, "reachable": True, "warnings": warnings}
    if reachable:
        evidence.append("docker info reports an engine in the distro (Operating System '%s', version %s)"
                        % (cr.get("operating_system"), cr.get("engine_version")))
        if markers or desktop_cli:
            warnings.append("Docker Desktop's WSL integration is present too (%s); Docker advises against "
                            "running both engines in one distro" % ", ".join(markers or [realpath]))
        return {"engine": "distro", "evidence": evidence, "reachable": True, "warnings": warnings}
    if desktop_cli:
        evidence.append("the docker CLI %s resolves to %s (Docker Desktop's WSL integration)"
                        % (observed.get("docker_cli"), realpath))
    for path in markers:
        evidence.append("%s exists (Docker Desktop's WSL integration)" % path)
    for line in observed.get("client_desktop_evidence") or []:
        evidence.append(line)
    engine_packages = sorted(name for name in installed if name in ("docker-ce", "docker.io", "moby-engine"))
    if evidence and not engine_packages:
        return {"engine": "docker-desktop", "evidence": evidence, "reachable": False, "warnings": warnings}
    if engine_packages:
        if evidence:
            warnings.append("Docker Desktop's WSL integration is present too; the distro's engine (%s) is used"
                            % ", ".join(engine_packages))
        evidence = ["package %s %s is installed in the distro" % (name, installed[name]) for name in engine_packages]
        return {"engine": "distro", "evidence": evidence, "reachable": False, "warnings": warnings}
    evidence.append("no Docker Desktop integration, no docker engine package, no reachable engine%s"
                    % (" (%s)" % cr["error"] if cr.get("error") else ""))
    return {"engine": "none", "evidence": evidence, "reachable": False, "warnings": warnings}


def package_specs(packages, versions):
    """apt ``name=version`` specs; ``versions`` maps a package to an apt version or glob."""
    versions = versions or {}
    unknown = sorted(set(versions) - set(packages))
    if unknown:
        raise ValueError("versions are pinned for %s, which %s not in the package list %s"
                         % (", ".join(unknown), "is" if len(unknown) == 1 else "are", ", ".join(packages)))
    specs = []
    for name in packages:
        version = versions.get(name)
        specs.append("%s=%s" % (name, version) if version not in (None, "") else name)
    return specs


def _use_existing_engine(result, found, observed):
    """``docker_engine_mode: existing``: the engine that answers is used as it is, nothing installed.

    For a host whose engine someone else manages (a remote daemon reached over DOCKER_HOST, Docker
    Desktop variants whose ``docker info`` does not say so, a test twin). No engine answering is a
    failure naming the error and the two ways out."""
    if not found["reachable"]:
        result.update(action="fail", failure=(
            "docker_engine_mode is existing but no Docker engine answers (%s). Start the engine this host "
            "is meant to use (or point DOCKER_HOST at it), or set docker_engine_mode: auto to let the role "
            "install Docker Engine." % ((observed.get("container_runtime") or {}).get("error") or "no engine")))
        return result
    result.update(action="use-existing", reason=(
        "docker_engine_mode is existing: the engine that answers is used as it is (%s); nothing is installed "
        "and its daemon.json is not changed. Its GPU support must already work: the GPU probe shows it."
        % "; ".join(found["evidence"])))
    return result


def plan_engine(observed, mode="auto", packages=ENGINE_PACKAGES, versions=None,
                conflicting=CONFLICTING_PACKAGES, remove_conflicting=False):
    """What the docker_engine role does. Returns the ``docker_engine`` facts dict.

    ``observed`` is ``classify_engine``'s input plus ``pid1`` (/proc/1/comm), ``is_wsl``,
    ``wsl_conf`` (text of /etc/wsl.conf) and ``init_script`` (/etc/init.d/docker exists).
    ``action`` is ``use-docker-desktop``, ``install`` or ``fail`` (``failure`` says why and how
    to fix it).
    """
    if mode not in MODES:
        raise ValueError("mode must be one of %s, got %r" % (", ".join(MODES), mode))
    found = classify_engine(observed)
    installed = observed.get("installed_packages") or {}
    pid1 = observed.get("pid1")
    systemd = pid1 == "systemd"
    is_wsl = bool(observed.get("is_wsl"))
    conf_systemd = wsl_conf_systemd(observed.get("wsl_conf"))
    result = {
        "mode": mode,
        "engine": found["engine"],
        "evidence": found["evidence"],
        "engine_reachable": found["reachable"],
        "action": None,
        "install": False,
        "reason": None,
        "failure": None,
        "systemd": systemd,
        "pid1": pid1,
        "is_wsl": is_wsl,
        "wsl_conf_systemd": conf_systemd,
        "start_method": "none",
        "package_specs": [],
        "conflicting_installed": [],
        "warnings": list(found["warnings"]),
    }
    try:
        specs = package_specs(list(packages), versions)
    except ValueError as exc:
        result.update(action="fail", failure="docker_engine_package_versions: %s" % exc)
        return result

    if mode == "existing":
        return _use_existing_engine(result, found, observed)
    use_desktop = found["engine"] == "docker-desktop" and mode != "distro"
    if mode == "docker-desktop" and found["engine"] != "docker-desktop":
        result.update(action="fail", failure=(
            "docker_engine_mode is docker-desktop but no Docker Desktop engine was found (%s). Install Docker "
            "Desktop on Windows with the WSL 2 backend and enable Settings > Resources > WSL integration for "
            "this distro, or set docker_engine_mode: auto to install Docker Engine in the distro."
            % "; ".join(found["evidence"])))
        return result
    if use_desktop:
        result.update(action="use-docker-desktop", reason=(
            "Docker Desktop's engine serves this distro (%s): Docker Engine is not installed in the distro "
            "and the distro's /etc/docker/daemon.json is not used; Docker Desktop brings its own GPU support."
            % "; ".join(found["evidence"])))
        if not found["reachable"]:
            result["failure"] = (
                "Docker Desktop's WSL integration is present but its engine does not answer from this distro "
                "(%s). Start Docker Desktop on Windows and enable Settings > Resources > WSL integration for "
                "this distro, then rerun; or set docker_engine_mode: distro to install Docker Engine in the "
                "distro instead." % ((observed.get("container_runtime") or {}).get("error") or "no engine"))
        return result

    # An engine in the distro: installed now, or to be installed from Docker's repository.
    clash = sorted(name for name in installed if name in conflicting)
    result["conflicting_installed"] = clash
    if clash and not remove_conflicting:
        result.update(action="fail", failure=(
            "packages %s are installed and conflict with Docker's docker-ce packages (Docker's install guide "
            "removes them first). Remove them (apt-get remove %s) or set "
            "docker_engine_remove_conflicting_packages: true." % (", ".join(clash), " ".join(clash))))
        return result
    result.update(action="install", install=True, package_specs=specs)
    if found["engine"] == "docker-desktop":
        result["reason"] = ("docker_engine_mode is distro: installing Docker Engine in the distro although Docker "
                            "Desktop's integration is present (%s)" % "; ".join(found["evidence"]))
        result["warnings"].append("both Docker Desktop's integration and a distro engine: disable WSL "
                                  "integration for this distro in Docker Desktop so one engine owns the CLI")
    elif found["engine"] == "distro":
        result["reason"] = "an engine in the distro is managed from Docker's apt repository (%s)" % "; ".join(
            found["evidence"])
    else:
        result["reason"] = "no engine found: installing Docker Engine from Docker's apt repository (%s)" % "; ".join(
            found["evidence"])
    if systemd:
        result["start_method"] = "systemd"
    elif observed.get("init_script") or "docker-ce" in packages or "docker-ce" in installed:
        # docker-ce ships /etc/init.d/docker, which `service docker start` runs without systemd.
        result["start_method"] = "service"
    else:
        result["start_method"] = "background"
    if is_wsl and not systemd:
        if conf_systemd:
            result["warnings"].append(
                "/etc/wsl.conf sets [boot] systemd=true but PID 1 is %s: the distro was not restarted since; run "
                "'wsl.exe --shutdown' on Windows and reopen it. Until then dockerd is started with 'service docker "
                "start' and does not come back by itself." % (pid1 or "unknown"))
        else:
            result["warnings"].append(
                "systemd is not PID 1 (PID 1 is %s) and /etc/wsl.conf has no [boot] systemd=true: dockerd is "
                "started with 'service docker start' now but not when the distro starts again. Add [boot] "
                "systemd=true to /etc/wsl.conf and run 'wsl.exe --shutdown' on Windows."
                % (pid1 or "unknown"))
    return result


def gpg_fingerprints(colons_text):
    """Fingerprints of the primary keys in ``gpg --show-keys --with-colons`` output (upper case).

    Public (``pub``) and secret (``sec``) primary keys both count; subkeys (``sub``/``ssb``) do not."""
    fingerprints = []
    expect = False
    for line in (colons_text or "").splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            expect = True
        elif fields[0] in ("sub", "ssb"):
            expect = False
        elif fields[0] == "fpr" and expect and len(fields) > 9:
            fingerprints.append(fields[9].upper())
            expect = False
    return fingerprints


def normalise_fingerprint(value):
    return re.sub(r"[^0-9A-Fa-f]", "", value or "").upper()


def check_fingerprint(colons_text, expected):
    """Return None when the file holds exactly one primary key and it is ``expected``, else the error.

    apt trusts every key of a ``signed-by`` file, so a file with the expected key and another one
    would let the other key sign the repository: one key among several is refused."""
    want = normalise_fingerprint(expected)
    found = gpg_fingerprints(colons_text)
    if not found:
        return "the key file holds no OpenPGP public key (gpg --show-keys printed no fingerprint)"
    if found == [want]:
        return None
    if want in found:
        others = [fpr for fpr in found if fpr != want]
        return ("the key file holds %d primary keys, exactly one (%s) expected: apt would trust the others too "
                "(%s). Download the key again from its vendor's URL; do not append keys to this file"
                % (len(found), want, ", ".join(others)))
    return "key fingerprint %s expected, the file holds %s" % (want, ", ".join(found))


def verify_key_file(runner, gpg, path, expected):
    """Run ``gpg --show-keys --with-colons path`` and check ``expected``. Returns a result dict."""
    if not gpg:
        return {"ok": False, "fingerprints": [], "error": "gpg is not installed (package gnupg): cannot check %s" % path}
    rc, out, err = runner([gpg, "--batch", "--show-keys", "--with-colons", path])
    found = gpg_fingerprints(out)
    error = check_fingerprint(out, expected) if rc == 0 else "gpg could not read %s (rc=%s): %s" % (
        path, rc, (err or out or "").strip().splitlines()[-1:] or "no output")
    if error and rc == 0:
        error = "%s: %s" % (path, error)
    return {"ok": error is None, "fingerprints": found, "error": error}


def daemon_json_state(text, exists=True):
    """Read /etc/docker/daemon.json text. A missing file is an empty, valid configuration."""
    state = {"exists": bool(exists), "valid": True, "error": None, "keys": [], "runtimes": [],
             "default_runtime": None, "nvidia_registered": False}
    if not exists or not (text or "").strip():
        return state
    try:
        data = json.loads(text)
    except ValueError as exc:
        state.update(valid=False, error="not valid JSON: %s" % exc)
        return state
    if not isinstance(data, dict):
        state.update(valid=False, error="the top level is a %s, not an object" % type(data).__name__)
        return state
    runtimes = data.get("runtimes") or {}
    state.update(keys=sorted(data), runtimes=sorted(runtimes) if isinstance(runtimes, dict) else [],
                 default_runtime=data.get("default-runtime"))
    state["nvidia_registered"] = "nvidia" in state["runtimes"]
    return state


def plan_nvidia_runtime(daemon, container_runtime, engine=None, path="/etc/docker/daemon.json"):
    """Decide about ``nvidia-ctk runtime configure --runtime=docker``.

    ``engine``: the docker_engine role's engine (``docker-desktop``, ``distro``, ``none``) when
    known; otherwise ``container_runtime.docker_desktop`` decides.
    ``existing`` (docker_engine_mode existing) leaves the engine as it is.
    Returns ``{"action": skip-docker-desktop|skip-existing|registered|configure|fail, "reason"}``.
    """
    cr = container_runtime or {}
    if engine == "existing":
        return {"action": "skip-existing", "reason": (
            "docker_engine_mode is existing: the engine is used as it is, so the NVIDIA Container Toolkit is "
            "neither installed nor configured here and %s is not changed; the probe shows whether GPUs reach "
            "containers" % path)}
    desktop = engine == "docker-desktop" if engine else bool(cr.get("docker_desktop"))
    if desktop:
        return {"action": "skip-docker-desktop", "reason": (
            "the engine is Docker Desktop's: it brings its own GPU support (WSL 2 GPU paravirtualisation) and does "
            "not read this distro's %s, so the NVIDIA Container Toolkit is neither installed nor configured here; "
            "the probe shows whether GPUs reach containers" % path)}
    if not daemon.get("valid", True):
        return {"action": "fail", "reason": (
            "%s is %s: nvidia-ctk cannot merge into it and dockerd would not start. Fix or remove the file "
            "(a backup copy is kept by the role when it changes it), then rerun." % (path, daemon.get("error")))}
    if daemon.get("nvidia_registered"):
        return {"action": "registered", "reason": "%s already registers the nvidia runtime" % path}
    if cr.get("engine_reachable") and cr.get("nvidia_runtime"):
        return {"action": "registered", "reason": "the engine already lists the nvidia runtime (docker info Runtimes)"}
    return {"action": "configure", "reason": (
        "the nvidia runtime is not registered (%s runtimes: %s; engine runtimes: %s)"
        % (path, ", ".join(daemon.get("runtimes") or []) or "none",
           ", ".join(cr.get("runtimes") or []) or ("unknown, engine not reachable" if not cr.get("engine_reachable")
                                                   else "none")))}


def daemon_json_lost(before_text, after_text):
    """Settings of ``before`` that ``after`` dropped or changed (the nvidia runtime entry aside).

    ``nvidia-ctk runtime configure`` merges into daemon.json; this proves it on the real file.
    """
    before = json.loads(before_text) if (before_text or "").strip() else {}
    after = json.loads(after_text) if (after_text or "").strip() else {}
    lost = []
    for key, value in sorted(before.items()):
        if key not in after:
            lost.append("%s was removed" % key)
        elif key == "runtimes" and isinstance(value, dict):
            for name, spec in sorted(value.items()):
                if name != "nvidia" and (after.get("runtimes") or {}).get(name) != spec:
                    lost.append("runtimes.%s was changed or removed" % name)
        elif after[key] != value:
            lost.append("%s changed from %s to %s" % (key, json.dumps(value), json.dumps(after[key])))
    return lost


# Known failures of `docker run --gpus all IMAGE nvidia-smi`, each with where it was reported.
_PROBE_FIXES = (
    # NVIDIA/nvidia-docker#1410: runtime/hook not configured in dockerd.
    (re.compile(r"could not select device driver .* with capabilities: \[\[gpu\]\]"),
     "dockerd has no GPU device driver: the NVIDIA Container Toolkit is not installed or dockerd was not "
     "restarted after 'nvidia-ctk runtime configure --runtime=docker'. Rerun the nvidia_container_toolkit role "
     "(it installs, configures and restarts the engine)."),
    # NVIDIA/nvidia-docker#838, docker/for-win#13907.
    (re.compile(r"(unknown or invalid runtime name: nvidia|Unknown runtime specified nvidia)"),
     "the nvidia runtime is not registered with the running dockerd: run 'nvidia-ctk runtime configure "
     "--runtime=docker' and restart the engine (the nvidia_container_toolkit role does both)."),
    # microsoft/WSL#9962, microsoft/WSL#7627.
    (re.compile(r"GPU access blocked by the operating system"),
     "WSL2 blocks GPU access: update the NVIDIA driver on Windows and WSL itself ('wsl.exe --update'), then "
     "'wsl.exe --shutdown'. Never install a Linux NVIDIA driver inside the distro."),
    # docker/for-win#10218, docker/for-win#11246, microsoft/WSL#7627.
    (re.compile(r"nvidia-container-cli: initialization error: (driver error|nvml error|load library failed)"),
     "the container runtime cannot reach the driver: on WSL2 the Windows NVIDIA driver provides "
     "/usr/lib/wsl/lib (libcuda, nvidia-smi); update it and WSL ('wsl.exe --update'), restart with "
     "'wsl.exe --shutdown', and do not install a Linux driver inside the distro."),
    (re.compile(r"(No such image|Unable to find image|pull access denied|manifest unknown)"),
     "the probe image is not on the host: pull it (docker pull IMAGE) or set "
     "nvidia_container_toolkit_probe_image to an image that is present."),
    (re.compile(r"exec: \"nvidia-smi\": executable file not found|nvidia-smi: not found"),
     "nvidia-smi was not injected into the container: the GPU runtime did not run (check "
     "'docker info' Runtimes for nvidia and the image's NVIDIA_DRIVER_CAPABILITIES) or the probe image is "
     "not CUDA-based."),
    (re.compile(r"(Cannot connect to the Docker daemon|Is the docker daemon running|engine not reachable)"),
     "the Docker engine is not running: start it (service docker start, or systemctl start docker) or start "
     "Docker Desktop on Windows."),
)


def gpu_probe_advice(probe):
    """A fix for a failed GPU probe (``container_runtime.probe_gpu_container`` result)."""
    probe = probe or {}
    if probe.get("ok"):
        return None
    text = "\n".join(str(probe.get(key) or "") for key in ("error", "output"))
    for pattern, fix in _PROBE_FIXES:
        if pattern.search(text):
            return fix
    if probe.get("rc") == 0:
        return ("the container ran but nvidia-smi -L listed no GPU: the driver sees no device (on WSL2 check "
                "'nvidia-smi' in the distro and the Windows driver).")
    return ("unrecognised failure; run 'docker run --rm --gpus all IMAGE nvidia-smi' by hand and compare with "
            "NVIDIA's container toolkit troubleshooting guide.")


def exit_with_key_check(module, key_file, fingerprint):
    """Both facts modules' key-check mode: verify an apt key file's fingerprint with gpg, then end
    the module run (fail_json naming both fingerprints, or exit_json with the check)."""
    result = verify_key_file(module.run_command, module.get_bin_path("gpg"), key_file, fingerprint)
    if not result["ok"]:
        module.fail_json(msg="apt key check failed: %s. Check the key URL and fingerprint variables." % result["error"],
                         key_check=result)
    module.exit_json(changed=False, key_check=result)
