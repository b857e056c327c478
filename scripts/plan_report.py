#!/usr/bin/env python3
"""Print what homelab.ai.vllm_plan decides for the decision record's host, ledger included.

The model, release, max_num_seqs and co-tenants come from the gaming inventory
(inventories/homelab/group_vars/gaming/vllm.yml, the one place they are written); the GPU is the
record's RTX 3090 under WSL2 with the desktop holding --desktop-mib. Usage:

    .venv/bin/python scripts/plan_report.py [--release 0.8.5] [--desktop-mib 1536] [--image-server-on cuda|cpu]
"""
import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.homelab.ai.plugins.module_utils import vllm_plan as vp  # noqa: E402


def main():
    inv = yaml.safe_load((ROOT / "inventories/homelab/group_vars/gaming/vllm.yml").read_text())
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--release", action="append", help="vLLM release (repeatable); default 0.8.5 and the inventory's")
    ap.add_argument("--desktop-mib", type=int, default=1536, help="GPU memory Windows' desktop holds")
    ap.add_argument("--image-server-on", choices=("inventory", "cuda", "cpu"), default="inventory")
    args = ap.parse_args()
    model = dict(inv["vllm_models"][inv["vllm_model"]])
    gpu = {"index": 0, "name": "NVIDIA GeForce RTX 3090", "memory_total_mib": 24576,
           "memory_free_mib": 24576 - args.desktop_mib, "compute_capability": "8.6", "memory_bandwidth_gbps": 936.2}
    wsl = {"is_wsl": True, "wsl_version": 2, "kernel_release": "5.15.167.4-microsoft-standard-WSL2"}
    tenants = [dict(t) for t in inv.get("vllm_co_tenants", [])]
    if args.image_server_on != "inventory":
        for tenant in tenants:
            tenant["device"] = args.image_server_on
    for release in args.release or ["0.8.5", inv["vllm_version"]]:
        seqs = inv.get("vllm_max_num_seqs") if release == inv["vllm_version"] else None
        print("===== vLLM %s, desktop %d MiB, co-tenants %s" % (release, args.desktop_mib,
                                                              [(t["name"], t.get("device", "cuda")) for t in tenants]))
        try:
            p = vp.plan(model, [gpu], wsl, release, name=inv["vllm_model"], max_num_seqs=seqs,
                        gpu_memory_utilization=inv.get("vllm_gpu_memory_utilization", 0.9),
                        min_tokens_per_second=inv.get("vllm_min_tokens_per_second"), co_tenants=tenants)
        except vp.PlanRefused as exc:
            print("REFUSED: %s" % exc)
            continue
        for key in ("gpu_memory_utilization", "max_model_len", "max_model_len_estimate", "ceiling_tokens_per_second",
                    "expected_tokens_per_second", "expected_tokens_per_second_full_context"):
            print("%s: %s" % (key, p[key]))
        print("args: %s" % " ".join(p["args"]))
        print("env: %s" % json.dumps(p["env"], sort_keys=True))
        for index, ledger in sorted(p["ledger"].items()):
            print("ledger GPU %s: total %.2f GiB, headroom %.2f GiB" % (index, ledger["total_gib"], ledger["headroom_gib"]))
            for entry in ledger["entries"]:
                print("  %-16s %6.2f  %s" % (entry["name"], entry["gib"], entry["what"]))
        for row in p["report"]["contexts"]:
            print("report: %s" % json.dumps(row, sort_keys=True))
        print("reasoning parser (qwen3): %s" % json.dumps(p["report"].get("reasoning_parser_qwen3", {}).get(release)))
        for line in p["warnings"]:
            print("WARNING: %s" % line)


if __name__ == "__main__":
    main()
