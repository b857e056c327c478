# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of image_build: .dockerignore semantics, context collection, FROM/ARG resolution,
the inputs hash. The build against a real daemon is covered by tests/docker_modules/."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import io
import os
import tarfile

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import image_build as ib
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
