#!/usr/bin/env python3
"""Does homelab.ai.llm_benchmark agree with `vllm bench serve`? Prints both decode rates and their ratio.

Against one running vLLM server, each repetition runs llm_benchmark (module_utils, chat endpoint,
ignore_eos, concurrency 1) and `vllm bench serve --backend openai-chat --endpoint /v1/chat/completions
--dataset-name random --ignore-eos --max-concurrency 1` with the same output length and prompt length,
in --blocks short blocks per side in ABBA order (ours, vLLM's, vLLM's, ours, ...): the server's own
speed drifts on a shared 2-core host (it sped up from 240 to 370 tok/s over the first repetitions in
one run), and blocks of a few requests each, interleaved, expose both clients to the same drift. A
repetition's figure per side is the mean TPOT over all its requests (each block's mean weighted by
its request count); 1/mean TPOT and the ratio are printed. Before the first repetition the server
is warmed up with --warmup requests, which are not counted.
Goal: the median over repetitions of llm_benchmark / vllm-bench (1/mean TPOT) within 5% of 1, each
repetition within 10%.

Where vllm bench runs (pick one):
  --container NAME   docker exec NAME vllm bench serve ... (the homelab/vllm-cpu image's server container)
  --vllm BIN         a local `vllm` executable (e.g. .cache/vllm-venv/bin/vllm)
Which server:
  --url URL --model NAME --tokenizer PATH_SEEN_BY_VLLM_BENCH [--api-key K]
  or no --url: starts one with tests/support/vllm_server.py's running_vllm_container() (the
  homelab/vllm-cpu image) and runs vllm bench inside that container. It serves --bench-model: bench
  (default), a 93M-parameter model made by the tiny model's generator, which decodes at about 20 ms a
  token on this 2-core host; or tiny, the tests' tiny-qwen2 (2-3 ms a token, where the server's own
  pace swings 2-3x between blocks of requests and a starved client reads a whole answer at once).

Prints a performance ratio, never asserts timings (project rule). Exit 1 only when a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "collections"))
sys.path.insert(0, str(REPO))

from ansible_collections.homelab.ai.plugins.module_utils import llm_benchmark as lb  # noqa: E402


def run_ours(args, num_requests, warmup_requests=1):
    res = lb.run_benchmark({
        "url": args.url, "model": args.model, "api_key": args.api_key, "endpoint": "chat",
        "max_tokens": args.output_len, "num_requests": num_requests, "warmup_requests": warmup_requests,
        "concurrency": 1, "timeout": 600, "tolerance": 0.1,
    })
    return {"mean_tpot_ms": res["tpot_ms"]["mean"], "median_tpot_ms": res["tpot_ms"]["median"],
            "ttft_ms": res["ttft_ms"]["median"], "quality": res["stream_quality"],
            "completed": res["completed"], "output_tokens": res["total_output_tokens"],
            "prompt_tokens": res["total_input_tokens"] // max(1, res["completed"])}


def run_vllm_bench(args, rep, num_prompts):
    cmd = ["vllm", "bench", "serve", "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
           "--base-url", args.bench_url or args.url, "--model", args.model, "--tokenizer", args.tokenizer,
           "--dataset-name", "random", "--random-input-len", str(args.input_len),
           "--random-output-len", str(args.output_len), "--ignore-eos", "--max-concurrency", "1",
           "--num-prompts", str(num_prompts), "--num-warmups", "1", "--request-rate", "inf",
           "--save-result", "--result-dir", "/tmp", "--result-filename", "homelab-bench-%d.json" % rep,
           "--disable-tqdm", "--ready-check-timeout-sec", "0"]
    env = dict(os.environ)
    pin = ["taskset", "-c", str(args.client_cpu)] if args.client_cpu is not None else []
    if args.container:
        full = ["docker", "exec"]
        if args.api_key:
            full += ["-e", "OPENAI_API_KEY=%s" % args.api_key]
        full += [args.container] + pin + cmd
        out = subprocess.run(full, capture_output=True, text=True, timeout=1200)
        if out.returncode:
            raise RuntimeError("vllm bench serve failed:\n%s\n%s" % (out.stdout[-3000:], out.stderr[-3000:]))
        raw = subprocess.run(["docker", "exec", args.container, "cat", "/tmp/homelab-bench-%d.json" % rep],
                             capture_output=True, text=True, check=True).stdout
    else:
        if args.api_key:
            env["OPENAI_API_KEY"] = args.api_key
        full = pin + [args.vllm] + cmd[1:]
        out = subprocess.run(full, capture_output=True, text=True, timeout=1200, env=env)
        if out.returncode:
            raise RuntimeError("vllm bench serve failed:\n%s\n%s" % (out.stdout[-3000:], out.stderr[-3000:]))
        raw = Path("/tmp/homelab-bench-%d.json" % rep).read_text()
    data = json.loads(raw)
    return {"mean_tpot_ms": data["mean_tpot_ms"], "median_tpot_ms": data["median_tpot_ms"],
            "ttft_ms": data["median_ttft_ms"], "completed": data["completed"],
            "output_tokens": data["total_output_tokens"]}


def run_paired(args, count):
    """Alternate single requests of llm_benchmark's client and vLLM's own benchmark client.

    vLLM's request function (vllm/benchmarks/lib/endpoint_request_func.py,
    async_request_openai_chat_completions) and serve.py's TPOT formula, imported from the vllm
    package in this interpreter; each pair runs back to back (order alternating), so host-load
    drift cancels. Returns per-pair ((tpot, ttft) ours, (tpot, ttft) vLLM's), in seconds.
    """
    import asyncio

    import aiohttp
    from vllm.benchmarks.lib.endpoint_request_func import (
        RequestFuncInput,
        async_request_openai_chat_completions,
    )

    if args.api_key:
        os.environ["OPENAI_API_KEY"] = args.api_key  # vLLM's client reads the key from here
    ep = lb.Endpoint(args.url, args.api_key, 600)
    path, payload = lb.build_payload({"model": args.model, "max_tokens": args.output_len,
                                      "prompt": lb.DEFAULT_PROMPT, "endpoint": "chat"})
    conn = ep.connection()
    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session())
    inp = RequestFuncInput(prompt=lb.DEFAULT_PROMPT, api_url=args.url + "/v1/chat/completions",
                           prompt_len=0, output_len=args.output_len, model=args.model, ignore_eos=True)

    def theirs():
        out = loop.run_until_complete(async_request_openai_chat_completions(inp, session))
        if not out.success and "Can not write request body" in (out.error or ""):
            # aiohttp reused a kept-alive connection that the server (uvicorn, 5 s keep-alive) was
            # closing: nothing reached the server, so the request is sent again (vllm bench would
            # count it as failed; here it would end the run).
            print("vLLM's client: the server closed a kept-alive connection; request sent again", flush=True)
            out = loop.run_until_complete(async_request_openai_chat_completions(inp, session))
        if not out.success:
            raise RuntimeError(out.error)
        return (out.latency - out.ttft) / (out.output_tokens - 1), out.ttft  # serve.py calculate_metrics

    def ours():
        rec = lb.stream_request(ep, path, payload, conn=conn)
        if not rec.success:
            raise RuntimeError(rec.error)
        return rec.tpot, rec.ttft

    ours(), theirs()  # warm-up, not counted
    pairs = []
    for i in range(count):
        if i % 2:
            t, o = theirs(), ours()
        else:
            o, t = ours(), theirs()
        pairs.append((o, t))
    loop.run_until_complete(session.close())
    conn.close()
    return pairs


def paired_repetition(args, rep):
    """One repetition of args.num_prompts alternating pairs: llm_benchmark's request, vLLM's request function."""
    pairs = run_paired(args, args.num_prompts)
    o_mean = statistics.mean(p[0][0] for p in pairs)
    t_mean = statistics.mean(p[1][0] for p in pairs)
    o_med = statistics.median(p[0][0] for p in pairs)
    t_med = statistics.median(p[1][0] for p in pairs)
    row = {"rep": rep, "method": "paired", "requests_per_side": len(pairs),
           "ours_tps_mean": 1 / o_mean, "ours_tps_median": 1 / o_med, "vllm_tps_mean": 1 / t_mean,
           "vllm_tps_median": 1 / t_med, "ours_ttft": 1000 * statistics.median(p[0][1] for p in pairs),
           "vllm_ttft": 1000 * statistics.median(p[1][1] for p in pairs),
           "per_pair_ratio_median": statistics.median(p[1][0] / p[0][0] for p in pairs)}
    row["ratio_mean"] = row["ours_tps_mean"] / row["vllm_tps_mean"]
    row["ratio_median"] = row["ours_tps_median"] / row["vllm_tps_median"]
    print("rep %d: llm_benchmark %.1f tok/s (1/mean TPOT), %.1f (1/median) [TTFT %.1f ms] | vLLM's request function "
          "%.1f (1/mean), %.1f (1/median) [TTFT %.1f ms] | ratio %.3f (mean), %.3f (median); median per-pair %.3f"
          % (rep, row["ours_tps_mean"], row["ours_tps_median"], row["ours_ttft"], row["vllm_tps_mean"],
             row["vllm_tps_median"], row["vllm_ttft"], row["ratio_mean"], row["ratio_median"],
             row["per_pair_ratio_median"]), flush=True)
    return row


def vllm_importable():
    try:
        import vllm.benchmarks.lib.endpoint_request_func  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    except ImportError:
        return False
    return True


def run_inside_container(args):
    """Copy this script and the two module_utils it needs into the server's container (which has vllm) and run it there."""
    import io  # pylint: disable=import-outside-toplevel
    import tarfile  # pylint: disable=import-outside-toplevel

    utils = "collections/ansible_collections/homelab/ai/plugins/module_utils"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in ("tests/bench/bench_llm_benchmark.py", utils + "/llm_benchmark.py", utils + "/stream_metrics.py"):
            tar.add(str(REPO / rel), arcname="homelab-bench/" + rel)
    subprocess.run(["docker", "cp", "-", "%s:/tmp" % args.container], input=buf.getvalue(), check=True)
    inner = ["python", "/tmp/homelab-bench/tests/bench/bench_llm_benchmark.py", "--method", "paired",
             "--url", args.bench_url or args.url, "--model", args.model, "--tokenizer", args.tokenizer,
             "--reps", str(args.reps), "--num-prompts", str(args.num_prompts), "--warmup", str(args.warmup),
             "--output-len", str(args.output_len)]
    if args.api_key:
        inner += ["--api-key", args.api_key]
    print("running the paired repetitions inside %s (vllm is importable there)" % args.container, flush=True)
    proc = subprocess.run(["docker", "exec", args.container] + inner, text=True, check=False)
    return proc.returncode


def pooled(blocks):
    """Mean TPOT over every request of the blocks (each block's mean weighted by its requests), median of medians."""
    count = sum(b["completed"] for b in blocks)
    return {"mean_tpot_ms": sum(b["mean_tpot_ms"] * b["completed"] for b in blocks) / count,
            "median_tpot_ms": statistics.median(b["median_tpot_ms"] for b in blocks),
            "ttft_ms": statistics.median(b["ttft_ms"] for b in blocks), "completed": count}


def cli_repetition(args, rep):
    """--blocks blocks per side, ABBA order, args.num_prompts requests per side in all."""
    per_block = max(1, args.num_prompts // args.blocks)
    ours, theirs, qualities = [], [], []
    for block in range(args.blocks):
        order = ("ours", "theirs") if block % 2 == 0 else ("theirs", "ours")
        for side in order:
            if side == "ours":
                res = run_ours(args, per_block)
                if not args.input_len:
                    args.input_len = max(1, res["prompt_tokens"] - args.template_tokens)
                    print("vllm bench --random-input-len %d (llm_benchmark's prompt: %d tokens with the template)"
                          % (args.input_len, res["prompt_tokens"]), flush=True)
                ours.append(res)
                qualities.append(res["quality"])
            else:
                theirs.append(run_vllm_bench(args, rep, per_block))
    o, t = pooled(ours), pooled(theirs)
    row = {
        "rep": rep, "blocks": args.blocks, "requests_per_side": o["completed"],
        "ours_tps_mean": 1000 / o["mean_tpot_ms"], "ours_tps_median": 1000 / o["median_tpot_ms"],
        "vllm_tps_mean": 1000 / t["mean_tpot_ms"], "vllm_tps_median": 1000 / t["median_tpot_ms"],
        "quality": "/".join(sorted(set(qualities))), "ours_ttft": o["ttft_ms"], "vllm_ttft": t["ttft_ms"],
        "ours_blocks_tps": [1000 / b["mean_tpot_ms"] for b in ours],
        "vllm_blocks_tps": [1000 / b["mean_tpot_ms"] for b in theirs],
    }
    row["ratio_mean"] = row["ours_tps_mean"] / row["vllm_tps_mean"]
    row["ratio_median"] = row["ours_tps_median"] / row["vllm_tps_median"]
    print("rep %d: llm_benchmark %.1f tok/s (1/mean TPOT) [%s, TTFT %.1f ms] | vllm bench serve %.1f [TTFT %.1f ms] "
          "| ratio %.3f (mean), %.3f (median of block medians) | blocks ours %s, vLLM's %s"
          % (rep, row["ours_tps_mean"], row["quality"], row["ours_ttft"], row["vllm_tps_mean"], row["vllm_ttft"],
             row["ratio_mean"], row["ratio_median"], " ".join("%.0f" % v for v in row["ours_blocks_tps"]),
             " ".join("%.0f" % v for v in row["vllm_blocks_tps"])), flush=True)
    return row


async def _session():
    import aiohttp

    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))


