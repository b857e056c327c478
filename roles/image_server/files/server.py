"""homelab image server: a small HTTP front for a diffusers text-to-image pipeline.

GET  /health    -> 200 {"status": "ok", ...} once the pipeline is loaded, 503 before. No key needed.
GET  /metrics   -> Prometheus text format (prometheus_client): responses by route and code, the queue
                   (running, waiting, its depth), jobs by outcome, generation seconds, pipeline loaded.
POST /generate  -> image/png; JSON body {"prompt": str, "steps": int, "size": "64x64" | int,
                   "width": int, "height": int, "seed": int, "guidance_scale": number}.
Everything but GET /health needs `Authorization: Bearer <IMAGE_SERVER_API_KEY>` (401 otherwise);
the server refuses to start without a key.

Bounded work: steps, sides, prompt length and body size have maximums (IMAGE_SERVER_MAX_* below);
one generation runs at a time (a pipeline is not thread-safe and the GPU, or the CPU, is the
bottleneck anyway) and at most IMAGE_SERVER_QUEUE_DEPTH requests wait behind it: more are answered
429 with Retry-After. A client that disconnects cancels its job: a waiting one leaves the queue, a
running one stops at the next denoising step (diffusers' callback_on_step_end).

Every error is JSON: {"error": {"code": "...", "message": "...", "field": "..." (when one is at fault)}};
a malformed request gets a 4xx, never a dropped connection or a 500.
"""
import argparse
import collections
import hmac
import io
import json
import logging
import math
import os
import re
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LOG = logging.getLogger("image-server")
API_KEY_ENV = "IMAGE_SERVER_API_KEY"
FIELDS = ("prompt", "steps", "size", "width", "height", "seed", "guidance_scale")
DEFAULT_STEPS = 20
DEFAULT_SIDE = 512
DEFAULT_GUIDANCE = 7.5
MAX_SEED = 2 ** 63 - 1
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")


class Limits(collections.namedtuple("Limits", "max_steps max_side max_prompt_chars max_body_bytes "
                                              "queue_depth max_guidance body_timeout")):
    """The bounds of one request and of the queue; each is an environment variable."""

    ENV = collections.OrderedDict([
        ("max_steps", ("IMAGE_SERVER_MAX_STEPS", 100, 1)),
        ("max_side", ("IMAGE_SERVER_MAX_SIDE", 1024, 8)),
        ("max_prompt_chars", ("IMAGE_SERVER_MAX_PROMPT_CHARS", 2000, 1)),
        ("max_body_bytes", ("IMAGE_SERVER_MAX_BODY_BYTES", 16384, 64)),
        ("queue_depth", ("IMAGE_SERVER_QUEUE_DEPTH", 2, 0)),
        ("max_guidance", ("IMAGE_SERVER_MAX_GUIDANCE", 50, 1)),
        ("body_timeout", ("IMAGE_SERVER_BODY_TIMEOUT", 30, 1)),
    ])

    @classmethod
    def defaults(cls):
        return cls(**dict((name, spec[1]) for name, spec in cls.ENV.items()))

    @classmethod
    def from_env(cls, environ):
        """Raise ValueError naming the variable when one is not a whole number within its floor.

        At most 9 digits: a larger IMAGE_SERVER_BODY_TIMEOUT would overflow socket.settimeout on every POST.
        """
        values = {}
        for name, (variable, default, floor) in cls.ENV.items():
            text = str(environ.get(variable, "") or default).strip()
            if not re.match(r"^[0-9]{1,9}$", text) or int(text) < floor:
                raise ValueError("%s=%r: must be a whole number from %d to 999999999 (default %d)"
                                 % (variable, text, floor, default))
            values[name] = int(text)
        return cls(**values)


class RequestError(ValueError):
    """A request the server refuses: HTTP status, a stable code, the message and the field at fault."""

    def __init__(self, message, status=400, code="invalid_request", field=None, headers=None):
        ValueError.__init__(self, message)
        self.status = status
        self.code = code
        self.field = field
        self.headers = headers or {}


class GenerationCancelled(Exception):
    """Raised from the step callback when the client is gone; the pipeline stops there."""


def error_body(code, message, field=None):
    error = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


# ---------------------------------------------------------------- request parsing (pure)

