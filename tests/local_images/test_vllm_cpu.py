# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local profile's vLLM-CPU image and tiny model, checked against a real server.

Needs the Docker daemon; builds the images on first use (about 10 min cold, PyPI needed),
then the module takes about 2 min (one server start, two playbook runs).
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tests.support.docker_cli import run_docker
from tests.support.vllm_server import (
    MODEL_NAME,
    MODEL_PATH,
    MODEL_VOLUME,
    VLLM_IMAGE,
    ensure_images,
    run_playbook,
    running_vllm,
)

pytestmark = pytest.mark.needs_vllm_image


@pytest.fixture(scope="module")
def images():
    ensure_images()


@pytest.fixture(scope="module")
def vllm_url(images):
    with running_vllm() as base_url:
        yield base_url


def _in_image(*cmd: str, volume: bool = False) -> str:
    mount = ["-v", f"{MODEL_VOLUME}:/models:ro"] if volume else []
    return run_docker("run", "--rm", "--network", "none", *mount, VLLM_IMAGE, *cmd, timeout=300).stdout


def test_vllm_cli_reports_its_version(images):
    out = _in_image("vllm", "--version")
    assert out.strip().splitlines()[-1].startswith("0.32.0"), out


def test_image_keeps_cpu_torch_and_drops_cuda_extras(images):
    code = ("import importlib.util as u, json, torch, os; "
            "print(json.dumps({'torch': torch.__version__, 'uid': os.getuid(), "
            "'gone': [m for m in ('torchvision', 'torchaudio', 'torchcodec', 'triton') if u.find_spec(m) is None]}))")
    info = json.loads(_in_image("python", "-c", code).strip().splitlines()[-1])
    assert info["torch"] == "2.13.0+cpu"
    assert info["gone"] == ["torchvision", "torchaudio", "torchcodec", "triton"]
    assert info["uid"] != 0, "the image should run as the non-root user vllm"


def test_model_volume_holds_a_qwen2_model_with_chat_template(images):
    code = (
        "import json, os; d = %r; "
        "cfg = json.load(open(os.path.join(d, 'config.json'))); "
        "tok = json.load(open(os.path.join(d, 'tokenizer_config.json'))); "
        "tmpl = tok.get('chat_template') or (open(os.path.join(d, 'chat_template.jinja')).read() "
        "if os.path.exists(os.path.join(d, 'chat_template.jinja')) else ''); "
        "print(json.dumps({'files': sorted(os.listdir(d)), 'arch': cfg['architectures'], "
        "'vocab': cfg['vocab_size'], 'layers': cfg['num_hidden_layers'], 'template': tmpl, "
        "'marker': json.load(open(os.path.join(d, '.homelab-tiny-model.json')))['marker']}))" % MODEL_PATH)
    info = json.loads(_in_image("python", "-c", code, volume=True).strip().splitlines()[-1])
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert name in info["files"]
    assert info["arch"] == ["Qwen2ForCausalLM"]
    assert 2000 <= info["vocab"] <= 4096
    assert "<|im_start|>" in info["template"] and "<|im_end|>" in info["template"]
    assert re.fullmatch(r"[0-9a-f]{64}", info["marker"])


def test_server_lists_the_tiny_model(vllm_url):
    with urllib.request.urlopen(f"{vllm_url}/v1/models", timeout=30) as resp:
        models = json.load(resp)
    assert [m["id"] for m in models["data"]] == [MODEL_NAME]
    assert models["data"][0]["max_model_len"] == 2048


def test_chat_completion_streams_tokens(vllm_url):
    body = {
        "model": MODEL_NAME,
        "messages": [{"role": "user", "content": "Say something about Python."}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,  # random weights: don't let an early <|im_end|> end the test
    }
    req = urllib.request.Request(f"{vllm_url}/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    events = []
    with urllib.request.urlopen(req, timeout=120) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for raw in resp:
            line = raw.decode().strip()
            if line.startswith("data: "):
                events.append(line[len("data: "):])
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    content = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")]
    finish = [c["choices"][0].get("finish_reason") for c in chunks if c.get("choices")]
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert sum(1 for piece in content if piece) >= 2, f"expected several streamed pieces, got {content!r}"
    assert "length" in finish
    assert usage[-1]["completion_tokens"] == 16


def test_second_playbook_run_changes_nothing(images):
    first = run_playbook()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = run_playbook()
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    recap = re.search(r"^localhost\s*:.*$", second.stdout, re.MULTILINE)
    assert recap, second.stdout[-3000:]
    assert re.search(r"\bchanged=0\b", recap.group(0)), second.stdout[-5000:]
    assert re.search(r"\bfailed=0\b", recap.group(0))
