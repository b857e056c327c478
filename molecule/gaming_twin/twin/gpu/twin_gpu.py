#!/usr/bin/python3
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""STAND-IN for an RTX 3090 behind WSL2 (the GPU boundary of the gaming twin, issue 10).

Python 3 standard library only; one file that acts by the name it is called under:

* ``nvidia-container-runtime-hook prestart`` - what dockerd runs as the OCI prestart hook of a
  container started with ``--gpus`` / device_requests (driver nvidia). It reads the OCI state
  (stdin) and ``<bundle>/config.json``, REFUSES device IDs this GPU set lacks (exit 1, with the
  message of the real nvidia-container-cli: ``nvidia-container-cli: device error: 3: unknown
  device``), records the container in the ledger and writes ``/run/twin-gpu/gpu.json`` into the
  container's root: the GPUs it got and the CUDA memory free on each at that instant.
* ``nvidia-smi [...]`` - the Windows driver's /usr/lib/wsl/lib/nvidia-smi for exactly the
  invocations homelab.ai.gpu_facts makes (plain table, ``--query-gpu=...`` CSV, ``-L``); memory
  used = what Windows' desktop holds + what each LIVE GPU container holds. Like WSL2's own
  nvidia-smi it lists no processes. Unknown invocations exit 2.
* ``twin_gpu.py init|show ...`` - create the state dir / print the memory picture (twin.sh, tests).

State (``$HOMELAB_TWIN_GPU_STATE``, default /run/homelab-twin/gpu):
  gpu.json          the GPU(s), see DEFAULT_GPUS
  desktop_mib       MiB that Windows' desktop (DWM, browser, ...) holds on the display GPU
  containers/<id>.json  one ledger entry per container the hook started

Memory model (chosen, see molecule/gaming_twin/twin/README.md):
  nvidia-smi memory.total = 24576 MiB (what the record's host and the posted WSL2 3090 tables
  show). CUDA's total (cudaMemGetInfo, what torch/vLLM see) = cuda_total_mib, 24576 on WSL2: the
  WDDM driver reports the whole 24 GiB as total there and what Windows holds shows up as used,
  i.e. in desktop_mib. CUDA free on a GPU = cuda_total - desktop (display GPU only) - what live
  containers hold. A container holds: the {device: MiB} in /run/twin-gpu/held_mib.json that its
  process wrote in its own root (read on the host from the overlay upper dir), else the figure its
  image declares in HOMELAB_TWIN_CUDA_HOLDS_MIB (on each of its devices), else 0. A held figure
  includes the process's CUDA context.
