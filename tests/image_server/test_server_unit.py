"""The image server in-process, without torch: parsing, and the real HTTP server over real sockets.

server.py and make_tiny_diffusers_pipeline.py import torch/diffusers lazily (only inside load_pipeline), so they
load here. The HTTP tests start a real `server.ImageServer` on 127.0.0.1:0 in a thread with a FAKE
engine (FakeEngine below, or the real `server.Engine` driving StepPipeline, a fake pipeline that
calls `callback_on_step_end` like diffusers does) and talk to it with http.client or a raw socket.
The real pipeline runs in the image (molecule/rollout_faults verify generates a PNG).

No timing ratios: slow engines block on events the test releases, and every wait has a generous
deadline, so the file stays fast and deterministic on a small busy machine.
"""
import collections
import http.client
import importlib.util
import json
import os
import resource
import socket
import struct
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[2] / "roles/image_server/files"
KEY = "k" * 40
WAIT = 20  # seconds: the deadline of every wait; a passing run never comes near it


def _load(name):
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


server = _load("server")
maker = _load("make_tiny_diffusers_pipeline")


# ---------------------------------------------------------------- fakes

def _png():
    """A valid 1x1 grey PNG, built by hand (no Pillow here)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b""))


PNG = _png()


class FakePipeline:
    """FAKE: stands in for a diffusers pipeline in /health's "pipeline" name; never called."""


class FakeEngine:
    """FAKE stand-in for server.Engine (.pipeline, .versions, generate): no model, no torch.

    generate() blocks until `gate` is set (set from the start unless block=True) and records the
    requests it got and how many ran at once.
    """

    def __init__(self, block=False):
        self.pipeline = FakePipeline()
        self.versions = {"fake": "0"}
        self.gate = threading.Event()
        if not block:
            self.gate.set()
        self.lock = threading.Lock()
        self.calls = []
        self.active = self.max_active = 0

    def generate(self, req, job):
        with self.lock:
            self.calls.append(req)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            assert self.gate.wait(WAIT), "the test never released the fake engine"
            return PNG
        finally:
            with self.lock:
                self.active -= 1

    def release(self):
        self.gate.set()


class FakeImage:
    def save(self, buf, format):
        assert format == "PNG"
        buf.write(PNG)


class StepPipeline:
    """FAKE diffusers pipeline for the real server.Engine: loops over the steps, sleeps a little per
    step and calls callback_on_step_end(pipe, step, timestep, kwargs) after each, as diffusers does.

    With pause_at=N it sets `reached` before step N's callback and waits there for `proceed`.
    """

    def __init__(self, delay=0.0, pause_at=None, fail=None):
        self.delay = delay
        self.pause_at = pause_at
        self.fail = fail
        self.reached = threading.Event()
        self.proceed = threading.Event()
        self.calls = []
        self.steps_run = 0

    def __call__(self, prompt, num_inference_steps, width, height, guidance_scale, generator,
                 callback_on_step_end):
        self.calls.append(dict(prompt=prompt, steps=num_inference_steps, width=width, height=height,
                               guidance_scale=guidance_scale, generator=generator))
        self.steps_run = 0
        if self.fail:
            raise self.fail
        for step in range(num_inference_steps):
            time.sleep(self.delay)
            self.steps_run += 1
            if step == self.pause_at:
                self.reached.set()
                assert self.proceed.wait(WAIT), "the test never let the pipeline proceed"
            callback_on_step_end(self, step, 1000 - step, {"latents": None})
        return collections.namedtuple("Output", "images")([FakeImage()])

    def release(self):
        self.proceed.set()


def step_engine(pipeline):
    return server.Engine(pipeline, lambda seed: ("generator", seed), {"fake": "0"})


# ---------------------------------------------------------------- server and clients

@pytest.fixture
def serve():
    """start(engine, **limits) -> a running ImageServer; all of them stop after the test.

    Stopping joins every handler thread, then asserts that none of them raised anything but a lost
    connection (an exception there is a dropped connection for the client, or a 500 never sent).
    """
    started = []

    def start(engine=None, **limits):
        httpd = server.ImageServer(("127.0.0.1", 0), KEY, server.Limits.defaults()._replace(**limits),
                                   model="fake-model")
        httpd.engine = engine
        httpd.daemon_threads = False  # so that server_close() joins the handlers (block_on_close)
        httpd.raised = []
        handle_error = httpd.handle_error

        def record(request, address):
            httpd.raised.append(sys.exc_info()[1])
            handle_error(request, address)

        httpd.handle_error = record
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
        thread.start()
        started.append((httpd, thread, engine))
        return httpd

    yield start
    for httpd, thread, engine in started:
        for stuck in (engine, getattr(engine, "pipeline", None)):
            if hasattr(stuck, "release"):
                stuck.release()
        httpd.shutdown()
        httpd.server_close()
        thread.join(WAIT)
    for httpd, _, _ in started:
        assert [exc for exc in httpd.raised if not isinstance(exc, OSError)] == []


