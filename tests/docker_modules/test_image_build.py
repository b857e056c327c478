"""homelab.ai.image_build against the real Docker daemon: build only on changed inputs, prove the
tag moved, gate on check_command via a candidate tag, readable errors."""
import os

import pytest

from conftest import BASE_IMAGE, docker, image_id, run_module


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    d = tmp_path_factory.mktemp("ctx")
    (d / "Dockerfile").write_text(
        "ARG BASE=%s\nFROM ${BASE}\nCOPY app.py /app.py\nCMD [\"python3\", \"/app.py\"]\n" % BASE_IMAGE)
    (d / "app.py").write_text("print('v1')\n")
    (d / "big.log").write_text("ignored\n")
    (d / ".dockerignore").write_text("*.log\n")
    return d


def build(prefix, ctx, **extra):
    args = {"name": prefix + "-img:latest", "path": str(ctx), "log_path": str(ctx.parent / "build.log")}
    args.update(extra)
    return run_module("image_build", args)


def test_build_is_driven_by_the_inputs_hash(prefix, ctx):
    name = prefix + "-img:latest"
    first = build(prefix, ctx)
    assert first["changed"] and first["built"], first
    assert first["image_id"] == image_id(name)
    labels = docker("image", "inspect", "-f", "{{json .Config.Labels}}", name)
    assert first["inputs_hash"] in labels
    assert first["base_images"] == {BASE_IMAGE: image_id(BASE_IMAGE)}
    assert "Step 2/" in open(first["log_path"]).read()   # the log streamed to the file

    again = build(prefix, ctx)
    assert not again["changed"] and not again["built"] and again["image_id"] == first["image_id"]

    (ctx / "big.log").write_text("ignored, changed\n")     # .dockerignore'd: no rebuild
    assert not build(prefix, ctx)["changed"]

    (ctx / "app.py").write_text("print('v2')\n")
    checked = run_module("image_build", {"name": name, "path": str(ctx)}, check=True, diff=True)
    assert checked["changed"] and not checked["built"] and image_id(name) == first["image_id"]
    assert checked["diff"]["before"]["inputs_hash"] == first["inputs_hash"]

    second = build(prefix, ctx)
    assert second["changed"] and second["image_id"] != first["image_id"]
    assert second["previous_image_id"] == first["image_id"]
    assert docker("run", "--rm", name) == "v2"             # the tag really moved to the new image

    forced = build(prefix, ctx, force=True)
    assert forced["changed"] and forced["built"] and forced["image_id"] != second["image_id"]
    assert forced["inputs_hash"] == second["inputs_hash"]

    other_arg = build(prefix, ctx, build_args={"BASE": BASE_IMAGE, "EXTRA": "1"})
    assert other_arg["changed"]


def test_failed_check_command_keeps_the_previous_image(prefix, ctx):
    name = prefix + "-img:latest"
    before = build(prefix, ctx)
    assert not before.get("failed"), before
    (ctx / "app.py").write_text("import diffusers  # the record's broken dependency\n")
    res = build(prefix, ctx, check_command=["python3", "/app.py"])
    assert res.get("failed")
    assert "No module named 'diffusers'" in res["msg"] and "was NOT moved" in res["msg"]
    assert res["candidate_image_id"] in res["msg"]
    assert image_id(name) == before["image_id"]             # real tag untouched
    assert image_id(prefix + "-img:latest-candidate") is None
    (ctx / "app.py").write_text("print('v3')\n")
    ok = build(prefix, ctx, check_command=["python3", "/app.py"])
    assert ok["changed"] and ok["check"]["rc"] == 0 and ok["check"]["output"].strip() == "v3"
    assert image_id(name) == ok["image_id"] != before["image_id"]


def test_dockerfile_errors_are_explained(prefix, ctx):
    (ctx / "Dockerfile.bad").write_text("FROM %s\nRUN echo one\nCOPPY app.py /\n" % BASE_IMAGE)
    res = build(prefix, ctx, name=prefix + "-bad:1", dockerfile="Dockerfile.bad")
    assert res.get("failed")
    assert "unknown instruction" in res["msg"] and "COPPY app.py /" in res["msg"]

    (ctx / "Dockerfile.fail").write_text("FROM %s\nRUN echo step-output && exit 4\n" % BASE_IMAGE)
    res = build(prefix, ctx, name=prefix + "-bad:1", dockerfile="Dockerfile.fail")
    assert res.get("failed")
    assert "Step 2/" in res["failed_step"] and "step-output" in res["msg"] and "non-zero code: 4" in res["msg"]
    assert image_id(prefix + "-bad:1") is None and image_id(prefix + "-bad:1-candidate") is None

    res = build(prefix, ctx, name=prefix + "-bad:1", dockerfile="Nope")
    assert res.get("failed") and "Nope" in res["msg"] and "not found" in res["msg"]
    res = run_module("image_build", {"name": prefix + "-bad:1", "path": str(ctx / "missing")})
    assert res.get("failed") and "does not exist" in res["msg"]

    (ctx / "Dockerfile.nobase").write_text("FROM homelab/not-built:1\n")
    res = build(prefix, ctx, name=prefix + "-bad:1", dockerfile="Dockerfile.nobase")
    assert res.get("failed") and "homelab/not-built:1" in res["msg"] and "pull is false" in res["msg"]


def test_unreachable_daemon_names_socket_and_fix(prefix, ctx):
    res = build(prefix, ctx, docker_host="unix:///nonexistent.sock")
    assert res.get("failed")
    assert "unix:///nonexistent.sock" in res["msg"] and "Start the daemon" in res["msg"]


def test_missing_base_is_pulled_once_from_a_real_registry(prefix, tmp_path):
    """A fresh host has no base image: with pull_missing_bases the build pulls it (a real registry on
    loopback), a re-run pulls nothing and builds nothing; without it the build fails naming the base;
    a base the registry does not have fails naming the image and the fix."""
    from tests.support.registry import LocalRegistry

    with LocalRegistry(tmp_path / "registry") as reg:
        base = reg.push(BASE_IMAGE, "%s/debian:bookworm" % prefix)
        assert image_id(base) is None                       # only the registry has it now
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM %s\nRUN echo built > /built\n" % base)
        name = prefix + "-pulled:latest"

        refused = run_module("image_build", {"name": name, "path": str(ctx)})
        assert refused.get("failed") and base in refused["msg"] and "pull_missing_bases" in refused["msg"], refused

        preview = run_module("image_build", {"name": name, "path": str(ctx), "pull_missing_bases": True}, check=True)
        assert preview["changed"] and preview["pulled_bases"] == [base] and image_id(base) is None, preview

        first = run_module("image_build", {"name": name, "path": str(ctx), "pull_missing_bases": True})
        assert first["changed"] and first["built"] and first["pulled_bases"] == [base], first
        assert first["base_images"] == {base: image_id(base)}
        again = run_module("image_build", {"name": name, "path": str(ctx), "pull_missing_bases": True})
        assert not again["changed"] and again["pulled_bases"] == [], again

        (ctx / "Dockerfile").write_text("FROM %s\n" % reg.ref("%s/absent:1" % prefix))
        absent = run_module("image_build", {"name": name, "path": str(ctx), "pull_missing_bases": True})
        assert absent.get("failed") and "absent:1" in absent["msg"] and "pulling it failed" in absent["msg"], absent
        docker("image", "rm", "-f", base, check=False)
