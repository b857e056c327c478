"""homelab.ai.image_build against the real Docker daemon: build only on changed inputs, prove the
tag moved, gate on check_command via a candidate tag, readable errors; retention: twenty rebuilds keep
at most two images of the name (current and <name>-previous), an image a stopped container uses is kept;
a big input's digest is remembered in state_dir and a change to it still rebuilds."""
import hashlib
import json
import os
import time

import pytest

from conftest import BASE_IMAGE, docker, image_id, new_prefix, remove_prefixed, run_module


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


def test_listed_files_hash_where_they_lie(prefix, tmp_path):
    """files instead of a folder: a controller file (read by the action plugin), a text given as content and
    a file on the managed host hash the same as a folder holding exactly these files; nothing is copied to
    decide, a change in any of them rebuilds, and bad entries fail naming the entry and the fix."""
    controller = tmp_path / "controller"
    host = tmp_path / "host"
    folder = tmp_path / "folder"
    for d in (controller, host, folder / "certs", folder / "wheels"):
        d.mkdir(parents=True)
    dockerfile = ("FROM %s\nCOPY certs/ /tmp/certs/\nCOPY wheels/ /tmp/wheels/\nCOPY run.sh /run.sh\n"
                  "CMD [\"sh\", \"-c\", \"/run.sh && ls /tmp/certs /tmp/wheels\"]\n" % BASE_IMAGE)
    (controller / "run.sh").write_text("#!/bin/sh\necho listed-v1\n")
    (controller / "run.sh").chmod(0o755)
    (host / "pkg.whl").write_bytes(b"PK\x03\x04 not text \xff")
    for rel, data in (("Dockerfile", dockerfile.encode()), ("run.sh", (controller / "run.sh").read_bytes()),
                      ("wheels/pkg.whl", (host / "pkg.whl").read_bytes())):
        (folder / rel).write_bytes(data)
    (folder / "run.sh").chmod(0o755)
    name = prefix + "-listed:latest"
    files = [{"dest": "Dockerfile", "content": dockerfile},
             {"dest": "run.sh", "src": str(controller / "run.sh")},
             {"dest": "wheels/pkg.whl", "src": str(host / "pkg.whl"), "remote_src": True}]
    listed = {"name": name, "files": files, "directories": ["certs"], "log_path": str(tmp_path / "build.log")}

    preview = run_module("image_build", listed, check=True)
    as_folder = run_module("image_build", {"name": name, "path": str(folder)}, check=True)
    assert preview["inputs_hash"] == as_folder["inputs_hash"] and preview["context_files"] == 3, (preview, as_folder)

    first = run_module("image_build", listed)
    assert first["changed"] and first["built"], first
    # the executable bit kept, the empty certs/ sent
    assert docker("run", "--rm", name).split() == ["listed-v1", "/tmp/certs:", "/tmp/wheels:", "pkg.whl"]
    assert not run_module("image_build", listed)["changed"]
    assert not run_module("image_build", {"name": name, "path": str(folder)})["changed"]   # the same hash

    (controller / "run.sh").write_text("#!/bin/sh\necho listed-v2\n")
    assert run_module("image_build", listed)["built"]
    assert docker("run", "--rm", name).split()[0] == "listed-v2"
    (host / "pkg.whl").write_bytes(b"another wheel")
    assert run_module("image_build", listed)["built"]

    missing_host = run_module("image_build", dict(listed, files=files[:2] + [dict(files[2], src=str(host / "nope.whl"))]))
    assert missing_host.get("failed") and "files[2]" in missing_host["msg"] and "nope.whl" in missing_host["msg"], missing_host
    missing_ctl = run_module("image_build", dict(listed, files=files[:1] + [{"dest": "run.sh", "src": "nope.sh"}]))
    assert missing_ctl.get("failed") and "files[1]" in missing_ctl["msg"] and "remote_src" in missing_ctl["msg"], missing_ctl
    (controller / "blob.bin").write_bytes(b"\xff\xfe binary")
    binary = run_module("image_build", dict(listed, files=files + [{"dest": "blob.bin", "src": str(controller / "blob.bin")}]))
    assert binary.get("failed") and "not UTF-8" in binary["msg"], binary
    escape = run_module("image_build", dict(listed, files=files + [{"dest": "../x", "content": "x"}]))
    assert escape.get("failed") and "files[3]" in escape["msg"] and "without '..'" in escape["msg"], escape
    no_dockerfile = run_module("image_build", dict(listed, files=files[1:]))
    assert no_dockerfile.get("failed") and "files lists no Dockerfile" in no_dockerfile["msg"], no_dockerfile
    both = run_module("image_build", dict(listed, path=str(folder)))
    assert both.get("failed") and "mutually exclusive" in both["msg"], both
    docker("image", "rm", "-f", name, name + "-previous", check=False)


