# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared plumbing for the homelab.ai Docker modules (image_build, container_rollout).

Plain Python: a guarded import of the Docker SDK, the modules' one runner (how an error becomes
fail_json), a client factory whose failure names the socket and the fix, duration parsing, and
helpers that need no daemon (unit tested directly).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import hashlib
import json
import os
import re
import time
import traceback

from ansible.module_utils.basic import missing_required_lib

try:
    import docker
    from docker import errors as docker_errors
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - exercised only where the SDK is missing
    docker = None
    docker_errors = None
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
LABEL_PREFIX = "homelab.ai."


class HomelabDockerError(Exception):
    """An error a module turns into fail_json(msg=..., **details)."""

    def __init__(self, msg, **details):
        super(HomelabDockerError, self).__init__(msg)
        self.msg = msg
        self.details = details


class DaemonUnreachable(HomelabDockerError):
    pass


def api_error_text(exc):
    """What went wrong, as the daemon (or a registry behind it) said it: the API error's explanation, else the
    message of our own error, else the exception's text."""
    return getattr(exc, "explanation", None) or getattr(exc, "msg", None) or str(exc)


def follow_progress(chunks):
    """Read a decoded pull/push progress stream to its end; return the digest it reported (or None).

    An ``error`` message inside the stream (the HTTP status was 200) raises HomelabDockerError with its text."""
    digest = None
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):
            raise HomelabDockerError(chunk["error"])
        digest = (chunk.get("aux") or {}).get("Digest") or digest
    return digest


def run_docker_module(module, run, doing):
    """Run one Docker module's work and exit: the one place their errors become fail_json.

    ``run(params, check_mode=...)`` returns the result dict. A HomelabDockerError fails with its
    message and details; any other exception (an unexpected Docker API error) fails saying what the
    module was ``doing`` ("building homelab/vllm:1 from /srv/ctx"), with the traceback. Outside diff
    mode the ``diff`` key is dropped; ``warnings`` in the result become module warnings.
    """
    if not HAS_DOCKER:
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)
    try:
        result = run(module.params, check_mode=module.check_mode)
    except HomelabDockerError as exc:
        details = dict(exc.details)
        if not module._diff:
            details.pop("diff", None)
        module.fail_json(msg=exc.msg, **details)
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="Docker API error while %s: %s" % (doing, getattr(exc, "explanation", None) or exc),
                         exception=traceback.format_exc())
    if not module._diff:
        result.pop("diff", None)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


def resolve_docker_host(docker_host=None):
    """Explicit parameter, then DOCKER_HOST, then the default unix socket."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def unreachable_message(docker_host, error):
    text = str(error)
    hint = ("Start the daemon (`sudo service docker start`, or `sudo dockerd &` where there is no "
            "systemd, e.g. WSL2 without systemd) and check that this user may use the socket "
            "(root or member of group `docker`). Set docker_host / DOCKER_HOST if the daemon "
            "listens elsewhere.")
    if "Permission denied" in text or "PermissionError" in text:
        hint = ("The socket exists but this user may not use it: run as root (become: true) or add "
                "the user to group `docker` and log in again.")
    elif docker_host.startswith("unix://") and not os.path.exists(docker_host[len("unix://"):]):
        hint = ("The socket %s does not exist. " % docker_host[len("unix://"):]) + hint
    return "Cannot reach the Docker daemon at %s: %s. %s" % (docker_host, text, hint)


def get_client(docker_host=None, timeout=60):
    """Return a connected docker.APIClient or raise DaemonUnreachable with the socket and the fix."""
    host = resolve_docker_host(docker_host)
    try:
        client = docker.APIClient(base_url=host, version="auto", timeout=timeout)
        client.ping()
    except Exception as exc:  # DockerException, requests' ConnectionError, PermissionError...
        raise DaemonUnreachable(unreachable_message(host, exc), docker_host=host)
    return client


def is_not_found(exc):
    return HAS_DOCKER and isinstance(exc, docker_errors.NotFound)


def inspect_image_or_none(client, ref):
    try:
        return client.inspect_image(ref)
    except Exception as exc:
        if is_not_found(exc):
            return None
        if HAS_DOCKER and isinstance(exc, docker_errors.APIError) and getattr(exc, "status_code", None) in (400, 404):
            return None
        raise


def inspect_container_or_none(client, name):
    try:
        return client.inspect_container(name)
    except Exception as exc:
        if is_not_found(exc):
            return None
        raise


def running_names(client, names):
    """The names among ``names`` whose container runs now (exact names; a missing container is not running)."""
    running = []
    for name in names:
        info = inspect_container_or_none(client, name)
        if info and (info.get("State") or {}).get("Running"):
            running.append(name)
    return running


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value):
    """Seconds (float) from 30, 1.5, "30", "30s", "1m30s", "500ms". None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("duration must be a number of seconds or a string like '30s', got %r" % (value,))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        if re.match(r"^\d+(\.\d+)?$", text):
            seconds = float(text)
        else:
            pos = 0
            seconds = 0.0
            for m in _DURATION_RE.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
                pos = m.end()
            if pos != len(text) or pos == 0:
                raise ValueError("cannot parse duration %r: use seconds (30) or a Go-style string (30s, 1m30s, 500ms)" % (value,))
    if seconds < 0:
        raise ValueError("duration %r is negative" % (value,))
    return seconds