class Reply(collections.namedtuple("Reply", "status headers body")):
    @property
    def json(self):
        return json.loads(self.body)

    @property
    def error(self):
        return self.json["error"]


def port_of(httpd):
    return httpd.server_address[1]


def call(httpd, method, path, body=None, key=KEY, headers=None):
    """One request on its own connection with http.client; body: bytes, or an object sent as JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port_of(httpd), timeout=WAIT)
    try:
        sent = dict(headers or {})
        if key is not None:
            sent["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def parse_reply(data):
    assert data, "the server closed the connection without a reply"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status = lines[0].split(" ")[:2]
    assert version.startswith("HTTP/1."), lines[0]
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    return Reply(int(status), headers, body)


def read_to_eof(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def raw(httpd, data, half_close=False):
    """Send bytes as they are and read the reply up to the server's close (or half-close)."""
    with socket.create_connection(("127.0.0.1", port_of(httpd)), timeout=WAIT) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return parse_reply(read_to_eof(sock))


def post_bytes(body, headers=(), key=KEY, path="/generate"):
    """A POST request with its Content-Length (unless headers replace the framing)."""
    lines = ["POST %s HTTP/1.1" % path, "Host: test", "Connection: close"]
    if key is not None:
        lines.append("Authorization: Bearer " + key)
    names = [h.split(":")[0].lower() for h in headers]
    if "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def health(httpd):
    reply = call(httpd, "GET", "/health", key=None)
    assert reply.status == 200, reply
    return reply.json


def counters(httpd):
    return collections.defaultdict(int, health(httpd)["queue"])


def wait_for(what, predicate):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def queue_when(httpd, what, predicate):
    """/health's queue counters once predicate(counters) holds."""
    found = []
    wait_for(what, lambda: predicate(found.append(counters(httpd)) or found[-1]))
    return found[-1]


def assert_serves(httpd, **fields):
    reply = call(httpd, "POST", "/generate", dict({"prompt": "a cat", "steps": 2, "size": 64}, **fields))
    assert reply.status == 200, reply
    assert reply.headers["content-type"] == "image/png"
    assert reply.body == PNG
    return reply


# ---------------------------------------------------------------- request parsing (pure)

def test_parse_defaults_and_size_forms():
    req = server.parse_request(b'{"prompt": "a cat"}')
    assert (req["steps"], req["width"], req["height"], req["seed"]) == (20, 512, 512, None)
    assert req["guidance_scale"] == 7.5
    assert server.parse_request(b'{"prompt": "x", "size": "64x32"}')["width"] == 64
    assert server.parse_request(b'{"prompt": "x", "size": "64x32"}')["height"] == 32
    assert server.parse_request(b'{"prompt": "x", "size": 128}')["height"] == 128
    assert server.parse_request(b'{"prompt": "x", "size": 128, "width": 64}')["width"] == 64
    assert server.parse_request(b'{"prompt": "x", "steps": null, "seed": 0}')["steps"] == 20
    assert server.parse_request(b'{"prompt": "\\ud83d\\ude00 caf\xc3\xa9"}')["prompt"] == "\U0001f600 caf\xe9"
    # The prompt is checked first: it is the field named when several are wrong.
    with pytest.raises(ValueError, match="'prompt'"):
        server.parse_request(b'{"prompt": 1, "steps": 0}')


@pytest.mark.parametrize("body,fragment", [
    (b"not json", "not JSON"),
    (b"[1]", "JSON object"),
    (b'{"prompt": ""}', "'prompt'"),
    (b'{"prompt": "x", "steps": 0}', "'steps'"),
    (b'{"prompt": "x", "steps": 1000}', "'steps'"),
    (b'{"prompt": "x", "size": "60x64"}', "'width' must be a multiple of 8"),
    (b'{"prompt": "x", "size": 4096}', "'width'"),
])
def test_parse_rejects_with_a_reason(body, fragment):
    with pytest.raises(ValueError, match=fragment):
        server.parse_request(body)