# The bench model: the tiny model's generator (roles/vllm_cpu_image/files/make_tiny_qwen2_model.py, in the
# homelab/vllm-cpu image) with the sizes of a small real model, 93M parameters in float32. It decodes at
# about 50 tok/s here (20 ms a token, the order of Qwen3-32B-AWQ on the 3090), where the tiny model's 2-3 ms
# a token is at the mercy of which of the two cores the API server, the engine and the client get.
BENCH_MODEL_NAME = "bench-qwen2"
BENCH_MODEL_VOLUME = "homelab_bench_models"
BENCH_MODEL_ARGS = ["--hidden-size", "1024", "--intermediate-size", "2816", "--num-layers", "8",
                    "--num-heads", "16", "--num-kv-heads", "4", "--dtype", "float32"]


def ensure_bench_model(image):
    """Generate the bench model in its own volume unless the generator's marker says it is there."""
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", "%s:/models" % BENCH_MODEL_VOLUME,
                          image, "python", "/opt/homelab/make_tiny_qwen2_model.py", "--output",
                          "/models/" + BENCH_MODEL_NAME] + BENCH_MODEL_ARGS,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode:
        raise RuntimeError("generating the bench model failed:\n%s\n%s" % (out.stdout[-2000:], out.stderr[-2000:]))


