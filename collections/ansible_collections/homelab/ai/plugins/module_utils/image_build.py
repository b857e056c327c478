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
import os
import re
import stat
import tarfile
import tempfile
import time
import uuid

from ansible_collections.homelab.ai.plugins.module_utils.docker_common import (
    HomelabDockerError,
    daemon_now,
    get_client,
    inspect_image_or_none,
    parse_docker_time,
    split_image_ref,
    stable_hash,
)

INPUTS_HASH_LABEL = "homelab.ai.inputs-hash"
BUILD_RUN_LABEL = "homelab.ai.build-run"
HASH_SCHEME = "homelab.ai/image-inputs/v1"
CANDIDATE_SUFFIX = "-candidate"
LOG_TAIL_LINES = 30
# Docker writes timestamps with its own clock; allow a little rounding between our reads.
CREATED_SLACK_S = 2.0


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


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def collect_context(context_dir, dockerfile_rel):
    """Sorted ContextEntry list of the build context, honouring .dockerignore.

    The Dockerfile and .dockerignore are always sent (the daemon needs them), as the Docker CLI does.
    Only the executable bit of the mode is kept (it is what COPY preserves that matters); mtimes are
    ignored so that a checkout or `touch` alone does not rebuild.
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
                entries.append(ContextEntry(rel, "file", 1 if st.st_mode & 0o111 else 0, _file_digest(full), ""))
            # sockets, fifos, devices: the Docker CLI skips them too
    entries.sort(key=lambda e: e.relpath)
    return entries


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
    container = client.create_container(image_id, command=command, detach=True,
                                        labels={"homelab.ai.purpose": "image_build-check"},
                                        host_config=client.create_host_config(auto_remove=False))
    cid = container["Id"]
    try:
        try:
            client.start(cid)
        except Exception as exc:  # e.g. the executable does not exist in the image
            return None, "check container did not start: %s" % (getattr(exc, "explanation", None) or exc)
        try:
            result = client.wait(cid, timeout=timeout)
            rc = result.get("StatusCode")
        except Exception as exc:  # requests' ReadTimeout, ConnectionError
            try:
                client.kill(cid)
            except Exception:
                pass
            rc = None
            output = client.logs(cid, stdout=True, stderr=True, tail=200).decode("utf-8", "replace")
            return rc, output + "\n[check_command did not finish within %ss: %s]" % (timeout, exc)
        output = client.logs(cid, stdout=True, stderr=True, tail=200).decode("utf-8", "replace")
        return rc, output
    finally:
        try:
            client.remove_container(cid, force=True)
        except Exception:
            pass


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
            for chunk in client.pull(repo, tag=tag, stream=True, decode=True):
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise HomelabDockerError(chunk["error"])
        except Exception as exc:
            detail = getattr(exc, "explanation", None) or getattr(exc, "msg", None) or exc
            raise HomelabDockerError(
                "Base image %s named in %s is not on the Docker host and pulling it failed: %s. Check the "
                "image name and tag, that its registry (or the daemon's registry-mirrors) is reachable from "
                "the Docker host and logged in, or build/load the image there first."
                % (ref, dockerfile_full, detail), base_image=ref)
        pulled.append(ref)
    return pulled


def run_image_build(params, check_mode=False, client_factory=get_client):
    """Do the work of homelab.ai.image_build; return the result dict or raise HomelabDockerError."""
    name = params["name"]
    try:
        repo, tag = split_image_ref(name)
    except ValueError as exc:
        raise HomelabDockerError(str(exc))
    full_name = "%s:%s" % (repo, tag)
    candidate = "%s:%s%s" % (repo, tag, CANDIDATE_SUFFIX)
    build_args = dict((str(k), "" if v is None else str(v)) for k, v in (params.get("build_args") or {}).items())
    labels = dict((str(k), str(v)) for k, v in (params.get("labels") or {}).items())
    target = params.get("target")
    log_path = params.get("log_path") or default_log_path(full_name)

    context, dockerfile_rel, dockerfile_full = _resolve_paths(params)
    client = client_factory(params.get("docker_host"), params.get("timeout") or 3600)

    with open(dockerfile_full, "r") as fh:
        dockerfile_text = fh.read()
    base_refs = base_images_from_dockerfile(dockerfile_text, build_args)
    base_ids, missing = _inspect_bases(client, base_refs)
    pulled = []
    if missing and params.get("pull_missing_bases") and not check_mode:
        pulled = pull_missing_bases(client, missing, dockerfile_full)
        base_ids, missing = _inspect_bases(client, base_refs)
    entries = collect_context(context, dockerfile_rel)
    inputs_hash = compute_inputs_hash(entries, dockerfile_rel, build_args, target, labels, base_ids)

    existing = inspect_image_or_none(client, full_name)
    previous_id = existing["Id"] if existing else None
    previous_hash = ((existing or {}).get("Config") or {}).get("Labels") or {}
    previous_hash = previous_hash.get(INPUTS_HASH_LABEL)

    result = {
        "changed": False,
        "built": False,
        "name": full_name,
        "inputs_hash": inputs_hash,
        "previous_inputs_hash": previous_hash,
        "image_id": previous_id,
        "previous_image_id": previous_id,
        "log_path": log_path,
        "check": None,
        "base_images": base_ids,
        "pulled_bases": pulled,
        "context_files": len([e for e in entries if e.kind != "dir"]),
        "diff": {"before": {"inputs_hash": previous_hash, "image_id": previous_id},
                 "after": {"inputs_hash": inputs_hash, "image_id": previous_id}},
    }
    need_build = params.get("force") or existing is None or previous_hash != inputs_hash
    if not need_build:
        return result
    result["changed"] = True
    result["diff"]["after"]["image_id"] = "(new image)"
    if check_mode:
        result["image_id"] = None
        if missing and params.get("pull_missing_bases"):
            result["pulled_bases"] = list(missing)
            result["warnings"] = ["base image(s) %s not present locally: they would be pulled first"
                                  % ", ".join(missing)]
        elif missing and not params.get("pull"):
            result["warnings"] = ["base image(s) %s not present locally: the build would fail" % ", ".join(missing)]
        return result
    if missing and not params.get("pull"):
        raise HomelabDockerError(
            "Base image(s) %s named in %s are not present on the Docker host and pull is false: build "
            "or load them first (the local base image comes from scripts/setup.sh / homelab_base_image), "
            "or set pull_missing_bases: true where a registry is reachable." % (", ".join(missing), dockerfile_full),
            inputs_hash=inputs_hash, base_images=base_ids)

    started = daemon_now(client)
    wall_start = time.time()
    build_labels = dict(labels)
    build_labels[INPUTS_HASH_LABEL] = inputs_hash
    # A unique label makes the last step uncacheable, so a build always yields a fresh image
    # whose Created time proves it came from this run (the compose no-op lesson).
    build_labels[BUILD_RUN_LABEL] = uuid.uuid4().hex
    log = BuildLog(log_path)
    log.write("# homelab.ai.image_build %s (candidate tag %s), inputs %s, context %s, dockerfile %s\n"
              % (full_name, candidate, inputs_hash, context, dockerfile_rel))
    built_id = None
    error = None
    with tempfile.TemporaryFile() as ctx:
        write_context_tar(context, entries, ctx)
        try:
            stream = client.build(fileobj=ctx, custom_context=True, tag=candidate, dockerfile=dockerfile_rel,
                                  buildargs=build_args or None, labels=build_labels, target=target or None,
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
    log.close()
    if error:
        _remove_tag(client, candidate)
        step = log.step or "(before the first step)"
        m = re.search(r"line (\d+)", error or "")
        if m and not log.step:
            lines = dockerfile_text.splitlines()
            n = int(m.group(1))
            if 0 < n <= len(lines):
                step = "%s line %d: %s" % (dockerfile_rel, n, lines[n - 1].strip())
        raise HomelabDockerError(
            "Building %s from %s failed at %s: %s\nLast %d lines of the build log (full log: %s):\n%s"
            % (full_name, dockerfile_full, step, error, LOG_TAIL_LINES, log_path, log.tail_text()),
            inputs_hash=inputs_hash, log_path=log_path, failed_step=step, previous_image_id=previous_id)

    # Trust nothing: the tag must name the image this build produced, created during this run.
    produced = inspect_image_or_none(client, candidate)
    if produced is None:
        raise HomelabDockerError(
            "The build of %s reported success but tag %s does not exist afterwards: nothing was built "
            "(see %s). The previous image %s is unchanged." % (full_name, candidate, log_path, previous_id),
            log_path=log_path)
    if built_id is None:
        m = re.search(r"Successfully built ([0-9a-f]{12,64})", open(log_path).read())
        built_id = m.group(1) if m else None
    if built_id and not produced["Id"].replace("sha256:", "").startswith(built_id.replace("sha256:", "")):
        _remove_tag(client, candidate)
        raise HomelabDockerError(
            "Tag %s resolves to %s, not to %s that this build produced: refusing to use it (see %s)."
            % (candidate, produced["Id"], built_id, log_path), log_path=log_path)
    created = parse_docker_time(produced.get("Created", ""))
    if created is None or created < started - CREATED_SLACK_S:
        _remove_tag(client, candidate)
        raise HomelabDockerError(
            "Image %s behind tag %s was created at %s, before this build started: the build was a "
            "no-op and would leave a stale image running (see %s)."
            % (produced["Id"], candidate, produced.get("Created"), log_path),
            log_path=log_path)
    new_id = produced["Id"]

    if params.get("check_command"):
        check_timeout = params.get("check_timeout") or 300
        rc, output = _run_check(client, new_id, params["check_command"], check_timeout)
        result["check"] = {"rc": rc, "output": output}
        with open(log_path, "a") as fh:
            fh.write("# check_command %r -> rc=%s\n%s\n" % (params["check_command"], rc, output))
        if rc != 0:
            _remove_tag(client, candidate)
            lines = output.strip().splitlines()[-LOG_TAIL_LINES:]
            raise HomelabDockerError(
                "check_command %r failed (rc=%s) in the freshly built image %s; tag %s was NOT moved and "
                "still points to %s. Candidate tag %s removed. Last lines of its output:\n%s"
                % (params["check_command"], rc, new_id, full_name, previous_id or "(nothing)", candidate, "\n".join(lines)),
                check={"rc": rc, "output": output}, candidate_image_id=new_id, previous_image_id=previous_id,
                inputs_hash=inputs_hash, log_path=log_path)

    client.tag(new_id, repo, tag, force=True)
    _remove_tag(client, candidate)
    final = inspect_image_or_none(client, full_name)
    if final is None or final["Id"] != new_id:
        raise HomelabDockerError(
            "After tagging, %s resolves to %s instead of the new image %s." % (
                full_name, final["Id"] if final else None, new_id))
    result.update({"built": True, "image_id": new_id, "created": final.get("Created"),
                   "build_seconds": round(time.time() - wall_start, 1)})
    result["diff"]["after"]["image_id"] = new_id
    return result
