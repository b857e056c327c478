# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gaming twin's GPU stand-in (molecule/gaming_twin/twin/gpu/twin_gpu.py): ledger logic, the
hook's refusals and what its nvidia-smi answers, in tmp dirs (pure Python, no daemon).

A fake /proc (``<tmp>/proc/<pid>/stat``) stands for the host's; a container "stops" when its
stat file goes away or its start time changes (a reused pid).
"""

import importlib.util
import io
import json
import os
import shutil
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import nvidia_smi

REPO = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location(
    "twin_gpu", REPO / "molecule/gaming_twin/twin/gpu/twin_gpu.py")
tg = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tg)

QUERY = ["--query-gpu=" + ",".join(nvidia_smi.QUERY_FIELDS), "--format=csv,noheader,nounits"]


class Host:
    """A state dir, a fake /proc and helpers to start/stop fake GPU containers."""

    def __init__(self, tmp, desktop=1536):
        self.tmp = tmp
        self.state = str(tmp / "state")
        self.proc = tmp / "proc"
        self.proc.mkdir()
        tg.init_state(self.state, desktop)
        self.next_pid = 4000

    def set_desktop(self, mib):
        Path(self.state, "desktop_mib").write_text("%d\n" % mib)

    def start(self, cid, devices="0", env=None, starttime="1234"):
        self.next_pid += 1
        pid = self.next_pid
        (self.proc / str(pid)).mkdir()
        # comm with a space and a ')' as real ones may have; start time is field 22
        fields = ["S"] + ["0"] * 18 + [starttime] + ["0"] * 10
        (self.proc / str(pid) / "stat").write_text("%d (python3 x) %s\n" % (pid, " ".join(fields)))
        layer = self.tmp / "overlay2" / cid
        (layer / "merged").mkdir(parents=True)
        (layer / "diff").mkdir()
        bundle = self.tmp / "bundles" / cid
        bundle.mkdir(parents=True)
        envs = ["PATH=/usr/bin"] + ["%s=%s" % kv for kv in (env or {}).items()]
        if devices is not None:
            envs.append("NVIDIA_VISIBLE_DEVICES=%s" % devices)
        (bundle / "config.json").write_text(json.dumps(
            {"root": {"path": str(layer / "merged")}, "process": {"env": envs}}))
        entry = tg.hook(json.dumps({"ociVersion": "1.0.2", "id": cid, "pid": pid, "bundle": str(bundle),
                                    "status": "created"}), state=self.state, proc=str(self.proc))
        return entry

    def hold(self, entry, held):
        """What the container's process writes in its own root (seen on the host in the upper dir)."""
        path = Path(entry["upper"]) / "run/twin-gpu/held_mib.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(held))

    def stop(self, entry):
        (self.proc / str(entry["pid"]) / "stat").unlink()

    def injected(self, entry):
        return json.loads((Path(entry["root"]) / "run/twin-gpu/gpu.json").read_text())

    def picture(self):
        return tg.memory_picture(self.state, tg.ProcLiveness(str(self.proc)))[0]

    def smi(self, args):
        out, err = io.StringIO(), io.StringIO()
        rc = tg.smi_main(args, state=self.state, liveness=tg.ProcLiveness(str(self.proc)), stdout=out, stderr=err)
        return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def host(tmp_path):
    return Host(tmp_path)


def test_used_memory_follows_containers_and_the_desktop(host):
    assert host.picture()["used_mib"] == 1536
    host.set_desktop(4608)
    assert host.picture()["used_mib"] == 4608
    assert host.picture()["cuda_free_mib"] == 24576 - 4608
    host.set_desktop(1536)
    vllm = host.start("a" * 64)
    assert host.picture()["used_mib"] == 1536  # started, holds nothing yet
    host.hold(vllm, {"0": 22119})
    pic = host.picture()
    assert (pic["used_mib"], pic["free_mib"]) == (1536 + 22119, 24576 - 1536 - 22119)
    assert pic["holders"] == [{"id": "a" * 64, "mib": 22119}]
    host.stop(vllm)
    assert host.picture()["used_mib"] == 1536


def test_the_hook_tells_a_container_what_is_free_beside_the_live_others(host):
    first = host.start("a" * 64)
    assert host.injected(first)["gpus"][0]["cuda_free_mib"] == 24576 - 1536
    host.hold(first, {"0": 20000})
    second = host.start("b" * 64)
    given = host.injected(second)["gpus"][0]
    assert (given["cuda_free_mib"], given["held_by_others_mib"]) == (24576 - 1536 - 20000, 20000)
    host.stop(first)
    third = host.start("c" * 64)
    assert host.injected(third)["gpus"][0]["cuda_free_mib"] == 24576 - 1536


