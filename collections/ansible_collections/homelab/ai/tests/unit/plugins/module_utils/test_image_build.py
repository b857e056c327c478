# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_build: the pure parts (.dockerignore semantics, context collection, FROM/ARG resolution, the
inputs hash), then each stage of the build and the image retention through the client factory with the
fake client of fake_docker.py. The build against a real daemon is covered by tests/docker_modules/."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import io
import json
import os
import tarfile
import time

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import file_digests as fd
from ansible_collections.homelab.ai.plugins.module_utils import image_build as ib
from ansible_collections.homelab.ai.tests.unit.plugins.module_utils.fake_docker import FakeDockerClient, factory
from ansible_collections.homelab.ai.plugins.module_utils.docker_common import (
    parse_docker_time,
    parse_duration,
    split_image_ref,
)


# ---- .dockerignore ---------------------------------------------------------------------------

def ignored(patterns_text, path):
    return ib.DockerIgnore(ib.parse_dockerignore(patterns_text)).excluded(path)


def test_parse_dockerignore_drops_comments_and_cleans_paths():
    text = "# comment\n\n  /build/  \n!keep.txt\n./a/../b\n"
    assert ib.parse_dockerignore(text) == ["build", "!keep.txt", "b"]


@pytest.mark.parametrize("patterns,path,expected", [
    ("*.pyc", "a.pyc", True),
    ("*.pyc", "dir/a.pyc", False),          # '*' does not cross '/' (unlike .gitignore)
    ("**/*.pyc", "dir/sub/a.pyc", True),
    ("**/*.pyc", "a.pyc", True),            # '**/' also matches zero directories
    ("models", "models/big.bin", True),     # a matching parent directory excludes its contents
    ("models/", "models/x/y", True),
    ("docs/*.md", "docs/a.md", True),
    ("docs/*.md", "docs/sub/a.md", False),
    ("?.txt", "a.txt", True),
    ("?.txt", "ab.txt", False),
    ("[ab].txt", "b.txt", True),
    ("[!ab].txt", "c.txt", True),
    ("[!ab].txt", "a.txt", False),
    ("*.md\n!README.md", "README.md", False),  # exception re-includes
    ("*.md\n!README.md", "CHANGES.md", True),
    ("!README.md\n*.md", "README.md", True),   # order matters: last match wins
    ("data\n!data/keep", "data/keep", False),
    ("data\n!data/keep", "data/other", True),
    ("cache/**", "cache/a/b", True),
    ("cache/**", "cachex", False),
    ("/abs", "abs", True),
])
def test_dockerignore_semantics(patterns, path, expected):
    assert ignored(patterns, path) is expected


def make_context(tmp_path, files, ignore=None):
    for rel, content in files.items():
        full = tmp_path / rel
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_text(content)
    if ignore is not None:
        (tmp_path / ".dockerignore").write_text(ignore)
    return str(tmp_path)


def rels(entries, kind=None):
    return [e.relpath for e in entries if kind is None or e.kind == kind]


def test_collect_context_honours_dockerignore_but_keeps_dockerfile(tmp_path):
    ctx = make_context(tmp_path, {
        "Dockerfile": "FROM x\n", "app.py": "print(1)\n", "models/w.bin": "w",
        "notes.md": "n", "README.md": "r", "src/a.py": "a", "src/a.pyc": "c",
    }, ignore="models\n*.md\n!README.md\nsrc/*.pyc\nDockerfile\n")
    entries = ib.collect_context(ctx, "Dockerfile")
    assert rels(entries, "file") == [".dockerignore", "Dockerfile", "README.md", "app.py", "src/a.py"]
    assert "models" not in rels(entries)


def test_collect_context_records_exec_bit_and_symlinks(tmp_path):
    ctx = make_context(tmp_path, {"Dockerfile": "FROM x\n", "run.sh": "#!/bin/sh\n"})
    os.symlink("run.sh", os.path.join(ctx, "link.sh"))
    before = {e.relpath: e for e in ib.collect_context(ctx, "Dockerfile")}
    assert before["link.sh"].kind == "link" and before["link.sh"].linkname == "run.sh"
    assert before["run.sh"].mode == 0
    os.chmod(os.path.join(ctx, "run.sh"), 0o755)
    after = {e.relpath: e for e in ib.collect_context(ctx, "Dockerfile")}
    assert after["run.sh"].mode == 1