Liveness: in the hook's pid namespace from /proc/<pid> (pid + start time, so a reused pid does not
count); elsewhere (the twin instance, which has the twin daemon's socket, not the host's /proc)
from the Docker API: running containers.
"""

import http.client
import json
import os
import re
import socket
import sys
import time

STATE_ENV = "HOMELAB_TWIN_GPU_STATE"
DEFAULT_STATE = "/run/homelab-twin/gpu"
HELD_FILE = "run/twin-gpu/held_mib.json"
INJECT_DIR = "run/twin-gpu"
# what the real hook mounts from the driver: nvidia-smi (this file; needs /usr/bin/python3 in the
# image, a limit of the stand-in) and, for it, the GPU state as the container saw it at start
INJECT_SMI = "usr/bin/nvidia-smi"
INJECT_STATE = "run/twin-gpu/state"
DECLARED_ENV = "HOMELAB_TWIN_CUDA_HOLDS_MIB"
SECRET_RE = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD", re.I)
STANDIN = ("homelab-twin stand-in for an RTX 3090 under WSL2 (no GPU on the test machine); "
           "see molecule/gaming_twin/twin/README.md")

DEFAULT_GPUS = [{
    "index": 0,
    "name": "NVIDIA GeForce RTX 3090",
    # fixed, invented (no real GPU): nvidia-smi's format GPU-8-4-4-4-12
    "uuid": "GPU-3a7c9e1f-5b2d-4c8e-9f01-23456789abcd",
    "pci_bus_id": "00000000:01:00.0",
    "memory_total_mib": 24576,
    "cuda_total_mib": 24576,
    "compute_cap": "8.6",
    # WSL2 shows the Windows driver's version (573.24, R570) and the Linux-side nvidia-smi's own
    "driver_version": "573.24",
    "smi_version": "570.153.02",
    "cuda_version": "12.8",
    "display": True,
    "power_cap_w": 350,
}]

QUERY_FIELDS = ("index", "name", "uuid", "memory.total", "memory.used", "memory.free", "compute_cap",
                "driver_version", "mig.mode.current", "pci.bus_id", "display_active", "count")


# ---------------------------------------------------------------- state
def state_dir(path=None):
    if path or os.environ.get(STATE_ENV):
        return path or os.environ.get(STATE_ENV)
    if not os.path.isdir(DEFAULT_STATE) and os.path.isdir("/" + INJECT_STATE):
        return "/" + INJECT_STATE  # inside a GPU container: what the hook injected
    return DEFAULT_STATE


def init_state(state, desktop_mib=1536, gpus=None):
    os.makedirs(os.path.join(state, "containers"), exist_ok=True)
    gpu_file = os.path.join(state, "gpu.json")
    if not os.path.exists(gpu_file):
        _write_json(gpu_file, {"standin": STANDIN, "gpus": gpus or DEFAULT_GPUS})
    desk = os.path.join(state, "desktop_mib")
    if not os.path.exists(desk):
        with open(desk, "w") as handle:
            handle.write("%d\n" % desktop_mib)
    return state


def load_gpus(state):
    with open(os.path.join(state, "gpu.json")) as handle:
        return json.load(handle)["gpus"]


def desktop_mib(state):
    try:
        with open(os.path.join(state, "desktop_mib")) as handle:
            return int(handle.read().strip() or 0)
    except FileNotFoundError:
        return 0


def ledger(state):
    folder = os.path.join(state, "containers")
    entries = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            try:
                with open(os.path.join(folder, name)) as handle:
                    entry = json.load(handle)
            except (OSError, ValueError):
                continue
            # a removed container's overlay dirs are gone: it can hold nothing any more
            if entry.get("upper") and not os.path.isdir(entry["upper"]):
                continue
            entries.append(entry)
    return entries


def _write_json(path, data, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# ---------------------------------------------------------------- liveness
def proc_starttime(pid, proc="/proc"):
    try:
        with open("%s/%d/stat" % (proc, pid)) as handle:
            text = handle.read()
    except (OSError, ValueError):
        return None
    # comm may hold spaces and parentheses: fields after the last ')'
    return text[text.rindex(")") + 2:].split()[19]


def own_pidns():
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


class ProcLiveness:
    """Live = the recorded host pid runs with the recorded start time (same pid namespace)."""

    def __init__(self, proc="/proc"):
        self.proc = proc

    def __call__(self, entry):
        pid = entry.get("pid")
        return bool(pid) and proc_starttime(int(pid), self.proc) == entry.get("starttime")


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def docker_running_ids(sock_path):
    conn = _UnixHTTPConnection(sock_path)
    try:
        conn.request("GET", "/containers/json")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise OSError("Docker API answered %s: %s" % (resp.status, body[:200]))
        return {c["Id"] for c in json.loads(body) if c.get("State", "running") == "running"}
    finally:
        conn.close()


class DockerLiveness:
    """Live = the Docker daemon that started it lists it as running (from inside the twin instance)."""

    def __init__(self, sock_path):
        self.ids = docker_running_ids(sock_path)

    def __call__(self, entry):
        return entry.get("id") in self.ids


def default_liveness(entries):
    """/proc where the ledger's pids are ours to see; the Docker API otherwise."""
    mine = own_pidns()
    if not entries or all(e.get("pidns") == mine for e in entries):
        return ProcLiveness()
    host = os.environ.get("DOCKER_HOST", "")
    sock = host[len("unix://"):] if host.startswith("unix://") else "/var/run/docker.sock"
    return DockerLiveness(sock)