class NonFinite(object):
    """What NaN, Infinity and 1e999 decode to: never a number, so every numeric check refuses it."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def _finite_float(text):
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def _decode(body):
    try:
        return json.loads(body or b"{}", parse_constant=NonFinite, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RequestError("body is not JSON: %s" % exc, code="invalid_json")


def _shown(value):
    # default=repr: NaN nested in a list or object ([NaN], {"n": Infinity}) is shown, not a TypeError (a 500).
    return json.dumps(value, default=repr)[:40]


def _field(req, name, default=None):
    """A field's value; JSON null is the same as leaving the field out."""
    value = req.get(name)
    return default if value is None else value


def _whole(req, name, low, high, default=None):
    """An integer field; bool, float and strings are refused (JSON has no 'maybe an int')."""
    value = _field(req, name, default)
    if value is None:
        return None
    if type(value) is not int:
        raise RequestError("'%s' must be an integer, got %s %s" % (name, type(value).__name__, _shown(value)),
                           code="invalid_field", field=name)
    if not low <= value <= high:
        raise RequestError("'%s' must be %d..%d, got %d" % (name, low, high, value), code="invalid_field", field=name)
    return value


def _side(name, value, limits, field):
    if value % 8 or not 8 <= value <= limits.max_side:
        raise RequestError("'%s' must be a multiple of 8 in 8..%d (IMAGE_SERVER_MAX_SIDE), got %d%s"
                           % (name, limits.max_side, value, " (from 'size')" if field == "size" else ""),
                           code="invalid_field", field=field)
    return value


def _size(req, limits):
    """(width, height) from 'size' ("WxH" or one side) with 'width'/'height' winning."""
    size = _field(req, "size")
    width = height = None
    if isinstance(size, str) and _SIZE_RE.match(size):
        match = _SIZE_RE.match(size)
        width, height = int(match.group(1)), int(match.group(2))
    elif type(size) is int:
        width = height = size
    elif size is not None:
        raise RequestError("'size' must be \"WIDTHxHEIGHT\" (e.g. \"512x512\") or one integer side, got %s %s"
                           % (type(size).__name__, _shown(size)), code="invalid_field", field="size")
    sides = []
    for name, from_size in (("width", width), ("height", height)):
        given = _whole(req, name, -10 ** 6, 10 ** 6)
        # A bad side names the field it came from: 'size' unless 'width'/'height' was given.
        if given is not None:
            sides.append(_side(name, given, limits, name))
        elif from_size is not None:
            sides.append(_side(name, from_size, limits, "size"))
        else:
            sides.append(DEFAULT_SIDE)
    width, height = sides
    return width, height


def _guidance(req, limits):
    value = _field(req, "guidance_scale", DEFAULT_GUIDANCE)
    if type(value) not in (int, float):
        raise RequestError("'guidance_scale' must be a finite number, got %s %s"
                           % (type(value).__name__, _shown(value)), code="invalid_field", field="guidance_scale")
    if not 0 <= value <= limits.max_guidance:
        raise RequestError("'guidance_scale' must be 0..%d (IMAGE_SERVER_MAX_GUIDANCE), got %s"
                           % (limits.max_guidance, value), code="invalid_field", field="guidance_scale")
    return float(value)


def _prompt(req, limits):
    prompt = req.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError("'prompt' must be a non-empty string", code="invalid_field", field="prompt")
    if len(prompt) > limits.max_prompt_chars:
        raise RequestError("'prompt' has %d characters, at most %d are accepted (IMAGE_SERVER_MAX_PROMPT_CHARS)"
                           % (len(prompt), limits.max_prompt_chars), code="invalid_field", field="prompt")
    try:
        # JSON's "\ud800" decodes to a lone surrogate, which the tokenizer cannot encode: a 500 otherwise.
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError("'prompt' is not valid Unicode text (a lone surrogate escape such as \\ud800)",
                           code="invalid_field", field="prompt")
    return prompt


def parse_request(body, limits=None):
    """The generation a JSON body asks for, or RequestError (a ValueError) saying what is wrong."""
    limits = limits or Limits.defaults()
    req = _decode(body)
    if not isinstance(req, dict):
        raise RequestError("body must be a JSON object, got %s" % type(req).__name__, code="invalid_request")
    unknown = sorted(set(req) - set(FIELDS))
    if unknown:
        raise RequestError("unknown field(s) %s; accepted: %s" % (", ".join(map(repr, unknown)), ", ".join(FIELDS)),
                           code="unknown_field", field=unknown[0])
    prompt = _prompt(req, limits)
    steps = _whole(req, "steps", 1, limits.max_steps, DEFAULT_STEPS)
    width, height = _size(req, limits)
    return {
        "prompt": prompt,
        "steps": steps,
        "width": width,
        "height": height,
        "seed": _whole(req, "seed", 0, MAX_SEED),
        "guidance_scale": _guidance(req, limits),
    }


