"""What the local profile serves after converge + idempotence, checked from the outside."""
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(PROJECT / "collections"))
sys.path.insert(0, str(PROJECT))
from ansible_collections.homelab.ai.plugins.module_utils import llm_benchmark, stream_metrics  # noqa: E402  (after the path)
from tests.support.browser import chart_data, headless_chromium, wait_until  # noqa: E402

STATE = Path("/var/lib/homelab")
OUT = PROJECT / "out" / "local_stack"
CONTAINERS = {"homelab-vllm": "homelab/vllm-cpu:0.32.0",
              "homelab-image-server": "homelab/image-server:latest",
              "homelab-dashboard": "homelab/dashboard:latest",
              "homelab-prometheus": "homelab/prometheus:latest",
              "homelab-nginx-exporter": "homelab/prometheus:latest"}
PROMETHEUS = "http://127.0.0.1:9090"
DASHBOARD = "http://127.0.0.1:8080"


def docker_json(*args):
    return json.loads(subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout)


def api_key():
    return (STATE / "secrets" / "vllm_api_key").read_text().strip()


def get(url, headers=None, timeout=30):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


@pytest.mark.parametrize("name,image", sorted(CONTAINERS.items()))
def test_container_runs_the_image_the_build_produced(name, image):
    container = docker_json("inspect", name)[0]
    built = docker_json("image", "inspect", image)[0]
    assert container["State"]["Status"] == "running"
    assert container["State"]["Health"]["Status"] == "healthy"
    # The container runs exactly the image ID the tag points at now, and that image carries the
    # inputs hash of an explicit build (the compose no-op lesson).
    assert container["Image"] == built["Id"]
    assert built["Config"]["Labels"].get("homelab.ai.inputs-hash")
    assert container["HostConfig"].get("Privileged") is False


def test_image_server_and_dashboard_run_as_non_root():
    for name in ("homelab-image-server", "homelab-dashboard", "homelab-prometheus", "homelab-nginx-exporter"):
        uid = subprocess.run(["docker", "exec", name, "id", "-u"], check=True, capture_output=True, text=True).stdout
        assert uid.strip() != "0", name


def test_dashboard_proxies_models_with_the_key():
    status, body = get("http://127.0.0.1:8080/v1/models", {"Authorization": "Bearer " + api_key()})
    assert status == 200
    assert [m["id"] for m in json.loads(body)["data"]] == ["tiny-qwen2"]


def test_vllm_refuses_requests_without_the_key():
    with pytest.raises(urllib.error.HTTPError) as err:
        get("http://127.0.0.1:8000/v1/models")
    assert err.value.code == 401


# nginx in front of vLLM must pass each token's SSE message on as it comes (proxy_buffering off, no
# output postponed or compressed): lumped, the try-it panel and every client see the reply appear at
# once. vLLM-CPU with the tiny model lumps a stream now and then by itself (its API server, starved
# of CPU on a busy host, writes many messages at once: seen at the server's own port too), so the
# stream is measured the way llm_benchmark measures, again after a pause while it lumps; a proxy
# that holds the stream back lumps every round (test_a_proxy_holding_the_stream_back_is_caught).
def assert_streams_unlumped(base_url):
    """A stream through base_url shows its tokens spread over the reply (smooth or bursty) in one of
    llm_benchmark's rounds (MEASURED_ROUNDS_MAX, one request each)."""
    ep = llm_benchmark.Endpoint(base_url, api_key(), timeout=120)
    path, payload = llm_benchmark.build_payload({"model": "tiny-qwen2", "max_tokens": 96, "prompt": "count"})
    records, metrics = llm_benchmark.measure_past_lumps(ep, path, payload, {"num_requests": 1, "concurrency": 1},
                                                        time.perf_counter)
    assert [r.error for r in records] == [None], "the stream through %s failed" % base_url
    assert records[0].token_chunks >= 48, "expected one SSE message per token, got %d" % records[0].token_chunks
    if metrics["stream_quality"] in stream_metrics.NO_DECODE_QUALITIES:
        pytest.fail("every one of %d streams through %s came lumped (buffered: in a few reads; stalled: all at "
                    "the end): %s" % (len(metrics["lumped_rounds"]), base_url, metrics["lumped_rounds"]))


