"""The fleet after converge + idempotence: requests through the router reach both hosts, survive one host
going down, come back to it when it returns; a model no host serves and a missing key get clear refusals;
a host whose plan is refused is left out of the routing with a warning while the rest is served.

The failover figures (requests lost while a host is stopped, seconds until it is used again) are printed
and written to out/fleet/failover.json; they are not asserted as timings."""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


PROJECT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(PROJECT / "collections"))
sys.path.insert(0, str(PROJECT))
from ansible_collections.homelab.ai.plugins.module_utils.container_rollout import IMAGE_REF_LABEL  # noqa: E402
from tests.support.registry import manifest_digest  # noqa: E402
SCENARIO = PROJECT / "molecule" / "fleet"
STATE = Path("/var/lib/homelab-fleet")
OUT = PROJECT / "out" / "fleet"
ROUTER = "http://127.0.0.1:14000"
REGISTRY = "127.0.0.1:5066"  # molecule/fleet/prepare.yml
MODEL = "tiny-qwen2"
BACKENDS = {"fleet-a": "homelab-fleet-a-vllm", "fleet-b": "homelab-fleet-b-vllm"}
FIGURES = {}


def docker_json(*args):
    return json.loads(subprocess.run(["docker", *args], check=True, capture_output=True, text=True).stdout)


def secret(host, name):
    return (STATE / host / "secrets" / name).read_text().strip()


def router_key():
    return secret("router", "router_api_key")