def test_context_tar_holds_exactly_the_hashed_files(tmp_path):
    ctx = make_context(tmp_path, {"Dockerfile": "FROM x\n", "a/b.txt": "b", "skip/c": "c"}, ignore="skip\n")
    entries = ib.collect_context(ctx, "Dockerfile")
    buf = io.BytesIO()
    ib.write_context_tar(ctx, entries, buf)
    with tarfile.open(fileobj=buf) as tar:
        names = sorted(tar.getnames())
        assert tar.extractfile("a/b.txt").read() == b"b"
    assert names == sorted(rels(entries))
    assert not any(n.startswith("skip") for n in names)


# ---- a context given as a list of files -------------------------------------------------------

def test_listed_files_hash_like_a_folder_with_exactly_those_files(tmp_path):
    ctx = make_context(tmp_path / "folder", {"Dockerfile": "FROM x\n", "wheels/t.whl": "wheel", "run.sh": "echo\n"})
    os.chmod(os.path.join(ctx, "run.sh"), 0o755)
    os.makedirs(os.path.join(ctx, "certs"))
    host = tmp_path / "t.whl"
    host.write_text("wheel")
    listed = ib.ListedFiles([{"dest": "Dockerfile", "content": "FROM x\n"},
                             {"dest": "./run.sh", "content": "echo\n", "mode": "0755"},
                             {"dest": "wheels/t.whl", "src": str(host)}], directories=["certs"])
    assert listed.entries() == ib.collect_context(ctx, "Dockerfile")
    assert listed.text("Dockerfile") == "FROM x\n" and listed.text("nope") is None
    buf = io.BytesIO()
    listed.write_tar(listed.entries(), buf)
    with tarfile.open(fileobj=buf) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "certs", "run.sh", "wheels", "wheels/t.whl"]
        assert tar.getmember("run.sh").mode & 0o111 and not tar.getmember("Dockerfile").mode & 0o111
        assert tar.extractfile("wheels/t.whl").read() == b"wheel"
        assert tar.getmember("certs").isdir()


@pytest.mark.parametrize("files,directories,message", [
    ([{"dest": "../x", "content": "x"}], None, "files[0]: '../x' must be a path inside the build context"),
    ([{"dest": "/etc/x", "content": "x"}], None, "files[0]: '/etc/x' must be a path inside"),
    ([{"dest": "a", "content": "x"}, {"dest": "./a", "content": "y"}], None, "files[1]: dest a is listed twice"),
    ([{"dest": "a", "content": "x", "src": "/y"}], None, "give exactly one of content and src"),
    ([{"dest": "a", "src": "/nonexistent/file"}], None, "src /nonexistent/file is not a file on the managed host"),
    ([{"dest": "a", "content": "x", "mode": "rwx"}], None, "mode 'rwx' is not an octal mode"),
    ([{"dest": "a", "content": "x"}], ["a"], "a is listed both as a file (files) and as a folder"),
    ([{"dest": "a", "content": "x"}], [".."], "directories[0]: '..' must be a path inside"),
])
def test_listed_files_refuse_bad_entries_by_name(files, directories, message):
    with pytest.raises(ib.HomelabDockerError) as err:
        ib.ListedFiles(files, directories).entries()
    assert message in str(err.value)


def test_plan_from_listed_files_needs_the_dockerfile_listed():
    plan = ib.BuildPlan({"name": "x/y", "files": [{"dest": "Dockerfile", "content": "FROM base:1\n"}]})
    assert plan.dockerfile_text == "FROM base:1\n" and "listed in files" in plan.dockerfile_full
    with pytest.raises(ib.HomelabDockerError) as err:
        ib.BuildPlan({"name": "x/y", "files": [{"dest": "Containerfile", "content": "FROM a\n"}]})
    assert "files lists no Dockerfile" in str(err.value)