def test_a_reused_pid_is_not_the_container(host):
    entry = host.start("a" * 64)
    host.hold(entry, {"0": 5000})
    stat = host.proc / str(entry["pid"]) / "stat"
    stat.write_text(stat.read_text().replace(" 1234 ", " 9999 "))
    assert host.picture()["used_mib"] == 1536


def test_a_restart_frees_what_the_previous_run_held(host):
    entry = host.start("a" * 64)
    host.hold(entry, {"0": 22000})
    host.stop(entry)
    again = tg.hook(json.dumps({"id": entry["id"], "pid": entry["pid"], "bundle": entry["bundle"]}),
                    state=host.state, proc=str(host.proc))
    (host.proc / str(entry["pid"]) / "stat").write_text("%d (python3) %s\n" % (
        entry["pid"], " ".join(["S"] + ["0"] * 18 + ["1234"] + ["0"] * 10)))
    assert not (Path(again["upper"]) / "run/twin-gpu/held_mib.json").exists()
    assert host.picture()["used_mib"] == 1536


def test_a_removed_container_leaves_the_ledger(host):
    entry = host.start("a" * 64, env={tg.DECLARED_ENV: "3000"})
    assert host.picture()["used_mib"] == 1536 + 3000
    shutil.rmtree(Path(entry["upper"]).parent)  # docker rm deletes the container's layer
    assert host.picture()["used_mib"] == 1536


@pytest.mark.parametrize("devices,token", [("3", "3"), ("0,1", "1"), ("GPU-00000000-dead", "GPU-00000000-dead")])
def test_an_unknown_device_is_refused_like_nvidia_container_cli(host, devices, token):
    with pytest.raises(tg.HookError) as err:
        host.start("d" * 64, devices=devices)
    assert str(err.value) == "nvidia-container-cli: device error: %s: unknown device" % token
    assert not list(Path(host.state, "containers").iterdir())


def test_the_hook_exits_non_zero_with_the_message_on_stderr(host, monkeypatch, capsys):
    bundle = host.tmp / "b3"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps({"root": {"path": str(host.tmp / "r")},
                                                    "process": {"env": ["NVIDIA_VISIBLE_DEVICES=3"]}}))
    monkeypatch.setenv(tg.STATE_ENV, host.state)
    rc = tg.hook_main(["prestart"], stdin=io.StringIO(json.dumps({"id": "x", "pid": 1, "bundle": str(bundle)})))
    assert rc == 1
    assert capsys.readouterr().err.strip() == "nvidia-container-cli: device error: 3: unknown device"


def test_all_and_uuid_select_the_gpu(host):
    assert host.start("a" * 64, devices="all")["devices"] == [0]
    uuid = tg.load_gpus(host.state)[0]["uuid"]
    assert host.start("b" * 64, devices=uuid)["devices"] == [0]


def test_held_file_beats_declared_env_and_nothing_holds_nothing(host):
    declared = host.start("a" * 64, env={tg.DECLARED_ENV: "3079"})
    assert host.picture()["used_mib"] == 1536 + 3079
    host.hold(declared, {"0": 1000})
    assert host.picture()["used_mib"] == 1536 + 1000
    host.start("b" * 64)
    assert host.picture()["used_mib"] == 1536 + 1000


def test_secrets_in_the_container_env_are_not_recorded(host):
    entry = host.start("a" * 64, env={"VLLM_API_KEY": "s3cret", "HF_TOKEN": "t0k"})
    text = Path(host.state, "containers", entry["id"] + ".json").read_text()
    assert "s3cret" not in text and "t0k" not in text
    assert entry["env"]["VLLM_API_KEY"] == "<redacted>"


def test_query_csv_parses_with_the_projects_parser_and_gather_sees_the_gpu(host):
    entry = host.start("a" * 64)
    host.hold(entry, {"0": 22119})
    rc, out, _ = host.smi(QUERY)
    assert rc == 0
    rows = nvidia_smi.parse_csv(out)
    assert rows == [{"index": "0", "name": "NVIDIA GeForce RTX 3090", "uuid": tg.load_gpus(host.state)[0]["uuid"],
                     "memory.total": "24576", "memory.free": str(24576 - 1536 - 22119), "compute_cap": "8.6",
                     "driver_version": "573.24", "mig.mode.current": None, "pci.bus_id": "00000000:01:00.0"}]

    def runner(args):
        return host.smi(args[1:])
    gpus, summary = nvidia_smi.gather(runner, nvidia_smi_path="/usr/lib/wsl/lib/nvidia-smi",
                                      executable=lambda path: True)
    assert summary["usable"] and summary["count"] == 1 and summary["warnings"] == []
    assert gpus[0]["memory_free_mib"] == 24576 - 1536 - 22119
    assert (gpus[0]["compute_capability"], gpus[0]["compute_capability_source"]) == ("8.6", "nvidia-smi")
    assert (summary["driver_version"], summary["cuda_version"]) == ("573.24", "12.8")