# ---------------------------------------------------------------- /health and the key

def test_health_is_open_and_reports_queue_and_limits(serve):
    httpd = serve(FakeEngine(), queue_depth=3, max_steps=9)
    reply = call(httpd, "GET", "/health", key=None)
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    body = reply.json
    assert body["status"] == "ok" and body["model"] == "fake-model"
    assert body["pipeline"] == "FakePipeline" and body["versions"] == {"fake": "0"}
    assert body["queue"] == {"running": 0, "waiting": 0, "queue_depth": 3}
    assert body["limits"]["max_steps"] == 9 and body["limits"]["queue_depth"] == 3
    assert set(body["limits"]) == set(server.Limits._fields)
    head = call(httpd, "HEAD", "/health", key=None)
    assert head.status == 200 and head.body == b""


def test_health_is_503_loading_before_the_engine_is_set(serve):
    httpd = serve(None)
    reply = call(httpd, "GET", "/health", key=None)
    assert reply.status == 503 and reply.json["status"] == "loading"
    reply = call(httpd, "POST", "/generate", {"prompt": "x"})
    assert reply.status == 503 and reply.error["code"] == "not_ready" and reply.headers["retry-after"]
    httpd.load_error = "OSError: no model"
    assert call(httpd, "GET", "/health", key=None).json["status"] == "error"
    httpd.load_error = None
    httpd.engine = FakeEngine()
    assert health(httpd)["status"] == "ok"
    assert_serves(httpd)


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Bearer " + KEY[:-1], "Bearer " + KEY + "x",
                                  "Basic " + KEY, KEY, "Bearer", "Bearer  "])
@pytest.mark.parametrize("method,path", [("POST", "/generate"), ("GET", "/"), ("GET", "/generate"),
                                         ("GET", "/health/x"), ("POST", "/health"), ("PUT", "/generate"),
                                         ("DELETE", "/generate"), ("BREW", "/health"), ("POST", "/nope")])
def test_every_route_but_health_needs_the_key(serve, method, path, auth):
    engine = FakeEngine()
    httpd = serve(engine)
    reply = call(httpd, method, path, {"prompt": "x"} if method != "GET" else None, key=None,
                 headers={"Authorization": auth} if auth else None)
    assert reply.status == 401, reply
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert reply.error["code"] == "unauthorized"
    assert engine.calls == []


def test_head_without_the_key_is_401_without_a_body(serve):
    reply = call(serve(FakeEngine()), "HEAD", "/generate", key=None)
    assert reply.status == 401 and reply.body == b"" and "www-authenticate" in reply.headers


@pytest.mark.parametrize("key", ["", "   ", None])
def test_server_refuses_to_start_without_a_key(key):
    with pytest.raises(ValueError, match="IMAGE_SERVER_API_KEY"):
        server.ImageServer(("127.0.0.1", 0), key, server.Limits.defaults())


def test_main_returns_2_without_a_key_or_with_bad_limits(tmp_path):
    args = ["--host", "127.0.0.1", "--port", "0", "--model", str(tmp_path)]
    assert server.main(args, {}) == 2
    assert server.main(args, {"IMAGE_SERVER_API_KEY": "  "}) == 2
    assert server.main(args, {"IMAGE_SERVER_API_KEY": KEY, "IMAGE_SERVER_MAX_STEPS": "x"}) == 2
    # With a key but no model there: refused too (model_index.json missing).
    assert server.main(args, {"IMAGE_SERVER_API_KEY": KEY}) == 2


def test_healthcheck_probe(serve, capsys):
    httpd = serve(None)
    args = ["--healthcheck", "--port", str(port_of(httpd))]
    assert server.main(args, {}) == 1
    assert capsys.readouterr().out.startswith("health: HTTP 503")
    httpd.engine = FakeEngine()
    assert server.main(args, {}) == 0


# ---------------------------------------------------------------- malformed requests: 4xx JSON

LONG_PROMPT = "x" * 2001  # IMAGE_SERVER_MAX_PROMPT_CHARS defaults to 2000