# ---- Dockerfile parsing ----------------------------------------------------------------------

def test_base_images_with_arg_substitution_and_stages():
    text = (
        "# syntax=docker/dockerfile:1\n"
        "ARG BASE=homelab/debian:bookworm\n"
        "ARG TAG\n"
        "FROM ${BASE} AS builder\n"
        "RUN echo hi \\\n"
        "    && echo there\n"
        "FROM --platform=linux/amd64 builder AS second\n"
        "FROM tools/${TAG:-stable}\n"
        "COPY --from=builder /x /x\n"
        "COPY --from=homelab/extra:1 /y /y\n"
        "FROM scratch\n"
    )
    assert ib.base_images_from_dockerfile(text) == [
        "homelab/debian:bookworm", "tools/stable", "homelab/extra:1"]
    assert ib.base_images_from_dockerfile(text, {"BASE": "other/base:2", "TAG": "v9"}) == [
        "other/base:2", "tools/v9", "homelab/extra:1"]


def test_dockerfile_instructions_join_continuations_and_skip_comments():
    text = "FROM a\n# c\nRUN x \\\n  # inner comment\n  y\nrun z\n"
    got = [(i, " ".join(rest.split())) for i, rest in ib.dockerfile_instructions(text)]
    assert got == [("FROM", "a"), ("RUN", "x y"), ("RUN", "z")]


def test_escape_directive_backtick():
    text = "# escape=`\nFROM a\nRUN x `\n  y\n"
    instr, rest = ib.dockerfile_instructions(text)[-1]
    assert (instr, rest.split()) == ("RUN", ["x", "y"])


# ---- inputs hash -----------------------------------------------------------------------------

def base_hash(ctx, **over):
    kw = dict(build_args={"A": "1"}, target=None, labels={"l": "v"}, base_image_ids={"b": "sha256:1"})
    kw.update(over)
    entries = ib.collect_context(ctx, "Dockerfile")
    return ib.compute_inputs_hash(entries, "Dockerfile", kw["build_args"], kw["target"], kw["labels"],
                                  kw["base_image_ids"])


def test_inputs_hash_is_stable_and_sensitive(tmp_path):
    ctx = make_context(tmp_path, {"Dockerfile": "FROM b\n", "app.py": "1", "ignored.log": "x"},
                       ignore="*.log\n")
    h = base_hash(ctx)
    assert h.startswith("sha256:") and h == base_hash(ctx)
    # mtime alone does not rebuild
    os.utime(os.path.join(ctx, "app.py"), (1, 1))
    assert base_hash(ctx) == h
    # an ignored file does not rebuild
    (tmp_path / "ignored.log").write_text("changed")
    assert base_hash(ctx) == h
    # every real input does
    assert base_hash(ctx, build_args={"A": "2"}) != h
    assert base_hash(ctx, target="final") != h
    assert base_hash(ctx, labels={"l": "w"}) != h
    assert base_hash(ctx, base_image_ids={"b": "sha256:2"}) != h
    (tmp_path / "app.py").write_text("2")
    h2 = base_hash(ctx)
    assert h2 != h
    (tmp_path / "new.py").write_text("")
    assert base_hash(ctx) != h2
    (tmp_path / ".dockerignore").write_text("*.log\nnew.py\n")
    assert base_hash(ctx) != h2  # .dockerignore itself is context


def test_resolve_paths_errors_name_the_fix(tmp_path):
    with pytest.raises(ib.HomelabDockerError, match="does not exist or is not a directory"):
        ib._resolve_paths({"path": str(tmp_path / "nope"), "dockerfile": "Dockerfile"})
    with pytest.raises(ib.HomelabDockerError, match="Dockerfile .* not found"):
        ib._resolve_paths({"path": str(tmp_path), "dockerfile": "Dockerfile"})
    outside = tmp_path / "Dockerfile.out"
    outside.write_text("FROM x\n")
    sub = tmp_path / "ctx"
    sub.mkdir()
    with pytest.raises(ib.HomelabDockerError, match="outside the build context"):
        ib._resolve_paths({"path": str(sub), "dockerfile": str(outside)})