def test_the_table_parses_with_the_projects_parser(host):
    host.hold(host.start("a" * 64), {"0": 4000})
    rc, out, _ = host.smi([])
    assert rc == 0 and "No running processes found" in out
    table = nvidia_smi.parse_table(out)
    assert (table["smi_version"], table["driver_version"], table["cuda_version"]) == ("570.153.02", "573.24", "12.8")
    gpu = table["gpus"][0]
    assert (gpu["name"], gpu["bus_id"], gpu["memory_used_mib"], gpu["memory_total_mib"]) == \
        ("NVIDIA GeForce RTX 3090", "00000000:01:00.0", 5536, 24576)
    assert not gpu["name_truncated"]


def test_unknown_invocations_and_fields_fail_like_nvidia_smi(host):
    rc, _, err = host.smi(["--list-processes"])
    assert rc == 2 and "no answer" in err
    rc, out, _ = host.smi(["--query-gpu=index,bogus.field", "--format=csv,noheader,nounits"])
    assert rc == 2 and nvidia_smi.INVALID_FIELD_RE.search(out).group(1) == "bogus.field"


def test_no_state_reads_as_no_driver(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    rc = tg.smi_main([], state=str(tmp_path / "absent"), liveness=lambda e: False, stdout=out, stderr=err)
    assert rc != 0 and nvidia_smi.classify_failure(rc, out.getvalue(), err.getvalue()) == "no_driver"


class _Docker(BaseHTTPRequestHandler):
    running = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path != "/containers/json":
            self.send_error(404)
            return
        body = json.dumps([{"Id": cid, "State": "running"} for cid in self.running]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def test_inside_the_instance_liveness_comes_from_the_docker_api(host, tmp_path, monkeypatch):
    """The twin instance sees the twin daemon's socket, not the host's /proc: entries recorded in
    another pid namespace are live when the daemon lists them as running."""
    a, b = host.start("a" * 64), host.start("b" * 64)
    host.hold(a, {"0": 10000})
    host.hold(b, {"0": 2000})
    for name in (a["id"], b["id"]):
        path = Path(host.state, "containers", name + ".json")
        path.write_text(path.read_text().replace(a["pidns"] or "pid:[x]", "pid:[4026531999]"))
    sock = str(tmp_path / "docker.sock")
    server = _UnixServer(sock, _Docker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DOCKER_HOST", "unix://" + sock)
        _Docker.running = [b["id"]]
        pic = tg.memory_picture(host.state)  # default liveness: other pid namespace -> Docker API
        assert pic[0]["used_mib"] == 1536 + 2000
        _Docker.running = [a["id"], b["id"]]
        assert tg.memory_picture(host.state)[0]["used_mib"] == 1536 + 12000
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(OSError):  # no daemon to ask: nvidia-smi must not guess
        tg.memory_picture(host.state)


def test_the_hook_stand_in_is_what_dockerd_finds_on_its_path():
    bindir = REPO / "molecule/gaming_twin/twin/gpu/bin"
    for name in ("nvidia-container-runtime-hook", "nvidia-smi"):
        path = bindir / name
        assert os.access(path, os.X_OK) and path.resolve() == (bindir.parent / "twin_gpu.py").resolve()
    assert socket  # imported for the Unix-socket server above


def test_the_hook_puts_an_nvidia_smi_into_the_container_as_the_driver_does(host, tmp_path):
    """nvidia_container_toolkit's probe runs `nvidia-smi -L` in an image with nothing GPU-specific."""
    first = host.start("a" * 64)
    host.hold(first, {"0": 20000})
    probe = host.start("b" * 64, devices="all")
    root = Path(probe["root"])
    smi = root / "usr/bin/nvidia-smi"
    assert os.access(smi, os.X_OK)
    assert smi.read_bytes() == (REPO / "molecule/gaming_twin/twin/gpu/twin_gpu.py").read_bytes()
    inner = str(root / tg.INJECT_STATE)
    out, err = io.StringIO(), io.StringIO()
    assert tg.smi_main(["-L"], state=inner, stdout=out, stderr=err) == 0
    assert out.getvalue() == "GPU 0: NVIDIA GeForce RTX 3090 (UUID: %s)\n" % tg.load_gpus(host.state)[0]["uuid"]
    out = io.StringIO()
    tg.smi_main(["--query-gpu=memory.used", "--format=csv,noheader,nounits"], state=inner, stdout=out)
    assert out.getvalue().strip() == str(1536 + 20000)  # what the GPU held when the container started
    no_gpu = host.start("c" * 64, devices="void")
    assert not (Path(no_gpu["root"]) / "usr/bin/nvidia-smi").exists()