def content_length(headers, limits):
    """The body's length from the headers, or RequestError (411, 400 or 413)."""
    if headers.get("Transfer-Encoding"):
        raise RequestError("Transfer-Encoding bodies are not accepted; send Content-Length", status=411,
                           code="length_required")
    values = headers.get_all("Content-Length") or []
    if not values:
        raise RequestError("Content-Length is required", status=411, code="length_required")
    if len(set(v.strip() for v in values)) != 1 or not re.match(r"^\d{1,12}$", values[0].strip()):
        raise RequestError("Content-Length must be one whole number, got %s" % ", ".join(values)[:60],
                           code="invalid_content_length")
    length = int(values[0])
    if length > limits.max_body_bytes:
        raise RequestError("body of %d bytes is over the limit of %d (IMAGE_SERVER_MAX_BODY_BYTES)"
                           % (length, limits.max_body_bytes), status=413, code="body_too_large")
    return length


# ---------------------------------------------------------------- the queue

class Job(object):
    """One admitted request; `client_gone` probes its socket without reading from it."""

    def __init__(self, connection):
        self.connection = connection
        self.cancelled = False

    def client_gone(self):
        if self.cancelled:
            return True
        try:
            # poll, not select: select refuses descriptors past 1024 (a busy server's), which read as gone.
            poller = select.poll()
            poller.register(self.connection, select.POLLIN)
            if poller.poll(0) and self.connection.recv(1, socket.MSG_PEEK) == b"":
                self.cancelled = True
        except (OSError, ValueError):  # reset by the peer, or already closed
            self.cancelled = True
        return self.cancelled


class WorkQueue(object):
    """One job runs; at most `depth` wait (first come, first served); more are refused."""

    def __init__(self, depth):
        self.depth = depth
        self.cond = threading.Condition()
        self.running = None
        self.waiting = collections.deque()
        self.seconds_per_job = 5.0  # moving average, for Retry-After
        self.counts = collections.Counter()

    def snapshot(self):
        with self.cond:
            return {"running": int(self.running is not None), "waiting": len(self.waiting),
                    "queue_depth": self.depth, **dict(self.counts)}

    def admit(self, job):
        """Queue the job or raise RequestError 429; the caller then waits with `turn`."""
        with self.cond:
            if int(self.running is not None) + len(self.waiting) > self.depth:
                self.counts["rejected"] += 1
                retry = max(1, int(math.ceil(self.seconds_per_job * (len(self.waiting) + 1))))
                raise RequestError("the queue is full (1 running, %d waiting, IMAGE_SERVER_QUEUE_DEPTH=%d); retry "
                                   "in about %d s" % (len(self.waiting), self.depth, retry), status=429,
                                   code="queue_full", headers={"Retry-After": str(retry)})
            self.waiting.append(job)

    def turn(self, job, poll=0.2):
        """Block until the job may run (True) or its client left the queue (False)."""
        while True:
            with self.cond:
                if self.running is None and self.waiting and self.waiting[0] is job:
                    self.waiting.popleft()
                    self.running = job
                    return True
                self.cond.wait(poll)
            if job.client_gone():
                with self.cond:
                    if job in self.waiting:
                        self.waiting.remove(job)
                    self.counts["cancelled_waiting"] += 1
                    self.cond.notify_all()
                return False

    def done(self, job, seconds, outcome):
        with self.cond:
            if self.running is job:
                self.running = None
            self.counts[outcome] += 1
            if outcome == "served":
                self.seconds_per_job = 0.7 * self.seconds_per_job + 0.3 * seconds
            self.cond.notify_all()


# ---------------------------------------------------------------- metrics

