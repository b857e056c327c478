#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
---
module: llm_benchmark
short_description: Measure and gate the decode speed of a vLLM (OpenAI-compatible) server
description:
  - Checks C(/health) and C(/v1/models) (the served model must be the planned one), then streams
    O(warmup_requests) uncounted and O(num_requests) measured requests with a fixed O(max_tokens),
    C(ignore_eos=true) and C(stream_options.include_usage=true).
  - Figures follow C(vllm bench serve) (C(vllm/benchmarks/serve.py) and
    C(vllm/benchmarks/lib/endpoint_request_func.py), vLLM 0.32.0) - TTFT, TPOT = (e2el - TTFT) / (output tokens - 1),
    ITL, e2el, output throughput; output token counts come from the server's usage.
  - RV(decode_tokens_per_second) is 1 / mean TPOT, the single-stream decode speed that the decision
    record quotes as "~19 tok/s" for Qwen3-32B-AWQ on an RTX 3090.
  - Classifies the stream as C(smooth), C(bursty), C(stalled) or C(buffered). A bursty stream still reports TPOT
    from usage, with a warning. A stalled (the tokens came one by one, all at the end of each request) or buffered
    (all tokens in a few chunks) round shows no decode and yields no rate.
  - Such a round is measured again after a 2 s pause, up to three rounds in all - vLLM's API server starved of
    CPU by other work on the host lumps some rounds, a buffering proxy every one; the lumped rounds' evidence is
    returned as RV(lumped_rounds). Only when all three show no decode does the gate fail on it, with proxy
    advice when the last round was buffered.
  - On a failed gate it explains the likely cause from O(plan), C(/metrics) preemptions and O(gpu).
  - The module runs on the host it targets (use C(delegate_to) to measure from elsewhere) and writes
    O(report_path) there. Writing the report is not counted as a change.
version_added: "0.1.0"
author:
  - homelab.ai contributors (@homelab-ai)
options:
  url:
    description: Base URL of the server (vLLM directly, or a proxy that forwards C(/v1/)).
    type: str
    required: true
  model:
    description:
      - The model the plan expects the server to serve (its C(id) in C(/v1/models)).
      - Defaults to the plan's C(served_model_name) (or C(model)), from O(plan) or O(plan_path); the task
        fails when neither gives one.
    type: str
  api_key:
    description: "Sent as C(Authorization: Bearer <key>). A 401 is reported as a missing or wrong key."
    type: str
  endpoint:
    description: Stream C(/v1/chat/completions) (V(chat)) or C(/v1/completions) (V(completions)).
    type: str
    choices: [chat, completions]
    default: chat
  prompt:
    description: The prompt (or user message). A fixed built-in story prompt when omitted.
    type: str
  max_tokens:
    description: Output tokens per request (exactly this many, since C(ignore_eos) is set). At least 2.
    type: int
    default: 128
  num_requests:
    description: Measured requests.
    type: int
    default: 5
  warmup_requests:
    description: Requests sent first and not counted (CUDA graph capture, caches).
    type: int
    default: 1
  concurrency:
    description: Measured requests in flight at once. 1 measures single-stream decode speed.
    type: int
    default: 1
  timeout:
    description: Socket timeout in seconds for each request.
    type: float
    default: 300
  min_tokens_per_second:
    description:
      - Gate on RV(decode_tokens_per_second). No throughput gate when omitted.
      - The gaming inventory sets 19, the record's acceptance figure.
    type: float
  tolerance:
    description:
      - Fraction below O(min_tokens_per_second) still accepted, making the figure "about".
        V(0.1) with 19 passes at 17.1 tok/s or more.
    type: float
    default: 0.1
  max_ttft_ms:
    description: Optional gate on the median time to first token, in milliseconds.
    type: float
  plan:
    description:
      - The deployment plan (as the planner returns it) used to explain a failed gate. Keys read
        C(quantization), C(enforce_eager), C(cpu_offload_gb), C(max_model_len),
        C(expected_tokens_per_second) (what the gate is compared with), C(ceiling_tokens_per_second)
        (the bandwidth bound; C(predicted_tokens_per_second) in older plans), C(engine), C(env).
    type: dict
  plan_path:
    description:
      - Read the plan from this JSON file on the host the module runs on when O(plan) is not given (the vllm
        role writes it as C(status/plan.json)). A missing file is no plan; a file that is not a JSON object fails.
    type: path
  gpu:
    description: GPU facts with C(memory_total) and C(memory_free) (MiB), used to explain a failed gate.
    type: dict
  fail_on_gate:
    description: Fail the task when the gate fails. With V(false) the result carries RV(passed).
    type: bool
    default: true
  report_path:
    description: Write the result as JSON to this path on the host the module runs on.
    type: path
  check_health:
    description: GET C(/health) first. Set V(false) behind a proxy that only forwards C(/v1/).
    type: bool
    default: true
  read_metrics:
    description: Read C(vllm:num_preemptions_total) from C(/metrics) before and after the run.
    type: bool
    default: true
  validate_certs:
    description: Verify TLS certificates for https URLs.
    type: bool
    default: true
  label:
    description: A name for this measurement in the result and report (for example V(direct), V(via_dashboard)).
    type: str
