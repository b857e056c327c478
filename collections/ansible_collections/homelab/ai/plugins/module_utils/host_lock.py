# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One holder at a time per key on a host: an flock'ed file that says who holds it.

Two terminals running the play at once must not interleave a rollout or a build. The kernel
releases an flock when its process dies (Ctrl-C, a lost SSH session, a kill -9), so an
interrupted run never leaves a lock that needs cleaning by hand; the file's content only tells
a waiting run who holds it.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import fcntl
import json
import os
import re
import socket
import time

from ansible_collections.homelab.ai.plugins.module_utils.docker_common import HomelabDockerError

DEFAULT_STATE_DIR = "/var/lib/homelab/rollouts"
POLL_S = 0.5
_KEY_RE = re.compile(r"[^A-Za-z0-9_.-]+")


class LockTimeout(HomelabDockerError):
    pass


def lock_path(state_dir, key):
    """The lock file for key ('image_build:homelab/x:local' -> '<dir>/image_build_homelab_x_local.lock')."""
    return os.path.join(state_dir, _KEY_RE.sub("_", key).strip("_") + ".lock")


def describe_holder(text):
    """A sentence about the holder from the lock file's content (JSON written by HostLock)."""
    try:
        info = json.loads(text or "{}")
    except ValueError:
        info = {}
    if not info:
        return "an unknown holder"
    since = info.get("since")
    age = " for %.0f s" % (time.time() - since) if isinstance(since, (int, float)) else ""
    return "pid %s on %s (%s)%s" % (info.get("pid", "?"), info.get("host", "?"), info.get("what", "?"), age)


class HostLock:
    """Context manager: wait up to timeout seconds for the key's lock, then hold it.

    on_wait(sentence) is called once when the lock is busy, so a progress log can say who holds it.
    """

    def __init__(self, state_dir, key, what, timeout=600, on_wait=None):
        self.path = lock_path(state_dir, key)
        self.key = key
        self.what = what
        self.timeout = float(timeout)
        self.on_wait = on_wait
        self.waited_s = 0.0
        self._fh = None

    def __enter__(self):
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755)
        fh = open(self.path, "a+")
        start = time.time()
        told = False
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    fh.close()
                    raise
            fh.seek(0)
            holder = describe_holder(fh.read())
            if not told and self.on_wait:
                self.on_wait("waiting up to %.0f s for %s, held by %s" % (self.timeout, self.key, holder))
                told = True
            if time.time() - start >= self.timeout:
                fh.close()
                raise LockTimeout(
                    "Another run holds the lock for %s (%s: %s) and did not release it within %.0f s. "
                    "Let that run finish, or stop it; an interrupted run releases the lock by itself. "
                    "Nothing was changed." % (self.key, self.path, holder, self.timeout),
                    lock_path=self.path, lock_holder=holder)
            time.sleep(POLL_S)
        self.waited_s = round(time.time() - start, 1)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "what": self.what,
                             "since": time.time()}))
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc):
        if self._fh:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
        return False
