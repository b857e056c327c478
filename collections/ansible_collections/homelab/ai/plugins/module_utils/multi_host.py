# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A model no single host holds: vLLM's pipeline parallelism over several hosts, with Ray (pure logic).

vLLM's guide (docs/serving/parallelism_scaling.md, "Multi-node deployment"): tensor_parallel_size = GPUs
per node, pipeline_parallel_size = nodes; start a Ray head (``ray start --head --port=6379``) and one Ray
worker per other node (``ray start --address=<head>:6379``), every node with the same execution
environment (image, vLLM and Ray versions, the model at the same path), ``VLLM_HOST_IP`` set to each
node's own address on a private segment (the traffic is unencrypted), then ONE ``vllm serve ...
--pipeline-parallel-size N --tensor-parallel-size M --distributed-executor-backend ray`` on the head.

What vLLM 0.32.0 itself does (read in the image homelab/vllm-cpu:0.32.0, site-packages/vllm):

* layers: distributed/utils.py get_pp_indices splits num_hidden_layers evenly unless
  ``VLLM_PP_LAYER_PARTITION`` ("40,24", one count per stage, summing to the layers) says otherwise; the
  plan sets it proportional to each stage's memory. ray/ray_env.py copies every ``VLLM_*`` variable
  of the head to the Ray workers, so it is set on the head only.
* one ``--gpu-memory-utilization`` for every worker (the lowest any stage accepts) and one KV size: the
  engine keeps the smallest number of KV blocks any worker has, so the context is the smallest any stage
  holds.
* per token each stage boundary sends IntermediateTensors ``hidden_states`` and ``residual``
  (models/qwen2.py, llama.py: make_empty_intermediate_tensors_factory(["hidden_states", "residual"],
  hidden_size)): 2 x hidden_size x activation bytes.
* the CPU platform has no ``ray_device_key`` (platforms/interface.py; only cuda, rocm and xpu set it), so
  ``initialize_ray_cluster`` refuses: "current platform cpu does not support ray" (v1/executor/ray_utils.py).
* Ray: requirements/cuda.txt asks ``ray[cgraph]>=2.48.0`` (Ray Compiled Graph, used by pipeline parallelism).