# ---------------------------------------------------------------- memory
def held_by(entry):
    """{device index (int): MiB} that a container holds: its held file, else its declared env, else 0."""
    upper = entry.get("upper")
    if upper:
        path = os.path.join(upper, HELD_FILE)
        try:
            with open(path) as handle:
                data = json.load(handle)
            return {int(k): int(float(v)) for k, v in data.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:
            # a process that writes garbage holds nothing we can count: say so, count 0
            sys.stderr.write("twin-gpu: ignoring unreadable %s: %s\n" % (path, exc))
            return {}
    declared = (entry.get("env") or {}).get(DECLARED_ENV)
    if declared:
        return {int(d): int(float(declared)) for d in entry.get("devices", [])}
    return {}


def memory_picture(state, liveness=None):
    """[{gpu..., used_mib, free_mib (nvidia-smi), cuda_free_mib, holders: [...]}] for each GPU."""
    gpus = load_gpus(state)
    entries = ledger(state)
    live = liveness or default_liveness(entries)
    desk = desktop_mib(state)
    pictures = []
    live_entries = [e for e in entries if live(e)]
    for gpu in gpus:
        base = desk if gpu.get("display") else 0
        holders = []
        for entry in live_entries:
            mib = held_by(entry).get(gpu["index"], 0)
            if gpu["index"] in entry.get("devices", []) and mib:
                holders.append({"id": entry["id"], "mib": mib})
        held = sum(h["mib"] for h in holders)
        used = min(gpu["memory_total_mib"], base + held)
        pictures.append(dict(gpu, desktop_mib=base, used_mib=used,
                             free_mib=gpu["memory_total_mib"] - used,
                             cuda_free_mib=max(0, gpu["cuda_total_mib"] - base - held),
                             holders=holders))
    return pictures


# ---------------------------------------------------------------- the hook
class HookError(Exception):
    pass


def parse_visible_devices(value, gpus):
    """NVIDIA_VISIBLE_DEVICES -> [index]; HookError with nvidia-container-cli's wording for unknown IDs."""
    value = (value or "").strip()
    if value in ("", "void", "none"):
        return []
    if value == "all":
        return [g["index"] for g in gpus]
    chosen = []
    for token in [t.strip() for t in value.split(",") if t.strip()]:
        match = [g for g in gpus if str(g["index"]) == token or g["uuid"] == token
                 or (token.startswith("GPU-") and g["uuid"].startswith(token))]
        if not match:
            raise HookError("nvidia-container-cli: device error: %s: unknown device" % token)
        if match[0]["index"] not in chosen:
            chosen.append(match[0]["index"])
    return chosen


def env_dict(env_list):
    out = {}
    for item in env_list or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def hook(state_json, state=None, proc="/proc", now=time.time):
    """Run the prestart hook for the OCI ``state_json``; returns the ledger entry written."""
    state = state_dir(state)
    oci = json.loads(state_json)
    bundle = oci.get("bundle") or oci.get("bundlePath")
    if not bundle:
        raise HookError("nvidia-container-cli: initialization error: no bundle in the OCI state")
    with open(os.path.join(bundle, "config.json")) as handle:
        config = json.load(handle)
    env = env_dict(config.get("process", {}).get("env"))
    gpus = load_gpus(state)
    devices = parse_visible_devices(env.get("NVIDIA_VISIBLE_DEVICES"), gpus)
    root = config.get("root", {}).get("path", "rootfs")
    if not os.path.isabs(root):
        root = os.path.join(bundle, root)
    upper = os.path.join(os.path.dirname(root), "diff") if os.path.basename(root) == "merged" else None
    pid = int(oci.get("pid") or 0)
    # Like a GPU freeing a dead process's memory: a held figure from an earlier run is gone.
    for base in filter(None, (root, upper)):
        try:
            os.remove(os.path.join(base, HELD_FILE))
        except OSError:
            pass
    # what is free for this container: everything live except itself
    entry_id = oci["id"]
    others = [e for e in ledger(state) if e.get("id") != entry_id]
    live = ProcLiveness(proc)
    desk = desktop_mib(state)
    given = []
    for gpu in gpus:
        if gpu["index"] not in devices:
            continue
        held = sum(held_by(e).get(gpu["index"], 0) for e in others
                   if live(e) and gpu["index"] in e.get("devices", []))
        base = desk if gpu.get("display") else 0
        given.append({
            "index": gpu["index"], "name": gpu["name"], "uuid": gpu["uuid"],
            "pci_bus_id": gpu["pci_bus_id"], "compute_cap": gpu["compute_cap"],
            "memory_total_mib": gpu["memory_total_mib"], "cuda_total_mib": gpu["cuda_total_mib"],
            "cuda_free_mib": max(0, gpu["cuda_total_mib"] - base - held),
            "desktop_mib": base, "held_by_others_mib": held,
        })
    inject = os.path.join(root, INJECT_DIR)
    os.makedirs(inject, exist_ok=True)
    os.chmod(inject, 0o1777)  # the container's (non-root) process writes held_mib.json here
    _write_json(os.path.join(inject, "gpu.json"),
                {"standin": STANDIN, "snapshot_time": now(), "gpus": given})
    if given:
        _inject_smi(root, state, gpus, devices, given)
    entry = {
        "id": entry_id, "devices": devices, "pid": pid,
        "starttime": proc_starttime(pid, proc) if pid else None, "pidns": own_pidns(),
        "root": root, "upper": upper, "bundle": bundle, "started": now(),
        "env": {k: ("<redacted>" if SECRET_RE.search(k) else v) for k, v in env.items()},
    }
    os.makedirs(os.path.join(state, "containers"), exist_ok=True)
    _write_json(os.path.join(state, "containers", "%s.json" % entry_id), entry)
    return entry


def _inject_smi(root, state, gpus, devices, given):
    """nvidia-smi inside the container, as the real hook mounts the driver's: the container's GPUs
    (renumbered from 0 in the order given, as CUDA and nvidia-smi number visible devices), with what
    the desktop and the other containers held when it started (a snapshot: no ledger inside)."""
    inner = os.path.join(root, INJECT_STATE)
    os.makedirs(os.path.join(inner, "containers"), exist_ok=True)
    by_index = {g["index"]: g for g in gpus}
    # one used-memory figure (the state's desktop_mib) for the first visible GPU: desktop + the
    # others, as seen at start; the twin has one GPU, so nothing is lost
    mine = [dict(by_index[index], index=number, display=number == 0) for number, index in enumerate(devices)]
    _write_json(os.path.join(inner, "gpu.json"), {"standin": STANDIN, "gpus": mine})
    with open(os.path.join(inner, "desktop_mib"), "w") as handle:
        handle.write("%d\n" % (given[0]["desktop_mib"] + given[0]["held_by_others_mib"]))
    target = os.path.join(root, INJECT_SMI)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(os.path.abspath(__file__), "rb") as src:
        body = src.read()
    tmp = target + ".twin-tmp"
    with open(tmp, "wb") as dst:
        dst.write(body)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)