def test_a_big_input_is_remembered_in_state_dir_and_a_change_still_rebuilds(prefix, tmp_path):
    """module_utils/file_digests.py through the real module: a settled file of 1 MiB or more gets its digest
    recorded in state_dir (not by check mode), and a write of the same size is read again and rebuilds."""
    state, wheel = tmp_path / "state", tmp_path / "big.whl"
    wheel.write_bytes(b"a" * (1024 * 1024 + 1))
    time.sleep(2.2)  # older than file_digests.SETTLED_NS when it is hashed: recorded
    dockerfile = "FROM %s\nCOPY big.whl /big.whl\nCMD [\"sha256sum\", \"/big.whl\"]\n" % BASE_IMAGE
    name = prefix + "-digests:latest"
    args = {"name": name, "state_dir": str(state), "log_path": str(tmp_path / "build.log"),
            "files": [{"dest": "Dockerfile", "content": dockerfile},
                      {"dest": "big.whl", "src": str(wheel), "remote_src": True}]}
    record = state / "file-digests.json"
    assert run_module("image_build", args, check=True)["changed"] and not record.exists()
    first = run_module("image_build", args)
    assert first["built"], first
    assert json.loads(record.read_text())["files"][str(wheel)]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert not run_module("image_build", args)["changed"]
    wheel.write_bytes(b"b" * (1024 * 1024 + 1))  # same size; only its ctime and mtime say it changed
    second = run_module("image_build", args)
    assert second["built"] and second["inputs_hash"] != first["inputs_hash"], second
    assert docker("run", "--rm", name).split()[0] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    docker("image", "rm", "-f", name, name + "-previous", check=False)


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


# ---- retention: one previous image per name, the rest removed, never forced -------------------

def _our_images(name):
    """IDs of the images of name: tagged with its repository, or (dangling too) labelled as built for it."""
    repo = name.rsplit(":", 1)[0]
    labelled = docker("image", "ls", "-q", "--no-trunc", "--filter", "label=homelab.ai.image=" + name).split()
    tagged = docker("image", "ls", "-q", "--no-trunc", repo).split()
    return sorted(set(labelled) | set(tagged))


def _disk(ids):
    """(unique bytes, size bytes) of the images ids, as `docker system df -v` counts them."""
    import docker as docker_sdk
    images = dict((i["Id"], i) for i in docker_sdk.APIClient(version="auto").df()["Images"])
    unique = sum(images[i]["Size"] - max(images[i]["SharedSize"], 0) for i in ids if i in images)
    return unique, sum(images[i]["Size"] for i in ids if i in images)


@pytest.fixture
def retention(tmp_path):
    """A tiny context whose payload changes per build, its name <prefix>/retention:latest, and cleanup of
    everything built or created for it (the build lock in the default state folder too)."""
    prefix = new_prefix()
    name = "%s/retention:latest" % prefix
    (tmp_path / "Dockerfile").write_text("FROM %s\nCOPY payload /payload\n" % BASE_IMAGE)
    yield name, tmp_path, prefix
    ids = docker("image", "ls", "-q", "--no-trunc", "--filter", "label=homelab.ai.image=" + name, check=False).split()
    remove_prefixed(prefix)                                  # containers, tagged images, the lock
    if ids:
        docker("image", "rm", *ids, check=False)             # dangling ones, labelled as built for the name


def _rebuild(name, ctx, n, **extra):
    (ctx / "payload").write_bytes(os.urandom(1024 * 1024) + b"%d" % n)     # 1 MiB unique per build
    args = {"name": name, "path": str(ctx), "log_path": str(ctx / ".." / "retention.log")}
    args.update(extra)
    res = run_module("image_build", args)
    assert not res.get("failed") and res["built"], res
    return res


