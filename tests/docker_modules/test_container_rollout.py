"""homelab.ai.container_rollout against the real Docker daemon: health-gated replace, idempotence,
rollback of a crash-looping image with the named volume's data intact, readable errors.

The toy service is python3's http.server serving a named volume (/data) from homelab/debian."""
import json
import urllib.request

import pytest

from conftest import BASE_IMAGE, docker, image_id, run_module

PORT = 18931


def http_get(path):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:%d%s" % (PORT, path), timeout=5) as resp:
        return resp.status, resp.read().decode()


@pytest.fixture(scope="module")
def images(prefix, tmp_path_factory):
    """good: serves /data on 8000; crash: exits 3 at once (the record's bootloop); deaf: runs but
    never answers HTTP."""
    out = {}
    variants = {
        "good": 'CMD ["python3", "-m", "http.server", "8000", "--directory", "/data"]',
        "good2": 'ENV VARIANT=2\nCMD ["python3", "-m", "http.server", "8000", "--directory", "/data"]',
        "crash": 'CMD ["sh", "-c", "echo loading pipeline; echo \\"AttributeError: module torch has no attribute xpu\\" >&2; exit 3"]',
        "deaf": 'CMD ["sleep", "300"]',
    }
    for tag, cmd in variants.items():
        d = tmp_path_factory.mktemp(tag)
        (d / "Dockerfile").write_text("FROM %s\nRUN mkdir -p /data\n%s\n" % (BASE_IMAGE, cmd))
        res = run_module("image_build", {"name": "%s-svc:%s" % (prefix, tag), "path": str(d)})
        assert not res.get("failed"), res
        out[tag] = "%s-svc:%s" % (prefix, tag)
    return out


def rollout(prefix, image, **extra):
    args = {"name": prefix + "-svc", "image": image, "ports": ["127.0.0.1:%d:8000" % PORT],
            "volumes": [prefix + "-data:/data"], "networks": [prefix + "-net"], "network_aliases": ["svc"],
            "env": {"MODE": "test"}, "secret_env": {"API_TOKEN": "s3cret-value"},
            "health_url": "http://127.0.0.1:%d/" % PORT, "health_timeout": 30, "stable_seconds": 2,
            "stop_timeout": 1, "restart_policy": "unless-stopped"}
    check = extra.pop("_check", False)
    args.update(extra)
    return run_module("container_rollout", args, check=check, diff=True)


def test_rollout_idempotence_and_rollback(prefix, images, tmp_path):
    name = prefix + "-svc"
    progress = tmp_path / "progress.log"
    first = rollout(prefix, images["good"], progress_path=str(progress))
    assert first["changed"] and not first.get("failed"), first.get("msg")
    assert first["container"]["status"] == "running" and first["container"]["image_id"] == image_id(images["good"])
    assert "s3cret-value" not in first["_raw"]
    assert "created network %s-net (bridge)" % prefix in first["actions"]
    assert "health_url" in progress.read_text()
    env = docker("inspect", "-f", "{{json .Config.Env}}", name)
    assert "API_TOKEN=s3cret-value" in env and "MODE=test" in env      # secret merged into the env
    docker("exec", name, "sh", "-c", "echo kept > /data/marker.txt")
    assert http_get("/marker.txt") == (200, "kept\n")

    again = rollout(prefix, images["good"])
    assert not again["changed"] and again["container"]["id"] == first["container"]["id"]

    planned = rollout(prefix, images["good"], env={"MODE": "other"}, secret_env={"API_TOKEN": "n3w"}, _check=True)
    assert planned["changed"] and "env" in planned["changed_keys"] and "secret_env" in planned["changed_keys"]
    assert planned["diff"]["after"]["config"]["secret_env"] == {"API_TOKEN": "********"}
    assert "n3w" not in planned["_raw"] and "s3cret-value" not in planned["_raw"]
    assert docker("inspect", "-f", "{{.Id}}", name) == first["container"]["id"]   # check mode touched nothing

    crashed = rollout(prefix, images["crash"])
    assert crashed.get("failed") and crashed["rolled_back"]
    assert "restart loop" in crashed["msg"] and "exit codes seen: 3" in crashed["msg"]
    assert "has no attribute xpu" in crashed["msg"] and "was restored" in crashed["msg"]
    assert crashed["failed_container"]["exit_code"] == 3
    assert crashed["container"]["id"] == first["container"]["id"]
    assert http_get("/marker.txt") == (200, "kept\n")                 # previous serves, volume data intact
    assert docker("ps", "-a", "-q", "-f", "name=^%s-previous$" % name) == ""

    deaf = rollout(prefix, images["deaf"], health_timeout=6)
    assert deaf.get("failed") and deaf["rolled_back"] and "not healthy within 6" in deaf["msg"]
    assert http_get("/marker.txt") == (200, "kept\n")

    upgraded = rollout(prefix, images["good2"])
    assert upgraded["changed"] and not upgraded.get("failed"), upgraded.get("msg")
    assert upgraded["previous_image_id"] == image_id(images["good"])
    assert upgraded["container"]["image_id"] == image_id(images["good2"])
    assert upgraded["changed_keys"] == ["image_id"]
    assert http_get("/marker.txt") == (200, "kept\n")
    assert docker("ps", "-a", "-q", "-f", "name=^%s-previous$" % name) == ""   # old one removed

    gone = rollout(prefix, images["good2"], state="absent")
    assert gone["changed"] and docker("ps", "-a", "-q", "-f", "name=^%s$" % name) == ""
    assert docker("volume", "ls", "-q", "-f", "name=%s-data" % prefix) == prefix + "-data"   # volume kept
    assert not rollout(prefix, images["good2"], state="absent")["changed"]