@pytest.mark.parametrize("body,code,field", [
    (b'{"prompt": "x", "steps": [1]}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": 1.5}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": 2.0}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": true}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": "5"}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": 0}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": 101}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": NaN}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": [NaN]}', "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": {"n": Infinity}}', "invalid_field", "steps"),
    (b'{"prompt": "x", "size": {}}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": "abc"}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": ""}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": [64, 64]}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": [-Infinity]}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": true}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": 64.0}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": "60x64"}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": "99999x64"}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": 0}', "invalid_field", "size"),
    (b'{"prompt": "x", "size": 1032}', "invalid_field", "size"),
    (b'{"prompt": "x", "width": 12}', "invalid_field", "width"),
    (b'{"prompt": "x", "height": "64"}', "invalid_field", "height"),
    (b'{"prompt": "x", "size": 64, "height": 10000000}', "invalid_field", "height"),
    (b'{"prompt": "x", "seed": "abc"}', "invalid_field", "seed"),
    (b'{"prompt": "x", "seed": -1}', "invalid_field", "seed"),
    (b'{"prompt": "x", "seed": 1.0}', "invalid_field", "seed"),
    (b'{"prompt": "x", "seed": 9223372036854775808}', "invalid_field", "seed"),
    (b'{"prompt": "x", "guidance_scale": NaN}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": Infinity}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": -Infinity}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": 1e999}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": -1e999}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": 51}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": -0.5}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": "7"}', "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": false}', "invalid_field", "guidance_scale"),
    (b'{"steps": 2}', "invalid_field", "prompt"),
    (b'{"prompt": ""}', "invalid_field", "prompt"),
    (b'{"prompt": " \\n\\t "}', "invalid_field", "prompt"),
    (b'{"prompt": null}', "invalid_field", "prompt"),
    (b'{"prompt": 5}', "invalid_field", "prompt"),
    (b'{"prompt": ["x"]}', "invalid_field", "prompt"),
    (b'{"prompt": NaN}', "invalid_field", "prompt"),
    (b'{"prompt": "a \\ud800 cat"}', "invalid_field", "prompt"),
    (b'{"prompt": "\\udfff"}', "invalid_field", "prompt"),
    (b'{"prompt": "' + LONG_PROMPT.encode() + b'"}', "invalid_field", "prompt"),
    (b'{"prompt": "x", "negative_prompt": "y"}', "unknown_field", "negative_prompt"),
    (b'{"prompt": "x", "Steps": 2}', "unknown_field", "Steps"),
    (b"", "invalid_field", "prompt"),
    (b"not json", "invalid_json", None),
    (b"   ", "invalid_json", None),
    (b'{"prompt": "x",}', "invalid_json", None),
    (b'{"prompt": "x"} {}', "invalid_json", None),
    (b'{"prompt": "x", "steps": 1' + b"0" * 5000 + b"}", "invalid_json", None),
    (b'{"prompt": "x", "steps": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json", None),
    (b'{"prompt": "caf\xe9"}', "invalid_json", None),
    (b'{"prompt": "\xff\xfe\xfd"}', "invalid_json", None),
    (b"\xff\xfe", "invalid_json", None),
    (b'[{"prompt": "x"}]', "invalid_request", None),
    (b'"a cat"', "invalid_request", None),
    (b"null", "invalid_request", None),
    (b"7", "invalid_request", None),
])
def test_each_malformed_body_gets_its_400(serve, body, code, field):
    engine = FakeEngine()
    httpd = serve(engine)
    reply = call(httpd, "POST", "/generate", body)
    assert reply.status == 400, reply
    assert reply.headers["content-type"] == "application/json"
    assert reply.error["code"] == code
    assert reply.error.get("field") == field
    assert reply.error["message"]
    assert engine.calls == []


def test_the_same_client_is_served_after_a_400(serve):
    httpd = serve(FakeEngine())
    conn = http.client.HTTPConnection("127.0.0.1", port_of(httpd), timeout=WAIT)
    auth = {"Authorization": "Bearer " + KEY}
    try:
        conn.request("POST", "/generate", body=b'{"prompt": "x", "steps": [1]}', headers=auth)
        first = conn.getresponse()
        assert first.status == 400 and json.loads(first.read())["error"]["field"] == "steps"
        conn.request("POST", "/generate", body=b'{"prompt": "x", "steps": 1, "size": 64}', headers=auth)
        second = conn.getresponse()
        assert second.status == 200 and second.read() == PNG
    finally:
        conn.close()


def test_missing_content_length_is_411(serve):
    httpd = serve(FakeEngine())
    reply = raw(httpd, post_bytes(b"", headers=["X-Nothing: 1"]).replace(b"Content-Length: 0\r\n", b""))
    assert reply.status == 411 and reply.error["code"] == "length_required"


def test_chunked_body_is_411(serve):
    engine = FakeEngine()
    httpd = serve(engine)
    body = b'{"prompt": "x"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = raw(httpd, post_bytes(chunked, headers=["Transfer-Encoding: chunked"]))
    assert reply.status == 411 and reply.error["code"] == "length_required"
    assert "Content-Length" in reply.error["message"]
    # Both headers at once (a request-smuggling shape): still refused, not guessed.
    reply = raw(httpd, post_bytes(chunked, headers=["Transfer-Encoding: chunked", "Content-Length: 5"]))
    assert reply.status == 411
    assert engine.calls == []


@pytest.mark.parametrize("headers", [["Content-Length: abc"], ["Content-Length: -1"], ["Content-Length: 1e3"],
                                     ["Content-Length: 15", "Content-Length: 16"], ["Content-Length: "]])
def test_bad_content_length_is_400(serve, headers):
    reply = raw(serve(FakeEngine()), post_bytes(b'{"prompt": "x"}', headers=headers))
    assert reply.status == 400 and reply.error["code"] == "invalid_content_length"


def test_body_over_the_limit_is_413_and_the_client_reads_it(serve):
    engine = FakeEngine()
    httpd = serve(engine, max_body_bytes=1024)
    big = json.dumps({"prompt": "x" * 40000}).encode()  # about 40 times the limit
    reply = call(httpd, "POST", "/generate", big)
    assert reply.status == 413, reply
    assert reply.error["code"] == "body_too_large" and "IMAGE_SERVER_MAX_BODY_BYTES" in reply.error["message"]
    # Announced but never sent: refused from the header alone.
    reply = raw(httpd, post_bytes(b"", headers=["Content-Length: 999999999999"]))
    assert reply.status == 413
    assert engine.calls == []
    assert_serves(httpd)


def test_body_that_stops_coming_is_408_after_body_timeout(serve):
    engine = FakeEngine()
    httpd = serve(engine, body_timeout=1)
    with socket.create_connection(("127.0.0.1", port_of(httpd)), timeout=WAIT) as sock:
        sock.sendall(post_bytes(b'{"prompt": "x"', headers=["Content-Length: 100"]))
        started = time.monotonic()
        reply = parse_reply(read_to_eof(sock))  # the client keeps its side open and just waits
        waited = time.monotonic() - started
    assert reply.status == 408 and reply.error["code"] == "body_timeout"
    assert waited >= 0.9  # not before the timeout (no upper bound: the machine may be slow)
    assert engine.calls == []
    assert_serves(httpd)


def test_body_trickled_a_byte_at_a_time_is_408_after_body_timeout(serve):
    """body_timeout bounds the whole body, not each read: a trickle cannot hold a thread for hours."""
    httpd = serve(FakeEngine(), body_timeout=1)
    stop = threading.Event()
    with socket.create_connection(("127.0.0.1", port_of(httpd)), timeout=WAIT) as sock:
        sock.sendall(post_bytes(b"", headers=["Content-Length: 200"]))

        def trickle():  # 200 bytes at 0.1 s each would take 20 s
            while not stop.wait(0.1):
                try:
                    sock.send(b" ")
                except OSError:
                    return

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        try:
            reply = parse_reply(read_to_eof(sock))
        finally:
            stop.set()
            thread.join(WAIT)
    assert reply.status == 408 and reply.error["code"] == "body_timeout"


def test_body_shorter_than_announced_is_400(serve):
    httpd = serve(FakeEngine())
    reply = raw(httpd, post_bytes(b'{"prompt": "x"}', headers=["Content-Length: 100"]), half_close=True)
    assert reply.status == 400 and reply.error["code"] == "incomplete_body"


def test_client_reset_mid_body_leaves_the_server_serving(serve):
    httpd = serve(FakeEngine(), body_timeout=5)
    sock = socket.create_connection(("127.0.0.1", port_of(httpd)), timeout=WAIT)
    sock.sendall(post_bytes(b'{"prompt"', headers=["Content-Length: 100"]))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST
    assert_serves(httpd)
    # The reset is one log line (server.handle_error), not a traceback on stderr; the fixture checks
    # that nothing else was raised.


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "BREW"])
def test_unknown_method_is_405(serve, method):
    engine = FakeEngine()
    httpd = serve(engine)
    reply = call(httpd, method, "/generate", {"prompt": "x"})
    assert reply.status == 405, reply
    assert reply.error["code"] == "method_not_allowed" and reply.headers["allow"] == "GET, POST"
    assert engine.calls == []


