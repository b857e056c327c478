"""Hostile and careless requests against the real image server and dashboard containers
(molecule verify of rollout_faults, after converge deployed them with the local profile's limits).

The image server answers only its own key, refuses malformed requests with a 4xx JSON error,
bounds its queue (429 with Retry-After) and keeps serving; the dashboard's nginx limits the request
rate per client address and never throttles its own health route.
"""
import http.client
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

IMAGE_HOST, IMAGE_PORT = "127.0.0.1", 7860
DASHBOARD_HOST, DASHBOARD_PORT = "127.0.0.1", 8080
KEY_FILE = Path("/var/lib/homelab/secrets/image_server_api_key")


def key():
    return KEY_FILE.read_text().strip()


def request(method, path, body=None, headers=None, host=IMAGE_HOST, port=IMAGE_PORT, timeout=180):
    """(status, headers, body bytes); a dropped connection raises, which fails the test."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def generate(body, with_key=True, host=IMAGE_HOST, port=IMAGE_PORT, path="/generate"):
    headers = {"Content-Type": "application/json"}
    if with_key:
        headers["Authorization"] = "Bearer " + key()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return request("POST", path, data, headers, host=host, port=port)


def error_of(status, body):
    payload = json.loads(body)
    assert set(payload) == {"error"}, (status, payload)
    return payload["error"]


def restarts():
    out = subprocess.run(["docker", "inspect", "--format", "{{.RestartCount}} {{.State.Status}} {{.Id}}",
                          "homelab-image-server"], check=True, capture_output=True, text=True).stdout.split()
    return out


def test_the_key_file_is_private_and_long():
    assert oct(KEY_FILE.stat().st_mode & 0o777) == "0o600"
    assert len(key()) >= 32


def test_only_health_is_open_without_the_key():
    status, _, body = request("GET", "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    for headers in ({}, {"Authorization": "Bearer wrong-" + key()}, {"Authorization": "Basic " + key()}):
        status, resp_headers, body = request("POST", "/generate", b'{"prompt": "x"}',
                                             dict(headers, **{"Content-Type": "application/json"}))
        assert status == 401, body
        assert error_of(status, body)["code"] == "unauthorized"
        assert resp_headers.get("WWW-Authenticate", "").startswith("Bearer")
    # The dashboard's route keeps the image server's own authentication.
    status, _, body = generate({"prompt": "x", "steps": 1, "size": 64}, with_key=False,
                               host=DASHBOARD_HOST, port=DASHBOARD_PORT, path="/image/generate")
    assert status == 401, body
    status, _, body = generate({"prompt": "x", "steps": 1, "size": 64}, host=DASHBOARD_HOST,
                               port=DASHBOARD_PORT, path="/image/generate")
    assert status == 200 and body[:4] == b"\x89PNG"


@pytest.mark.parametrize("body,status,code,field", [
    (b'{"prompt": "x", "steps": [1]}', 400, "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": 1.5}', 400, "invalid_field", "steps"),
    (b'{"prompt": "x", "steps": 100000}', 400, "invalid_field", "steps"),
    (b'{"prompt": "x", "size": {}}', 400, "invalid_field", "size"),
    (b'{"prompt": "x", "size": 4096}', 400, "invalid_field", "size"),
    (b'{"prompt": "x", "seed": "abc"}', 400, "invalid_field", "seed"),
    (b'{"prompt": "x", "guidance_scale": NaN}', 400, "invalid_field", "guidance_scale"),
    (b'{"prompt": "x", "guidance_scale": 1e999}', 400, "invalid_field", "guidance_scale"),
    (b'{"prompt": 7}', 400, "invalid_field", "prompt"),
    (b'{"prompt": "' + b"x" * 5000 + b'"}', 400, "invalid_field", "prompt"),
    (b'{"prompt": "x", "negative": "y"}', 400, "unknown_field", "negative"),
    (b'not json', 400, "invalid_json", None),
    (b'{"prompt": "\xff"}', 400, "invalid_json", None),
    (b'[1, 2]', 400, "invalid_request", None),
    (b'{"prompt": "' + b"x" * 20000 + b'"}', 413, "body_too_large", None),
])
def test_a_malformed_request_gets_its_4xx_json_error(body, status, code, field):
    got, _, reply = generate(body)
    assert got == status, reply[:300]
    error = error_of(got, reply)
    assert error["code"] == code and error.get("field") == field, error
    assert error["message"]


def test_a_chunked_body_is_refused_with_411():
    conn = http.client.HTTPConnection(IMAGE_HOST, IMAGE_PORT, timeout=60)
    try:
        conn.putrequest("POST", "/generate")
        conn.putheader("Authorization", "Bearer " + key())
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b'7\r\n{"a": 1\r\n0\r\n\r\n')
        resp = conn.getresponse()
        assert resp.status == 411
        assert error_of(resp.status, resp.read())["code"] == "length_required"
    finally:
        conn.close()


def test_an_unknown_method_and_route_are_4xx():
    auth = {"Authorization": "Bearer " + key()}
    status, _, body = request("DELETE", "/generate", headers=auth)
    assert status == 405 and error_of(status, body)["code"] == "method_not_allowed"
    status, _, body = request("GET", "/nothing-here", headers=auth)
    assert status == 404 and error_of(status, body)["code"] == "not_found"


def test_a_burst_beyond_the_queue_gets_429s_and_the_server_keeps_serving():
    before = restarts()
    health = json.loads(request("GET", "/health")[2])
    depth = health["limits"]["queue_depth"]
    burst = depth + 6
    results = [None] * burst
    gate = threading.Barrier(burst)

    def one(i):
        gate.wait()
        results[i] = generate({"prompt": "a burst %d" % i, "steps": 6, "size": "64x64", "seed": i})

    threads = [threading.Thread(target=one, args=(i,)) for i in range(burst)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    statuses = sorted(r[0] for r in results)
    print("burst of %d at queue depth %d: %s" % (burst, depth, statuses))
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 1
    # One runs and at most `depth` wait at any moment: a burst of depth + 6 cannot all be admitted.
    assert statuses.count(429) >= 1, statuses
    for status, headers, body in results:
        if status == 429:
            assert int(headers["Retry-After"]) >= 1
            assert error_of(status, body)["code"] == "queue_full"
        else:
            assert body[:4] == b"\x89PNG"
    after = restarts()
    assert after == before, (before, after)  # same container, no restart, still running
    status, _, body = generate({"prompt": "after the burst", "steps": 1, "size": 64})
    assert status == 200 and body[:4] == b"\x89PNG"
    counters = json.loads(request("GET", "/health")[2])["queue"]
    assert counters["rejected"] >= statuses.count(429)


def test_the_dashboard_limits_each_clients_rate_but_never_its_health_route():
    conn = http.client.HTTPConnection(DASHBOARD_HOST, DASHBOARD_PORT, timeout=30)
    statuses = []
    try:
        for _ in range(80):
            conn.request("GET", "/status/plan.json")
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
        health = []
        for _ in range(80):
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            health.append(resp.status)
    finally:
        conn.close()
    print("80 rapid requests: %d served, %d answered 429" % (statuses.count(200), statuses.count(429)))
    assert set(statuses) <= {200, 429}
    assert statuses[:10] == [200] * 10  # the burst allowance serves a page load at once
    assert 429 in statuses
    assert health == [200] * 80
    time.sleep(3)  # 10 r/s refills the burst: a person's next click is served
    assert request("GET", "/", host=DASHBOARD_HOST, port=DASHBOARD_PORT)[0] == 200