extends_documentation_fragment:
  - homelab.ai.attributes
  - homelab.ai.attributes.posix
attributes:
  check_mode:
    support: full
    details: Only the health and model checks run; no load is sent and no report is written.
  diff_mode:
    support: none
    details: The module changes nothing on the server, so there is nothing to diff; O(report_path) is written without a diff.
  idempotent:
    support: partial
    details:
      - It never reports a change and changes nothing on the server, but it measures rather than converges. Every run
        outside check mode sends O(warmup_requests) + O(num_requests) generation requests to the server and overwrites
        O(report_path).
      - The figures, and so the gate, vary with what else loads the server and GPU; a second run can fail where the
        first passed.
  platform:
    details: Any host that can reach the server over HTTP; stdlib Python only.
notes:
  - Uses only the Python standard library on the target.
seealso:
  - name: vllm bench serve
    description: vLLM's serving benchmark whose metric definitions this module follows.
    link: https://docs.vllm.ai/en/latest/cli/bench/serve.html
"""

EXAMPLES = r"""
- name: Gate the 3090 on the record's ~19 tok/s
  homelab.ai.llm_benchmark:
    url: http://127.0.0.1:8000
    model: Qwen/Qwen3-32B-AWQ
    min_tokens_per_second: 19
    tolerance: 0.1
    plan: "{{ homelab_plan }}"
    report_path: /var/lib/homelab/status/llm_benchmark.json

- name: Measure through the dashboard proxy without failing
  homelab.ai.llm_benchmark:
    url: http://127.0.0.1:8080
    model: Qwen/Qwen3-32B-AWQ
    check_health: false
    read_metrics: false
    fail_on_gate: false
    label: via_dashboard
  register: via_dashboard

- name: Measure the model the planner's plan names (its served_model_name), explaining a failed gate from it
  homelab.ai.llm_benchmark:
    url: http://127.0.0.1:8000
    plan_path: /var/lib/homelab/status/plan.json
    min_tokens_per_second: 19
"""

RETURN = r"""
decode_tokens_per_second:
  description: 1 / mean TPOT, single-stream decode speed. Null when no request showed decode (stalled or buffered).
  returned: when measured
  type: float
  sample: 19.4
decode_tokens_per_second_median:
  description: 1 / median TPOT.
  returned: when measured
  type: float
  sample: 19.6
ttft_ms:
  description: Time to first token (mean, median, p90, p99, std, count), ms.
  returned: when measured
  type: dict
  sample: {"mean": 180.2, "median": 176.0, "p90": 201.3, "p99": 210.0, "std": 10.1, "count": 5}
tpot_ms:
  description: Time per output token after the first (same keys), ms.
  returned: when measured
  type: dict
itl_ms:
  description: Inter-token latency between token chunks (same keys), ms.
  returned: when measured
  type: dict
e2el_ms:
  description: End-to-end request latency (same keys), ms.
  returned: when measured
  type: dict
output_throughput:
  description: Output tokens per second over the whole measured run.
  returned: when measured
  type: float
request_throughput:
  description: Completed requests per second.
  returned: when measured
  type: float
duration_s:
  description: Wall time of the measured run.
  returned: when measured
  type: float
completed:
  description: Measured requests that succeeded.
  returned: when measured
  type: int