Speed (decode at batch 1, memory-bandwidth bound as in vllm_plan.predict_speed): the stages run one after
the other, each reading its share of the weights and of the KV at its own GPU's bandwidth
(vllm_plan.predict_speed on the stage's layers), plus, per stage boundary, one activation hop over the
network (HOP_LATENCY_S + activation bytes / link), plus one hop back to the head with the sampled token
(latency only). The penalty is measured against a hypothetical single GPU holding all the memory at the
bandwidth of the fastest GPU of the pipeline.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import math

from ansible_collections.homelab.ai.plugins.module_utils import gpu_ledger as gl
from ansible_collections.homelab.ai.plugins.module_utils import model_registry
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as vp
from ansible_collections.homelab.ai.plugins.module_utils import vllm_releases

GIB = 1024 ** 3
# The planner's own host in a fleet (vllm_plan.plan(fleet_gpus=...)): the Ray head, first stage.
THIS_HOST = "this host"
RAY_PORT = 6379
# Ray's other ports, pinned so a firewall can name them (``ray start --help`` of Ray 2.60; Ray's
# "Configuring Ray" port table: dashboard 8265, client 10001, workers 10002-19999 by default).
RAY_PINNED_PORTS = (("--node-manager-port", 6800), ("--object-manager-port", 6801),
                    ("--metrics-export-port", 6802), ("--runtime-env-agent-port", 6803),
                    ("--dashboard-agent-grpc-port", 6804), ("--dashboard-agent-listen-port", 52365))
RAY_WORKER_PORTS = (10002, 10999)
# torch.distributed's store on the head: vLLM takes VLLM_PORT as its first port and counts up from it
# (vllm/envs.py, VLLM_PORT).
VLLM_DIST_PORT = 29500
VLLM_API_PORT = 8000
# ESTIMATE, one stage-to-stage message on a switched gigabit LAN: an ICMP round trip between two hosts
# behind one switch is 0.1-0.3 ms (ping), one-way half of it; gloo/NCCL over TCP sockets and vLLM's
# per-step bookkeeping of the intermediate tensors add about as much again: 0.3 ms, the upper end. Replace with a measured
# figure (vLLM's TPOT with PP=2 minus the two stages' decode times) once a fleet runs.
HOP_LATENCY_S = 0.0003
DEFAULT_LINK_GBPS = 1.0
# 10 GbE: a 2048-token prompt moves 2048 x 2 x hidden x 2 B between stages (40 MiB for hidden 5120):
# 0.34 s on 1 GbE, 0.03 s on 10 GbE; decode (20 KiB a token) is latency bound on either.
RECOMMENDED_LINK_GBPS = 10.0
DEFAULT_SHM_GIB = 10
ACTIVATION_BYTES = {"float32": 4}
TP_SIZES = (1, 2, 4, 8)


def _node(name, spec, reserve):
    """One host: GPUs (gpu_facts dicts) sorted by usable memory, what others hold, its address."""
    spec = {"gpus": spec} if isinstance(spec, list) else dict(spec)
    gpus = [gl.validate_gpu(g) for g in spec.get("gpus") or []]
    is_wsl = bool(spec.get("is_wsl"))
    given = spec.get("others_gib") or {}
    others = dict((g["index"], float(given.get(g["index"], gl.used_gib(g)))) for g in gpus)
    host = {"is_wsl": is_wsl, "others": others, "reserve": float(reserve),
            "ctx": gl.process_context_gib(is_wsl, gl.DEFAULT_WSL_CUDA_CONTEXT_GIB)}
    gpus.sort(key=lambda g: (-(gl.cuda_total_gib(g, is_wsl) - others[g["index"]]), g["index"]))
    return {"name": name, "gpus": gpus, "host": host, "address": spec.get("address") or "<IP of %s>" % name,
            "interface": spec.get("interface") or "<NIC of %s>" % name}


def _slice(entry, node, tp, feats, weight_bytes=0, layers=None):
    """The planner's own memory arithmetic (vllm_plan._Slice) for the tightest of the stage's tp GPUs."""
    stage = dict(entry, weight_bytes=int(weight_bytes), layers=layers or entry["layers"])
    gpu = min(node["gpus"][:tp], key=lambda g: gl.cuda_total_gib(g, node["host"]["is_wsl"]) - node["host"]["others"][g["index"]])
    return vp._Slice(stage, gpu, node["host"], feats, tp, None)  # pylint: disable=protected-access


def _room_gib(entry, node, tp, feats, util):
    """GiB the stage's tp GPUs hold for weights + KV at ``util`` (planner ledger: minus activations, graphs)."""
    return tp * max(0.0, _slice(entry, node, tp, feats).kv_gib(util))


def _stage_util(entry, node, tp, feats, requested):
    return _slice(entry, node, tp, feats).planned_util(requested)


def _embedding_bytes(entry):
    """ESTIMATE: embed_tokens on the first stage and lm_head on the last, vocab x hidden in fp16 each."""
    if not entry.get("vocab_size") or not entry.get("hidden_size"):
        return 0
    return entry["vocab_size"] * entry["hidden_size"] * 2


def _need_gib(entry, tokens):
    """Weights and the KV of ``tokens`` for the whole model, in GiB."""
    return (entry["weight_bytes"] + model_registry.kv_bytes_per_token(entry) * tokens) / float(GIB)


def _candidates(entry, nodes, head, tp, feats, util, tokens):
    """Stages for one tensor-parallel size: the head first, then the roomiest hosts, until the model fits."""
    able = [n for n in nodes if len(n["gpus"]) >= tp]
    if head not in [n["name"] for n in able]:
        return None
    first = [n for n in able if n["name"] == head]
    rest = sorted([n for n in able if n["name"] != head], key=lambda n: (-_room_gib(entry, n, tp, feats, util), n["name"]))
    chosen = []
    for node in first + rest:
        chosen.append(node)
        stage_util = min(_stage_util(entry, n, tp, feats, util) for n in chosen)
        if sum(_room_gib(entry, n, tp, feats, stage_util) for n in chosen) >= _need_gib(entry, tokens):
            return chosen, stage_util
    stage_util = min(_stage_util(entry, n, tp, feats, util) for n in chosen)
    return chosen, stage_util


def split_layers(layers, rooms):
    """Layers per stage proportional to ``rooms`` (largest remainder), at least one each."""
    total = float(sum(rooms))
    exact = [layers * r / total for r in rooms]
    counts = [max(1, int(math.floor(x))) for x in exact]
    order = sorted(range(len(rooms)), key=lambda i: (-(exact[i] - math.floor(exact[i])), i))
    for i in order:
        if sum(counts) >= layers:
            break
        counts[i] += 1
    while sum(counts) > layers:
        counts[counts.index(max(counts))] -= 1
    return counts


def _stages(entry, chosen, tp, feats, util, tokens):
    """Per stage: layers (proportional to memory left beside the embeddings), weights, KV room, context."""
    emb = _embedding_bytes(entry)
    per_layer = (entry["weight_bytes"] - 2 * emb) / float(entry["layers"])
    kv_layer = model_registry.kv_bytes_per_token(entry) / float(entry["layers"])
    rooms = [_room_gib(entry, n, tp, feats, util) * GIB for n in chosen]
    emb_on = [emb * ((i == 0) + (i == len(chosen) - 1)) for i in range(len(chosen))]
    counts = split_layers(entry["layers"], [max(1.0, r - e) for r, e in zip(rooms, emb_on)])
    stages, start = [], 0
    for i, node in enumerate(chosen):
        weight_bytes = int(per_layer * counts[i] + emb_on[i])
        sl = _slice(entry, node, tp, feats, weight_bytes, counts[i])
        stages.append({"host": node["name"], "gpus": [g["index"] for g in node["gpus"][:tp]],
                       "gpu": " + ".join(g["label"] for g in node["gpus"][:tp]), "layers": counts[i],
                       "first_layer": start, "last_layer": start + counts[i] - 1,
                       "weights_gib": round(weight_bytes / float(GIB), 2), "room_gib": round(rooms[i] / GIB, 2),
                       "kv_gib": round(tp * max(0.0, sl.kv_gib(util)), 2),
                       "max_context": sl.max_context(util, entry["max_context"]),
                       "kv_bytes_per_token": int(kv_layer * counts[i]),
                       "memory_bandwidth_gbps": min(g["bandwidth_gbps"] or 0 for g in node["gpus"][:tp]) or None,
                       "_weight_bytes": weight_bytes})
        start += counts[i]
    return stages


def activation_bytes_per_token(entry):
    """hidden_states + residual sent at a stage boundary, per token (see the module's sources)."""
    return 2 * (entry.get("hidden_size") or 0) * ACTIVATION_BYTES.get(entry["dtype"], 2)


def predict_pipeline_speed(entry, stages, tp, link_gbps, context, efficiency):
    """Decode tok/s at batch 1 over the stages, the network's share, and the single-GPU comparison."""
    if not all(s["memory_bandwidth_gbps"] for s in stages):
        return {"expected_tokens_per_second": None, "why": "memory bandwidth of a GPU unknown (gpu_catalog.py)"}
    compute = 0.0
    for s in stages:
        stage_model = dict(entry, weight_bytes=s["_weight_bytes"], layers=s["layers"])
        compute += 1.0 / vp.predict_speed(stage_model, s["memory_bandwidth_gbps"], context, tp, efficiency=efficiency)[1]
    act = activation_bytes_per_token(entry)
    hops = len(stages) - 1
    network = hops * (HOP_LATENCY_S + act / (link_gbps * 1e9 / 8)) + (HOP_LATENCY_S if hops else 0.0)
    fastest = max(s["memory_bandwidth_gbps"] for s in stages)
    single = vp.predict_speed(entry, fastest, context, 1, efficiency=efficiency)[1]
    pipeline = 1.0 / (compute + network)
    return {"expected_tokens_per_second": round(pipeline, 1), "context": context,
            "compute_ms_per_token": round(compute * 1e3, 2), "network_ms_per_token": round(network * 1e3, 3),
            "activation_bytes_per_token": act, "hops": hops, "hop_latency_ms": HOP_LATENCY_S * 1e3,
            "link_gbps": link_gbps, "single_gpu_tokens_per_second": single,
            "single_gpu": "one GPU of %d GB/s holding all the memory (hypothetical)" % fastest,
            "penalty_percent": round(100.0 * (1.0 - pipeline / single), 1)}


def _ray_ports():
    return " ".join("%s=%d" % flag for flag in RAY_PINNED_PORTS) + " --min-worker-port=%d --max-worker-port=%d" % RAY_WORKER_PORTS


def node_env(node):
    """What every node exports before ``ray start`` (parallelism_scaling.md; distributed_troubleshooting.md)."""
    return {"VLLM_HOST_IP": node["address"], "NCCL_SOCKET_IFNAME": node["interface"],
            "GLOO_SOCKET_IFNAME": node["interface"]}


def _serve_line(args):
    """``vllm serve`` takes the model as its first, positional argument (vllm/entrypoints/cli/serve.py)."""
    args = list(args)
    if "--model" in args:
        at = args.index("--model")
        model = args[at + 1]
        del args[at:at + 2]
        args.insert(0, model)
    return " ".join(args)


def launch(stages, nodes, tp, serve_args, partition):
    """The head's and each worker's commands, in order, as strings for a shell on each host."""
    by_name = dict((n["name"], n) for n in nodes)
    head = by_name[stages[0]["host"]]

    def exports(node):
        return "export " + " ".join("%s=%s" % kv for kv in sorted(node_env(node).items()))

    head_cmds = [exports(head),
                 "ray start --head --port=%d --node-ip-address=%s --num-gpus=%d %s"
                 % (RAY_PORT, head["address"], tp, _ray_ports()),
                 "ray status  # wait for %d nodes with %d GPUs" % (len(stages), len(stages) * tp),
                 "VLLM_PP_LAYER_PARTITION=%s VLLM_PORT=%d vllm serve %s" % (partition, VLLM_DIST_PORT, _serve_line(serve_args))]
    workers = dict((s["host"], [exports(by_name[s["host"]]),
                                "ray start --address=%s:%d --node-ip-address=%s --num-gpus=%d %s --block"
                                % (head["address"], RAY_PORT, by_name[s["host"]]["address"], tp, _ray_ports())])
                   for s in stages[1:])
    return {"head": head_cmds, "workers": workers, "order": "head's ray start, then every worker's, then vllm serve on the head"}


def network_requirements(entry, link_gbps):
    prompt_bytes = vp.TYPICAL_CONTEXT * activation_bytes_per_token(entry)
    return {
        "same_everywhere": ["the same image: the same vLLM, Python and Ray versions (Ray refuses a node of another "
                            "version; vLLM's requirements/cuda.txt asks ray[cgraph]>=2.48.0)",
                            "the model at the same path on every node (%s), downloaded before the start"
                            % entry["source"]],
        "docker": ["--network host (Ray and NCCL/gloo connect to the node's own address and to ports they "
                   "choose)", "--shm-size %dg (vLLM's run_cluster.sh)" % DEFAULT_SHM_GIB, "--gpus all",
                   "-e VLLM_HOST_IP=<this node's address> (unique per node)"],
        "ports_head": [RAY_PORT, VLLM_API_PORT, 8265, 10001] + [VLLM_DIST_PORT + i for i in range(4)],
        "ports_every_node": [port for flag, port in RAY_PINNED_PORTS if flag] + ["%d-%d" % RAY_WORKER_PORTS],
        "ephemeral": "NCCL and gloo open connections on ports they choose: allow all TCP between the nodes "
                     "on a private segment (vLLM's traffic is unencrypted and its pickled messages can "
                     "execute code: never on an untrusted network)",
        "link_gbps": link_gbps, "recommended_link_gbps": RECOMMENDED_LINK_GBPS,
        "prompt_transfer_seconds": round(prompt_bytes / (link_gbps * 1e9 / 8), 3),
        "prompt_transfer_note": "a %d-token prompt moves %.1f MiB across each stage boundary"
                                % (vp.TYPICAL_CONTEXT, prompt_bytes / float(2 ** 20)),
    }


def _refusal(entry, nodes, tp, feats, util, tokens, chosen):
    have = sum(_room_gib(entry, n, tp, feats, util) for n in chosen)
    need = _need_gib(entry, tokens)
    short = need - have
    return {"fits": False, "hosts": [n["name"] for n in chosen], "tensor_parallel_size": tp,
            "pipeline_parallel_size": len(chosen), "gpu_memory_utilization": util,
            "needed_gib": round(need, 2), "available_gib": round(have, 2),
            "rooms_gib": dict((n["name"], round(_room_gib(entry, n, tp, feats, util), 2)) for n in chosen), "shortfall_gib": round(max(short, 0.0), 2),
            "why": ["model '%s' needs %.2f GiB (weights + KV of %d tokens) and all %d hosts (%s) offer %.2f GiB for "
                    "weights and KV at gpu_memory_utilization %.2f: short by %.2f GiB"
                    % (entry["_name"], need, tokens, len(nodes), ", ".join(n["name"] for n in nodes), have, util,
                       max(short, 0.0))]}


def _pick(entry, nodes, head, feats, util, tokens):
    """(stages' nodes, tp, util, fits): fewest hosts first, then the largest tp (more GPUs read in parallel)."""
    heads = entry.get("attention_heads") or entry["kv_heads"]
    best = None
    for tp in TP_SIZES:
        if heads % tp or (entry["kv_heads"] % tp and tp % entry["kv_heads"]):
            continue
        found = _candidates(entry, nodes, head, tp, feats, util, tokens)
        if not found:
            continue
        chosen, stage_util = found
        have = sum(_room_gib(entry, n, tp, feats, stage_util) for n in chosen)
        fits = have >= _need_gib(entry, tokens)
        key = (not fits, len(chosen), -tp)
        if best is None or key < best[0]:
            best = (key, chosen, tp, stage_util, fits)
    return best[1:] if best else (None, None, util, False)


def _serve_args(entry, quant, tp, pp, context, util):
    args = vp._base_args(entry, quant, entry["dtype"])  # pylint: disable=protected-access
    args += ["--max-model-len", str(context), "--gpu-memory-utilization", "%g" % util,
             "--pipeline-parallel-size", str(pp), "--tensor-parallel-size", str(tp),
             "--distributed-executor-backend", "ray", "--host", "0.0.0.0", "--port", str(VLLM_API_PORT)]
    if entry.get("reasoning_parser"):
        args += vllm_releases.reasoning_args(entry["reasoning_parser"], entry["_vllm_version"])[0]
    return args


def pipeline_option(model, hosts, head=None, vllm_version="0.32.0", name=None, gpu_memory_utilization=0.9,
                    link_gbps=DEFAULT_LINK_GBPS, max_model_len=None, gpu_reserve_gib=gl.DEFAULT_GPU_RESERVE_GIB):
    """The multi-host pipeline-parallel option for ``model`` over ``hosts`` (name -> gpu_facts GPUs, or a dict
    with gpus, address, interface, is_wsl, others_gib); ``head`` serves the API and holds the first stage
    (default: the host with the most memory). Returns a dict; ``fits`` False carries ``shortfall_gib``."""
    entry = vp.registry_entry(model, name or model.get("_name") or "model")
    entry["_vllm_version"] = vllm_version
    feats = vllm_releases.features(vllm_version)
    nodes = [_node(n, hosts[n], gpu_reserve_gib) for n in sorted(hosts)]
    nodes = [n for n in nodes if n["gpus"]]
    if not nodes:
        return {"fits": False, "shortfall_gib": None, "why": ["no host of the fleet has a GPU"]}
    if head is None or head not in [n["name"] for n in nodes]:
        head = max(nodes, key=lambda n: (_room_gib(entry, n, 1, feats, gpu_memory_utilization), n["name"]))["name"]
    # Must hold: the requested context, else the planner's minimum useful one; aims at the default context.
    tokens = min(int(max_model_len), entry["max_context"]) if max_model_len else vp.MIN_USEFUL_CONTEXT
    chosen, tp, util, fits = _pick(entry, nodes, head, feats, gpu_memory_utilization, tokens)
    if not chosen:
        return {"fits": False, "shortfall_gib": None, "why": ["no tensor-parallel size divides the model's heads"]}
    if not fits:
        return _refusal(entry, nodes, tp, feats, util, tokens, chosen)
    stages = _stages(entry, chosen, tp, feats, util, tokens)
    largest = min(s["max_context"] for s in stages)
    context = min(largest, int(max_model_len or entry["default_context"]))
    if largest < tokens:
        return dict(_refusal(entry, nodes, tp, feats, util, tokens, chosen), why=[
            "layers split %s leave a stage %d tokens of KV, fewer than %d" % (
                ",".join(str(s["layers"]) for s in stages), largest, tokens)])
    cc = min(g["cc"] or 0 for n in chosen for g in n["gpus"][:tp]) or None
    try:
        quant, kernel_eff, warnings = vp.choose_quantization(entry, cc, feats, "the pipeline's GPUs")
    except vp.PlanRefused as exc:
        return {"fits": False, "shortfall_gib": 0.0, "hosts": [n["name"] for n in chosen], "why": [str(exc)]}
    partition = ",".join(str(s["layers"]) for s in stages)
    args = _serve_args(entry, quant, tp, len(stages), context, util)
    speed = predict_pipeline_speed(entry, stages, tp, link_gbps, min(context, vp.TYPICAL_CONTEXT),
                                   vp.EFFICIENCY_MARLIN_GRAPHS * kernel_eff)
    for s in stages:
        s.pop("_weight_bytes")
    return {"fits": True, "head": head, "hosts": [s["host"] for s in stages], "pipeline_parallel_size": len(stages),
            "tensor_parallel_size": tp, "gpu_memory_utilization": util, "max_model_len": context,
            "largest_context": largest, "quantization": quant, "layer_partition": partition, "stages": stages,
            "args": args, "env": {"VLLM_PP_LAYER_PARTITION": partition, "VLLM_PORT": str(VLLM_DIST_PORT)},
            "node_env": dict((n["name"], node_env(n)) for n in chosen),
            "launch": launch(stages, nodes, tp, args, partition), "network": network_requirements(entry, link_gbps),
            "speed": speed, "warnings": warnings + list(feats["warnings"]), "shortfall_gib": 0.0}


def summary(option):
    """One sentence for the planner's refusal."""
    if not option.get("fits"):
        return "Even pipeline parallelism over the fleet does not hold it: %s." % "; ".join(option.get("why") or [])
    speed = option["speed"]
    return ("Multi-host option: pipeline parallelism over %d hosts (%s) with Ray, PP %d x TP %d, layers %s, "
            "about %s tok/s expected (%s%% below one GPU of the combined memory at %s tok/s, %s ms a token on "
            "the network); see the plan's multi_host for the launch and network requirements."
            % (len(option["hosts"]), ", ".join(option["hosts"]), option["pipeline_parallel_size"],
               option["tensor_parallel_size"], option["layer_partition"], speed["expected_tokens_per_second"],
               speed.get("penalty_percent"), speed.get("single_gpu_tokens_per_second"),
               speed.get("network_ms_per_token")))