ROUTES = ("/health", "/generate", "/metrics")
# Seconds: a tiny CPU pipeline takes about one, a 1024x1024 SDXL image on a 3090 about ten, CPU SD minutes.
GENERATION_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class QueueCollector(object):
    """The queue and the pipeline as they are at scrape time (read under the queue's lock)."""

    def __init__(self, server):
        self.server = server

    def collect(self):
        snap = self.server.queue.snapshot()
        for name, help_text, value in (
                ("image_server_queue_running", "Generations running now (0 or 1)", snap["running"]),
                ("image_server_queue_waiting", "Requests waiting behind the running generation", snap["waiting"]),
                ("image_server_queue_depth", "Most requests that may wait (IMAGE_SERVER_QUEUE_DEPTH)", snap["queue_depth"]),
                ("image_server_pipeline_loaded", "1 once the pipeline is loaded", int(self.server.engine is not None))):
            yield GaugeMetricFamily(name, help_text, value=value)
        jobs = CounterMetricFamily("image_server_jobs", "Admitted or refused generation requests by outcome",
                                   labels=["outcome"])
        for outcome in ("served", "failed", "rejected", "cancelled_waiting", "cancelled_running"):
            jobs.add_metric([outcome], snap.get(outcome, 0))
        yield jobs


class Metrics(object):
    """One registry per server (tests run several in one process), exposed at GET /metrics."""

    def __init__(self, server):
        self.registry = CollectorRegistry()
        self.responses = Counter("image_server_responses", "HTTP responses by route and status code",
                                 ["route", "code"], registry=self.registry)
        self.generation = Histogram("image_server_generation_seconds", "Seconds to generate one served image",
                                    buckets=GENERATION_BUCKETS, registry=self.registry)
        self.registry.register(QueueCollector(server))

    def response(self, path, code):
        self.responses.labels(route=path if path in ROUTES else "other", code=str(code)).inc()

    def exposition(self):
        return generate_latest(self.registry)


# ---------------------------------------------------------------- the pipeline

class Engine(object):
    """The loaded pipeline, a seeded-generator factory and the library versions /health reports."""

    def __init__(self, pipeline, make_generator, versions):
        self.pipeline = pipeline
        self.make_generator = make_generator
        self.versions = versions

    def generate(self, req, job):
        """PNG bytes of one image, or GenerationCancelled when the client went away mid-way."""

        def stop_when_client_gone(pipe, step, timestep, callback_kwargs):
            if job.client_gone():
                raise GenerationCancelled("client disconnected at step %d" % (step + 1))
            return callback_kwargs

        generator = self.make_generator(req["seed"]) if req["seed"] is not None else None
        result = self.pipeline(prompt=req["prompt"], num_inference_steps=req["steps"], width=req["width"],
                               height=req["height"], guidance_scale=req["guidance_scale"], generator=generator,
                               callback_on_step_end=stop_when_client_gone)
        buf = io.BytesIO()
        result.images[0].save(buf, format="PNG")
        return buf.getvalue()


def load_pipeline(model_dir, pipeline_class):
    import torch
    import diffusers
    import transformers

    threads = int(os.environ.get("IMAGE_SERVER_TORCH_THREADS", "0"))
    if threads > 0:
        # On a small shared CPU, torch's default (one thread per core) spins against other
        # processes: measured 13 s vs 1.4 s for 64x64/2 steps with 1 thread on 2 busy cores.
        torch.set_num_threads(threads)
    cls = getattr(diffusers, pipeline_class)
    start = time.monotonic()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    # fp16 on CUDA halves the pipeline's VRAM (what the vLLM plan's ledger counts for this co-tenant);
    # CPUs have no fast fp16 path, so float32 there. IMAGE_SERVER_DTYPE overrides.
    dtype_name = os.environ.get("IMAGE_SERVER_DTYPE", "auto")
    if dtype_name == "auto":
        dtype_name = "float16" if device == "cuda" else "float32"
    pipe = cls.from_pretrained(model_dir, local_files_only=True, torch_dtype=getattr(torch, dtype_name))
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    LOG.info("loaded %s from %s on %s (%s) in %.1fs", pipeline_class, model_dir, device, dtype_name,
             time.monotonic() - start)
    versions = {"torch": torch.__version__, "diffusers": diffusers.__version__,
                "transformers": transformers.__version__}
    return Engine(pipe, lambda seed: torch.Generator(device="cpu").manual_seed(seed), versions)


# ---------------------------------------------------------------- HTTP