def test_unknown_method_without_a_body_is_405(serve):
    reply = raw(serve(FakeEngine()), b"BREW /generate HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n"
                % KEY.encode())
    assert reply.status == 405


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("GET", "/generate"), ("POST", "/nope"),
                                         ("POST", "/generate/x"), ("POST", "/health")])
def test_unknown_path_is_404(serve, method, path):
    engine = FakeEngine()
    httpd = serve(engine)
    reply = call(httpd, method, path, {"prompt": "x"} if method == "POST" else None)
    assert reply.status == 404 and reply.error["code"] == "not_found"
    assert engine.calls == []


def test_trailing_slash_and_query_reach_the_route(serve):
    httpd = serve(FakeEngine())
    assert call(httpd, "GET", "/health/?x=1", key=None).status == 200
    reply = call(httpd, "POST", "/generate?debug=1", {"prompt": "x", "steps": 1, "size": 64})
    assert reply.status == 200


@pytest.mark.parametrize("request_bytes,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\n\r\n", 505),
    (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
])
def test_broken_http_gets_a_json_4xx_with_a_status_line(serve, request_bytes, status):
    reply = raw(serve(FakeEngine()), request_bytes)
    assert reply.status == status
    assert reply.error["code"] == "bad_http"


# ---------------------------------------------------------------- the queue

