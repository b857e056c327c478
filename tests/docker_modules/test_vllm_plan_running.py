# -*- coding: utf-8 -*-
"""vllm_plan asks the real Docker daemon which of the stack's containers run (stack_containers)."""
import http.server
import json
import os
import socketserver
import sys
import threading

from conftest import BASE_IMAGE, docker, run_module

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections", "ansible_collections", "homelab",
                                 "ai", "tests", "unit", "plugins", "module_utils"))
from inventory_models import LOCAL, inventory_model  # noqa: E402  pylint: disable=wrong-import-position

WSL = {"is_wsl": False, "wsl_version": None, "kernel_release": "6.1.0", "pin_memory": True}


def plan(**extra):
    args = dict(name="tiny-qwen2", model=inventory_model(LOCAL, "tiny-qwen2"), gpus=[], wsl=WSL,
                vllm_version="0.32.0", allow_cpu_offload=False)
    args.update(extra)
    return run_module("vllm_plan", args)


def test_only_running_containers_of_the_stack_count(prefix):
    running, stopped = prefix + "-vllm", prefix + "-image-server"
    docker("run", "-d", "--name", running, BASE_IMAGE, "sleep", "300")
    docker("create", "--name", stopped, BASE_IMAGE, "sleep", "300")
    result = plan(stack_containers={"vllm": running, "image_server": stopped, "dashboard": prefix + "-missing"})
    assert not result.get("failed"), result.get("msg")
    assert result["running"] == ["vllm"]
    # Exact names: Docker's own name filter would also match "<name>-rollback".
    docker("rm", "-f", running)
    docker("run", "-d", "--name", running + "-rollback", BASE_IMAGE, "sleep", "300")
    assert plan(stack_containers={"vllm": running})["running"] == []
    # What the caller passes is kept; nothing asked of the daemon without stack_containers.
    assert plan(running=["image_server"])["running"] == ["image_server"]


def test_an_unreachable_daemon_fails_naming_the_socket(tmp_path):
    result = plan(stack_containers={"vllm": "homelab-vllm"}, docker_host="unix://%s/none.sock" % tmp_path)
    assert result.get("failed")
    assert "stack_containers: Cannot reach the Docker daemon at unix://%s/none.sock" % tmp_path in result["msg"]


class FailingDaemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """STAND-IN for a Docker daemon that answers the SDK's version check and ping, then fails an inspect
    with a 500, as a daemon that is restarting or out of disk space does: the real daemon here cannot be
    made to do that on demand. It counts the inspects it refused."""
    daemon_threads = True
    refused = 0


class FailingDaemonHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        if self.path.endswith("/version"):
            self.reply(200, {"ApiVersion": "1.43", "Version": "24.0.7"})
        elif self.path.endswith("/_ping"):
            self.reply(200, "OK")
        elif "/containers/" in self.path:
            self.server.refused += 1
            self.reply(500, {"message": "write /var/lib/docker/containers: no space left on device"})
        else:
            self.reply(404, {"message": "page not found"})

    def reply(self, status, body):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


def test_a_daemon_error_other_than_no_such_container_fails_saying_what_and_where(tmp_path):
    sock = str(tmp_path / "docker.sock")
    server = FailingDaemon(sock, FailingDaemonHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = plan(stack_containers={"vllm": "homelab-vllm"}, docker_host="unix://" + sock)
    finally:
        server.shutdown()
        server.server_close()
    assert server.refused >= 1, "the module never asked about the container"
    assert result.get("failed")
    msg = result["msg"]
    assert msg.startswith("stack_containers: the Docker daemon at unix://%s failed while" % sock), msg
    assert "homelab-vllm" in msg and "no space left on device" in msg and "Nothing was planned" in msg
    assert "MODULE FAILURE" not in msg