class ImageServer(ThreadingHTTPServer):
    """The listening server: its key, limits, queue and (once loaded) engine."""

    daemon_threads = True

    def __init__(self, address, api_key, limits, model=None):
        if not api_key or not api_key.strip():
            raise ValueError("%s is empty: the image server needs a key of its own (role variable "
                             "image_server_api_key)" % API_KEY_ENV)
        ThreadingHTTPServer.__init__(self, address, Handler)
        self.api_key = api_key.strip().encode()
        self.limits = limits
        self.queue = WorkQueue(limits.queue_depth)
        self.model = model
        self.engine = None
        self.load_error = None
        self.metrics = Metrics(self)

    def handle_error(self, request, client_address):
        """A client that left mid-request (reset, broken pipe) is one log line, not a traceback on stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            LOG.info("%s: connection lost: %s", client_address[0], exc)
        else:
            LOG.exception("unexpected error serving %s", client_address[0])


class Handler(BaseHTTPRequestHandler):
    server_version = "homelab-image-server/2"
    # Seconds a client may take to send its request line and headers (slow clients hold a thread).
    timeout = 60

    def log_message(self, fmt, *args):
        LOG.info("%s %s", self.address_string(), fmt % args)

    # -- responses

    def _json(self, status, payload, headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, exc):
        self._json(exc.status, error_body(exc.code, str(exc), exc.field), exc.headers)

    def send_response(self, code, message=None):
        """Every response is counted by route and code (a request line that did not parse is `other`)."""
        self.server.metrics.response(self._path() if getattr(self, "path", None) else "other", code)
        BaseHTTPRequestHandler.send_response(self, code, message)

    def _metrics(self):
        data = self.server.metrics.exposition()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):
        """The stdlib's own refusals (bad request line, headers too long...) as JSON too."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # The request line did not parse: without this the reply would be a bare body, no status line.
            self.request_version = "HTTP/1.0"
        try:
            self._json(code, error_body("bad_http", message or self.responses.get(code, ("error",))[0]))
        except OSError:
            pass

    def __getattr__(self, name):
        # Any other method (BREW, PROPFIND...) is the client's mistake: 405 (or 401), not 501.
        if name.startswith("do_"):
            return self._other_method
        raise AttributeError(name)

    # -- routing

    def _path(self):
        return self.path.split("?", 1)[0].rstrip("/") or "/"

    def _authorized(self):
        scheme, _, token = (self.headers.get("Authorization") or "").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.server.api_key)

    def _require_key(self):
        if self._authorized():
            return True
        self._json(401, error_body("unauthorized", "send 'Authorization: Bearer <key>' (the image server's own key, "
                                   "image_server_api_key); only GET /health is open"),
                   {"WWW-Authenticate": 'Bearer realm="image-server"'})
        return False

    def _health(self):
        engine = self.server.engine
        if engine is None:
            status = "loading" if self.server.load_error is None else "error"
            return self._json(503, {"status": status, "error": self.server.load_error, "model": self.server.model})
        return self._json(200, {"status": "ok", "model": self.server.model, "pipeline": type(engine.pipeline).__name__,
                                "versions": engine.versions, "queue": self.server.queue.snapshot(),
                                "limits": self.server.limits._asdict()})

    def do_GET(self):
        if self._path() == "/health":
            return self._health()
        if not self._require_key():
            return
        if self._path() == "/metrics":
            return self._metrics()
        self._json(404, error_body("not_found", "no route GET %s; routes: GET /health, GET /metrics, POST /generate"
                                   % self._path()))

    do_HEAD = do_GET

    def _other_method(self):
        self._drain_or_close()
        if self._require_key():
            self._json(405, error_body("method_not_allowed", "%s %s: routes are GET /health, GET /metrics and POST /generate"
                                       % (self.command, self._path())), {"Allow": "GET, POST"})

    def _drain_or_close(self):
        """Read a small declared body so the reply is not lost to a reset; otherwise close after."""
        self.close_connection = True
        try:
            self._read_within(content_length(self.headers, self.server.limits), self.server.limits.body_timeout)
        except (RequestError, OSError):
            pass

    def _read_within(self, length, seconds):
        """Up to `length` bytes (fewer at EOF) within `seconds` in all, or socket.timeout.

        A timeout per recv alone would let a client trickle one byte at a time for hours.
        """
        deadline = time.monotonic() + seconds
        chunks, got = [], 0
        try:
            while got < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("deadline passed")
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        finally:
            self.connection.settimeout(self.timeout)
        return b"".join(chunks)

    def _read_body(self):
        length = content_length(self.headers, self.server.limits)
        try:
            body = self._read_within(length, self.server.limits.body_timeout)
        except socket.timeout:
            raise RequestError("the body did not arrive within %d s (IMAGE_SERVER_BODY_TIMEOUT)"
                               % self.server.limits.body_timeout, status=408, code="body_timeout")
        if len(body) != length:
            raise RequestError("body ended after %d of the %d bytes Content-Length announced" % (len(body), length),
                               code="incomplete_body")
        return body

    def do_POST(self):
        try:
            body = self._read_body()
        except RequestError as exc:
            self.close_connection = True
            if self._authorized():
                self._error(exc)
            else:
                self._require_key()
            return self._linger()
        if not self._require_key():
            return
        if self._path() != "/generate":
            return self._json(404, error_body("not_found", "no route POST %s; routes: GET /health, GET /metrics, POST /generate"
                                              % self._path()))
        try:
            self._generate(body)
        except RequestError as exc:
            self._error(exc)

    def _linger(self):
        """After refusing an unread body: stop writing, drain briefly (2 s in all, a bounded number of
        bytes), so the client reads the reply rather than a reset."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + 2
            drained = 0
            while drained < 4 * self.server.limits.max_body_bytes + 65536 and time.monotonic() < deadline:
                self.connection.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.connection.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass

    def _generate(self, body):
        req = parse_request(body, self.server.limits)
        engine = self.server.engine
        if engine is None:
            raise RequestError("the pipeline is not loaded yet (%s)" % (self.server.load_error or "loading"),
                               status=503, code="not_ready", headers={"Retry-After": "10"})
        queue = self.server.queue
        job = Job(self.connection)
        queue.admit(job)
        if not queue.turn(job):
            LOG.info("%s left the queue before its turn: dropped", self.address_string())
            self.close_connection = True
            return
        start = time.monotonic()
        outcome = "failed"
        try:
            png = engine.generate(req, job)
            outcome = "served"
        except GenerationCancelled as exc:
            outcome = "cancelled_running"
            LOG.info("%s: %s, generation stopped", self.address_string(), exc)
            self.close_connection = True
            return
        except Exception as exc:  # the pipeline failed (out of memory, say): the request was fine
            LOG.exception("generation failed")
            return self._json(500, error_body("generation_failed", "%s: %s" % (type(exc).__name__, exc)))
        finally:
            seconds = time.monotonic() - start
            queue.done(job, seconds, outcome)
            if outcome == "served":
                self.server.metrics.generation.observe(seconds)
        self._send_png(png, time.monotonic() - start)

    def _send_png(self, png, seconds):
        try:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.send_header("X-Generation-Seconds", "%.3f" % seconds)
            self.end_headers()
            self.wfile.write(png)
        except OSError as exc:  # the client left after the last step
            LOG.info("%s: could not send the image: %s", self.address_string(), exc)
            self.close_connection = True


def healthcheck(port):
    """One line on failure (the Docker health log keeps it), no traceback."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print("health: HTTP %d %s" % (exc.code, exc.read(200).decode("utf-8", "replace")))
    except Exception as exc:  # connection refused while starting, timeouts
        print("health: %s" % exc)
    return 1