def _burst(httpd, count):
    replies = [None] * count

    def one(index):
        try:
            replies[index] = call(httpd, "POST", "/generate", {"prompt": "p%d" % index, "steps": 1, "size": 64})
        except Exception as exc:  # recorded, asserted below
            replies[index] = exc

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return replies, threads


def test_burst_beyond_the_queue_gets_429_and_the_server_serves_after(serve):
    engine = FakeEngine(block=True)
    httpd = serve(engine, queue_depth=1)
    replies, threads = _burst(httpd, 6)
    # 1 runs (blocked in the engine), 1 waits, the other 4 are answered at once.
    wait_for("4 refusals", lambda: sum(isinstance(r, Reply) and r.status == 429 for r in replies) == 4)
    queue = queue_when(httpd, "1 running + 1 waiting", lambda q: (q["running"], q["waiting"]) == (1, 1))
    assert queue["rejected"] == 4 and queue["served"] == 0
    engine.release()
    for thread in threads:
        thread.join(WAIT)
    assert all(isinstance(r, Reply) for r in replies), replies
    assert sorted(r.status for r in replies) == [200, 200, 429, 429, 429, 429]
    for reply in replies:
        if reply.status == 200:
            assert reply.body == PNG and reply.headers["content-type"] == "image/png"
        else:
            assert reply.error["code"] == "queue_full"
            assert reply.headers["retry-after"].isdigit() and int(reply.headers["retry-after"]) >= 1
    assert len(engine.calls) == 2 and engine.max_active == 1
    assert_serves(httpd)
    queue = counters(httpd)
    assert (queue["running"], queue["waiting"], queue["served"], queue["rejected"]) == (0, 0, 3, 4)
    assert queue["queue_depth"] == 1


def test_queue_depth_0_serves_one_at_a_time(serve):
    engine = FakeEngine(block=True)
    httpd = serve(engine, queue_depth=0)
    replies, threads = _burst(httpd, 3)
    wait_for("2 refusals", lambda: sum(isinstance(r, Reply) and r.status == 429 for r in replies) == 2)
    engine.release()
    for thread in threads:
        thread.join(WAIT)
    assert sorted(r.status for r in replies) == [200, 429, 429]


# ---------------------------------------------------------------- cancellation

def _open_generate(httpd, **fields):
    """A raw client that sent a whole /generate request and now waits for the reply."""
    sock = socket.create_connection(("127.0.0.1", port_of(httpd)), timeout=WAIT)
    sock.sendall(post_bytes(json.dumps(dict({"prompt": "gone", "steps": 2, "size": 64}, **fields)).encode()))
    return sock