failed_requests:
  description:
    - Measured requests that failed (vLLM's C(vllm bench serve) calls this C(failed), a key Ansible keeps for
      the task's own outcome).
  returned: when measured
  type: int
errors:
  description: Up to five error messages of failed requests.
  returned: when measured
  type: list
  elements: str
total_input_tokens:
  description: Prompt tokens over the measured requests, from usage.
  returned: when measured
  type: int
total_output_tokens:
  description: Output tokens over the measured requests, from usage.
  returned: when measured
  type: int
stream_quality:
  description: >-
    Worst stream classification over the measured requests - C(smooth), C(bursty), C(stalled) (no request
    showed decode, the tokens came one by one at the end) or C(buffered) (half or more came in a few chunks),
    of the last round measured.
  returned: when measured
  type: str
  sample: smooth
lumped_rounds:
  description: >-
    C(stream_quality) (C(stalled) or C(buffered)), C(duration_s), C(ttft_ms) and C(stream_evidence) of each
    round in which no request showed decode, in order (the other figures are those of the last round
    measured); empty when the first round showed decode.
  returned: when measured
  type: list
  elements: dict
stream_evidence:
  description: >-
    Medians over requests of chunks_per_output_token, arrivals_per_output_token, ttft_e2e_ratio,
    largest_burst_chunks, and requests_by_quality.
  returned: when measured
  type: dict
preemptions:
  description: Increase of vllm:num_preemptions_total during the run; null when /metrics was not read.
  returned: when measured
  type: float
passed:
  description: Whether the gate passed.
  returned: when measured
  type: bool
threshold:
  description: min_tokens_per_second * (1 - tolerance); null without a throughput gate.
  returned: when measured
  type: float
gate:
  description: passed, threshold, failures, warnings and explanations (likely causes) of the gate.
  returned: when measured
  type: dict
requests:
  description: Per-request figures and stream evidence.
  returned: when measured
  type: list
  elements: dict
served_models:
  description: Model ids from /v1/models.
  returned: always
  type: list
  elements: str
health_status:
  description: HTTP status of /health.
  returned: when check_health
  type: int
measured:
  description: False in check mode (only the checks ran).
  returned: always
  type: bool
timestamp:
  description: UTC time the run started, ISO 8601.
  returned: always
  type: str
url:
  description: The base URL measured.
  returned: always
  type: str
model:
  description: The model checked and measured.
  returned: always
  type: str
plan:
  description: The plan used to explain the gate (O(plan), or what O(plan_path) held); empty without one.
  returned: always
  type: dict
endpoint:
  description: chat or completions.
  returned: always
  type: str
label:
  description: The label given.
  returned: always
  type: str
num_requests:
  description: Measured requests asked for.
  returned: when measured
  type: int
warmup_requests:
  description: Warm-up requests sent.
  returned: when measured
  type: int
concurrency:
  description: Concurrency used.
  returned: when measured
  type: int
max_tokens:
  description: Output tokens per request asked for.
  returned: when measured
  type: int
report_path:
  description: Where the JSON report was written.
  returned: when report_path was given and not in check mode
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.ai.plugins.module_utils.llm_benchmark import (
    BenchmarkError,
    format_failure,
    run_benchmark,
    settle_plan_and_model,
    write_report,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            model=dict(type="str"),
            api_key=dict(type="str", no_log=True),
            endpoint=dict(type="str", default="chat", choices=["chat", "completions"]),
            prompt=dict(type="str"),
            max_tokens=dict(type="int", default=128, no_log=False),
            num_requests=dict(type="int", default=5),
            warmup_requests=dict(type="int", default=1),
            concurrency=dict(type="int", default=1),
            timeout=dict(type="float", default=300),
            min_tokens_per_second=dict(type="float", no_log=False),
            tolerance=dict(type="float", default=0.1),
            max_ttft_ms=dict(type="float"),
            plan=dict(type="dict"),
            plan_path=dict(type="path"),
            gpu=dict(type="dict"),
            fail_on_gate=dict(type="bool", default=True),
            report_path=dict(type="path"),
            check_health=dict(type="bool", default=True),
            read_metrics=dict(type="bool", default=True),
            validate_certs=dict(type="bool", default=True),
            label=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for name in ("num_requests", "concurrency"):
        if p[name] < 1:
            module.fail_json(msg="%s must be at least 1 (got %d)" % (name, p[name]))
    if p["warmup_requests"] < 0:
        module.fail_json(msg="warmup_requests must be 0 or more (got %d)" % p["warmup_requests"])
    if not 0 <= p["tolerance"] < 1:
        module.fail_json(msg="tolerance is a fraction in [0, 1), e.g. 0.1 (got %g)" % p["tolerance"])
    try:
        plan, model = settle_plan_and_model(p["model"], p["plan"], p["plan_path"])
    except BenchmarkError as exc:
        module.fail_json(msg=str(exc), url=p["url"], model=p["model"])
    p.update(plan=plan, model=model)
    try:
        result = run_benchmark(p, check_mode=module.check_mode)
    except BenchmarkError as exc:
        module.fail_json(msg=str(exc), url=p["url"], model=model, plan=plan)
    result["plan"] = plan
    if p["report_path"] and not module.check_mode:
        try:
            write_report(p["report_path"], result)
        except OSError as exc:
            module.fail_json(msg="cannot write the report to %s: %s" % (p["report_path"], exc), **result)
        result["report_path"] = p["report_path"]
    if result.get("measured") and not result["passed"] and p["fail_on_gate"]:
        module.fail_json(msg=format_failure(result), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
