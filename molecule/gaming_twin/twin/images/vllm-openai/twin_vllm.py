# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""STAND-IN front of vllm/vllm-openai:v0.32.0 for the gaming twin (real vLLM 0.32.0 for CPUs inside).

Imported by sitecustomize.py when the container runs ``python3 -m vllm.entrypoints.openai.api_server
ARGS`` (the vllm role's vllm_entrypoint). Before the real server runs it:

(a) parses ARGS with vLLM 0.32.0's own parser: ``make_arg_parser(FlexibleArgumentParser())`` and
    ``validate_parsed_serve_args`` (vllm/entrypoints/launchers/cli_args.py:421/502) - a bad flag
    exits 2 with argparse's message, as the real image does;
(b) applies vLLM 0.32.0's start-up memory check to the twin GPU, using the figures the twin's
    nvidia-container-runtime-hook stand-in wrote into /run/twin-gpu/gpu.json (CUDA free memory
    when the container started): vllm/v1/worker/utils.py:716 ``request_memory`` -
    requested = ceil(total x gpu_memory_utilization); free < requested raises
    ``ValueError: Free memory on device cuda:0 (F/T GiB) on startup is less than desired GPU
    memory utilization (U, R GiB). ...`` (message text from utils.py:761-769, GiB via
    vllm/utils/mem_utils.py:30 format_gib). That check runs whether or not
    --kv-cache-memory-bytes is given (gpu_worker.py:534-537, init_device). With
    --kv-cache-memory-bytes, gpu_worker.py:649-676 (determine_available_memory) skips profiling
    and reserves exactly that many bytes for the KV cache; the stand-in then also refuses when
    weights + KV bytes + runtime overhead exceed the free memory (what would be a CUDA OOM in
    _initialize_kv_caches on the real GPU);
(c) writes /run/twin-gpu/held_mib.json: what vLLM would hold on the GPU - the requested memory
    (total x utilization; vLLM's profiler sizes the KV cache to fill it), or with
    --kv-cache-memory-bytes: weights + KV bytes + RUNTIME_OVERHEAD_MIB (ASSUMED 1536 MiB: WSL2
    CUDA context about 1.3 GiB + workspaces, the planner's own estimate) where the weights are
    known (KNOWN_WEIGHTS), else the requested memory;
(d) serves for real on the CPU: execs the real API server with the tiny model baked into the
    image, keeping --served-model-name, --max-model-len (capped to what the tiny model supports),
    --max-num-seqs, --host/--port and the API key; dropping the GPU-only flags; adding the local
    profile's CPU flags (--dtype float32, --enforce-eager, VLLM_CPU_KVCACHE_SPACE=1).
One log line says it is a stand-in and what it checked.
"""

import json
import math
import os
import sys

GIB = 1 << 30
MIB = 1 << 20
GPU_FILE = "/run/twin-gpu/gpu.json"
HELD_FILE = "/run/twin-gpu/held_mib.json"
TINY_MODEL = os.environ.get("HOMELAB_TWIN_TINY_MODEL", "/opt/homelab-twin/tiny-qwen2")
TINY_MAX_LEN = int(os.environ.get("HOMELAB_TWIN_TINY_MAX_LEN", "16384"))
RUNTIME_OVERHEAD_MIB = int(os.environ.get("HOMELAB_TWIN_RUNTIME_OVERHEAD_MIB", "1536"))
# Weights on the GPU, bytes. Qwen3-32B-AWQ: the record's model; figure as computed in
# inventories/homelab/group_vars/gaming/vllm.yml (weight_bytes, int4 + scales + fp16 embeddings).
KNOWN_WEIGHTS = {"Qwen/Qwen3-32B-AWQ": 19323000000}
DONE_ENV = "HOMELAB_TWIN_STANDIN_CHECKED"
MODULE = "vllm.entrypoints.openai.api_server"

# flag -> takes a value; dropped because they mean nothing (or fail) on the CPU build
DROP = {"--quantization": True, "-q": True, "--gpu-memory-utilization": True,
        "--kv-cache-memory-bytes": True, "--kv-cache-dtype": True, "--cpu-offload-gb": True,
        "--tensor-parallel-size": True, "-tp": True, "--model": True, "--dtype": True,
        "--max-model-len": True, "--reasoning-parser": True, "--enforce-eager": False}


def log(msg):
    sys.stderr.write("[homelab-twin stand-in] %s\n" % msg)
    sys.stderr.flush()


def format_gib(b):  # vllm/utils/mem_utils.py:30
    return f"{round(b / GIB, 2)}"


def parse(args):
    """vLLM 0.32.0's own parse + validation; SystemExit(2) with argparse's message on a bad flag."""
    from vllm.utils.argparse_utils import FlexibleArgumentParser
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    ns = make_arg_parser(FlexibleArgumentParser()).parse_args(args)
    validate_parsed_serve_args(ns)
    return ns


def memory_check(ns, gpus):
    """(requested bytes, held MiB) or ValueError with vLLM's message."""
    if not gpus:
        raise RuntimeError("Failed to infer device type, please set the environment variable "  # config/device.py:55
                           "`VLLM_LOGGING_LEVEL=DEBUG` to turn on verbose logging to help debug the issue. "
                           "(homelab-twin: no GPU was given to this container: %s is absent)" % GPU_FILE)
    tp = int(getattr(ns, "tensor_parallel_size", 1) or 1)
    if tp > len(gpus):
        raise ValueError(  # vllm/config/parallel.py:1052
            f"World size ({tp}) is larger than the number of "
            f"available GPUs ({len(gpus)}) in this node. If this is "
            "intentional and you are using:\n"
            "- ray, set '--distributed-executor-backend ray'.\n"
            "- multiprocessing, set '--nnodes' appropriately.")
    gpu = gpus[0]
    total = gpu["cuda_total_mib"] * MIB
    free = gpu["cuda_free_mib"] * MIB
    util = ns.gpu_memory_utilization
    requested = math.ceil(total * util)  # vllm/v1/worker/utils.py:724
    if free < requested:  # vllm/v1/worker/utils.py:761
        raise ValueError(
            f"Free memory on device cuda:0 "
            f"({format_gib(free)}/"
            f"{format_gib(total)} GiB) on startup "
            f"is less than desired GPU memory utilization "
            f"({util}, "
            f"{format_gib(requested)} GiB). Decrease GPU memory "
            f"utilization or reduce GPU memory used by other processes.")
    kv = getattr(ns, "kv_cache_memory_bytes", None)
    held = requested
    how = "requested memory %s GiB (total x %s)" % (format_gib(requested), util)
    if kv:
        weights = KNOWN_WEIGHTS.get(ns.model)
        if weights is not None:
            held = weights + int(kv) + RUNTIME_OVERHEAD_MIB * MIB
            how = ("weights %s GiB + kv_cache_memory_bytes %s GiB + runtime %s GiB (assumed)"
                   % (format_gib(weights), format_gib(int(kv)), format_gib(RUNTIME_OVERHEAD_MIB * MIB)))
            if held > free:
                raise MemoryError(
                    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate %s GiB. GPU 0 has a "
                    "total capacity of %s GiB of which %s GiB is free. (homelab-twin: weights + "
                    "--kv-cache-memory-bytes + runtime exceed the free memory)"
                    % (format_gib(int(kv)), format_gib(total), format_gib(max(0, free - weights - RUNTIME_OVERHEAD_MIB * MIB))))
        else:
            how += "; weights of %s unknown to the stand-in, so held = requested" % ns.model
    return free, total, requested, int(math.ceil(held / MIB)), how


def cpu_args(args, ns):
    out, i, dropped = [], 0, []
    while i < len(args):
        arg = args[i]
        flag = arg.split("=", 1)[0]
        if flag in DROP:
            takes = DROP[flag] and "=" not in arg
            if flag not in ("--model", "--max-model-len"):  # replaced below, not dropped
                dropped.append(" ".join(args[i:i + (2 if takes else 1)]))
            i += 2 if takes else 1
            continue
        out.append(arg)
        i += 1
    max_len = ns.max_model_len
    if max_len is None or int(max_len) > TINY_MAX_LEN:
        if max_len is not None:
            log("--max-model-len %s capped to %d: the stand-in's tiny model supports %d positions"
                % (max_len, TINY_MAX_LEN, TINY_MAX_LEN))
        max_len = TINY_MAX_LEN
    served = ns.served_model_name or [ns.model]
    if "--served-model-name" not in [a.split("=", 1)[0] for a in out]:
        out += ["--served-model-name"] + list(served)
    out = ["--model", TINY_MODEL, "--dtype", "float32", "--enforce-eager",
           "--max-model-len", str(max_len)] + out
    return out, dropped


def main(args):
    ns = parse(args)
    try:
        with open(GPU_FILE) as handle:
            gpus = json.load(handle)["gpus"]
    except FileNotFoundError:
        gpus = []
    try:
        free, total, requested, held_mib, how = memory_check(ns, gpus)
    except (ValueError, RuntimeError, MemoryError) as exc:
        log("refusing as vLLM 0.32.0 would (checked against the twin GPU's %s):" % GPU_FILE)
        sys.stderr.write("%s: %s\n" % ("ValueError" if isinstance(exc, ValueError) else type(exc).__name__, exc))
        sys.stderr.write("RuntimeError: Engine core initialization failed. See root cause above.\n")
        sys.exit(1)
    devices = {str(g["index"]): held_mib for g in gpus[:max(1, int(getattr(ns, "tensor_parallel_size", 1) or 1))]}
    tmp = HELD_FILE + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(devices, handle)
    os.replace(tmp, HELD_FILE)
    new_args, dropped = cpu_args(args, ns)
    log("STAND-IN for vllm/vllm-openai:v0.32.0 (real vLLM 0.32.0 on the CPU, tiny model): args parsed by "
        "vLLM 0.32.0's parser; start-up check free %s GiB >= requested %s GiB (%s x %s GiB) on GPU %s passed; "
        "holds %d MiB (%s) in %s; dropped for the CPU: %s; serving %s"
        % (format_gib(free), format_gib(requested), ns.gpu_memory_utilization, format_gib(total),
           gpus[0]["index"], held_mib, how, HELD_FILE, ", ".join(dropped) or "nothing", " ".join(new_args)))
    env = dict(os.environ)
    env[DONE_ENV] = "1"
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.execve(sys.executable, [sys.executable, "-m", MODULE] + new_args, env)