@contextlib.contextmanager
def server(args):
    if args.url:
        yield
        return
    from tests.support.vllm_server import (MODEL_NAME, MODEL_PATH, MODEL_VOLUME, VLLM_IMAGE, ensure_images,
                                           running_vllm_container)

    ensure_images()
    model = {"tiny": (MODEL_NAME, MODEL_VOLUME), "bench": (BENCH_MODEL_NAME, BENCH_MODEL_VOLUME)}[args.bench_model]
    if args.bench_model == "bench":
        ensure_bench_model(VLLM_IMAGE)
    path = MODEL_PATH if args.bench_model == "tiny" else "/models/" + BENCH_MODEL_NAME
    with running_vllm_container(volume=model[1], model_path=path, model_name=model[0]) as srv:
        # vllm bench runs inside the server's container: it reaches vLLM on 127.0.0.1:8000 there
        args.url, args.container = srv.base_url, srv.container
        args.bench_url, args.model, args.tokenizer = "http://127.0.0.1:8000", model[0], path
        print("server: %s (%s) in %s" % (model[0], path, srv.container), flush=True)
        yield


def reserved_cpu(container):
    """The CPU vLLM's CPU backend left to its API server and scheduler (it binds OMP threads to the others)."""
    import re  # pylint: disable=import-outside-toplevel

    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False)
    found = re.findall(r"reserved_cpus=\[([0-9, ]*)\]", logs.stdout + logs.stderr)
    if not found or not found[-1].strip():
        raise RuntimeError("no reserved_cpus=[...] in the logs of %s: pass --client-cpu N" % container)
    return int(found[-1].split(",")[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url")
    ap.add_argument("--bench-url", help="the server's URL as seen by vllm bench (inside a container)")
    ap.add_argument("--model", default="tiny-qwen2")
    ap.add_argument("--tokenizer", default="/models/tiny-qwen2")
    ap.add_argument("--api-key")
    ap.add_argument("--bench-model", choices=["bench", "tiny"], default="bench",
                    help="without --url: the model the started server serves; bench (default): 93M parameters, "
                         "about 20 ms a token here; tiny: the tests' tiny-qwen2, 2-3 ms a token")
    ap.add_argument("--container")
    ap.add_argument("--vllm", default="vllm")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--num-prompts", type=int, default=8, help="requests per side per repetition")
    ap.add_argument("--blocks", type=int, default=4,
                    help="blocks per side per repetition, ABBA order (each block: num-prompts/blocks requests)")
    ap.add_argument("--warmup", type=int, default=16, help="requests before the first repetition, not counted")
    ap.add_argument("--input-len", type=int, default=0,
                    help="vllm bench's --random-input-len; 0 (default) matches llm_benchmark's prompt length "
                         "(its usage.prompt_tokens minus the chat template's tokens), since decode cost grows "
                         "with context")
    ap.add_argument("--template-tokens", type=int, default=10,
                    help="tokens the chat template adds around the prompt (tiny-qwen2: 10)")
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--client-cpu", default=None,
                    help="pin both clients to this CPU (llm_benchmark here, vllm bench with taskset in the "
                         "container), so neither competes with the server differently from the other; 'reserved' "
                         "picks the CPU vLLM reserved for its API server (its log: reserved_cpus=[...])")
    ap.add_argument("--method", choices=["paired", "cli"], default="paired",
                    help="paired (default): each repetition alternates single requests of llm_benchmark and vLLM's "
                         "own request function (the one `vllm bench serve --backend openai-chat` sends with), TPOT "
                         "by serve.py's formula, in one process (inside the server's container when vllm is not "
                         "importable here); cli: `vllm bench serve` itself, in --blocks blocks per side, ABBA")
    args = ap.parse_args()

    rows = []
    with server(args):
        if args.client_cpu == "reserved":
            args.client_cpu = reserved_cpu(args.container)
        if args.client_cpu is not None:
            args.client_cpu = int(args.client_cpu)
            os.sched_setaffinity(0, {args.client_cpu})
            print("both clients pinned to CPU %d" % args.client_cpu, flush=True)
        if args.method == "paired" and not vllm_importable():
            if not args.container:
                sys.exit("--method paired needs vllm importable by this interpreter, or --container (or no --url)")
            sys.exit(run_inside_container(args))
        if args.warmup:
            warm = run_ours(args, args.warmup, warmup_requests=0)
            print("warm-up: %d requests, %.1f tok/s (1/mean TPOT), not counted"
                  % (args.warmup, 1000 / warm["mean_tpot_ms"]), flush=True)
        for rep in range(args.reps):
            rows.append(paired_repetition(args, rep) if args.method == "paired" else cli_repetition(args, rep))
    if not rows:
        return
    med_mean = statistics.median(r["ratio_mean"] for r in rows)
    med_median = statistics.median(r["ratio_median"] for r in rows)
    print("median over %d reps: ratio llm_benchmark / vLLM's client = %.3f (1/mean TPOT), %.3f (1/median TPOT)"
          % (len(rows), med_mean, med_median))
    print("agreement within 5%%: %s" % ("yes" if abs(med_mean - 1) <= 0.05 else "NO"))
    lo, hi = min(r["ratio_mean"] for r in rows), max(r["ratio_mean"] for r in rows)
    print("per repetition %.3f to %.3f (1/mean TPOT); each within 10%%: %s"
          % (lo, hi, "yes" if lo >= 0.9 and hi <= 1.1 else "NO"))
    out = Path(tempfile.gettempdir()) / "bench_llm_benchmark.json"
    out.write_text(json.dumps(rows, indent=1))
    print("rows written to %s" % out)


if __name__ == "__main__":
    main()