def hook_main(argv, stdin=sys.stdin):
    if argv[:1] not in (["prestart"], []):
        # the real hook only acts on prestart; poststart/poststop are no-ops there too
        return 0
    try:
        hook(stdin.read())
    except HookError as exc:
        sys.stderr.write("%s\n" % exc)
        return 1
    return 0


# ---------------------------------------------------------------- nvidia-smi
def _field(pic, name, units):
    mib = " MiB" if units else ""
    values = {
        "index": str(pic["index"]), "name": pic["name"], "uuid": pic["uuid"],
        "memory.total": "%d%s" % (pic["memory_total_mib"], mib),
        "memory.used": "%d%s" % (pic["used_mib"], mib),
        "memory.free": "%d%s" % (pic["free_mib"], mib),
        "compute_cap": pic["compute_cap"], "driver_version": pic["driver_version"],
        "mig.mode.current": "[N/A]", "pci.bus_id": pic["pci_bus_id"],
        "display_active": "Enabled" if pic.get("display") else "Disabled",
        "count": None,
    }
    return values[name]


def query_csv(pictures, fields, header=False, units=False):
    lines = []
    if header:
        lines.append(", ".join(("%s [MiB]" % f) if units and f.startswith("memory.") else f for f in fields))
    for pic in pictures:
        row = []
        for f in fields:
            row.append(str(len(pictures)) if f == "count" else _field(pic, f, units))
        lines.append(", ".join(row))
    return "\n".join(lines) + "\n"


