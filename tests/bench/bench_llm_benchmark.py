#!/usr/bin/env python3
"""Does homelab.ai.llm_benchmark agree with `vllm bench serve`? Prints both decode rates and their ratio.

Against one running vLLM server, each repetition runs llm_benchmark (module_utils, chat endpoint,
ignore_eos, concurrency 1) before and after `vllm bench serve --backend openai-chat --endpoint
/v1/chat/completions --dataset-name random --ignore-eos --max-concurrency 1` with the same output
length and request count, and prints 1/mean TPOT and 1/median TPOT from each, and the ratio.
Goal: the median over repetitions of llm_benchmark / vllm-bench (1/mean TPOT) within 5% of 1.

Where vllm bench runs (pick one):
  --container NAME   docker exec NAME vllm bench serve ... (the homelab/vllm-cpu image's server container)
  --vllm BIN         a local `vllm` executable (e.g. .cache/vllm-venv/bin/vllm)
Which server:
  --url URL --model NAME --tokenizer PATH_SEEN_BY_VLLM_BENCH [--api-key K]
  or no --url: starts one with tests/support/vllm_server.py's running_vllm_container() (the
  homelab/vllm-cpu image and tiny model) and runs vllm bench inside that container.

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


def run_ours(args):
    res = lb.run_benchmark({
        "url": args.url, "model": args.model, "api_key": args.api_key, "endpoint": "chat",
        "max_tokens": args.output_len, "num_requests": args.num_prompts, "warmup_requests": 1,
        "concurrency": 1, "timeout": 600, "tolerance": 0.1,
    })
    return {"mean_tpot_ms": res["tpot_ms"]["mean"], "median_tpot_ms": res["tpot_ms"]["median"],
            "ttft_ms": res["ttft_ms"]["median"], "quality": res["stream_quality"],
            "completed": res["completed"], "output_tokens": res["total_output_tokens"],
            "prompt_tokens": res["total_input_tokens"] // max(1, res["completed"])}


def run_vllm_bench(args, rep):
    cmd = ["vllm", "bench", "serve", "--backend", "openai-chat", "--endpoint", "/v1/chat/completions",
           "--base-url", args.bench_url or args.url, "--model", args.model, "--tokenizer", args.tokenizer,
           "--dataset-name", "random", "--random-input-len", str(args.input_len),
           "--random-output-len", str(args.output_len), "--ignore-eos", "--max-concurrency", "1",
           "--num-prompts", str(args.num_prompts), "--num-warmups", "1", "--request-rate", "inf",
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


def run_paired(args):
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
    for i in range(args.pairs):
        if i % 2:
            t, o = theirs(), ours()
        else:
            o, t = ours(), theirs()
        pairs.append((o, t))
    loop.run_until_complete(session.close())
    conn.close()
    return pairs


async def _session():
    import aiohttp

    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600))


@contextlib.contextmanager
def server(args):
    if args.url:
        yield
        return
    from tests.support.vllm_server import MODEL_NAME, MODEL_PATH, ensure_images, running_vllm_container

    ensure_images()
    with running_vllm_container() as srv:
        # vllm bench runs inside the server's container: it reaches vLLM on 127.0.0.1:8000 there
        args.url, args.container = srv.base_url, srv.container
        args.bench_url, args.model, args.tokenizer = "http://127.0.0.1:8000", MODEL_NAME, MODEL_PATH
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
    ap.add_argument("--container")
    ap.add_argument("--vllm", default="vllm")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--num-prompts", type=int, default=5)
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
    ap.add_argument("--pairs", type=int, default=0,
                    help="also alternate N single requests of both clients (needs vllm importable here)")
    args = ap.parse_args()

    rows = []
    with server(args):
        if args.client_cpu == "reserved":
            args.client_cpu = reserved_cpu(args.container)
        if args.client_cpu is not None:
            args.client_cpu = int(args.client_cpu)
            os.sched_setaffinity(0, {args.client_cpu})
            print("both clients pinned to CPU %d" % args.client_cpu, flush=True)
        if args.pairs:
            pairs = run_paired(args)
            o_mean = statistics.mean(p[0][0] for p in pairs)
            t_mean = statistics.mean(p[1][0] for p in pairs)
            o_med = statistics.median(p[0][0] for p in pairs)
            t_med = statistics.median(p[1][0] for p in pairs)
            per_pair = [p[1][0] / p[0][0] for p in pairs]
            print("paired TTFT median: llm_benchmark %.1f ms, vLLM's client %.1f ms"
                  % (1000 * statistics.median(p[0][1] for p in pairs),
                     1000 * statistics.median(p[1][1] for p in pairs)))
            print("paired, %d alternating requests each: llm_benchmark %.1f tok/s (1/mean TPOT), %.1f (1/median) | "
                  "vLLM's client %.1f (1/mean), %.1f (1/median) | ratio %.3f (mean), %.3f (median); "
                  "median per-pair ratio %.3f"
                  % (len(pairs), 1 / o_mean, 1 / o_med, 1 / t_mean, 1 / t_med, t_mean / o_mean, t_med / o_med,
                     statistics.median(per_pair)), flush=True)
        for rep in range(args.reps):
            # llm_benchmark runs before and after vllm bench serve, so drift in the host's load
            # (2 shared cores) hits both sides alike; its figures are the mean of the two runs.
            before = run_ours(args)
            if not args.input_len:
                args.input_len = max(1, before["prompt_tokens"] - args.template_tokens)
                print("vllm bench --random-input-len %d (llm_benchmark's prompt: %d tokens with the template)"
                      % (args.input_len, before["prompt_tokens"]), flush=True)
            theirs = run_vllm_bench(args, rep)
            after = run_ours(args)
            ours = {"mean_tpot_ms": (before["mean_tpot_ms"] + after["mean_tpot_ms"]) / 2,
                    "median_tpot_ms": (before["median_tpot_ms"] + after["median_tpot_ms"]) / 2,
                    "ttft_ms": (before["ttft_ms"] + after["ttft_ms"]) / 2,
                    "quality": "%s/%s" % (before["quality"], after["quality"])}
            row = {
                "rep": rep,
                "ours_tps_mean": 1000 / ours["mean_tpot_ms"], "ours_tps_median": 1000 / ours["median_tpot_ms"],
                "vllm_tps_mean": 1000 / theirs["mean_tpot_ms"], "vllm_tps_median": 1000 / theirs["median_tpot_ms"],
                "quality": ours["quality"], "ours_ttft": ours["ttft_ms"], "vllm_ttft": theirs["ttft_ms"],
            }
            row["ratio_mean"] = row["ours_tps_mean"] / row["vllm_tps_mean"]
            row["ratio_median"] = row["ours_tps_median"] / row["vllm_tps_median"]
            rows.append(row)
            print("rep %d: llm_benchmark %.1f tok/s (1/mean TPOT), %.1f (1/median) [%s, TTFT %.1f ms] | "
                  "vllm bench serve %.1f (1/mean), %.1f (1/median) [TTFT %.1f ms] | ratio %.3f (mean), %.3f (median)"
                  % (rep, row["ours_tps_mean"], row["ours_tps_median"], row["quality"], row["ours_ttft"],
                     row["vllm_tps_mean"], row["vllm_tps_median"], row["vllm_ttft"], row["ratio_mean"],
                     row["ratio_median"]), flush=True)
    if not rows:
        return
    med_mean = statistics.median(r["ratio_mean"] for r in rows)
    med_median = statistics.median(r["ratio_median"] for r in rows)
    print("median over %d reps: ratio llm_benchmark / vllm bench serve = %.3f (1/mean TPOT), %.3f (1/median TPOT)"
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
