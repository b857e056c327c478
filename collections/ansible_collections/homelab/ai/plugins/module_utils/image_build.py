# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Logic of homelab.ai.image_build: an image build that cannot silently do nothing.

Lesson from the decision record: `docker compose build` without a `build:` directive exited 0,
built nothing, and a stale image kept running. Here every build is decided by an inputs hash
(Dockerfile, every context file after .dockerignore, build args, target, labels, resolved base
image IDs) stored as a label on the image; after a build the tag must resolve to the image this
run produced, created during this run, or the task fails. An optional check command runs in a
throwaway container of a candidate tag before the real tag moves.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import collections
import hashlib
import io
import os
import re
import stat
import tarfile
import tempfile
import time
import uuid

from ansible_collections.homelab.ai.plugins.module_utils.docker_common import (
    HomelabDockerError,
    api_error_text,
    daemon_now,
    follow_progress,
    get_client,
    inspect_image_or_none,
    is_not_found,
    parse_docker_time,
    run_to_completion,
    split_image_ref,
    stable_hash,
)
from ansible_collections.homelab.ai.plugins.module_utils.file_digests import FILE_DIGESTS_NAME, FileDigests, file_sha256
from ansible_collections.homelab.ai.plugins.module_utils.host_lock import HostLock
from ansible_collections.homelab.ai.plugins.module_utils import registry as registry_utils

INPUTS_HASH_LABEL = "homelab.ai.inputs-hash"
BUILD_RUN_LABEL = "homelab.ai.build-run"
# The name (repo:tag) an image was built for: how retention finds this name's images, tagged or not.
IMAGE_NAME_LABEL = "homelab.ai.image"
HASH_SCHEME = "homelab.ai/image-inputs/v1"
CANDIDATE_SUFFIX = "-candidate"
# The one kept previous image of <repo>:<tag> is tagged <repo>:<tag>-previous (a rollback can use it).
PREVIOUS_SUFFIX = "-previous"
# A candidate tag younger than this may belong to a build of the same name still running its check.
CANDIDATE_GRACE_S = 900
LOG_TAIL_LINES = 30
# Docker writes timestamps with its own clock; allow a little rounding between our reads.
CREATED_SLACK_S = 2.0


def build_options_spec():
    """The argument spec of what to build: homelab.ai.image_build's options and container_rollout's O(build),
    the same dict. The daemon (docker_host), the lock folder (state_dir) and lock_timeout are not in it: each
    module has its own, and container_rollout's build uses the rollout's."""
    return dict(
        name=dict(type="str", required=True),
        path=dict(type="path"),
        files=dict(type="list", elements="dict", options=dict(
            dest=dict(type="str", required=True),
            src=dict(type="path"),
            remote_src=dict(type="bool", default=False),
            content=dict(type="str"),
            mode=dict(type="str"),
        ), mutually_exclusive=[["src", "content"]], required_one_of=[["src", "content"]]),
        directories=dict(type="list", elements="str"),
        dockerfile=dict(type="str", default="Dockerfile"),
        build_args=dict(type="dict", default={}),
        labels=dict(type="dict", default={}),
        force=dict(type="bool", default=False),
        check_command=dict(type="raw"),
        check_timeout=dict(type="int", default=300),
        log_path=dict(type="path"),
        pull=dict(type="bool", default=False),
        pull_missing_bases=dict(type="bool", default=False),
        target=dict(type="str"),
        network_mode=dict(type="str"),
        timeout=dict(type="int", default=3600),
        keep_previous=dict(type="bool", default=True),
        registry=dict(type="dict", options=dict(
            address=dict(type="str", required=True),
            project=dict(type="str", default=""),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            mode=dict(type="str", choices=["push", "pull"], default="push"),
        )),
    )


# The rules between those options (AnsibleModule's keywords, top level or inside a dict option's spec).
BUILD_OPTIONS_RULES = dict(
    mutually_exclusive=[["path", "files"], ["path", "directories"]],
    required_one_of=[["path", "files"]],
)


def build_options_problem(params, action):
    """What an argument spec cannot say about validated build options, or None; a list check_command
    becomes a list of strings. ``action`` names the action plugin that reads controller files."""
    unread = [f["dest"] for f in params["files"] or [] if f["src"] is not None and not f["remote_src"]]
    if unread:
        return ("files %s name a controller src, which the %s action plugin reads; it did not run (the module "
                "was called some other way): give content, or remote_src: true for a file on the managed host."
                % (", ".join(unread), action))
    command = params["check_command"]
    if command is not None and not isinstance(command, (list, str)):
        return "check_command must be a list of strings or a string, got %s" % type(command).__name__
    if isinstance(command, list):
        params["check_command"] = [str(x) for x in command]
    return None


def build_context_text(params):
    """The build's context in words, for an error message: the folder, or how many files were listed."""
    return params["path"] or "the %d files listed" % len(params["files"])


# --------------------------------------------------------------------------------------------
# .dockerignore (semantics of moby/patternmatcher, which the Docker CLI and daemon use)
# --------------------------------------------------------------------------------------------