def table(pictures, now=None):
    first = pictures[0]
    out = [time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now)),
           "+" + "-" * 89 + "+",
           ("| NVIDIA-SMI %-22s Driver Version: %-14s CUDA Version: %-8s" % (
               first["smi_version"], first["driver_version"], first["cuda_version"])).ljust(90) + "|",
           "|" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+",
           "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
           "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
           "|                                         |                        |               MIG M. |",
           "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|"]
    for pic in pictures:
        busy = bool(pic["holders"])
        perf, watts = ("P2", 110) if busy else ("P8", 19)
        out.append("|%4d  %-27s%6s  |   %-16s%4s |%21s |" % (
            pic["index"], pic["name"], "On", pic["pci_bus_id"], "On" if pic.get("display") else "Off", "N/A"))
        out.append("|%-41s|%8dMiB / %6dMiB |%7d%%      Default |" % (
            "  0%%   %dC    %s %15dW / %4dW " % (41 if busy else 34, perf, watts, pic["power_cap_w"]),
            pic["used_mib"], pic["memory_total_mib"], 0))
        out.append("|" + " " * 41 + "|" + " " * 24 + "|%21s |" % "N/A")
        out.append("+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+")
    out += ["",
            "+" + "-" * 89 + "+",
            "| Processes:".ljust(90) + "|",
            "|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |",
            "|        ID   ID                                                               Usage      |",
            "|" + "=" * 89 + "|",
            "|  No running processes found".ljust(90) + "|",
            "+" + "-" * 89 + "+"]
    return "\n".join(out) + "\n"


def smi_main(argv, state=None, liveness=None, stdout=sys.stdout, stderr=sys.stderr):
    state = state_dir(state)
    try:
        pictures = memory_picture(state, liveness)
    except FileNotFoundError:
        stderr.write("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                     "Make sure that the latest NVIDIA driver is installed and running.\n")
        return 9
    if not argv:
        stdout.write(table(pictures))
        return 0
    if argv == ["-L"]:
        for pic in pictures:
            stdout.write("GPU %d: %s (UUID: %s)\n" % (pic["index"], pic["name"], pic["uuid"]))
        return 0
    if len(argv) == 2 and argv[0].startswith("--query-gpu=") and argv[1].startswith("--format="):
        fields = [f.strip() for f in argv[0][len("--query-gpu="):].split(",") if f.strip()]
        fmt = set(argv[1][len("--format="):].split(","))
        if "csv" not in fmt or not fmt <= {"csv", "noheader", "nounits"}:
            stderr.write('"%s" is not a valid format.\n' % argv[1][len("--format="):])
            return 2
        for f in fields:
            if f not in QUERY_FIELDS:
                stdout.write('Field "%s" is not a valid field to query.\n\n' % f)
                return 2
        stdout.write(query_csv(pictures, fields, header="noheader" not in fmt, units="nounits" not in fmt))
        return 0
    stderr.write("twin nvidia-smi stand-in has no answer for: nvidia-smi %s\n" % " ".join(argv))
    return 2


# ---------------------------------------------------------------- cli
def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    name = os.path.basename(argv[0])
    if name == "nvidia-container-runtime-hook":
        return hook_main(argv[1:])
    if name == "nvidia-smi":
        return smi_main(argv[1:])
    args = argv[1:]
    if args[:1] == ["init"]:
        state = args[args.index("--state") + 1] if "--state" in args else state_dir()
        desk = int(args[args.index("--desktop-mib") + 1]) if "--desktop-mib" in args else 1536
        print(init_state(state, desk))
        return 0
    if args[:1] == ["show"]:
        print(json.dumps(memory_picture(state_dir()), indent=1))
        return 0
    if args[:1] in (["hook"], ["smi"]):
        return hook_main(args[1:]) if args[0] == "hook" else smi_main(args[1:])
    sys.stderr.write("usage: twin_gpu.py init [--state DIR] [--desktop-mib N] | show | hook prestart | smi ARGS\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