def test_errors_are_explained(prefix, images):
    res = rollout(prefix + "-x", prefix + "-svc:never-built")
    assert res.get("failed") and "never-built not found" in res["msg"] and "image_build" in res["msg"]

    blocker = prefix + "-blocker"
    docker("run", "-d", "--name", blocker, "-p", "127.0.0.1:%d:8000" % PORT, BASE_IMAGE, "sleep", "300")
    try:
        res = rollout(prefix + "-y", images["good"])
        assert res.get("failed") and "already in use" in res["msg"] and blocker in res["msg"]
        assert docker("ps", "-a", "-q", "-f", "name=^%s-y-svc$" % prefix) == ""
    finally:
        docker("rm", "-f", blocker)

    res = rollout(prefix, images["good"], docker_host="unix:///nonexistent.sock")
    assert res.get("failed") and "unix:///nonexistent.sock" in res["msg"] and "dockerd" in res["msg"]

    res = rollout(prefix, images["good"], ports=["not-a-port"])
    assert res.get("failed") and "not-a-port" in res["msg"]


def test_check_mode_previews_a_pull_on_a_fresh_host(prefix):
    # The gaming host's check run: the image the real run would pull is not there yet.
    missing = prefix + "-svc:to-be-pulled"
    res = rollout(prefix + "-p", missing, pull=True, _check=True)
    assert not res.get("failed"), res
    assert res["changed"] is True
    assert any("would pull " + missing in a for a in res["actions"]), res["actions"]
    assert docker("ps", "-a", "-q", "-f", "name=^%s-p-svc$" % prefix) == ""
    # Without pull the same preview is an error naming the fix, as for a real run.
    res = rollout(prefix + "-p", missing, _check=True)
    assert res.get("failed") and "not found" in res["msg"]


def test_init_containers_prepare_the_volume_before_a_start_and_never_on_a_no_op(prefix, images):
    """The real daemon: an init container writes into the service's volume (mounted writable for it while the
    service mounts it read-only), as root with only CHOWN, then is gone; a no-op starts none; a failing one
    leaves the running deployment serving."""
    name = prefix + "-i-svc"
    seed = {"name": "seed", "user": "0:0", "cap_add": ["CHOWN"], "entrypoint": ["sh", "-c"],
            "volumes": [prefix + "-i-data:/data"],
            "command": ["date +%s%N > /data/seeded.txt && chown 4321 /data/seeded.txt && echo seeded"]}
    args = dict(name=name, volumes=[prefix + "-i-data:/data:ro"], init_containers=[seed])
    first = rollout(prefix + "-i", images["good"], **args)
    assert first["changed"] and not first.get("failed"), first.get("msg")
    assert first["init_containers"] == [{"name": name + "-init-seed", "exit_code": 0, "output": "seeded"}]
    assert "ran init container %s-init-seed: seeded" % name in first["actions"]
    status, seeded = http_get("/seeded.txt")
    assert status == 200 and docker("exec", name, "stat", "-c", "%u", "/data/seeded.txt") == "4321"
    assert docker("ps", "-a", "-q", "-f", "name=%s-init-" % name) == ""          # removed after it ran

    again = rollout(prefix + "-i", images["good"], **args)
    assert not again["changed"] and "init_containers" not in again
    assert http_get("/seeded.txt") == (200, seeded)                              # it did not run again

    broken = dict(seed, command=["echo 'disk full' >&2; exit 7"])
    failed = rollout(prefix + "-i", images["good2"], **dict(args, init_containers=[broken]))
    assert failed.get("failed") and "(exit code 7)" in failed["msg"] and "disk full" in failed["msg"]
    assert "keeps serving" in failed["msg"]
    assert docker("inspect", "-f", "{{.Id}}", name) == first["container"]["id"]   # untouched, still serving
    assert http_get("/seeded.txt") == (200, seeded)
    assert docker("ps", "-a", "-q", "-f", "name=%s-init-" % name) == ""