def parse_dockerignore(text):
    """Patterns from a .dockerignore text: comments and blanks dropped, paths cleaned."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        if not line:
            continue
        line = _clean_path(line)
        if exclusion:
            line = "!" + line
        patterns.append(line)
    return patterns


def _clean_path(path):
    """filepath.Clean plus stripping the leading '/', as the Docker CLI does for ignore patterns."""
    path = path.replace("\\", "/") if os.sep == "\\" else path
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            continue  # '..' above the root is the root
        parts.append(part)
    return "/".join(parts) or "."


def _pattern_to_regex(pattern):
    out = "^"
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                if i + 1 >= n:
                    out += ".*"
                else:
                    out += "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\":
            i += 1
            if i < n:
                out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out += re.escape(ch)
            else:
                body = pattern[i + 1:end]
                if body.startswith("!") or body.startswith("^"):
                    body = "^" + body[1:]
                out += "[" + body.replace("\\", "\\\\") + "]"
                i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


class DockerIgnore:
    """Decides whether a context-relative path ('a/b/c') is excluded from the build context."""

    def __init__(self, patterns):
        self.rules = []
        for p in patterns:
            exclusion = p.startswith("!")
            body = p[1:] if exclusion else p
            self.rules.append((exclusion, _pattern_to_regex(body)))
        self.has_exceptions = any(rule[0] for rule in self.rules)

    def excluded(self, relpath):
        relpath = _clean_path(relpath)
        parts = relpath.split("/")
        parents = ["/".join(parts[:i + 1]) for i in range(len(parts) - 1)]
        matched = False
        for exclusion, regex in self.rules:
            # An inclusion can't change an already excluded file and vice versa.
            if exclusion != matched:
                continue
            hit = bool(regex.match(relpath))
            if not hit:
                hit = any(regex.match(parent) for parent in parents)
            if hit:
                matched = not exclusion
        return matched


# --------------------------------------------------------------------------------------------
# The build context: exactly the files that go into the tar are the files that are hashed.
# --------------------------------------------------------------------------------------------

ContextEntry = collections.namedtuple("ContextEntry", "relpath kind mode digest linkname")


def collect_context(context_dir, dockerfile_rel, digest=file_sha256):
    """Sorted ContextEntry list of the build context, honouring .dockerignore.

    The Dockerfile and .dockerignore are always sent (the daemon needs them), as the Docker CLI does.
    Only the executable bit of the mode is kept (it is what COPY preserves that matters); mtimes are
    ignored so that a checkout or `touch` alone does not rebuild. ``digest`` hashes a file (FileDigests.digest
    remembers the big ones).
    """
    ignore_path = os.path.join(context_dir, ".dockerignore")
    patterns = []
    if os.path.isfile(ignore_path):
        with open(ignore_path, "r") as fh:
            patterns = parse_dockerignore(fh.read())
    matcher = DockerIgnore(patterns)
    always = set([_clean_path(dockerfile_rel), ".dockerignore"])
    entries = []
    for root, dirs, files in os.walk(context_dir, followlinks=False):
        rel_root = os.path.relpath(root, context_dir)
        rel_root = "" if rel_root == "." else rel_root.replace(os.sep, "/")
        keep_dirs = []
        for d in sorted(dirs):
            rel = rel_root + "/" + d if rel_root else d
            full = os.path.join(root, d)
            if os.path.islink(full):
                files.append(d)  # a symlink to a directory is sent as a link
                continue
            excluded = matcher.excluded(rel)
            if excluded and not matcher.has_exceptions:
                continue  # nothing below can be re-included: don't even walk it
            keep_dirs.append(d)
            if not excluded:
                entries.append(ContextEntry(rel, "dir", 0, "", ""))
        dirs[:] = keep_dirs
        for f in sorted(files):
            rel = rel_root + "/" + f if rel_root else f
            if rel not in always and matcher.excluded(rel):
                continue
            full = os.path.join(root, f)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                entries.append(ContextEntry(rel, "link", 0, "", os.readlink(full)))
            elif stat.S_ISREG(st.st_mode):
                entries.append(ContextEntry(rel, "file", 1 if st.st_mode & 0o111 else 0, digest(full), ""))
            # sockets, fifos, devices: the Docker CLI skips them too
    entries.sort(key=lambda e: e.relpath)
    return entries


class ListedFiles:
    """A build context given as a list of files (the module's files option) instead of a folder.

    Each file's bytes come from its content (read on the controller by the action plugin) or from a
    file on the managed host (remote_src), hashed where it lies: nothing is copied into a folder to
    find out that nothing changed. The entries are what collect_context() would return for a folder
    holding exactly these files (their parent folders included), so both forms hash the same.
    """

    def __init__(self, files, directories=()):
        self.contents, self.paths, modes = {}, {}, {}
        self.directories = set(self._dest(index, {"dest": d}, "directories") for index, d in enumerate(directories or ()))
        for index, item in enumerate(files):
            rel = self._dest(index, item)
            if rel in modes:
                raise HomelabDockerError("files[%d]: dest %s is listed twice: give each file one entry." % (index, rel))
            content, src = item.get("content"), item.get("src")
            if (content is None) == (src is None):
                raise HomelabDockerError("files[%d] (dest %s): give exactly one of content and src." % (index, rel))
            if content is not None:
                self.contents[rel] = content.encode("utf-8") if not isinstance(content, bytes) else content
            else:
                self.paths[rel] = self._remote_file(index, rel, src)
            modes[rel] = self._exec_bit(index, rel, item.get("mode"), self.paths.get(rel))
        self.modes = modes

    @staticmethod
    def _dest(index, item, option="files"):
        dest = str(item.get("dest") or "")
        rel = _clean_path(dest)
        if not dest or os.path.isabs(dest) or rel == "." or ".." in dest.replace("\\", "/").split("/"):
            raise HomelabDockerError(
                "%s[%d]: %r must be a path inside the build context, relative and without '..' "
                "(e.g. Dockerfile or certs/pip-ca.crt)." % (option, index, dest))
        return rel

    @staticmethod
    def _remote_file(index, rel, src):
        if not os.path.isfile(src):
            raise HomelabDockerError(
                "files[%d] (dest %s): src %s is not a file on the managed host (remote_src): create it there, fix "
                "the path, or leave the entry out." % (index, rel, src))
        return os.path.abspath(src)

    @staticmethod
    def _exec_bit(index, rel, mode, path):
        if mode is None or mode == "":
            return 1 if path and os.stat(path).st_mode & 0o111 else 0
        try:
            value = int(str(mode), 8)
        except ValueError:
            raise HomelabDockerError("files[%d] (dest %s): mode %r is not an octal mode such as '0644' or '0755'."
                                     % (index, rel, mode))
        return 1 if value & 0o111 else 0

    def text(self, rel):
        """The text of one listed file (the Dockerfile), or None when it is not listed."""
        if rel in self.contents:
            return self.contents[rel].decode("utf-8", "replace")
        if rel in self.paths:
            with open(self.paths[rel], "r") as fh:
                return fh.read()
        return None

    def entries(self, digest=file_sha256):
        dirs, entries = set(), []
        for rel in list(self.directories):
            parts = rel.split("/")
            dirs.update("/".join(parts[:i + 1]) for i in range(len(parts)))
        for rel in list(self.contents) + list(self.paths):
            if rel in dirs:
                raise HomelabDockerError("%s is listed both as a file (files) and as a folder (directories): keep one." % rel)
            parts = rel.split("/")[:-1]
            dirs.update("/".join(parts[:i + 1]) for i in range(len(parts)))
            sha256 = (hashlib.sha256(self.contents[rel]).hexdigest() if rel in self.contents
                      else digest(self.paths[rel]))
            entries.append(ContextEntry(rel, "file", self.modes[rel], sha256, ""))
        entries.extend(ContextEntry(d, "dir", 0, "", "") for d in dirs)
        entries.sort(key=lambda e: e.relpath)
        return entries

    def write_tar(self, entries, fileobj):
        """The listed files as the uncompressed tar the build API expects (root-owned, mtime 0)."""
        with tarfile.open(fileobj=fileobj, mode="w") as tar:
            for e in entries:
                info = tarfile.TarInfo(e.relpath)
                if e.kind == "dir":
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                elif e.relpath in self.contents:
                    data = self.contents[e.relpath]
                    info.size, info.mode = len(data), 0o755 if e.mode else 0o644
                    tar.addfile(info, io.BytesIO(data))
                else:
                    path = self.paths[e.relpath]
                    info.size, info.mode = os.path.getsize(path), 0o755 if e.mode else 0o644
                    with open(path, "rb") as fh:
                        tar.addfile(info, fh)
        fileobj.seek(0)


def write_context_tar(context_dir, entries, fileobj):
    """Write the entries as an uncompressed tar (what the build API expects) into fileobj."""
    with tarfile.open(fileobj=fileobj, mode="w") as tar:
        for e in entries:
            full = os.path.join(context_dir, e.relpath)
            info = tar.gettarinfo(full, arcname=e.relpath)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if info.isreg():
                with open(full, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    fileobj.seek(0)


# --------------------------------------------------------------------------------------------
# Dockerfile: FROM lines, with ARG substitution, give the base images whose IDs enter the hash.
# --------------------------------------------------------------------------------------------

def dockerfile_instructions(text):
    """(INSTRUCTION, rest) pairs: comments dropped, backslash continuations joined.

    Honours the `# escape=` parser directive (backslash or backtick).
    """
    escape = "\\"
    lines = text.splitlines()
    for line in lines:
        m = re.match(r"^\s*#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$", line)
        if not m:
            break
        if m.group(1).lower() == "escape":
            escape = m.group(2)
    result = []
    current = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#") and not current:
            continue
        if current and (stripped.startswith("#") or not stripped):
            continue  # comments and blank lines inside a continuation are skipped
        if line.rstrip().endswith(escape):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            parts = current.strip().split(None, 1)
            result.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
        current = ""
    if current.strip():
        parts = current.strip().split(None, 1)
        result.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
    return result


_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute_args(text, variables):
    def repl(m):
        name = m.group(1) or m.group(4)
        op, word = m.group(2), m.group(3)
        value = variables.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return word or ""
            return value
        if op in (":+", "+"):
            if value is None or (op == ":+" and value == ""):
                return ""
            return word or ""
        return value if value is not None else ""
    return _VAR_RE.sub(repl, text)


def _parse_arg(rest):
    """ARG NAME[=default] ... -> [(name, default_or_None)]"""
    out = []
    for token in rest.split():
        if "=" in token:
            name, value = token.split("=", 1)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out.append((name, value))
        else:
            out.append((token, None))
    return out


def base_images_from_dockerfile(text, build_args=None):
    """External images a Dockerfile builds on: FROM lines (not earlier stages, not scratch) and
    COPY --from=<image> references, with global ARGs (and build_args overriding them) substituted."""
    build_args = dict(build_args or {})
    global_args = {}
    stages = set()
    images = []
    seen_from = False
    for instr, rest in dockerfile_instructions(text):
        if instr == "ARG" and not seen_from:
            for name, default in _parse_arg(rest):
                if name in build_args:
                    global_args[name] = str(build_args[name])
                elif default is not None:
                    global_args[name] = substitute_args(default, global_args)
                else:
                    global_args.setdefault(name, None)
        elif instr == "FROM":
            seen_from = True
            tokens = [t for t in rest.split() if not t.startswith("--")]
            if not tokens:
                continue
            image = substitute_args(tokens[0], dict((k, v) for k, v in global_args.items() if v is not None))
            if len(tokens) >= 3 and tokens[1].upper() == "AS":
                stages.add(tokens[2].lower())
            if image.lower() in stages or image == "scratch":
                continue
            if image not in images:
                images.append(image)
        elif instr in ("COPY", "ADD") and "--from=" in rest:
            m = re.search(r"--from=(\S+)", rest)
            ref = m.group(1)
            if ref.lower() in stages or ref.isdigit():
                continue
            if ref not in images:
                images.append(ref)
    return images


def compute_inputs_hash(entries, dockerfile_rel, build_args, target, labels, base_image_ids):
    """The inputs hash: one sha256 over everything that decides what the image contains."""
    doc = {
        "scheme": HASH_SCHEME,
        "dockerfile": _clean_path(dockerfile_rel),
        "context": [[e.relpath, e.kind, e.mode, e.digest, e.linkname] for e in entries],
        "build_args": dict((str(k), "" if v is None else str(v)) for k, v in (build_args or {}).items()),
        "target": target or "",
        "labels": dict((str(k), str(v)) for k, v in (labels or {}).items()),
        "base_images": dict(base_image_ids or {}),
    }
    return "sha256:" + stable_hash(doc)


# --------------------------------------------------------------------------------------------
# Build log handling
# --------------------------------------------------------------------------------------------

class BuildLog:
    """Streams the build output to a file as it comes and remembers the tail and current step."""

    def __init__(self, path):
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            os.makedirs(parent)
        self._fh = open(path, "w")
        self.tail = collections.deque(maxlen=LOG_TAIL_LINES)
        self.step = None
        self._partial = ""

    def write(self, text):
        self._fh.write(text)
        self._fh.flush()
        self._partial += text
        while "\n" in self._partial:
            line, self._partial = self._partial.split("\n", 1)
            self._line(line)

    def _line(self, line):
        line = line.rstrip("\r")
        if re.match(r"^Step \d+/\d+ : ", line):
            self.step = line
        if line.strip():
            self.tail.append(line)

    def close(self):
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        self._fh.close()

    def tail_text(self):
        return "\n".join(self.tail)


def default_log_path(name):
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    return os.path.join(tempfile.gettempdir(), "homelab-image-build", safe + ".log")


# --------------------------------------------------------------------------------------------
# The module's work
# --------------------------------------------------------------------------------------------

def _resolve_paths(params):
    context = params["path"]
    if not os.path.isdir(context):
        raise HomelabDockerError(
            "Build context %s does not exist or is not a directory: set path to the directory "
            "that holds the Dockerfile and the files it COPYs." % context)
    context = os.path.abspath(context)
    dockerfile_rel = params.get("dockerfile") or "Dockerfile"
    full = dockerfile_rel if os.path.isabs(dockerfile_rel) else os.path.join(context, dockerfile_rel)
    full = os.path.abspath(full)
    if not os.path.isfile(full):
        raise HomelabDockerError(
            "Dockerfile %s not found (dockerfile=%r is relative to path=%s): create it or fix the "
            "dockerfile parameter." % (full, dockerfile_rel, context))
    rel = os.path.relpath(full, context)
    if rel.startswith(".."):
        raise HomelabDockerError(
            "Dockerfile %s lies outside the build context %s: move it into the context." % (full, context))
    return context, rel.replace(os.sep, "/"), full


def _run_check(client, image_id, command, timeout):
    """Run command in a throwaway container of image_id; return (rc, output)."""
    return run_to_completion(client, image_id, command, timeout, what="check container",
                             labels={"homelab.ai.purpose": "image_build-check"})


def _remove_tag(client, ref):
    try:
        client.remove_image(ref, noprune=True)
    except Exception:
        pass


def _inspect_bases(client, refs):
    """({ref: image ID or "missing"}, [missing refs]) for the Dockerfile's base images."""
    ids, missing = {}, []
    for ref in refs:
        img = inspect_image_or_none(client, ref)
        if img is None:
            missing.append(ref)
            ids[ref] = "missing"
        else:
            ids[ref] = img["Id"]
    return ids, missing


def pull_missing_bases(client, refs, dockerfile_full):
    """Pull each base image that is absent, once; a present base is never re-pulled, so a re-run
    with the same bases computes the same inputs hash (a fresh host's first run pulls, a second
    run does nothing). Raises HomelabDockerError naming the image, the registry's answer and the fix."""
    pulled = []
    for ref in refs:
        repo, tag = split_image_ref(ref)
        try:
            follow_progress(client.pull(repo, tag=tag, stream=True, decode=True))
        except Exception as exc:
            detail = api_error_text(exc)
            raise HomelabDockerError(
                "Base image %s named in %s is not on the Docker host and pulling it failed: %s. Check the "
                "image name and tag, that its registry (or the daemon's registry-mirrors) is reachable from "
                "the Docker host and logged in, or build/load the image there first."
                % (ref, dockerfile_full, detail), base_image=ref)
        pulled.append(ref)
    return pulled


# --------------------------------------------------------------------------------------------
# The build's stages. run_image_build (at the end) calls them in this order; each takes the
# client and the BuildPlan, so a unit test can drive one stage against a fake client.
# --------------------------------------------------------------------------------------------

class BuildPlan:
    """Stage 1, the request: the name and the tags derived from it, the paths, build args and labels.

    resolve_bases() and hash_inputs() fill in the base image IDs and the inputs hash.
    """

    def __init__(self, params):
        try:
            self.repo, self.tag = split_image_ref(params["name"])
        except ValueError as exc:
            raise HomelabDockerError(str(exc))
        self.full_name = "%s:%s" % (self.repo, self.tag)
        self.candidate = self.full_name + CANDIDATE_SUFFIX
        self.previous_tag = self.full_name + PREVIOUS_SUFFIX
        self.build_args = dict((str(k), "" if v is None else str(v)) for k, v in (params.get("build_args") or {}).items())
        self.labels = dict((str(k), str(v)) for k, v in (params.get("labels") or {}).items())
        self.target = params.get("target")
        self.log_path = params.get("log_path") or default_log_path(self.full_name)
        self.listed, self.dockerfile_text = None, None
        if params.get("files") is not None:
            self.listed = ListedFiles(params["files"], params.get("directories"))
            self.dockerfile_rel = _clean_path(params.get("dockerfile") or "Dockerfile")
            self.dockerfile_text = self.listed.text(self.dockerfile_rel)
            if self.dockerfile_text is None:
                raise HomelabDockerError(
                    "files lists no %s (dockerfile=%r): add an entry with that dest, or set dockerfile to the "
                    "dest of the Dockerfile that is listed." % (self.dockerfile_rel, params.get("dockerfile")))
            self.context = "(files: %d listed)" % len(params["files"])
            self.dockerfile_full = "%s (listed in files)" % self.dockerfile_rel
        else:
            self.context, self.dockerfile_rel, self.dockerfile_full = _resolve_paths(params)
        self.base_refs, self.base_ids, self.missing, self.pulled = [], {}, [], []
        self.entries, self.inputs_hash = [], None
        # The big inputs' digests, remembered beside the build locks (a no-op run reads no wheel twice).
        self.digests = FileDigests(os.path.join(params["state_dir"], FILE_DIGESTS_NAME)
                                   if params.get("state_dir") else None)


def resolve_bases(client, plan, params, check_mode=False):
    """Stage 1, the bases: their local IDs; pull the missing ones first when pull_missing_bases asks."""
    if plan.dockerfile_text is None:
        with open(plan.dockerfile_full, "r") as fh:
            plan.dockerfile_text = fh.read()
    plan.base_refs = base_images_from_dockerfile(plan.dockerfile_text, plan.build_args)
    plan.base_ids, plan.missing = _inspect_bases(client, plan.base_refs)
    if plan.missing and params.get("pull_missing_bases") and not check_mode:
        plan.pulled = pull_missing_bases(client, plan.missing, plan.dockerfile_full)
        plan.base_ids, plan.missing = _inspect_bases(client, plan.base_refs)


def hash_inputs(plan, check_mode=False):
    """Stage 1, the hash: collect the context exactly as it will be sent and hash every input (a real run
    records the big files' digests for the next)."""
    digest = plan.digests.digest
    plan.entries = (plan.listed.entries(digest) if plan.listed
                    else collect_context(plan.context, plan.dockerfile_rel, digest))
    plan.inputs_hash = compute_inputs_hash(plan.entries, plan.dockerfile_rel, plan.build_args, plan.target,
                                           plan.labels, plan.base_ids)
    if not check_mode:
        plan.digests.save()
    return plan.inputs_hash


def _image_labels(image):
    return ((image or {}).get("Config") or {}).get("Labels") or {}


def decide(plan, existing, params):
    """Stage 2: the result of doing nothing, and whether a build is needed (force, no image, new hash)."""
    previous_id = existing["Id"] if existing else None
    previous_hash = _image_labels(existing).get(INPUTS_HASH_LABEL)
    result = {
        "changed": False,
        "built": False,
        "name": plan.full_name,
        "inputs_hash": plan.inputs_hash,
        "previous_inputs_hash": previous_hash,
        "image_id": previous_id,
        "previous_image_id": previous_id,
        "log_path": plan.log_path,
        "check": None,
        "base_images": plan.base_ids,
        "pulled_bases": plan.pulled,
        "context_files": len([e for e in plan.entries if e.kind != "dir"]),
        "previous_tag": None,
        "previous_tag_image_id": None,
        "removed_images": [],
        "kept_images": [],
        "diff": {"before": {"inputs_hash": previous_hash, "image_id": previous_id},
                 "after": {"inputs_hash": plan.inputs_hash, "image_id": previous_id}},
    }
    need_build = bool(params.get("force") or existing is None or previous_hash != plan.inputs_hash)
    return result, need_build


def preview_build(result, plan, params):
    """Stage 2 in check mode: what the build would do about absent bases (nothing is pulled or built)."""
    result["image_id"] = None
    if plan.missing and params.get("pull_missing_bases"):
        result["pulled_bases"] = list(plan.missing)
        result["warnings"] = ["base image(s) %s not present locally: they would be pulled first"
                              % ", ".join(plan.missing)]
    elif plan.missing and not params.get("pull"):
        result["warnings"] = ["base image(s) %s not present locally: the build would fail" % ", ".join(plan.missing)]
    return result


def require_bases(plan, params):
    """Stage 3: a base that is still absent fails the build before it starts, naming the fix."""
    if plan.missing and not params.get("pull"):
        raise HomelabDockerError(
            "Base image(s) %s named in %s are not present on the Docker host and pull is false: build "
            "or load them first (the local base image comes from scripts/setup.sh / homelab_base_image), "
            "or set pull_missing_bases: true where a registry is reachable." % (", ".join(plan.missing), plan.dockerfile_full),
            inputs_hash=plan.inputs_hash, base_images=plan.base_ids)


def build_labels(plan):
    """The labels the image gets: the caller's, the inputs hash, the name it is built for (how retention
    finds this name's images) and a unique run label, which makes the last step uncacheable, so a build
    always yields a fresh image whose Created time proves it came from this run (the compose no-op lesson)."""
    labels = dict(plan.labels)
    labels[INPUTS_HASH_LABEL] = plan.inputs_hash
    labels[IMAGE_NAME_LABEL] = plan.full_name
    labels[BUILD_RUN_LABEL] = uuid.uuid4().hex
    return labels


def _stream_build(client, plan, params, log):
    """Send the context, stream the output into log; return (image ID the daemon reported, error)."""
    built_id, error = None, None
    with tempfile.TemporaryFile() as ctx:
        if plan.listed:
            plan.listed.write_tar(plan.entries, ctx)
        else:
            write_context_tar(plan.context, plan.entries, ctx)
        try:
            stream = client.build(fileobj=ctx, custom_context=True, tag=plan.candidate, dockerfile=plan.dockerfile_rel,
                                  buildargs=plan.build_args or None, labels=build_labels(plan), target=plan.target or None,
                                  network_mode=params.get("network_mode") or None, pull=bool(params.get("pull")),
                                  nocache=bool(params.get("force")), rm=True, forcerm=True, decode=True)
            for chunk in stream:
                if "stream" in chunk:
                    log.write(chunk["stream"])
                elif "status" in chunk:
                    log.write("%s %s\n" % (chunk.get("status"), chunk.get("progress", "") or chunk.get("id", "")))
                if "aux" in chunk and isinstance(chunk["aux"], dict) and chunk["aux"].get("ID"):
                    built_id = chunk["aux"]["ID"]
                if "error" in chunk or "errorDetail" in chunk:
                    error = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error")
                    log.write("ERROR: %s\n" % error)
        except Exception as exc:  # APIError for a Dockerfile the daemon refuses, timeouts
            error = getattr(exc, "explanation", None) or str(exc)
            log.write("ERROR: %s\n" % error)
    return built_id, error


def _build_failure(client, plan, log, error, previous_id):
    """The error for a failed build: the failing step (or Dockerfile line) and the log's tail."""
    _remove_tag(client, plan.candidate)
    step = log.step or "(before the first step)"
    m = re.search(r"line (\d+)", error or "")
    if m and not log.step:
        lines = plan.dockerfile_text.splitlines()
        n = int(m.group(1))
        if 0 < n <= len(lines):
            step = "%s line %d: %s" % (plan.dockerfile_rel, n, lines[n - 1].strip())
    return HomelabDockerError(
        "Building %s from %s failed at %s: %s\nLast %d lines of the build log (full log: %s):\n%s"
        % (plan.full_name, plan.dockerfile_full, step, error, LOG_TAIL_LINES, plan.log_path, log.tail_text()),
        inputs_hash=plan.inputs_hash, log_path=plan.log_path, failed_step=step, previous_image_id=previous_id)


def build_candidate(client, plan, params, previous_id):
    """Stage 4: build under the candidate tag, log streamed to log_path; return the reported image ID."""
    log = BuildLog(plan.log_path)
    log.write("# homelab.ai.image_build %s (candidate tag %s), inputs %s, context %s, dockerfile %s\n"
              % (plan.full_name, plan.candidate, plan.inputs_hash, plan.context, plan.dockerfile_rel))
    built_id, error = _stream_build(client, plan, params, log)
    log.close()
    if error:
        raise _build_failure(client, plan, log, error, previous_id)
    return built_id


def verify_candidate(client, plan, built_id, started, previous_id):
    """Stage 5: trust nothing. The candidate tag must name the image this build produced, created
    during this run (after `started`, the daemon's clock); return its ID."""
    produced = inspect_image_or_none(client, plan.candidate)
    if produced is None:
        raise HomelabDockerError(
            "The build of %s reported success but tag %s does not exist afterwards: nothing was built "
            "(see %s). The previous image %s is unchanged." % (plan.full_name, plan.candidate, plan.log_path, previous_id),
            log_path=plan.log_path)
    if built_id is None:
        with open(plan.log_path) as fh:
            m = re.search(r"Successfully built ([0-9a-f]{12,64})", fh.read())
        built_id = m.group(1) if m else None
    if built_id and not produced["Id"].replace("sha256:", "").startswith(built_id.replace("sha256:", "")):
        _remove_tag(client, plan.candidate)
        raise HomelabDockerError(
            "Tag %s resolves to %s, not to %s that this build produced: refusing to use it (see %s)."
            % (plan.candidate, produced["Id"], built_id, plan.log_path), log_path=plan.log_path)
    created = parse_docker_time(produced.get("Created", ""))
    if created is None or created < started - CREATED_SLACK_S:
        _remove_tag(client, plan.candidate)
        raise HomelabDockerError(
            "Image %s behind tag %s was created at %s, before this build started: the build was a "
            "no-op and would leave a stale image running (see %s)."
            % (produced["Id"], plan.candidate, produced.get("Created"), plan.log_path),
            log_path=plan.log_path)
    return produced["Id"]


def check_candidate(client, plan, params, new_id, previous_id):
    """Stage 5b: run check_command in a throwaway container of the candidate; return {rc, output}
    (None without a check_command). A failure removes the candidate tag; the real tag stays."""
    if not params.get("check_command"):
        return None
    check_timeout = params.get("check_timeout") or 300
    rc, output = _run_check(client, new_id, params["check_command"], check_timeout)
    with open(plan.log_path, "a") as fh:
        fh.write("# check_command %r -> rc=%s\n%s\n" % (params["check_command"], rc, output))
    if rc != 0:
        _remove_tag(client, plan.candidate)
        lines = output.strip().splitlines()[-LOG_TAIL_LINES:]
        raise HomelabDockerError(
            "check_command %r failed (rc=%s) in the freshly built image %s; tag %s was NOT moved and "
            "still points to %s. Candidate tag %s removed. Last lines of its output:\n%s"
            % (params["check_command"], rc, new_id, plan.full_name, previous_id or "(nothing)", plan.candidate,
               "\n".join(lines)),
            check={"rc": rc, "output": output}, candidate_image_id=new_id, previous_image_id=previous_id,
            inputs_hash=plan.inputs_hash, log_path=plan.log_path)
    return {"rc": rc, "output": output}


def move_tag(client, plan, new_id):
    """Stage 6: point the real tag at the new image, drop the candidate tag, prove the tag moved."""
    client.tag(new_id, plan.repo, plan.tag, force=True)
    _remove_tag(client, plan.candidate)
    final = inspect_image_or_none(client, plan.full_name)
    if final is None or final["Id"] != new_id:
        raise HomelabDockerError(
            "After tagging, %s resolves to %s instead of the new image %s." % (
                plan.full_name, final["Id"] if final else None, new_id))
    return final


# --------------------------------------------------------------------------------------------
# Stage 7, retention: one previous image per name under <name>-previous; the other images this
# module built for the name go, never forced (an image a container still uses stays, reported).
# --------------------------------------------------------------------------------------------

def _tag_target(client, ref):
    image = inspect_image_or_none(client, ref)
    return image["Id"] if image else None


def _real_tags(image):
    return [t for t in (image.get("RepoTags") or []) if t and t != "<none>:<none>"]


def describe_previous(client, plan):
    """The retention fields of a run that moved nothing: where <name>-previous points, nothing removed."""
    target = _tag_target(client, plan.previous_tag)
    return {"previous_tag": plan.previous_tag if target else None, "previous_tag_image_id": target,
            "removed_images": [], "kept_images": []}


def built_for_name(client, plan, extra_ids=()):
    """IDs of the images this module built for plan.full_name: the top-level images (tagged or dangling)
    labelled with the name, plus those of extra_ids (what the -previous and -candidate tags pointed to)
    that carry the inputs-hash label (images built before the name label existed). Nothing else."""
    ids = set()
    for image in client.images(filters={"label": "%s=%s" % (IMAGE_NAME_LABEL, plan.full_name)}) or []:
        ids.add(image["Id"])
    for image_id in extra_ids:
        if image_id and INPUTS_HASH_LABEL in _image_labels(inspect_image_or_none(client, image_id)):
            ids.add(image_id)
    return ids


def select_stale(client, plan, ids, keep_ids, now, grace_s, movable_tags):
    """Split ids less keep_ids into (stale, kept). An image stays (kept, with a reason) when it carries
    a tag other than movable_tags (someone named it), or is a candidate younger than grace_s (a build of
    the same name may still be checking it); one labelled for another name is not ours to judge."""
    stale, kept = [], []
    for image_id in sorted(set(ids) - set(i for i in keep_ids if i)):
        image = inspect_image_or_none(client, image_id)
        if image is None or _image_labels(image).get(IMAGE_NAME_LABEL, plan.full_name) != plan.full_name:
            continue
        tags = _real_tags(image)
        named = [t for t in tags if t not in movable_tags]
        created = parse_docker_time(image.get("Created", "")) or 0.0
        if named:
            kept.append({"id": image_id, "tags": tags, "reason": "tagged", "detail": "also tagged %s" % ", ".join(named)})
        elif plan.candidate in tags and created > now - grace_s:
            kept.append({"id": image_id, "tags": tags, "reason": "recent-candidate",
                         "detail": "candidate created %s, a build of %s may still be checking it" % (image.get("Created"), plan.full_name)})
        else:
            stale.append({"id": image_id, "tags": tags})
    return stale, kept


def _kept_reason(exc, detail):
    if getattr(exc, "status_code", None) == 409 or "conflict" in detail.lower():
        if "child" in detail:
            return "has-children"
        if "container" in detail:
            return "in-use"
    return "error"


def remove_images(client, stale):
    """Remove each stale image by ID without force (untagged parents go with it). A refusal (a running
    or stopped container uses it, another image is built on it) keeps it, reported: not an error.
    Returns (removed IDs, kept)."""
    removed, kept = [], []
    for item in stale:
        try:
            client.remove_image(item["id"])
        except Exception as exc:  # the SDK's APIError; NotFound when it went as the parent of an earlier one
            if is_not_found(exc):
                continue
            detail = getattr(exc, "explanation", None) or str(exc)
            kept.append(dict(item, reason=_kept_reason(exc, detail), detail=detail))
            continue
        removed.append(item["id"])
    return removed, kept


def retain_previous(client, plan, params, previous_id, new_id, check_mode=False):
    """Tag the image the name pointed to before the build (previous_id) <name>-previous, then remove the
    images built for the name that are neither new_id nor the previous one, and leftover candidates.
    Without a previous_id (a first build) an existing <name>-previous stays the previous image. In
    check mode (new_id None) nothing is tagged or removed; what would be removed is reported."""
    displaced = _tag_target(client, plan.previous_tag)
    kept_previous = previous_id or displaced
    if previous_id and previous_id != displaced and not check_mode:
        client.tag(previous_id, plan.repo, plan.tag + PREVIOUS_SUFFIX, force=True)
    ids = built_for_name(client, plan, (displaced, _tag_target(client, plan.candidate)))
    grace_s = max(CANDIDATE_GRACE_S, (params.get("check_timeout") or 300) + 60)
    movable = (plan.candidate, plan.previous_tag) if check_mode else (plan.candidate,)
    stale, kept = select_stale(client, plan, ids, (new_id, kept_previous), daemon_now(client), grace_s, movable)
    if check_mode:
        in_use = set(c.get("ImageID") for c in client.containers(all=True) or [])
        kept += [dict(item, reason="in-use", detail="a container uses it") for item in stale if item["id"] in in_use]
        removed = [item["id"] for item in stale if item["id"] not in in_use]
    else:
        removed, refused = remove_images(client, stale)
        kept += refused
    out = {"previous_tag": plan.previous_tag if kept_previous else None, "previous_tag_image_id": kept_previous,
           "removed_images": removed, "kept_images": kept}
    errors = ["could not remove image %s built for %s: %s" % (k["id"], plan.full_name, k["detail"])
              for k in kept if k["reason"] == "error"]
    if errors:
        out["warnings"] = errors
    return out


def _merge(result, fields):
    warnings = result.get("warnings", []) + fields.pop("warnings", [])
    result.update(fields)
    if warnings:
        result["warnings"] = warnings
    return result


def run_image_build(params, check_mode=False, client_factory=get_client):
    """Do the work of homelab.ai.image_build; return the result dict or raise HomelabDockerError.

    A real run holds the host lock of the image's name from the decision to the last removal, so two
    runs of the play never build one name at once (they would share the candidate tag and each other's
    retention); check mode changes nothing and takes no lock."""
    if check_mode or not params.get("state_dir"):
        return _run_stages(params, check_mode, client_factory)
    waits = []
    name = params["name"]
    lock_timeout = params.get("lock_timeout") if params.get("lock_timeout") is not None else 600
    with HostLock(params["state_dir"], "build-" + name, "build of %s" % name, timeout=lock_timeout,
                  on_wait=waits.append):
        result = _run_stages(params, check_mode, client_factory)
    # Waiting for another run is reported, but it is not a change this run made.
    result["lock_wait"] = waits[0] if waits else None
    return result


def _run_stages(params, check_mode, client_factory):
    """A host that takes its images from the registry pulls; any other builds, then pushes where a registry is set."""
    plan = BuildPlan(params)
    client = client_factory(params.get("docker_host"), params.get("timeout") or 3600)
    registry = params.get("registry")
    if registry:
        registry_utils.validate(registry)
    if registry and registry.get("mode") == "pull":
        return take_from_registry(client, plan, registry, check_mode)
    result = _build_stages(client, plan, params, check_mode)
    if not registry:
        result["image_ref"] = plan.full_name
        return result
    if result.get("image_id") is None:  # check mode, a build would come first: so would its push
        result.update({"image_ref": None, "pushed": "%s:%s" % registry_utils.remote_repository(registry, plan.full_name)})
        return result
    pushed = registry_utils.push(client, registry, plan.full_name, result["image_id"], check_mode)
    result["changed"] = result["changed"] or pushed["changed"]
    result.update({"image_ref": pushed["image_ref"], "pushed": pushed["pushed"]})
    return result


def take_from_registry(client, plan, registry, check_mode):
    """registry.mode pull: nothing is built here (no bases, no hash); the registry's image for the tag, by digest."""
    result, dummy = decide(plan, inspect_image_or_none(client, plan.full_name), {})
    taken = registry_utils.pull(client, registry, plan.full_name, check_mode)
    result.update({"changed": taken["changed"], "image_id": taken["image_id"], "image_ref": taken["image_ref"],
                   "pulled": taken["pulled"], "pushed": None,
                   "diff": {"before": {"image_ref": None}, "after": {"image_ref": taken["image_ref"]}}})
    return result


def _build_stages(client, plan, params, check_mode):
    """The stages, in order: resolve the inputs (pulling missing bases) and hash them, decide, build the
    candidate, verify and check it, move the tag, keep the previous image and remove the rest."""
    resolve_bases(client, plan, params, check_mode)
    hash_inputs(plan, check_mode)
    result, need_build = decide(plan, inspect_image_or_none(client, plan.full_name), params)
    previous_id = result["previous_image_id"]
    keep_previous = params.get("keep_previous", True)
    if not need_build:
        return _merge(result, describe_previous(client, plan))
    result["changed"] = True
    result["diff"]["after"]["image_id"] = "(new image)"
    if check_mode:
        preview_build(result, plan, params)
        return _merge(result, retain_previous(client, plan, params, previous_id, None, check_mode=True)
                      if keep_previous else describe_previous(client, plan))
    require_bases(plan, params)
    started = daemon_now(client)
    wall_start = time.time()
    built_id = build_candidate(client, plan, params, previous_id)
    new_id = verify_candidate(client, plan, built_id, started, previous_id)
    result["check"] = check_candidate(client, plan, params, new_id, previous_id)
    final = move_tag(client, plan, new_id)
    result.update({"built": True, "image_id": new_id, "created": final.get("Created"),
                   "build_seconds": round(time.time() - wall_start, 1)})
    result["diff"]["after"]["image_id"] = new_id
    return _merge(result, retain_previous(client, plan, params, previous_id, new_id)
                  if keep_previous else describe_previous(client, plan))