def test_twenty_rebuilds_keep_at_most_two_images(retention):
    name, ctx, _ = retention
    df_before = docker("system", "df")
    ids, counts = [], []
    for n in range(20):
        res = _rebuild(name, ctx, n)
        ids.append(res["image_id"])
        ours = _our_images(name)
        counts.append(len(ours))
        assert len(ours) <= 2, (n, ours)
        assert image_id(name) == ids[-1]
        if n:
            assert res["previous_tag"] == name + "-previous" and image_id(name + "-previous") == ids[-2], res
            assert res["removed_images"] == ([] if n == 1 else [ids[-3]]) and res["kept_images"] == [], res
        if n > 1:
            assert image_id(ids[-3]) is None
    assert _our_images(name) == sorted(ids[-2:])
    # With its untagged parents: the classic builder applies the labels one step each, in name order, so
    # the step that adds homelab.ai.image and the final one carry it: 2 per kept image, none left over.
    with_parents = docker("image", "ls", "-a", "-q", "--filter", "label=homelab.ai.image=" + name).split()
    assert len(with_parents) <= 4, with_parents
    unique, size = _disk(_our_images(name))
    print("\n[retention] 20 rebuilds of %s (1 MiB payload each): images of the name after each build %s; "
          "kept 2 (%d with labelled parents), unique size %.2f MiB, size %.1f MiB each incl. the base"
          % (name, counts, len(with_parents), unique / 2.0 ** 20, size / 2.0 ** 21))
    print("[retention] docker system df before:\n%s\n[retention] after:\n%s" % (df_before, docker("system", "df")))

    again = run_module("image_build", {"name": name, "path": str(ctx)})
    assert not again["changed"] and again["removed_images"] == [] and again["previous_tag_image_id"] == ids[-2], again
    assert _our_images(name) == sorted(ids[-2:])


def test_leftovers_of_keep_previous_false_go_with_the_next_build(retention):
    name, ctx, _ = retention
    ids = [_rebuild(name, ctx, n, keep_previous=False)["image_id"] for n in range(4)]
    assert _our_images(name) == sorted(ids)                 # the old behaviour: every rebuild leaves one behind
    unique_before, _ = _disk(ids)
    res = _rebuild(name, ctx, 4)
    assert sorted(res["removed_images"]) == sorted(ids[:3]) and _our_images(name) == sorted([ids[3], res["image_id"]])
    unique_after, _ = _disk(_our_images(name))
    print("\n[retention] 4 builds with keep_previous=false: 4 images, unique %.2f MiB; the next build with it "
          "on removed 3, 2 left, unique %.2f MiB" % (unique_before / 2.0 ** 20, unique_after / 2.0 ** 20))


def test_an_image_a_stopped_container_uses_is_kept(retention):
    name, ctx, prefix = retention
    first = _rebuild(name, ctx, 1)["image_id"]
    holder = prefix + "-rollback"
    docker("create", "--name", holder, first, "true")            # like container_rollout's kept -rollback container
    second = _rebuild(name, ctx, 2)["image_id"]

    (ctx / "payload").write_bytes(b"preview")
    preview = run_module("image_build", {"name": name, "path": str(ctx)}, check=True)
    assert preview["changed"] and preview["removed_images"] == [], preview
    assert [(k["id"], k["reason"]) for k in preview["kept_images"]] == [(first, "in-use")], preview
    assert image_id(name) == second and image_id(name + "-previous") == first   # check mode moved nothing

    third = _rebuild(name, ctx, 3)
    assert not third.get("warnings") and third["removed_images"] == [], third
    assert [(k["id"], k["reason"]) for k in third["kept_images"]] == [(first, "in-use")], third
    assert "stopped container" in third["kept_images"][0]["detail"]
    assert image_id(first) == first and image_id(name + "-previous") == second

    docker("rm", holder)
    fourth = _rebuild(name, ctx, 4)
    assert first in fourth["removed_images"] and image_id(first) is None, fourth
    assert _our_images(name) == sorted([third["image_id"], fourth["image_id"]])