def main(argv=None, environ=None):
    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=environ.get("IMAGE_SERVER_MODEL", "/models/tiny-sd"))
    parser.add_argument("--pipeline", default=environ.get("IMAGE_SERVER_PIPELINE", "StableDiffusionPipeline"))
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(environ.get("IMAGE_SERVER_PORT", "7860")))
    parser.add_argument("--healthcheck", action="store_true",
                        help="probe http://127.0.0.1:PORT/health once; exit 0 when it answers 200")
    args = parser.parse_args(argv)
    if args.healthcheck:
        return healthcheck(args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        limits = Limits.from_env(environ)
        httpd = ImageServer((args.host, args.port), environ.get(API_KEY_ENV, ""), limits, model=args.model)
    except ValueError as exc:
        # Fail fast: a restart loop with this message beats a server that answers anyone.
        LOG.error("refusing to start: %s", exc)
        return 2
    if not os.path.isfile(os.path.join(args.model, "model_index.json")):
        LOG.error("no diffusers model at %s (model_index.json missing)", args.model)
        httpd.server_close()
        return 2
    LOG.info("listening on %s:%d; limits %s", args.host, args.port, dict(limits._asdict()))

    def _load():
        try:
            httpd.engine = load_pipeline(args.model, args.pipeline)
        except Exception as exc:  # reported by /health, then the process exits non-zero
            LOG.exception("pipeline load failed")
            httpd.load_error = "%s: %s" % (type(exc).__name__, exc)
            httpd.shutdown()

    threading.Thread(target=_load, daemon=True).start()
    httpd.serve_forever()
    return 1 if httpd.load_error else 0


if __name__ == "__main__":
    sys.exit(main())