def ask(model=MODEL, key="router", max_tokens=4, timeout=120):
    """One chat request through the router: (status, body, the host that served it or None)."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + (router_key() if key == "router" else key)
    body = json.dumps({"model": model, "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    req = urllib.request.Request(ROUTER + "/v1/chat/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read()), resp.headers.get("x-litellm-model-id")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), None


def served_by(count):
    hosts = []
    for _ in range(count):
        status, body, host = ask()
        assert status == 200, body
        hosts.append(host)
    return hosts


def wait_healthy(container, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = docker_json("inspect", container)[0]["State"]
        if (state.get("Health") or {}).get("Status") == "healthy":
            return
        time.sleep(2)
    raise AssertionError("%s did not become healthy within %d s" % (container, timeout))


def test_router_runs_the_built_image_as_non_root_with_no_key_in_it():
    container = docker_json("inspect", "homelab-fleet-router")[0]
    image = docker_json("image", "inspect", "homelab/router:latest")[0]
    assert container["State"]["Health"]["Status"] == "healthy"
    assert container["Image"] == image["Id"] and image["Config"]["Labels"].get("homelab.ai.inputs-hash")
    assert container["Config"]["User"] == "1000:1000"
    config = subprocess.run(["docker", "exec", "homelab-fleet-router", "cat", "/etc/litellm/config.yaml"],
                            check=True, capture_output=True, text=True).stdout
    labels = json.dumps(container["Config"]["Labels"])
    for key in (router_key(), secret("fleet-a", "vllm_api_key"), secret("fleet-b", "vllm_api_key")):
        assert key not in config and key not in labels
    assert "os.environ/HOMELAB_UPSTREAM_KEY_FLEET_A" in config



def test_every_host_runs_the_image_the_builder_pushed_by_digest():
    """fleet-a built and pushed the vLLM image; fleet-b built nothing and runs the same digest."""
    vllm = REGISTRY + "/homelab/vllm-cpu@" + manifest_digest(REGISTRY, "homelab/vllm-cpu", "0.32.0")
    router = REGISTRY + "/homelab/router@" + manifest_digest(REGISTRY, "homelab/router", "latest")
    for container, ref in (("homelab-fleet-a-vllm", vllm), ("homelab-fleet-b-vllm", vllm),
                           ("homelab-fleet-router", router)):
        inspected = docker_json("inspect", container)[0]
        # container_rollout creates the container from the image ID the reference resolved to, and labels the reference.
        assert inspected["Config"]["Labels"].get(IMAGE_REF_LABEL) == ref, container
        assert inspected["Image"] == docker_json("image", "inspect", ref)[0]["Id"], container

def test_requests_through_the_router_reach_both_hosts():
    hosts = served_by(10)
    assert set(hosts) == set(BACKENDS), hosts
    FIGURES["spread_of_10"] = {host: hosts.count(host) for host in BACKENDS}


def test_a_model_no_host_serves_gets_a_clear_error():
    status, body, _ = ask(model="qwen3-32b-awq")
    assert status == 400
    assert "Invalid model name passed in model=qwen3-32b-awq" in body["error"]["message"]


def test_the_router_wants_its_own_key():
    assert ask(key=None)[0] == 401
    # A host's vLLM key is not a key of the router.
    assert ask(key=secret("fleet-a", "vllm_api_key"))[0] in (400, 401)


def test_the_smoke_test_ran_through_the_router():
    report = json.loads((STATE / "router" / "status" / "smoke.json").read_text())
    assert report["passed"] is True and report["llm_passed"] is True, report
    assert report["model"] == MODEL
    assert ROUTER in json.dumps(report)


def test_the_router_metrics_count_each_host():
    req = urllib.request.Request(ROUTER + "/metrics/", headers={"Authorization": "Bearer " + router_key()})
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
    for container in BACKENDS.values():
        assert 'api_base="http://%s:' % container in text



def test_prometheus_on_the_router_host_scrapes_the_router_with_its_key():
    deadline = time.monotonic() + 120
    while True:
        with urllib.request.urlopen("http://127.0.0.1:19090/api/v1/targets", timeout=10) as resp:
            targets = json.loads(resp.read())["data"]["activeTargets"]
        jobs = {target["labels"]["job"]: target for target in targets}
        if jobs.get("router", {}).get("health") == "up" and jobs.get("vllm", {}).get("health") == "up":
            break
        assert time.monotonic() < deadline, json.dumps(jobs, indent=1)[:3000]
        time.sleep(3)
    assert "image-server" not in jobs and "nginx" not in jobs  # this host runs neither
    query = urllib.request.quote('count({job="router", __name__=~"litellm_.*"})')
    with urllib.request.urlopen("http://127.0.0.1:19090/api/v1/query?query=" + query, timeout=10) as resp:
        result = json.loads(resp.read())["data"]["result"]
    assert result and int(result[0]["value"][1]) > 0, result

def test_a_stopped_host_costs_no_request_and_is_used_again_when_it_returns():
    subprocess.run(["docker", "stop", BACKENDS["fleet-a"]], check=True, capture_output=True)
    try:
        started = time.monotonic()
        results, seconds = [], []
        for _ in range(10):
            before = time.monotonic()
            results.append(ask())
            seconds.append(time.monotonic() - before)
        FIGURES["while_fleet_a_stopped"] = {
            "requests": len(results), "failed": sum(1 for status, _, _ in results if status != 200),
            "served_by": sorted({host for _, _, host in results if host}),
            "seconds": round(time.monotonic() - started, 2), "slowest_request_s": round(max(seconds), 2),
            "requests_over_1s": sum(1 for value in seconds if value > 1)}
    finally:
        subprocess.run(["docker", "start", BACKENDS["fleet-a"]], check=True, capture_output=True)
    assert FIGURES["while_fleet_a_stopped"]["failed"] == 0, results
    assert FIGURES["while_fleet_a_stopped"]["served_by"] == ["fleet-b"]
    wait_healthy(BACKENDS["fleet-a"])
    healthy = time.monotonic()
    used_again = None
    for attempt in range(120):
        status, body, host = ask()
        assert status == 200, body
        if host == "fleet-a":
            used_again = time.monotonic() - healthy
            break
        time.sleep(1)
    FIGURES["fleet_a_used_again_after_healthy_s"] = None if used_again is None else round(used_again, 1)
    FIGURES["requests_until_used_again"] = attempt + 1
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "failover.json").write_text(json.dumps(FIGURES, indent=2, sort_keys=True) + "\n")
    print("failover figures:", json.dumps(FIGURES, sort_keys=True))
    assert used_again is not None, "fleet-a was healthy again but got none of 120 requests over two minutes"


def test_a_host_whose_plan_is_refused_is_left_out_with_a_warning_and_the_rest_is_served(tmp_path):
    """Last: it leaves the router with fleet-a alone. fleet-b asks for a model its registry does not hold."""
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(json.dumps({"all": {"children": {
        "local": {"hosts": {"fleet-a": {}, "fleet-b": {}, "fleet-router": {}}},
        "inference": {"hosts": {"fleet-a": {}, "fleet-b": {}}},
        "router": {"hosts": {"fleet-router": {}}}}}}))
    os.symlink(SCENARIO / "group_vars", inventory / "group_vars")
    os.symlink(SCENARIO / "host_vars", inventory / "host_vars")
    before = docker_json("inspect", "homelab-fleet-router")[0]["Id"]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT / "collections"),
               ANSIBLE_ROLES_PATH=str(PROJECT / "roles"), ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"))
    run = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory),
                          str(SCENARIO / "tests" / "refused_plan.yml")],
                         capture_output=True, text=True, env=env, cwd=str(PROJECT), timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 2, out  # fleet-b failed; the play went on for the others
    assert "model 'not-in-this-registry' is not in the model registry" in out, out
    assert "WARNING: serving tiny-qwen2 without these hosts:" in out, out
    assert "fleet-b: its vLLM plan was refused (" in out, out
    assert docker_json("inspect", "homelab-fleet-router")[0]["Id"] != before  # rolled out with fleet-a alone
    assert set(served_by(4)) == {"fleet-a"}