def test_a_waiting_client_that_leaves_is_dropped_from_the_queue(serve):
    engine = FakeEngine(block=True)
    httpd = serve(engine, queue_depth=1)
    first, threads = _burst(httpd, 1)
    wait_for("the first to run", lambda: counters(httpd)["running"] == 1)
    waiter = _open_generate(httpd)
    wait_for("the second to wait", lambda: counters(httpd)["waiting"] == 1)
    waiter.close()
    queue = queue_when(httpd, "the waiter to leave", lambda q: q["cancelled_waiting"] == 1)
    assert queue["waiting"] == 0 and queue["running"] == 1
    engine.release()
    threads[0].join(WAIT)
    assert first[0].status == 200
    assert [req["prompt"] for req in engine.calls] == ["p0"]  # the waiter never ran
    assert_serves(httpd)
    assert counters(httpd)["served"] == 2


def test_a_running_client_that_leaves_stops_the_generation(serve):
    pipeline = StepPipeline(delay=0.02, pause_at=2)
    httpd = serve(step_engine(pipeline), queue_depth=1)
    client = _open_generate(httpd, steps=100, seed=7)
    assert pipeline.reached.wait(WAIT), "the pipeline never started"
    client.close()
    pipeline.proceed.set()
    queue = queue_when(httpd, "the cancellation", lambda q: q["cancelled_running"] == 1)
    assert queue["running"] == 0 and queue["served"] == 0
    assert 3 <= pipeline.steps_run < 100, pipeline.steps_run
    assert pipeline.calls[0]["generator"] == ("generator", 7)
    pipeline.pause_at = None
    assert_serves(httpd, steps=3)
    assert pipeline.steps_run == 3
    assert counters(httpd)["served"] == 1


def test_engine_passes_the_request_to_the_pipeline(serve):
    pipeline = StepPipeline()
    httpd = serve(step_engine(pipeline))
    reply = assert_serves(httpd, steps=4, size="64x32", guidance_scale=2, prompt="a red fox")
    assert float(reply.headers["x-generation-seconds"]) >= 0
    assert pipeline.calls == [dict(prompt="a red fox", steps=4, width=64, height=32, guidance_scale=2.0,
                                   generator=None)]
    assert pipeline.steps_run == 4


def test_a_failing_pipeline_is_a_json_500_and_the_server_goes_on(serve):
    pipeline = StepPipeline(fail=RuntimeError("CUDA out of memory"))
    httpd = serve(step_engine(pipeline))
    reply = call(httpd, "POST", "/generate", {"prompt": "x", "steps": 1, "size": 64})
    assert reply.status == 500 and reply.error["code"] == "generation_failed"
    assert "out of memory" in reply.error["message"]
    pipeline.fail = None
    assert_serves(httpd)
    queue = counters(httpd)
    assert (queue["failed"], queue["served"], queue["running"]) == (1, 1, 0)


def test_client_gone_sees_a_close_even_on_a_high_descriptor():
    """A busy server's sockets can be numbered past select()'s 1024: that is not a departure."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1600:
        pytest.skip("RLIMIT_NOFILE %d is too low for a descriptor past 1024" % soft)
    ours, theirs = socket.socketpair()
    high = os.dup2(ours.fileno(), 1500)
    ours.close()
    conn = socket.socket(fileno=high)
    try:
        conn.settimeout(60)  # as the handler's socket
        job = server.Job(conn)
        assert not job.client_gone()
        theirs.sendall(b"x")  # pipelined bytes are not a departure
        assert not job.client_gone()
        assert conn.recv(1) == b"x"
        theirs.close()
        assert job.client_gone() and job.client_gone()
    finally:
        conn.close()


# ---------------------------------------------------------------- limits from the environment

def test_limits_from_env_defaults_and_values():
    assert server.Limits.from_env({}) == server.Limits.defaults()
    limits = server.Limits.from_env({"IMAGE_SERVER_MAX_STEPS": " 8 ", "IMAGE_SERVER_QUEUE_DEPTH": "0",
                                     "IMAGE_SERVER_BODY_TIMEOUT": "", "IMAGE_SERVER_MAX_SIDE": "64"})
    assert (limits.max_steps, limits.queue_depth, limits.max_side) == (8, 0, 64)
    assert limits.body_timeout == server.Limits.defaults().body_timeout


@pytest.mark.parametrize("variable,value", [
    ("IMAGE_SERVER_MAX_STEPS", "0"), ("IMAGE_SERVER_MAX_STEPS", "abc"), ("IMAGE_SERVER_MAX_STEPS", "1.5"),
    ("IMAGE_SERVER_MAX_SIDE", "7"), ("IMAGE_SERVER_MAX_PROMPT_CHARS", "0"),
    ("IMAGE_SERVER_MAX_BODY_BYTES", "63"), ("IMAGE_SERVER_QUEUE_DEPTH", "-1"),
    ("IMAGE_SERVER_MAX_GUIDANCE", "0x10"), ("IMAGE_SERVER_BODY_TIMEOUT", "0"),
    ("IMAGE_SERVER_BODY_TIMEOUT", "1" + "0" * 20), ("IMAGE_SERVER_MAX_BODY_BYTES", "1e6"),
])
def test_limits_from_env_rejects_bad_values_naming_the_variable(variable, value):
    with pytest.raises(ValueError, match=variable):
        server.Limits.from_env({variable: value})


# ---------------------------------------------------------------- the tiny model's files

def test_tokenizer_files_cover_every_byte(tmp_path):
    maker.write_tokenizer_files(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    chars = maker.bytes_to_unicode()
    assert len(set(chars)) == 256
    for ch in chars:  # any text tokenizes: every byte and its end-of-word form exist
        assert ch in vocab and ch + "</w>" in vocab
    assert {"<|startoftext|>", "<|endoftext|>"} <= set(vocab)
    assert sorted(vocab.values()) == list(range(len(vocab)))
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version")
    for merge in merges[1:]:  # every merge result is in the vocabulary
        assert merge.replace(" ", "") in vocab


def test_model_maker_never_overwrites(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_index.json").write_text("{}")
    assert maker.main([str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.strip() == f"exists {tmp_path / 'm'}"


# ---------------------------------------------------------------- metrics

def scrape(httpd):
    """GET /metrics with the key, parsed by prometheus_client's own parser: {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    reply = call(httpd, "GET", "/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.body.decode()) for sample in family.samples}