def test_dashboard_streams_unbuffered():
    """Tokens arrive through nginx as an event stream spread over the reply, not lumped at the end."""
    payload = json.dumps({"model": "tiny-qwen2", "max_tokens": 2, "stream": True,
                          "messages": [{"role": "user", "content": "count"}]}).encode()
    req = urllib.request.Request(DASHBOARD + "/v1/chat/completions", data=payload,
                                 headers={"Authorization": "Bearer " + api_key(), "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        assert resp.headers.get("Content-Type", "").startswith("text/event-stream")
        resp.read()
    assert_streams_unlumped(DASHBOARD)


class HoldingProxy(http.server.BaseHTTPRequestHandler):
    """A proxy that holds the whole reply back and sends it at once: what the test above must catch."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        forwarded = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        with urllib.request.urlopen(urllib.request.Request(DASHBOARD + self.path, data=body, headers=forwarded),
                                    timeout=120) as resp:
            reply, content_type = resp.read(), resp.headers["Content-Type"]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_a_proxy_holding_the_stream_back_is_caught():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HoldingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(pytest.fail.Exception, match="came lumped"):
            assert_streams_unlumped("http://127.0.0.1:%d" % server.server_port)
    finally:
        server.shutdown()
        server.server_close()


def prometheus_query(expr):
    status, body = get(PROMETHEUS + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in json.loads(body)["data"]["result"]}


def test_prometheus_scrapes_every_service_with_its_key():
    """vLLM, the image server (whose /metrics refuses a request without its key), nginx and itself: all up."""
    deadline = time.monotonic() + 60
    while True:
        targets = json.loads(get(PROMETHEUS + "/api/v1/targets")[1])["data"]["activeTargets"]
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
        if all(h == "up" for h, _ in health.values()) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert health == {job: ("up", "") for job in ("prometheus", "vllm", "image-server", "nginx")}, health
    with pytest.raises(urllib.error.HTTPError) as err:
        get("http://127.0.0.1:7860/metrics")
    assert err.value.code == 401


def test_prometheus_holds_what_the_smoke_test_did():
    """The smoke test's chat completions, its image and the dashboard's requests are in the time series."""
    assert sum(prometheus_query("vllm:generation_tokens_total").values()) > 0
    assert sum(prometheus_query('image_server_jobs_total{outcome="served"}').values()) >= 1
    assert sum(prometheus_query("nginx_http_requests_total").values()) > 0
    assert prometheus_query("image_server_pipeline_loaded") and all(
        v == 1 for v in prometheus_query("image_server_pipeline_loaded").values())


def test_the_scrape_keys_are_in_no_image_and_private_in_the_container_tmpfs():
    config = subprocess.run(["docker", "run", "--rm", "--entrypoint", "cat", CONTAINERS["homelab-prometheus"],
                             "/etc/prometheus/prometheus.yml"], check=True, capture_output=True, text=True).stdout
    assert "credentials_file: /tmp/secrets/vllm_api_key" in config
    assert api_key() not in config
    listing = subprocess.run(["docker", "exec", "homelab-prometheus", "stat", "-c", "%a %U %n",
                              "/tmp/secrets/vllm_api_key", "/tmp/secrets/image_server_api_key"],
                             check=True, capture_output=True, text=True).stdout.split("\n")
    assert [line.split()[:2] for line in listing if line] == [["600", "prometheus"]] * 2
    # Like vLLM's, the keys reach the container as secret_env: the rollout's labels carry a salted hash only.
    labels = docker_json("inspect", "homelab-prometheus")[0]["Config"]["Labels"]
    assert not any(api_key() in value for value in labels.values())


def test_models_json_has_the_planned_values():
    plan = json.loads((STATE / "status" / "plan.json").read_text())
    models = json.loads((STATE / "vllm" / "models.json").read_text())
    entry = models["tiny-qwen2"]
    assert entry["source"] == "/models/tiny-qwen2"
    assert plan["max_model_len"] == 2048 and entry["default_context"] == 2048
    assert plan["device"] == "cpu"


def test_secret_files_are_private():
    secrets = STATE / "secrets"
    assert oct(secrets.stat().st_mode & 0o777) == "0o700"
    files = [p for p in secrets.rglob("*") if p.is_file()]
    assert files, "the API key file should be there"
    for path in files:
        assert oct(path.stat().st_mode & 0o777) == "0o600", path


def test_secret_never_in_ansible_output():
    """A verbose check-mode run over the deployed stack must not print the API key."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(PROJECT / "collections"))
    proc = subprocess.run(["ansible-playbook", "-i", str(PROJECT / "inventories/local"), str(PROJECT / "site.yml"),
                           "--check", "--diff", "-v"], capture_output=True, text=True, env=env, cwd=PROJECT, timeout=1200)
    out = proc.stdout + proc.stderr
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "check-run.log").write_text(out)
    assert proc.returncode == 0, out[-4000:]
    assert api_key() not in out
    assert re.search(r"localhost\s*:\s*ok=\d+\s+changed=0\s", out), "the deployed stack should need no change"


def host_address():
    """This host's own address (the one its default route leaves by), as the doctor's facts list it."""
    listed = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    ipv4 = [a for a in listed if "." in a and not a.startswith("127.")]
    return ipv4[0] if ipv4 else "172.17.0.1"


def test_the_doctor_report_covers_the_stack_and_leaks_no_key_or_address():
    """playbooks/doctor.yml on the live stack, after a request put the vLLM key and this host's address into
    nginx's error log (a missing file, the key in the query, the address in the Host header): the report
    has every part the issue asks for, and neither planted value appears in it (each is where nginx wrote
    it, redacted) nor in the playbook's output."""
    key, address = api_key(), host_address()
    request = urllib.request.Request("http://127.0.0.1:8080/doctor-probe-missing?q=" + key,
                                     headers={"Host": address + ":8080"})
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(request, timeout=30)
    assert missing.value.code == 404
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(PROJECT / "collections"))
    proc = subprocess.run(["ansible-playbook", "-i", str(PROJECT / "inventories/local"), str(PROJECT / "playbooks/doctor.yml")],
                          capture_output=True, text=True, env=env, cwd=PROJECT, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    md_path, json_path = PROJECT / "out/doctor/localhost.md", PROJECT / "out/doctor/localhost.json"
    markdown, report = md_path.read_text(), json.loads(json_path.read_text())
    for text in (markdown, json_path.read_text(), proc.stdout):
        assert key not in text and address not in text
    assert oct(md_path.stat().st_mode & 0o777) == "0o600"
    errors = next(c for c in report["containers"] if c["name"] == "homelab-dashboard")["log_errors"]
    assert ('request: "GET /doctor-probe-missing?q=<redacted:secret> HTTP/1.1", host: "<redacted:address>:8080"'
            in errors[-1]), errors
    names = {c["name"]: c for c in report["containers"]}
    for name in CONTAINERS:
        assert names[name]["status"] == "running" and names[name]["restart_count"] == 0, names[name]
        assert "| %s | running |" % name in markdown
    assert report["versions"]["vllm (planned)"] == "0.32.0" and "docker engine" in report["versions"]
    assert report["state"]["plan"]["model"] == "tiny-qwen2" and report["state"]["smoke"]["passed"] is True
    assert report["state"]["smoke_history"] and report["facts"]["local"]["homelab"]["profile"] == "local"
    for heading in ("## Summary", "## Versions", "## Containers", "## Recent errors by service", "## Plan and GPU ledger",
                    "## Smoke tests", "## Facts"):
        assert heading in markdown
    assert "Doctor report: %s/out/doctor/localhost.md" % PROJECT in proc.stdout


@pytest.fixture(scope="module")
def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "Debian's chromium is installed by scripts/setup.sh"
    return exe


def run_chromium(chromium, *args):
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=%s" % (OUT / "chromium-profile"), "--virtual-time-budget=8000"]
    return subprocess.run(base + list(args), capture_output=True, text=True, timeout=120)


def test_status_page_in_a_real_browser(chromium):
    """The rendered page (after its JavaScript ran) shows the model, its plan and the last tok/s."""
    OUT.mkdir(parents=True, exist_ok=True)
    smoke = json.loads((STATE / "status" / "smoke.json").read_text())
    dom = run_chromium(chromium, "--dump-dom", "http://127.0.0.1:8080/").stdout
    (OUT / "status-page.html").write_text(dom)
    assert "tiny-qwen2" in dom
    assert "max_model_len" in dom and "2048" in dom
    assert "decode_tokens_per_second" in dom
    assert str(smoke["decode_tokens_per_second"])[:4] in dom
    shot = OUT / "status-page.png"
    run_chromium(chromium, "--screenshot=%s" % shot, "--window-size=1200,1400", "http://127.0.0.1:8080/")
    assert shot.exists() and shot.stat().st_size > 10_000


def image_server_key():
    return (STATE / "secrets" / "image_server_api_key").read_text().strip()


@pytest.fixture(scope="module")
def browser():
    OUT.mkdir(parents=True, exist_ok=True)
    driver = headless_chromium(OUT / "selenium-profile")
    try:
        driver.get("http://127.0.0.1:8080/")
        yield driver
    finally:
        driver.quit()


def test_the_plots_show_the_live_stack(browser):
    """Smoke history, generation throughput and KV cache/requests from this stack's Prometheus: not empty."""
    for canvas in ("chart-smoke", "chart-throughput", "chart-kv"):
        wait_until(browser, canvas, "Number(document.getElementById('%s').dataset.points) > 0" % canvas, 60)
    smoke = {d["label"]: d["values"] for d in chart_data(browser, "chart-smoke")}
    history = json.loads((STATE / "status" / "smoke-history.json").read_text())
    assert len(history) >= 2, "converge and idempotence each ran the smoke test"
    assert smoke["at vLLM"] == [r["decode_tokens_per_second"] for r in history]
    throughput = [v for v in chart_data(browser, "chart-throughput")[0]["values"] if v is not None]   # None: a gap
    assert max(throughput) > 0, "the smoke tests' completions should show as generated tokens per second"
    kv = {d["label"]: d["values"] for d in chart_data(browser, "chart-kv")}
    assert set(kv) == {"KV cache used %", "requests running", "requests waiting"} and all(kv.values())
    wait_until(browser, "service health", "document.getElementById('svc-prometheus').textContent.includes('all up')", 60)
    assert "no GPU ledger" in browser.find_element("id", "chart-ledger-note").text
    browser.save_screenshot(str(OUT / "status-page-plots.png"))


def test_the_try_it_panel_streams_a_reply_and_draws_an_image(browser):
    browser.find_element("id", "key-vllm").send_keys(api_key())
    browser.find_element("id", "chat-send").click()
    wait_until(browser, "the streamed reply", "document.getElementById('chat-output').dataset.state === 'done'", 180)
    out = browser.find_element("id", "chat-output")
    assert int(out.get_attribute("data-chunks")) >= 2 and out.text.strip(), browser.find_element("id", "chat-state").text
    browser.find_element("id", "key-image").send_keys(image_server_key())
    browser.find_element("id", "image-send").click()
    wait_until(browser, "the image", "document.querySelector('#image-output img') && "
                                     "document.querySelector('#image-output img').naturalWidth > 0", 300)
    assert browser.execute_script("return document.querySelector('#image-output img').naturalWidth") == 256
    # The keys stay in this tab's sessionStorage, never in localStorage (which outlives the session).
    assert browser.execute_script("return sessionStorage.getItem('homelab.vllm_key')") == api_key()
    assert browser.execute_script("return localStorage.length") == 0
    browser.save_screenshot(str(OUT / "status-page-try-it.png"))