def to_nanoseconds(value):
    seconds = parse_duration(value)
    return None if seconds is None else int(round(seconds * 1e9))


def parse_docker_time(text):
    """Epoch seconds from Docker's RFC 3339 timestamps with nanoseconds ('...T21:55:00.123456789Z')."""
    if not text or text.startswith("0001-01-01"):
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        raise ValueError("unexpected Docker timestamp %r" % (text,))
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    frac = float("0" + m.group(2)) if m.group(2) else 0.0
    tz = m.group(3)
    offset = 0
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    epoch = (base - datetime.datetime(1970, 1, 1)).total_seconds() - offset
    return epoch + frac


def daemon_now(client):
    """The daemon's clock (epoch seconds): timestamps it writes are compared against it, not ours."""
    try:
        t = parse_docker_time(client.info().get("SystemTime", ""))
        if t:
            return t
    except Exception:
        pass
    return time.time()


def run_to_completion(client, image, command, timeout, what="check container", **create_kwargs):
    """Run ``command`` in a throwaway container of ``image`` until it exits; return (rc, output).

    rc is None when the container did not start or did not finish within ``timeout`` seconds (it is
    killed then); output is its last 200 log lines, with what went wrong appended. ``create_kwargs`` go
    to ``create_container`` (name, entrypoint, user, labels, host_config...). The container is removed
    in every case.
    """
    create_kwargs.setdefault("host_config", client.create_host_config(auto_remove=False))
    container = client.create_container(image, command=command, detach=True, **create_kwargs)
    cid = container["Id"]
    try:
        try:
            client.start(cid)
        except Exception as exc:  # e.g. the executable does not exist in the image
            return None, "%s did not start: %s" % (what, getattr(exc, "explanation", None) or exc)
        try:
            rc = client.wait(cid, timeout=timeout).get("StatusCode")
        except Exception as exc:  # requests' ReadTimeout, ConnectionError
            try:
                client.kill(cid)
            except Exception:
                pass
            output = client.logs(cid, stdout=True, stderr=True, tail=200).decode("utf-8", "replace")
            return None, output + "\n[%s did not finish within %ss: %s]" % (what, timeout, exc)
        return rc, client.logs(cid, stdout=True, stderr=True, tail=200).decode("utf-8", "replace")
    finally:
        try:
            client.remove_container(cid, force=True)
        except Exception:
            pass


def stable_hash(obj):
    """sha256 of a canonical JSON rendering (sorted keys, no whitespace)."""
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def split_image_ref(name):
    """('repo', 'tag') from 'repo[:tag]'; a registry port ('host:5000/x') is not a tag."""
    if "@" in name:
        raise ValueError("image name %r carries a digest; give repo:tag" % (name,))
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        repo, tag = name[:colon], name[colon + 1:]
    else:
        repo, tag = name, "latest"
    if not repo or not tag or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", tag):
        raise ValueError("invalid image name %r: expected repo:tag (tag of letters, digits, '_', '.', '-')" % (name,))
    if repo != repo.lower():
        raise ValueError("invalid image name %r: the repository part must be lowercase" % (name,))
    return repo, tag


class ProgressLog:
    """Appends timestamped lines to a file (or nowhere) so a long step can be followed with tail -f."""

    def __init__(self, path=None, mode="a"):
        self.path = path
        self._fh = None
        if path:
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                os.makedirs(parent)
            self._fh = open(path, mode)

    def write(self, line, stamp=True):
        if not self._fh:
            return
        if stamp:
            line = "%s %s" % (time.strftime("%Y-%m-%dT%H:%M:%S"), line)
        self._fh.write(line if line.endswith("\n") else line + "\n")
        self._fh.flush()

    def close(self):
        if self._fh:
            self._fh.close()
            self._fh = None
