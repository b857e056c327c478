# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""homelab.ai.llm_benchmark against a real vLLM (the homelab/vllm-cpu image with the tiny model).

The figures must agree with the server's own accounting: output tokens from usage equal what vLLM's
/metrics counted (vllm:generation_tokens_total), warm-up included; check mode sends no load; a
wrong model name is refused before any load. About 1-2 min (one server start) once images exist.
"""

from __future__ import annotations

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import llm_benchmark as lb

pytestmark = pytest.mark.needs_vllm_image

MAX_TOKENS = 32
NUM = 3
WARMUP = 1


@pytest.fixture(scope="module")
def vllm():
    from tests.support.vllm_server import MODEL_NAME, ensure_images, running_vllm

    ensure_images()
    with running_vllm() as base_url:
        yield base_url, MODEL_NAME


def generated_tokens(url):
    status, body = lb.Endpoint(url).get("/metrics")
    assert status == 200
    return lb.parse_prometheus_sum(body, "vllm:generation_tokens_total")


def params(url, model, **kw):
    p = {"url": url, "model": model, "max_tokens": MAX_TOKENS, "num_requests": NUM,
         "warmup_requests": WARMUP, "concurrency": 1, "tolerance": 0.1, "timeout": 300,
         "min_tokens_per_second": 1.0}
    p.update(kw)
    return p


def test_figures_agree_with_the_servers_own_counters(vllm):
    url, model = vllm
    before = generated_tokens(url)
    res = lb.run_benchmark(params(url, model))
    after = generated_tokens(url)
    assert res["completed"] == NUM and res["failed_requests"] == 0, res["errors"]
    assert res["stream_quality"] in ("smooth", "bursty"), res["stream_evidence"]
    # ignore_eos + usage: exactly max_tokens per request, and vLLM counted the same: the warm-up,
    # the returned round, and every round that showed no decode on this busy host and was measured again.
    assert res["total_output_tokens"] == NUM * MAX_TOKENS
    measured_rounds = 1 + len(res["lumped_rounds"])
    assert after - before == (NUM * measured_rounds + WARMUP) * MAX_TOKENS, res["lumped_rounds"]
    assert all(r["output_tokens"] == MAX_TOKENS for r in res["requests"])
    assert res["decode_tokens_per_second"] == pytest.approx(1000.0 / res["tpot_ms"]["mean"], rel=1e-3)
    for r in res["requests"]:
        assert 0 < r["ttft_ms"] <= r["e2el_ms"]
        assert r["tpot_ms"] == pytest.approx((r["e2el_ms"] - r["ttft_ms"]) / (MAX_TOKENS - 1), rel=1e-3, abs=1e-3)
    assert res["preemptions"] == 0
    assert res["passed"] is True


def test_check_mode_sends_no_load(vllm):
    url, model = vllm
    before = generated_tokens(url)
    res = lb.run_benchmark(params(url, model), check_mode=True)
    assert res["measured"] is False and model in res["served_models"]
    assert generated_tokens(url) == before


def test_wrong_model_is_refused_before_load(vllm):
    url, model = vllm
    before = generated_tokens(url)
    with pytest.raises(lb.BenchmarkError, match="wrong model"):
        lb.run_benchmark(params(url, "Qwen/Qwen3-32B-AWQ"))
    assert generated_tokens(url) == before


def test_unreachable_gate_fails_with_an_explanation(vllm):
    url, model = vllm
    res = lb.run_benchmark(params(url, model, num_requests=1, min_tokens_per_second=1e6,
                                  plan={"quantization": "awq", "cpu_offload_gb": 4}))
    assert res["passed"] is False
    assert any("--cpu-offload-gb" in e for e in res["gate"]["explanations"])