def test_build_log_tracks_step_and_tail(tmp_path):
    log = ib.BuildLog(str(tmp_path / "b.log"))
    log.write("Step 1/3 : FROM x\n ---> abc\nStep 2/3 : RUN pip ")
    log.write("install y\nline\n" + "".join("l%d\n" % i for i in range(40)))
    log.close()
    assert log.step == "Step 2/3 : RUN pip install y"
    assert len(log.tail) == ib.LOG_TAIL_LINES and log.tail[-1] == "l39"
    assert (tmp_path / "b.log").read_text().startswith("Step 1/3 : FROM x\n")


# ---- docker_common helpers -------------------------------------------------------------------

@pytest.mark.parametrize("value,seconds", [(30, 30.0), ("30", 30.0), ("30s", 30.0), ("1m30s", 90.0),
                                           ("500ms", 0.5), ("1h", 3600.0), (None, None)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("bad", ["30x", "s", "1m 30s", "-5", True])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_parse_docker_time_nanoseconds():
    # 'Created' of homelab/debian:bookworm as `docker image inspect` printed it on 2026-11-26
    t = parse_docker_time("2026-11-26T21:55:00.123456789Z")
    assert abs(t - 1795730100.123456789) < 1e-5
    assert parse_docker_time("0001-01-01T00:00:00Z") is None


@pytest.mark.parametrize("ref,expected", [
    ("homelab/x", ("homelab/x", "latest")),
    ("homelab/x:1.2", ("homelab/x", "1.2")),
    ("localhost:5000/x", ("localhost:5000/x", "latest")),
    ("localhost:5000/x:t", ("localhost:5000/x", "t")),
])
def test_split_image_ref(ref, expected):
    assert split_image_ref(ref) == expected


@pytest.mark.parametrize("bad", ["x@sha256:abc", "Upper/x:1", "x:bad tag"])
def test_split_image_ref_rejects(bad):
    with pytest.raises(ValueError):
        split_image_ref(bad)


# ---- the build's stages, each through the client factory with the fake client ----------------

NAME = "homelab-test/retention:latest"


class BuildingFake(FakeDockerClient):
    """The fake client with the build endpoint and a check container that exits: each build makes a
    fresh image with the labels it was given, tagged as asked. Knobs: build_error (the build fails at
    its second step), stale (the daemon tags an image older than the build: the compose no-op),
    check_rc (what check_command returns)."""

    def __init__(self):
        FakeDockerClient.__init__(self)
        self.build_error = None
        self.stale = None
        self.check_rc = 0
        self.builds = []

    def build(self, fileobj=None, tag=None, labels=None, **kwargs):
        self.builds.append(dict(kwargs, tag=tag, labels=dict(labels or {}),
                                files=sorted(tarfile.open(fileobj=fileobj).getnames())))
        return self._build_stream(tag, labels)

    def _build_stream(self, tag, labels):
        yield {"stream": "Step 1/2 : FROM homelab/debian:bookworm\n"}
        yield {"stream": "Step 2/2 : COPY app.py /app.py\n"}
        if self.build_error:
            yield {"error": self.build_error, "errorDetail": {"message": self.build_error}}
            return
        if self.stale:
            self.tag(self.stale, *tag.rsplit(":", 1), force=True)
            yield {"aux": {"ID": self.stale}}
            return
        self.clock.sleep(1)
        image_id = self.add_image(tag, labels=labels)
        yield {"aux": {"ID": image_id}}
        yield {"stream": "Successfully built %s\n" % image_id[7:19]}

    def wait(self, container, timeout=None):
        c = self._find_container(container)
        c["State"].update({"Status": "exited", "Running": False, "ExitCode": self.check_rc})
        return {"StatusCode": self.check_rc}

    def kill(self, container):
        self.stop(container)

    def built_for(self, name=NAME):
        """IDs of the images labelled as built for name, tagged or dangling."""
        return sorted(i for i, img in self.images_by_id.items()
                      if img["Config"]["Labels"].get(ib.IMAGE_NAME_LABEL) == name)


@pytest.fixture
def fake():
    client = BuildingFake()
    client.base_id = client.add_image("homelab/debian:bookworm")
    return client


@pytest.fixture
def ctx(tmp_path):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text("FROM homelab/debian:bookworm\nCOPY app.py /app.py\n")
    (d / "app.py").write_text("print(0)\n")
    return d


def params_for(ctx, **over):
    p = {"name": NAME, "path": str(ctx), "dockerfile": "Dockerfile", "build_args": {}, "labels": {},
         "log_path": str(ctx.parent / "build.log"), "keep_previous": True}
    p.update(over)
    return p


def run(fake, ctx, check_mode=False, **over):
    return ib.run_image_build(params_for(ctx, **over), check_mode=check_mode, client_factory=factory(fake))


def planned(fake, ctx, **over):
    plan = ib.BuildPlan(params_for(ctx, **over))
    ib.resolve_bases(fake, plan, params_for(ctx, **over))
    ib.hash_inputs(plan)
    return plan


def test_plan_names_the_candidate_and_previous_tags(ctx):
    plan = ib.BuildPlan(params_for(ctx, name="homelab/x"))
    assert (plan.full_name, plan.candidate, plan.previous_tag) == (
        "homelab/x:latest", "homelab/x:latest-candidate", "homelab/x:latest-previous")
    with pytest.raises(ib.HomelabDockerError, match="lowercase"):
        ib.BuildPlan(params_for(ctx, name="Homelab/x"))


def test_resolve_bases_and_hash(fake, ctx):
    plan = planned(fake, ctx)
    assert plan.base_ids == {"homelab/debian:bookworm": fake.base_id} and plan.missing == []
    assert plan.inputs_hash.startswith("sha256:") and plan.inputs_hash == planned(fake, ctx).inputs_hash
    (ctx / "Dockerfile").write_text("FROM homelab/absent:1\n")
    plan = ib.BuildPlan(params_for(ctx))
    ib.resolve_bases(fake, plan, params_for(ctx, pull_missing_bases=True), check_mode=True)
    assert plan.missing == ["homelab/absent:1"] and plan.pulled == []      # check mode pulls nothing
    with pytest.raises(ib.HomelabDockerError, match="homelab/absent:1 named in .* pulling it failed"):
        ib.resolve_bases(fake, plan, params_for(ctx, pull_missing_bases=True))
    with pytest.raises(ib.HomelabDockerError, match="pull is false"):
        ib.require_bases(plan, params_for(ctx))


def test_decide_builds_on_a_new_hash_force_or_no_image(fake, ctx):
    plan = planned(fake, ctx)
    result, need = ib.decide(plan, None, params_for(ctx))
    assert need and result["image_id"] is None and result["changed"] is False
    same = {"Id": "sha256:a", "Config": {"Labels": {ib.INPUTS_HASH_LABEL: plan.inputs_hash}}}
    result, need = ib.decide(plan, same, params_for(ctx))
    assert not need and result["image_id"] == "sha256:a" and result["previous_inputs_hash"] == plan.inputs_hash
    assert ib.decide(plan, same, params_for(ctx, force=True))[1]
    other = {"Id": "sha256:a", "Config": {"Labels": {ib.INPUTS_HASH_LABEL: "sha256:old"}}}
    assert ib.decide(plan, other, params_for(ctx))[1]
    preview = ib.preview_build(dict(result), planned(fake, ctx), params_for(ctx))
    assert preview["image_id"] is None and "warnings" not in preview


def test_build_candidate_labels_the_image_for_its_name(fake, ctx):
    plan = planned(fake, ctx)
    built_id = ib.build_candidate(fake, plan, params_for(ctx), None)
    labels = fake.builds[-1]["labels"]
    assert fake.builds[-1]["tag"] == plan.candidate and fake.tags[plan.candidate] == built_id
    assert labels[ib.IMAGE_NAME_LABEL] == NAME and labels[ib.INPUTS_HASH_LABEL] == plan.inputs_hash
    assert ib.BUILD_RUN_LABEL in labels and fake.builds[-1]["files"] == ["Dockerfile", "app.py"]
    assert "Step 2/2" in open(plan.log_path).read()


def test_failed_build_names_the_step_and_drops_the_candidate(fake, ctx):
    fake.build_error = "COPY failed: file not found in build context"
    plan = planned(fake, ctx)
    with pytest.raises(ib.HomelabDockerError) as err:
        ib.build_candidate(fake, plan, params_for(ctx), "sha256:prev")
    assert err.value.details["failed_step"] == "Step 2/2 : COPY app.py /app.py"
    assert "COPY failed" in err.value.msg and err.value.details["previous_image_id"] == "sha256:prev"
    assert plan.candidate not in fake.tags


def test_verify_refuses_a_stale_or_missing_candidate(fake, ctx):
    plan = planned(fake, ctx)
    started = fake.clock.now
    with pytest.raises(ib.HomelabDockerError, match="does not exist afterwards: nothing was built"):
        ib.verify_candidate(fake, plan, None, started, None)
    fake.stale = fake.add_image(None, labels={ib.INPUTS_HASH_LABEL: "sha256:old"}, created=started - 3600)
    built_id = ib.build_candidate(fake, plan, params_for(ctx), None)
    with pytest.raises(ib.HomelabDockerError, match="before this build started: the build was a no-op"):
        ib.verify_candidate(fake, plan, built_id, started, None)
    assert plan.candidate not in fake.tags
    fake.stale = None
    ib.build_candidate(fake, plan, params_for(ctx), None)
    with pytest.raises(ib.HomelabDockerError, match="not to sha256:0123 that this build produced"):
        ib.verify_candidate(fake, plan, "sha256:0123", started, None)
    new_id = ib.build_candidate(fake, plan, params_for(ctx), None)
    assert ib.verify_candidate(fake, plan, new_id, started, None) == new_id


def test_check_candidate_gates_the_tag(fake, ctx):
    plan = planned(fake, ctx)
    new_id = ib.build_candidate(fake, plan, params_for(ctx), None)
    assert ib.check_candidate(fake, plan, params_for(ctx), new_id, None) is None
    ok = ib.check_candidate(fake, plan, params_for(ctx, check_command=["true"]), new_id, None)
    assert ok["rc"] == 0 and "fake log" in ok["output"]
    fake.check_rc = 3
    with pytest.raises(ib.HomelabDockerError, match="failed \\(rc=3\\).*was NOT moved") as err:
        ib.check_candidate(fake, plan, params_for(ctx, check_command=["false"]), new_id, "sha256:prev")
    assert err.value.details["candidate_image_id"] == new_id and plan.candidate not in fake.tags
    assert NAME not in fake.tags and fake.containers_by_id == {}   # no tag moved, no check container left


def test_move_tag_moves_and_drops_the_candidate(fake, ctx):
    plan = planned(fake, ctx)
    new_id = ib.build_candidate(fake, plan, params_for(ctx), None)
    assert ib.move_tag(fake, plan, new_id)["Id"] == new_id
    assert fake.tags[NAME] == new_id and plan.candidate not in fake.tags


def rebuild(fake, ctx, n, **over):
    (ctx / "app.py").write_text("print(%d)\n" % n)
    return run(fake, ctx, **over)


def test_twenty_rebuilds_keep_the_current_and_one_previous_image(fake, ctx):
    ids = []
    for n in range(20):
        res = rebuild(fake, ctx, n)
        ids.append(res["image_id"])
        assert res["built"] and fake.tags[NAME] == ids[-1]
        assert len(fake.built_for()) <= 2, (n, fake.built_for())
        if n == 0:
            assert res["previous_tag"] is None and res["removed_images"] == []
        else:
            assert res["previous_tag"] == NAME + "-previous" and fake.tags[NAME + "-previous"] == ids[-2]
            assert res["previous_tag_image_id"] == ids[-2] == res["previous_image_id"]
            assert res["removed_images"] == ([] if n == 1 else [ids[-3]]) and res["kept_images"] == []
    assert fake.built_for() == sorted(ids[-2:]) and fake.base_id in fake.images_by_id
    again = run(fake, ctx)
    assert not again["changed"] and again["removed_images"] == [] and again["previous_tag_image_id"] == ids[-2]


def test_an_image_a_stopped_container_uses_is_kept_not_an_error(fake, ctx):
    first = rebuild(fake, ctx, 1)["image_id"]
    rollback = fake.create_container(first, name="svc-rollback")["Id"]      # container_rollout's kept one
    rebuild(fake, ctx, 2)
    res = rebuild(fake, ctx, 3)
    assert res["kept_images"] == [{"id": first, "tags": [], "reason": "in-use",
                                   "detail": res["kept_images"][0]["detail"]}]
    assert "being used by stopped container" in res["kept_images"][0]["detail"]
    assert res["removed_images"] == [] and "warnings" not in res and first in fake.images_by_id
    fake.remove_container(rollback)
    res = rebuild(fake, ctx, 4)
    assert first in res["removed_images"] and first not in fake.images_by_id
    assert len(fake.built_for()) == 2


def test_retention_never_touches_foreign_or_otherwise_tagged_images(fake, ctx):
    foreign_dangling = fake.add_image(None, labels={"maintainer": "someone"})
    foreign_same_repo = fake.add_image("homelab-test/retention:hand-made")
    first = rebuild(fake, ctx, 1)["image_id"]
    fake.tag(first, "homelab-test/retention", "v1")                          # someone named it
    rebuild(fake, ctx, 2)
    res = rebuild(fake, ctx, 3)
    assert res["removed_images"] == [] and res["kept_images"][0]["reason"] == "tagged"
    assert "homelab-test/retention:v1" in res["kept_images"][0]["detail"]
    for image_id in (foreign_dangling, foreign_same_repo, first, fake.base_id):
        assert image_id in fake.images_by_id
    other_name = run(fake, ctx, name="homelab-test/retention:other")          # another tag is another name
    assert other_name["removed_images"] == [] and fake.tags[NAME] == res["image_id"]


def test_leftover_candidates_go_recent_ones_stay(fake, ctx):
    plan = planned(fake, ctx)
    interrupted = ib.build_candidate(fake, plan, params_for(ctx), None)      # a run killed before the tag moved
    fake.clock.sleep(ib.CANDIDATE_GRACE_S + 10)
    first = rebuild(fake, ctx, 1)
    assert first["removed_images"] == [interrupted] and plan.candidate not in fake.tags
    second = rebuild(fake, ctx, 2)
    young = ib.build_candidate(fake, plan, params_for(ctx), None)           # another run, still checking it
    res = ib.retain_previous(fake, plan, params_for(ctx), first["image_id"], second["image_id"])
    assert [(k["id"], k["reason"]) for k in res["kept_images"]] == [(young, "recent-candidate")]
    assert fake.tags[plan.candidate] == young and res["removed_images"] == []


def test_legacy_previous_image_without_the_name_label_is_recognised(fake, ctx):
    legacy = fake.add_image(NAME + "-previous", labels={ib.INPUTS_HASH_LABEL: "sha256:old"})
    unlabelled = fake.add_image(None)
    rebuild(fake, ctx, 1)
    res = rebuild(fake, ctx, 2)
    assert res["removed_images"] == [legacy] and unlabelled in fake.images_by_id


def test_check_mode_reports_what_would_go_and_changes_nothing(fake, ctx):
    ids = [rebuild(fake, ctx, n)["image_id"] for n in range(3)]
    user = fake.add_image(None, labels={ib.IMAGE_NAME_LABEL: NAME, ib.INPUTS_HASH_LABEL: "sha256:x"})
    fake.create_container(user, name="svc-rollback")
    before = (dict(fake.tags), sorted(fake.images_by_id))
    (ctx / "app.py").write_text("print('next')\n")
    res = run(fake, ctx, check_mode=True)
    assert res["changed"] and not res["built"] and res["image_id"] is None
    assert res["removed_images"] == [ids[1]]                   # the current image would become the previous
    assert res["previous_tag"] == NAME + "-previous" and res["previous_tag_image_id"] == ids[2]
    assert [(k["id"], k["reason"]) for k in res["kept_images"]] == [(user, "in-use")]
    assert (dict(fake.tags), sorted(fake.images_by_id)) == before


def test_keep_previous_false_tags_and_removes_nothing(fake, ctx):
    ids = [rebuild(fake, ctx, n, keep_previous=False)["image_id"] for n in range(4)]
    res = rebuild(fake, ctx, 5, keep_previous=False)
    assert res["removed_images"] == [] and res["previous_tag"] is None
    assert NAME + "-previous" not in fake.tags and all(i in fake.images_by_id for i in ids)


def test_a_failed_check_moves_nothing_and_removes_nothing(fake, ctx):
    ids = [rebuild(fake, ctx, n)["image_id"] for n in range(2)]
    fake.check_rc = 1
    with pytest.raises(ib.HomelabDockerError, match="was NOT moved"):
        rebuild(fake, ctx, 3, check_command=["false"])
    assert fake.tags[NAME] == ids[1] and fake.tags[NAME + "-previous"] == ids[0]
    fake.check_rc = 0
    assert len(fake.built_for()) == 2                                # the failed candidate went with its tag
    res = rebuild(fake, ctx, 4, check_command=["true"])
    assert res["removed_images"] == [ids[0]] and fake.built_for() == sorted([ids[1], res["image_id"]])


def test_a_real_run_holds_the_build_lock_of_its_name(fake, ctx, tmp_path):
    from ansible_collections.homelab.ai.plugins.module_utils.host_lock import HostLock, LockTimeout
    state = str(tmp_path / "locks")
    free = rebuild(fake, ctx, 1, state_dir=state)
    assert free["built"] and free["lock_wait"] is None
    (ctx / "app.py").write_text("print(2)\n")
    with HostLock(state, "build-" + NAME, "build of %s" % NAME):     # another run of the play builds it
        with pytest.raises(LockTimeout, match=r"build of homelab-test/retention:latest"):
            run(fake, ctx, state_dir=state, lock_timeout=1)
    assert len(fake.builds) == 1 and fake.tags[NAME] == free["image_id"]     # the waiting run built nothing
    # check mode takes no lock: a preview while another run builds is fine
    with HostLock(state, "build-" + NAME, "build of %s" % NAME):
        assert run(fake, ctx, check_mode=True, state_dir=state, lock_timeout=1)["changed"]
    # a different name has its own lock
    with HostLock(state, "build-homelab-test/other:latest", "build of homelab-test/other:latest"):
        assert run(fake, ctx, state_dir=state, lock_timeout=1)["built"]


# ---- the big inputs' digests, kept in state_dir (module_utils/file_digests.py) ------------------------

def test_a_second_run_takes_the_wheels_digest_from_state_dir_and_hashes_the_same(fake, tmp_path, monkeypatch):
    real_time_ns = time.time_ns
    monkeypatch.setattr(fd.time, "time_ns", lambda: real_time_ns() + 60 * 10 ** 9)  # the wheel counts as settled
    wheel = tmp_path / "t.whl"
    wheel.write_bytes(b"w" * (fd.MIN_SIZE + 1))
    (tmp_path / "state").mkdir()
    record = tmp_path / "state" / fd.FILE_DIGESTS_NAME
    params = dict(params_for(tmp_path / "unused", state_dir=str(tmp_path / "state"), files=[
        {"dest": "Dockerfile", "content": "FROM homelab/debian:bookworm\nCOPY wheels /wheels\n"},
        {"dest": "wheels/t.whl", "src": str(wheel), "remote_src": True}]), path=None)
    preview = ib.run_image_build(params, check_mode=True, client_factory=factory(fake))
    assert preview["changed"] and not record.exists()  # check mode writes nothing, not even the record
    first = ib.run_image_build(params, client_factory=factory(fake))
    assert first["built"] and str(wheel) in json.loads(record.read_text())["files"]

    def refuse(path):
        raise AssertionError("%s was read although state_dir's record knows it" % path)
    monkeypatch.setattr(fd, "file_sha256", refuse)
    second = ib.run_image_build(params, client_factory=factory(fake))
    assert not second["changed"] and second["inputs_hash"] == first["inputs_hash"]
