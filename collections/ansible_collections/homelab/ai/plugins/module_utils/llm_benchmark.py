# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throughput smoke test of an OpenAI-compatible (vLLM) server, gated on decode speed.

The figures follow ``vllm bench serve`` (see stream_metrics.py for the exact sources):
``decode_tokens_per_second`` is ``1 / mean TPOT``, which is what the decision record's
"~19 tok/s for Qwen3-32B-AWQ on the 3090" means: single-stream decode speed.

Stdlib only (http.client, json, threading): it runs on whatever host the task targets.
"""

from __future__ import (absolute_import, division, print_function, annotations)

__metaclass__ = type

import datetime
import http.client
import json
import os
import queue
import ssl
import tempfile
import threading
import time
from urllib.parse import urlsplit

from ansible_collections.homelab.ai.plugins.module_utils.stream_metrics import (
    BUFFERED_MAX_ARRIVALS,
    NO_DECODE_QUALITIES,
    RequestRecord,
    SSEParser,
    StreamError,
    aggregate,
)

DEFAULT_PROMPT = (
    "Write a long, detailed story about a lighthouse keeper who discovers that the "
    "fog outside speaks. Describe every room of the lighthouse."
)
MARLIN_QUANTIZATIONS = ("awq_marlin", "gptq_marlin", "marlin", "gptq_marlin_24", "fp8",
                        "compressed-tensors", "bitsandbytes", "gguf", "none", "")
PREEMPTION_METRIC = "vllm:num_preemptions_total"


class BenchmarkError(Exception):
    """A check failed before or while measuring; the message says what and what to do."""


class Endpoint:
    """A base URL (``http://host:port[/prefix]``) with optional bearer token."""

    def __init__(self, url, api_key=None, timeout=300.0, validate_certs=True):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BenchmarkError("url %r is not an http(s):// URL (expected e.g. "
                                 "http://127.0.0.1:8000)" % url)
        self.url = url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.validate_certs = validate_certs

    def connection(self):
        if self.scheme == "https":
            ctx = ssl.create_default_context()
            if not self.validate_certs:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def headers(self, content_type=None):
        headers = {"Accept": "application/json, text/event-stream", "User-Agent": "homelab.ai-llm_benchmark"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.api_key:
            headers["Authorization"] = "Bearer %s" % self.api_key
        return headers

    def where(self, path):
        return "%s%s" % (self.url, path)

    def get(self, path):
        """GET path; returns (status, body text). Connection problems raise BenchmarkError."""
        conn = self.connection()
        try:
            conn.request("GET", self.prefix + path, headers=self.headers())
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as exc:
            raise BenchmarkError("cannot reach %s: %s. Is the server running and the URL right?"
                                 % (self.where(path), exc))
        finally:
            conn.close()

    def auth_error(self, path, status, body):
        if self.api_key:
            what = "the API key given was rejected (wrong key?)"
        else:
            what = "an API key is required and none was given (set api_key)"
        return BenchmarkError("%s answered %d at %s: %s. Server said: %s"
                              % (self.url, status, self.where(path), what, body.strip()[:300]))


def check_health(ep):
    status, body = ep.get("/health")
    if status in (401, 403):
        raise ep.auth_error("/health", status, body)
    if status != 200:
        raise BenchmarkError(
            "%s is not healthy: GET /health answered %d (%s). vLLM answers 503 while its engine "
            "is dead or still starting; check the container logs (docker logs) and retry once it "
            "reports 'Application startup complete'." % (ep.url, status, body.strip()[:200] or "no body"))
    return status


def check_model(ep, model):
    """Ask /v1/models and insist the planned model is served. Returns the served ids."""
    status, body = ep.get("/v1/models")
    if status in (401, 403):
        raise ep.auth_error("/v1/models", status, body)
    if status != 200:
        raise BenchmarkError("GET %s answered %d: %s" % (ep.where("/v1/models"), status, body.strip()[:300]))
    try:
        served = [m.get("id") for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError):
        raise BenchmarkError("GET %s did not return an OpenAI model list: %r"
                             % (ep.where("/v1/models"), body[:300]))
    if model not in served:
        raise BenchmarkError(
            "wrong model: the plan expects %r but %s serves %s. Redeploy vLLM with the planned model "
            "(or --served-model-name %s), or pass the served name as model."
            % (model, ep.url, ", ".join(repr(s) for s in served) or "nothing", model))
    return served


def read_preemptions(ep):
    """Sum of vllm:num_preemptions_total over all label sets, or None when /metrics is unavailable."""
    try:
        status, body = ep.get("/metrics")
    except BenchmarkError:
        return None
    if status != 200:
        return None
    return parse_prometheus_sum(body, PREEMPTION_METRIC)


def parse_prometheus_sum(text, name):
    total = None
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest and rest[0] not in "{ ":
            continue  # a longer metric name with the same prefix
        try:
            value = float(line.rsplit(None, 1)[-1])
        except ValueError:
            continue
        total = (total or 0.0) + value
    return total


def build_payload(params):
    payload = {
        "model": params["model"],
        "max_tokens": params["max_tokens"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,
    }
    if params.get("endpoint", "chat") == "chat":
        payload["messages"] = [{"role": "user", "content": params["prompt"]}]
        path = "/v1/chat/completions"
    else:
        payload["prompt"] = params["prompt"]
        path = "/v1/completions"
    return path, payload


def stream_request(ep, path, payload, clock=time.perf_counter, conn=None):
    """Send one streaming request and record its timings, as vLLM's benchmark client does.

    ``conn``: a kept-alive connection to reuse (vLLM's client reuses its aiohttp session's
    connections, so connection setup stays out of TTFT); a fresh one is made when it is None.
    """
    record = RequestRecord()
    parser = SSEParser()
    body = json.dumps(payload).encode("utf-8")
    own = conn is None
    if own:
        conn = ep.connection()
    st = clock()
    record.start = st
    try:
        try:
            conn.request("POST", ep.prefix + path, body=body, headers=ep.headers("application/json"))
            resp = conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if own:
                raise
            # the kept-alive connection was closed by the server meanwhile: one fresh try
            conn.close()
            st = clock()
            record.start = st
            conn.request("POST", ep.prefix + path, body=body, headers=ep.headers("application/json"))
            resp = conn.getresponse()
        if resp.status != 200:
            text = resp.read().decode("utf-8", "replace")
            if resp.status in (401, 403):
                raise ep.auth_error(path, resp.status, text)
            record.error = "POST %s answered %d: %s" % (ep.where(path), resp.status, text.strip()[:300])
            return record
        while True:
            data = resp.read1(65536)
            if not data:
                break
            if not data.strip():
                continue
            record.on_read(clock() - st, data, parser)
    except StreamError as exc:
        record.error = str(exc)
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        record.error = "POST %s failed mid-stream after %d token chunks: %s: %s" % (
            ep.where(path), record.token_chunks, type(exc).__name__, exc)
        conn.close()
    finally:
        if own:
            conn.close()
    record.finish()
    return record


def run_load(ep, path, payload, num_requests, concurrency, clock=time.perf_counter):
    """Run num_requests requests with at most `concurrency` in flight. Returns (records, duration)."""
    jobs = queue.Queue()
    for i in range(num_requests):
        jobs.put(i)
    records = [None] * num_requests
    errors = []

    def worker():
        conn = ep.connection()
        try:
            while True:
                try:
                    i = jobs.get_nowait()
                except queue.Empty:
                    return
                try:
                    records[i] = stream_request(ep, path, payload, clock, conn)
                except BenchmarkError as exc:  # auth errors abort the run
                    errors.append(exc)
                    return
        finally:
            conn.close()

    start = clock()
    threads = [threading.Thread(target=worker) for dummy in range(max(1, min(concurrency, num_requests)))]
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join()
    duration = clock() - start
    if errors:
        raise errors[0]
    return [r for r in records if r is not None], duration


def explain(metrics, plan=None, gpu=None, preemptions=None, threshold=None):
    """Likely causes of a slow decode, most decisive first, from the plan, /metrics and GPU facts."""
    out = []
    plan = plan or {}
    offload = plan.get("cpu_offload_gb") or 0
    try:
        offload = float(offload)
    except (TypeError, ValueError):
        offload = 0
    if offload > 0:
        out.append("the plan offloads %g GB of weights to CPU (--cpu-offload-gb): every forward pass "
                   "crosses PCIe; the decision record measured ~1.6 tok/s with 4 GB offloaded. Set "
                   "cpu_offload_gb to 0 and shrink max_model_len so weights and KV cache fit in VRAM."
                   % offload)
    if plan.get("enforce_eager"):
        out.append("the plan runs with --enforce-eager: CUDA graphs are off (~1.5-2x slower decode "
                   "per the decision record). Drop enforce_eager unless the GPU lacks the memory for graphs.")
    quant = str(plan.get("quantization") or "").lower()
    if quant and quant not in MARLIN_QUANTIZATIONS:
        out.append("the plan quantizes with %r, not a Marlin kernel: generic AWQ/GPTQ GEMMs are ~2-3x "
                   "slower on Ampere; use awq_marlin (or gptq_marlin)." % quant)
    env = plan.get("env") or {}
    engine = str(plan.get("engine") or "").lower()
    if engine in ("v0", "0") or str(env.get("VLLM_USE_V1", "")) == "0":
        out.append("the plan forces vLLM's V0 engine (VLLM_USE_V1=0), which was only needed for CPU "
                   "offload on WSL2 and is gone since vLLM 0.11.")
    if preemptions:
        out.append("vLLM preempted requests %d time(s) during the run (vllm:num_preemptions_total): the KV "
                   "cache cannot hold max_model_len=%s for the running sequences; lower max_model_len or "
                   "free GPU memory." % (int(preemptions), plan.get("max_model_len", "?")))
    if gpu:
        total = gpu.get("memory_total") or gpu.get("memory_total_mib")
        free = gpu.get("memory_free") if gpu.get("memory_free") is not None else gpu.get("memory_free_mib")
        try:
            total = float(total)
            free = float(free)
        except (TypeError, ValueError):
            total = None
        if total and (total - free) / total > 0.1:
            out.append("the GPU facts show %d of %d MiB in use (%d MiB free) when they were gathered: "
                       "memory held by other processes (desktop, games, another container) leaves less "
                       "for weights and KV cache; check nvidia-smi." % (total - free, total, free))
    out += _plan_speed_explanations(plan, threshold)
    if not out:
        out.append("nothing in the plan explains it: look for GPU clock/thermal throttling or power "
                   "limits (nvidia-smi -q -d PERFORMANCE), other GPU load, or a slow path between client "
                   "and server (run against vLLM directly).")
    return out


def _as_float(value):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _plan_speed_explanations(plan, threshold):
    """Compare the gate with what the planner EXPECTS (its expectation), not with its ceiling.

    The ceiling (``ceiling_tokens_per_second``; ``predicted_tokens_per_second`` in plans before 0.2)
    is memory bandwidth / bytes read per token: no run gets there. Only when the expectation is below
    the gate is the plan itself the cause; a ceiling below the gate means no kernel can make it."""
    if threshold is None:
        return []
    expected = _as_float(plan.get("expected_tokens_per_second"))
    ceiling = _as_float(plan.get("ceiling_tokens_per_second", plan.get("predicted_tokens_per_second")))
    if ceiling is not None and ceiling < threshold:
        return ["even the planner's ceiling for this plan (%.1f tok/s, memory bandwidth / bytes read per "
                "token) is below the gate of %.1f: no kernel can reach it; change the plan, model or GPU, "
                "not the run." % (ceiling, threshold)]
    if expected is not None and expected < threshold:
        return ["the planner itself expects %.1f tok/s for this plan (ceiling %s), below the gate of %.1f: "
                "change the plan, not the run." % (expected, "%.1f" % ceiling if ceiling is not None else "unknown",
                                                   threshold)]
    return []


def stream_findings(metrics):
    """What the stream's quality says: (failures, warnings). No decode in any round fails (a proxy
    holding the stream back, or a server starved throughout); lumped rounds measured again, requests
    left out and bursts are warnings."""
    failures = []
    warnings = []
    quality = metrics.get("stream_quality")
    evidence = metrics.get("stream_evidence", {})
    rounds = len(metrics.get("lumped_rounds") or [None])
    if quality == "buffered":
        failures.append(
            "the stream came in a few lumps in all %d measured round(s): no decode could be observed (last "
            "round's requests by class %s; median %s arrivals per output token, bursts of up to %s chunks, "
            "first token at %s of the request time), so no per-token rate can be measured. A starved server "
            "lumps now and then; lumps in every round mean something between client and vLLM holds the "
            "response back: for nginx set 'proxy_buffering off' on the /v1/ location (or send "
            "'X-Accel-Buffering: no'). With nothing in between, vLLM's API server was starved of CPU "
            "throughout: look at the host's load (top, docker stats)." % (
                rounds, evidence.get("requests_by_quality"), evidence.get("arrivals_per_output_token"),
                evidence.get("largest_burst_chunks"), evidence.get("ttft_e2e_ratio")))
    elif quality == "stalled":
        failures.append(
            "the server stalled in all %d measured round(s): no decode could be observed (last round's "
            "requests by class %s; median %s arrivals per "
            "output token, first token at %s of the request time). The tokens came "
            "one by one, but only once the whole answer was decoded: vLLM's API server process (or this "
            "client, reading every message at the end) was starved of CPU. Look for what else runs on the "
            "host (top, docker stats) and measure again when it is quiet; no proxy setting changes this." % (
                rounds, evidence.get("requests_by_quality"), evidence.get("arrivals_per_output_token"),
                evidence.get("ttft_e2e_ratio")))
    elif evidence.get("excluded_requests"):
        warnings.append(
            "%d request(s) showed no decode (tokens held back, then delivered at once: first token after "
            ">= 90%% of the request time, or in at most %d arrivals): left out of the timing figures. A "
            "starved API server (CPU contention) or an intermittently buffering proxy does this."
            % (evidence["excluded_requests"], BUFFERED_MAX_ARRIVALS))
    if metrics.get("lumped_rounds") and quality not in NO_DECODE_QUALITIES:
        first = metrics["lumped_rounds"][0]
        warnings.append(
            "%d round(s) showed no decode (first: %s, requests by class %s; the API server or the client "
            "starved of CPU) and the stack was measured again; the figures are those of the round that "
            "showed decode." % (len(metrics["lumped_rounds"]), first.get("stream_quality"),
                                first.get("stream_evidence", {}).get("requests_by_quality")))
    if quality == "bursty" and evidence.get("requests_by_quality", {}).get("bursty"):
        warnings.append(
            "the stream is bursty (%s arrivals per output token, bursts of up to %s chunks): TPOT from the "
            "server's usage count is still valid, but ITL percentiles are not per-token latencies. On a "
            "CPU-starved host (2 shared cores) the API server batches its writes."
            % (evidence.get("arrivals_per_output_token"), evidence.get("largest_burst_chunks")))
    return failures, warnings


def evaluate_gate(metrics, min_tps=None, tolerance=0.1, max_ttft_ms=None, plan=None, gpu=None,
                  preemptions=None):
    """Decide pass/fail and say why. Returns the gate dict."""
    failures = []
    warnings = []
    threshold = None if min_tps is None else round(min_tps * (1.0 - tolerance), 3)
    quality = metrics.get("stream_quality")
    if metrics.get("failed_requests"):
        first_error = (metrics.get("errors") or ["no error recorded"])[0]
        failures.append("%d of %d measured requests failed (first: %s)" % (
            metrics["failed_requests"], metrics["failed_requests"] + metrics["completed"], first_error))
    stream_failures, stream_warnings = stream_findings(metrics)
    failures += stream_failures
    warnings += stream_warnings
    no_decode_seen = quality in NO_DECODE_QUALITIES
    tps = None if no_decode_seen else metrics.get("decode_tokens_per_second")
    tps_failed = False
    if threshold is not None:
        if tps is None and not no_decode_seen and not metrics.get("failed_requests"):
            failures.append("no decode rate could be measured (no request produced more than one token)")
        elif tps is not None and tps < threshold:
            tps_failed = True
            failures.append("decode speed %.2f tok/s (1 / mean TPOT %.1f ms) is below %.2f tok/s "
                            "(min_tokens_per_second %g with tolerance %g)"
                            % (tps, metrics["tpot_ms"]["mean"], threshold, min_tps, tolerance))
    ttft_median = (metrics.get("ttft_ms") or {}).get("median")
    ttft_failed = False
    if max_ttft_ms is not None and ttft_median is not None and ttft_median > max_ttft_ms:
        ttft_failed = True
        failures.append("median TTFT %.0f ms exceeds max_ttft_ms %g (long prompts, a prefill-heavy "
                        "queue or a cold server)" % (ttft_median, max_ttft_ms))
    explanations = []
    if tps_failed or ttft_failed:
        explanations = explain(metrics, plan, gpu, preemptions, threshold)
    elif preemptions:
        warnings.append("vLLM preempted requests %d time(s) during the run" % int(preemptions))
    return {
        "passed": not failures,
        "threshold": threshold,
        "min_tokens_per_second": min_tps,
        "tolerance": tolerance,
        "max_ttft_ms": max_ttft_ms,
        "failures": failures,
        "warnings": warnings,
        "explanations": explanations,
    }


def write_report(path, report):
    """Write the JSON report atomically (temp file + rename) so a status page never reads half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".llm_benchmark.", suffix=".json")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def settle_plan_and_model(model=None, plan=None, plan_path=None):
    """(plan, model) to measure with: the plan given, else the planner's file at plan_path (a missing
    file is no plan); the model given, else the plan's served_model_name or model.

    Raises BenchmarkError when the file is not a JSON object, or when no model is known (the smoke test
    never guesses which model the server must serve).
    """
    read_from = None
    if not plan and plan_path:
        try:
            with open(plan_path) as handle:
                plan = json.load(handle)
            read_from = plan_path
        except FileNotFoundError:
            plan = None
        except (OSError, ValueError) as exc:
            raise BenchmarkError("cannot read the plan %s: %s (the vllm role writes it; remove or rewrite it)"
                                 % (plan_path, exc))
        if plan is not None and not isinstance(plan, dict):
            raise BenchmarkError("the plan %s is not a JSON object (the vllm role writes it; remove or rewrite it)"
                                 % plan_path)
    plan = plan or {}
    model = model or plan.get("served_model_name") or plan.get("model")
    if not model:
        where = ("%s has neither served_model_name nor model" % read_from if read_from
                 else "%s does not exist" % plan_path if plan_path else "no plan was given")
        raise BenchmarkError("llm_benchmark does not know which model the server must serve: %s. Set model, or let "
                             "the planner write its plan (with served_model_name or model) first." % where)
    return plan, model


def measure(ep, path, payload, params, clock):
    """One round of the measured requests. Returns (records, metrics)."""
    records, duration = run_load(ep, path, payload, params.get("num_requests", 5),
                                 params.get("concurrency", 1), clock)
    metrics = aggregate(records, duration)
    metrics["errors"] = [r.error for r in records if not r.success][:5]
    return records, metrics


# A round in which no request showed decode (stalled or buffered) is measured again, up to this many
# rounds in all, after a pause that lets a transient CPU peak on the host (another job's burst) pass.
MEASURED_ROUNDS_MAX = 3
STALL_PAUSE_S = 2.0


def measure_past_lumps(ep, path, payload, params, clock, sleep=time.sleep):
    """Measure; while no request showed decode, measure again.

    Such a round says nothing about the stack's speed until it repeats. vLLM's API server (or this
    client) starved of CPU by something else on the host handles the tokens late: one by one at the
    end (stalled) or written in a few lumps (buffered; seen at vLLM's own port in CI, no proxy
    between). A proxy that buffers holds back every round, a starved server only some. Each such
    round's figures are replaced by the next round's (at most MEASURED_ROUNDS_MAX rounds in all) and
    its evidence is kept in ``metrics["lumped_rounds"]``, the returned round's too when it showed no
    decode either (empty when the first round showed decode). Returns (records, metrics).
    """
    lumped_rounds = []
    for round_index in range(MEASURED_ROUNDS_MAX):
        if round_index:
            sleep(STALL_PAUSE_S)
        records, metrics = measure(ep, path, payload, params, clock)
        if metrics["stream_quality"] not in NO_DECODE_QUALITIES:
            break
        lumped_rounds.append({"stream_quality": metrics["stream_quality"], "duration_s": metrics["duration_s"],
                              "ttft_ms": metrics["ttft_ms"], "stream_evidence": metrics["stream_evidence"]})
    metrics["lumped_rounds"] = lumped_rounds
    return records, metrics


def run_benchmark(params, check_mode=False, clock=time.perf_counter, sleep=time.sleep):
    """Checks, warm-up, measurement and gate. Raises BenchmarkError for failed checks.

    params: url, model, api_key, endpoint (chat|completions), prompt, max_tokens, num_requests,
    warmup_requests, concurrency, timeout, min_tokens_per_second, tolerance, max_ttft_ms, plan,
    gpu, check_health, read_metrics, validate_certs, label.
    """
    ep = Endpoint(params["url"], params.get("api_key"), float(params.get("timeout") or 300),
                  params.get("validate_certs", True))
    if params.get("max_tokens", 0) < 2:
        raise BenchmarkError("max_tokens must be at least 2 to measure TPOT (use 64 or more for a "
                             "meaningful figure)")
    result = {
        "url": ep.url,
        "label": params.get("label"),
        "model": params["model"],
        "endpoint": params.get("endpoint", "chat"),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
    }
    if params.get("check_health", True):
        result["health_status"] = check_health(ep)
    result["served_models"] = check_model(ep, params["model"])
    if check_mode:
        result["measured"] = False
        return result

    prompt = params.get("prompt") or DEFAULT_PROMPT
    path, payload = build_payload(dict(params, prompt=prompt))
    before = read_preemptions(ep) if params.get("read_metrics", True) else None

    warm, dummy = run_load(ep, path, payload, params.get("warmup_requests", 1), 1, clock)
    bad_warm = [r for r in warm if not r.success]
    if bad_warm:
        raise BenchmarkError("warm-up request to %s failed: %s" % (ep.where(path), bad_warm[0].error))

    records, metrics = measure_past_lumps(ep, path, payload, params, clock, sleep)
    after = read_preemptions(ep) if params.get("read_metrics", True) else None
    preemptions = None
    if before is not None and after is not None:
        preemptions = max(0.0, after - before)

    gate = evaluate_gate(metrics, params.get("min_tokens_per_second"), params.get("tolerance", 0.1),
                         params.get("max_ttft_ms"), params.get("plan"), params.get("gpu"), preemptions)
    if metrics["stream_quality"] in NO_DECODE_QUALITIES:
        # A rate computed from a stream that showed no decode is meaningless: say so instead of reporting it.
        metrics["decode_tokens_per_second"] = None
        metrics["decode_tokens_per_second_median"] = None
    result.update(metrics)
    result.update({
        "measured": True,
        "num_requests": params.get("num_requests", 5),
        "warmup_requests": params.get("warmup_requests", 1),
        "concurrency": params.get("concurrency", 1),
        "max_tokens": params["max_tokens"],
        "preemptions": preemptions,
        "passed": gate["passed"],
        "threshold": gate["threshold"],
        "gate": gate,
        "requests": [r.summary() for r in records],
    })
    return result


def format_failure(result):
    gate = result.get("gate", {})
    parts = ["llm_benchmark against %s (%s) failed its gate: %s."
             % (result.get("url"), result.get("model"), "; ".join(gate.get("failures", [])))]
    if gate.get("explanations"):
        causes = ["(%d) %s" % (i + 1, e) for i, e in enumerate(gate["explanations"])]
        parts.append("Likely cause(s): " + " ".join(causes))
    return " ".join(parts)


__all__ = ["BenchmarkError", "Endpoint", "check_health", "check_model", "run_benchmark", "settle_plan_and_model",
           "evaluate_gate", "explain", "write_report", "format_failure", "parse_prometheus_sum"]