def test_metrics_need_the_key_like_generate(serve):
    httpd = serve(FakeEngine())
    reply = call(httpd, "GET", "/metrics", key=None)
    assert reply.status == 401 and reply.error["code"] == "unauthorized"
    assert call(httpd, "GET", "/metrics", key=KEY[:-1] + "x").status == 401


def test_metrics_show_the_queue_the_jobs_and_the_generation_time(serve):
    engine = FakeEngine(block=True)
    httpd = serve(engine, queue_depth=1)
    replies, threads = _burst(httpd, 6)
    wait_for("4 refusals", lambda: sum(isinstance(r, Reply) and r.status == 429 for r in replies) == 4)
    queue_when(httpd, "1 running + 1 waiting", lambda q: (q["running"], q["waiting"]) == (1, 1))
    busy = scrape(httpd)
    assert busy[("image_server_queue_running", ())] == 1 and busy[("image_server_queue_waiting", ())] == 1
    assert busy[("image_server_queue_depth", ())] == 1
    assert busy[("image_server_jobs_total", (("outcome", "rejected"),))] == 4
    assert busy[("image_server_jobs_total", (("outcome", "served"),))] == 0
    assert busy[("image_server_responses_total", (("code", "429"), ("route", "/generate")))] == 4
    assert busy[("image_server_generation_seconds_count", ())] == 0
    engine.release()
    for thread in threads:
        thread.join(WAIT)
    idle = scrape(httpd)
    assert idle[("image_server_queue_running", ())] == 0 and idle[("image_server_queue_waiting", ())] == 0
    assert idle[("image_server_jobs_total", (("outcome", "served"),))] == 2
    assert idle[("image_server_responses_total", (("code", "200"), ("route", "/generate")))] == 2
    assert idle[("image_server_generation_seconds_count", ())] == 2
    assert idle[("image_server_generation_seconds_sum", ())] > 0
    # The scrape before this one was answered, and counted, under its own route.
    assert idle[("image_server_responses_total", (("code", "200"), ("route", "/metrics")))] == 1


def test_metrics_count_unknown_routes_as_other_and_say_when_the_pipeline_loaded(serve):
    httpd = serve(None)
    assert scrape(httpd)[("image_server_pipeline_loaded", ())] == 0
    call(httpd, "GET", "/secret-path-%d" % os.getpid())
    httpd.engine = FakeEngine()
    samples = scrape(httpd)
    assert samples[("image_server_pipeline_loaded", ())] == 1
    assert samples[("image_server_responses_total", (("code", "404"), ("route", "other")))] == 1
    # A client's path never becomes a label (one series per path would grow without bound).
    assert not any("secret-path" in str(key) for key in samples)