def test_create_bind_sources_serves_the_directory_it_created(prefix, images, tmp_path):
    """The dashboard's status directory: missing on a fresh host, created by the rollout, then served."""
    name, port = prefix + "-bind", PORT + 1
    source = tmp_path / "state" / "status"
    args = dict(name=name, ports=["127.0.0.1:%d:8000" % port], volumes=["%s:/data:ro" % source],
                networks=[], network_aliases=[], health_url="http://127.0.0.1:%d/" % port)
    try:
        res = rollout(prefix, images["good"], **args)
        assert res.get("failed") and "create it first, or set create_bind_sources" in res["msg"], res
        assert not source.exists() and docker("ps", "-a", "-q", "-f", "name=^%s$" % name) == ""

        res = rollout(prefix, images["good"], create_bind_sources=True, **args)
        assert res["changed"] and not res.get("failed"), res.get("msg")
        assert "created the bind source directory %s" % source in res["actions"]
        (source / "plan.json").write_text("{}\n")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open("http://127.0.0.1:%d/plan.json" % port, timeout=5) as resp:
            assert resp.read().decode() == "{}\n"

        again = rollout(prefix, images["good"], create_bind_sources=True, **args)
        assert not again["changed"] and again["actions"] == [], again["actions"]
    finally:
        docker("rm", "-f", name, name + "-rollback", check=False)


def test_state_files_are_written_once_the_container_serves_and_never_after_a_failed_rollout(prefix, images, tmp_path):
    """The vLLM plan's case: plan.json describes what serves. Written after the health gate (or with the container
    serving unchanged), checked before anything is touched, left as it was by a rollout that failed, and written
    back by a rollback to the deployment it described."""
    name, port = prefix + "-sf", PORT + 2
    status = tmp_path / "status"
    plan = status / "plan.json"
    args = dict(name=name, ports=["127.0.0.1:%d:8000" % port], volumes=[], networks=[], network_aliases=[],
                health_url="http://127.0.0.1:%d/" % port)

    def files(text, path=str(plan)):
        return {"directories": [{"path": str(status), "mode": "0755"}], "files": [{"path": path, "content": text}]}

    try:
        preview = rollout(prefix, images["good"], state_files=files("v1\n"), _check=True, **args)
        assert preview["changed"] and preview["state_files_changed"] == [str(status), str(plan)], preview
        assert not status.exists() and docker("ps", "-a", "-q", "-f", "name=^%s$" % name) == ""

        first = rollout(prefix, images["good"], state_files=files("v1\n"), **args)
        assert first["changed"] and not first.get("failed"), first.get("msg")
        assert first["state_files_changed"] == [str(status), str(plan)] and plan.read_text() == "v1\n"
        assert {"before_header": str(plan), "after_header": str(plan), "before": "", "after": "v1\n"} in first["diff"]

        again = rollout(prefix, images["good"], state_files=files("v1\n"), **args)
        assert not again["changed"] and again["state_files_changed"] == [], again

        crashed = rollout(prefix, images["crash"], state_files=files("v2\n"), **args)
        assert crashed.get("failed") and crashed["rolled_back"], crashed
        assert plan.read_text() == "v1\n"                          # still what the restored container serves
        assert docker("inspect", "-f", "{{.Id}}", name) == first["container"]["id"]

        refused = rollout(prefix, images["good2"], state_files=files("v2\n", path="relative/plan.json"), **args)
        assert refused.get("failed") and "must be absolute" in refused["msg"] and "Nothing was rolled out" in refused["msg"]
        assert docker("inspect", "-f", "{{.Id}}", name) == first["container"]["id"] and plan.read_text() == "v1\n"

        only_files = rollout(prefix, images["good"], state_files=files("v2\n"), **args)
        assert only_files["changed"] and only_files["state_files_changed"] == [str(plan)], only_files
        assert only_files["container"]["id"] == first["container"]["id"] and plan.read_text() == "v2\n"

        absent = rollout(prefix, images["good"], state="absent", state_files=files("v3\n"), **args)
        assert absent.get("failed") and "state_files applies to state=started only" in absent["msg"], absent
        assert docker("inspect", "-f", "{{.Id}}", name) == first["container"]["id"] and plan.read_text() == "v2\n"

        # A replacement keeps the replaced deployment for rollback, with its files: a rollback writes them back.
        newer = rollout(prefix, images["good2"], state_files=files("v3\n"), **args)
        assert newer["changed"] and newer["container"]["id"] != first["container"]["id"] and plan.read_text() == "v3\n"
        preview = run_module("container_rollout", {"name": name, "state": "rolled_back"}, check=True, diff=True)
        assert preview["changed"] and preview["rolled_back_to"]["id"] == first["container"]["id"], preview.get("msg")
        assert preview["state_files_changed"] == [str(plan)] and {"before_header": str(plan), "before": "v3\n",
                                                                  "after_header": str(plan), "after": "v2\n"} \
            in preview["diff"], preview
        assert plan.read_text() == "v3\n" and docker("inspect", "-f", "{{.Id}}", name) == newer["container"]["id"]
        back = run_module("container_rollout", {"name": name, "state": "rolled_back"})
        assert back["rolled_back"] and back["container"]["id"] == first["container"]["id"], back.get("msg")
        assert back["rolled_back_to"]["id"] == first["container"]["id"]
        assert back["state_files_changed"] == [str(plan)] and plan.read_text() == "v2\n"
        forward = run_module("container_rollout", {"name": name, "state": "rolled_back"})
        assert forward["container"]["id"] == newer["container"]["id"] and plan.read_text() == "v3\n"
    finally:
        docker("rm", "-f", name, name + "-rollback", check=False)
